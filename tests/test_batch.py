"""lmstrix.batch: input files, the runner, failures, resume and repair, rate limits, Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import lmstrix
from lmstrix import Client, ConfigError, PromptLibrary
from lmstrix.batch import BatchProgress, BatchSummary, default_workers, read_items, run_batch
from lmstrix.batch import _io as bio
from lmstrix.batch import _runner as batch
from lmstrix.testing import FakeLMStudio, Fault, SimModel

MODEL = "acme/chat-7b"
SMALL = "acme/tiny-1b"
MODELS = [
    SimModel(key=MODEL, declared_context=32768, parallel=3),
    SimModel(key=SMALL, declared_context=512, default_context=512),
]


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=MODELS) as server:
        server.preload(MODEL)
        yield server


@pytest.fixture
def client(sim: FakeLMStudio) -> Iterator[Client]:
    with Client(sim.base_url, retry_backoff_s=0.001) as c:
        yield c


def lines(path: Path) -> List[Dict[str, Any]]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "the last line is torn"
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def ids(path: Path) -> List[Any]:
    return [r["id"] for r in lines(path)]


def items(n: int, start: int = 0) -> List[Dict[str, Any]]:
    return [{"id": f"q{i}", "prompt": f"What is {i}+1?"} for i in range(start, start + n)]


def chat_bodies(sim: FakeLMStudio) -> List[Dict[str, Any]]:
    return [r[3] for r in sim.received if r[1] == "/v1/chat/completions"]


# ------------------------------------------------------------------- reading inputs


def test_read_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "hi"}\n\n{"prompt": "no id"}\n'
        '{"id": 7, "messages": [{"role": "user", "content": "x"}]}\n{"id": null, "text": "t"}',
        encoding="utf-8",
    )
    got = list(read_items(path))
    assert [g["id"] for g in got] == ["a", "line-3", 7, "line-5"]
    assert got[1]["prompt"] == "no id"
    assert got[3]["text"] == "t"


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.jsonl", '{"id": 1}\n{"id": 2,\n', "line 2: not valid JSON"),
        ("bad.jsonl", '{"id": 1}\n[1, 2]\n', "line 2: expected a JSON object"),
        ("bad.jsonl", '{"id": true, "prompt": "x"}\n', "line 1: 'id' must be"),
        ("bad.jsonl", '{"id": "", "prompt": "x"}\n', "line 1: 'id' must be"),
        ("bad.csv", "a,b,a\n1,2,3\n", "line 1: duplicate column(s) a"),
        ("bad.csv", "a,b\n1,2\n1,2,3\n", "line 3: 3 fields but the header has 2 columns"),
        ("bad.csv", "id,a\n,2\n", "line 2: the 'id' cell is empty"),
        ("bad.csv", 'a,b\n"1,2\n', "bad CSV"),
    ],
)
def test_read_errors_name_file_and_line(tmp_path: Path, name: str, text: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        list(read_items(path))
    assert str(path) in str(info.value)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


def test_read_csv_with_and_without_id(tmp_path: Path) -> None:
    with_id = tmp_path / "a.csv"
    with_id.write_text(
        '\ufeffid,topic,prompt\nx1,rivers,"multi\nline"\n\nx2,lakes,\n', encoding="utf-8"
    )
    got = list(read_items(with_id))
    assert got == [
        {"id": "x1", "topic": "rivers", "prompt": "multi\nline"},
        {"id": "x2", "topic": "lakes", "prompt": ""},
    ]
    no_id = tmp_path / "b.csv"
    no_id.write_text("topic,tone,\nrivers,calm\nlakes,wild,\n", encoding="utf-8")
    assert list(read_items(no_id)) == [
        {"topic": "rivers", "tone": "calm", "id": 1},
        {"topic": "lakes", "tone": "wild", "id": 2},
    ]
    empty = tmp_path / "c.csv"
    empty.write_text("", encoding="utf-8")
    assert list(read_items(empty)) == []


def test_read_text_one_prompt_per_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("first prompt\r\n\n   \nsecond prompt  \nthird", encoding="utf-8")
    assert list(read_items(path)) == [
        {"id": 1, "prompt": "first prompt"},
        {"id": 4, "prompt": "second prompt  "},
        {"id": 5, "prompt": "third"},
    ]


def test_read_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the batch input"):
        read_items(tmp_path / "nope.jsonl")  # reported at the call, not at first next()
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        list(read_items(path))


# ------------------------------------------------------------------- running


def test_run_writes_one_complete_line_per_item(
    tmp_path: Path, client: Client, sim: FakeLMStudio
) -> None:
    out = tmp_path / "out.jsonl"
    seen: List[BatchProgress] = []
    summary = run_batch(items(10), client, MODEL, output=out, workers=3, on_progress=seen.append)
    assert isinstance(summary, BatchSummary)
    assert (summary.total, summary.done, summary.skipped, summary.failed) == (10, 10, 0, 0)
    assert summary.succeeded == 10
    assert summary.output == str(out)
    assert summary.to_dict()["done"] == 10
    records = lines(out)
    assert sorted(r["id"] for r in records) == sorted(f"q{i}" for i in range(10))
    first = next(r for r in records if r["id"] == "q4")
    assert set(first) >= {
        "id",
        "model",
        "output",
        "usage",
        "stats",
        "error",
        "started_at",
        "finished_at",
        "seconds",
        "attempts",
    }
    assert first["output"] == "5"
    assert first["model"] == MODEL
    assert first["error"] is None
    assert first["attempts"] == 1
    assert first["usage"]["prompt_tokens"] > 0
    assert datetime.fromisoformat(first["finished_at"]) >= datetime.fromisoformat(
        first["started_at"]
    )
    assert [p.done for p in seen] == list(range(1, 11))
    assert all(p.total == 10 and p.status == "ok" and p.error is None for p in seen)
    assert sim.counters.max_in_flight[MODEL] <= 3


def test_messages_and_non_ascii_are_kept(tmp_path: Path, client: Client, sim: FakeLMStudio) -> None:
    out = tmp_path / "out.jsonl"
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Café?"}]
    run_batch([{"id": "m", "messages": msgs}], client, MODEL, output=out)
    assert chat_bodies(sim)[-1]["messages"] == msgs
    assert "Café" in out.read_text(encoding="utf-8")  # ensure_ascii=False


def test_params_are_sent(tmp_path: Path, client: Client, sim: FakeLMStudio) -> None:
    run_batch(
        items(2),
        client,
        MODEL,
        output=tmp_path / "o.jsonl",
        params={"temperature": 0.2, "max_tokens": 5, "seed": 3},
    )
    for body in chat_bodies(sim):
        assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 5, 3)
        assert body["model"] == MODEL


def test_templates_from_a_library_a_path_and_plain_text(
    tmp_path: Path, client: Client, sim: FakeLMStudio
) -> None:
    library = {"persona": "You are terse.", "ask": "{{persona}} Explain {{topic}} in {{n}} words."}
    rows = [{"id": 1, "topic": "rivers", "n": 5}, {"id": 2, "vars": {"topic": "lakes", "n": 3}}]
    run_batch(
        rows,
        client,
        MODEL,
        output=tmp_path / "a.jsonl",
        template="ask",
        library=PromptLibrary.from_dict(library),
    )
    sent = [b["messages"][0]["content"] for b in chat_bodies(sim)]
    assert sorted(sent) == [
        "You are terse. Explain lakes in 3 words.",
        "You are terse. Explain rivers in 5 words.",
    ]
    lib_path = tmp_path / "prompts.json"
    lib_path.write_text(json.dumps(library), encoding="utf-8")
    sim.clear_received()
    run_batch(
        rows[:1], client, MODEL, output=tmp_path / "b.jsonl", template="ask", library=str(lib_path)
    )
    assert chat_bodies(sim)[0]["messages"][0]["content"].endswith("rivers in 5 words.")
    sim.clear_received()
    run_batch(rows[:1], client, MODEL, output=tmp_path / "c.jsonl", template="About {{topic}}")
    assert chat_bodies(sim)[0]["messages"] == [{"role": "user", "content": "About rivers"}]


def test_template_problems_are_config_errors(tmp_path: Path, client: Client) -> None:
    lib = PromptLibrary.from_dict({"ask": "Explain {{topic}}."})
    out = tmp_path / "o.jsonl"
    with pytest.raises(ConfigError, match="no template 'nope'"):
        run_batch(items(1), client, MODEL, output=out, template="nope", library=lib)
    with pytest.raises(ConfigError, match="neither a name in a prompt library"):
        run_batch(items(1), client, MODEL, output=out, template="ask")
    rows = [{"id": "ok", "topic": "x"}, {"id": "bad", "subject": "y"}]
    with pytest.raises(ConfigError) as info:
        run_batch(rows, client, MODEL, output=out, template="ask", library=lib, workers=1)
    assert "'bad'" in str(info.value)
    assert "topic" in str(info.value)
    assert isinstance(info.value.__cause__, lmstrix.MissingVariableError)


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ("just text", "is a str, not a mapping"),
        ({"prompt": "no id"}, "'id' must be"),
        ({"id": True, "prompt": "x"}, "'id' must be"),
        ({"id": 1}, "nothing to send"),
        ({"id": 1, "messages": [{"content": "no role"}]}, "'messages' must be"),
        ({"id": 1, "messages": []}, "'messages' must be"),
    ],
)
def test_bad_items_stop_the_batch(tmp_path: Path, client: Client, item: Any, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        run_batch([item], client, MODEL, output=tmp_path / "o.jsonl")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"workers": 0}, "workers"),
        ({"retries": -1}, "retries"),
        ({"rpm": 0}, "rpm"),
        ({"params": {"model": "x"}}, "params must not set model"),
    ],
)
def test_bad_arguments(tmp_path: Path, client: Client, kwargs: Any, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        run_batch(items(1), client, MODEL, output=tmp_path / "o.jsonl", **kwargs)


def test_empty_input_makes_an_empty_output(tmp_path: Path, client: Client) -> None:
    out = tmp_path / "o.jsonl"
    summary = run_batch(iter([]), client, MODEL, output=out)
    assert summary.to_dict()["total"] == 0
    assert out.read_bytes() == b""


def test_input_is_streamed_not_read_ahead(tmp_path: Path, client: Client) -> None:
    pulled = []

    def source() -> Iterator[Dict[str, Any]]:
        for item in items(200):
            pulled.append(item["id"])
            yield item

    ahead = []

    def progress(p: BatchProgress) -> None:
        ahead.append(len(pulled) - p.done)
        assert p.total is None or p.total == 200

    out = tmp_path / "o.jsonl"
    summary = run_batch(source(), client, MODEL, output=out, workers=2, on_progress=progress)
    assert summary.total == 200
    assert max(ahead) <= 2 * 2 + 1  # a bounded queue: at most twice the workers ahead


# ------------------------------------------------------------------- failures


def test_server_error_is_recorded_and_the_batch_goes_on(
    tmp_path: Path, client: Client, sim: FakeLMStudio
) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="status", status=500, times=1))
    out = tmp_path / "o.jsonl"
    seen: List[BatchProgress] = []
    summary = run_batch(
        items(6), client, MODEL, output=out, workers=1, retries=0, on_progress=seen.append
    )
    assert (summary.done, summary.failed, summary.succeeded) == (6, 1, 5)
    failed = [r for r in lines(out) if r["error"]]
    assert len(failed) == 1
    assert failed[0]["id"] == "q0"
    assert failed[0]["error"]["type"] == "APIStatusError"
    assert failed[0]["error"]["status_code"] == 500
    assert failed[0]["output"] is None
    assert failed[0]["usage"] is None
    assert seen[0].status == "failed"
    assert seen[0].error is not None
    assert seen[0].error.startswith("APIStatusError: ")


def test_retryable_failures_are_tried_again(
    tmp_path: Path, client: Client, sim: FakeLMStudio
) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="html_500", times=2))
    out = tmp_path / "o.jsonl"
    summary = run_batch(items(1), client, MODEL, output=out, retries=2)
    assert summary.failed == 0
    assert lines(out)[0]["attempts"] == 3


def test_timeout_is_recorded_not_fatal(tmp_path: Path, sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="delay", delay_s=0.6, times=1))
    out = tmp_path / "o.jsonl"
    with Client(sim.base_url, timeout=lmstrix.Timeout(1, 0.2, 1), max_retries=0) as client:
        summary = run_batch(items(3), client, MODEL, output=out, workers=1, retries=0)
    assert (summary.done, summary.failed) == (3, 1)
    assert next(r for r in lines(out) if r["error"])["error"]["type"] == "APITimeoutError"


def test_overflow_is_recorded_and_not_retried(
    tmp_path: Path, client: Client, sim: FakeLMStudio
) -> None:
    sim.preload(SMALL, 512)
    rows = [{"id": "long", "prompt": "word " * 2000}, {"id": "short", "prompt": "What is 1+1?"}]
    out = tmp_path / "o.jsonl"
    summary = run_batch(rows, client, SMALL, output=out, retries=3)
    assert (summary.done, summary.failed) == (2, 1)
    by_id = {r["id"]: r for r in lines(out)}
    assert by_id["long"]["error"]["type"] == "ContextOverflowError"
    assert by_id["long"]["attempts"] == 1
    assert by_id["short"]["output"] == "2"


def test_unknown_model_stops_the_batch_and_writes_nothing(tmp_path: Path, client: Client) -> None:
    out = tmp_path / "o.jsonl"
    with pytest.raises(lmstrix.ModelNotFoundError):
        run_batch(items(5), client, "nope/none", output=out, workers=2)
    assert lines(out) == []


def test_unreachable_server_stops_the_batch(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    out = tmp_path / "o.jsonl"
    with Client(url, max_retries=0) as client:
        with pytest.raises(lmstrix.APIConnectionError):
            run_batch(items(3), client, MODEL, output=out)  # default workers: server silent
    assert lines(out) == []


def test_an_error_from_the_input_stops_cleanly(tmp_path: Path, client: Client) -> None:
    def source() -> Iterator[Dict[str, Any]]:
        yield from items(5)
        raise RuntimeError("input broke")

    out = tmp_path / "o.jsonl"
    with pytest.raises(RuntimeError, match="input broke"):
        run_batch(source(), client, MODEL, output=out, workers=2)
    assert len(set(ids(out))) == len(ids(out))
    summary = run_batch(items(5), client, MODEL, output=out)
    assert sorted(ids(out)) == sorted(f"q{i}" for i in range(5))
    assert summary.done + summary.skipped == 5


# ------------------------------------------------------------------- resume and repair


def test_resume_skips_ids_already_written(
    tmp_path: Path, client: Client, sim: FakeLMStudio
) -> None:
    out = tmp_path / "o.jsonl"
    run_batch(items(4), client, MODEL, output=out)
    sim.reset_counters()
    seen: List[BatchProgress] = []
    summary = run_batch(items(10), client, MODEL, output=out, on_progress=seen.append)
    assert (summary.total, summary.done, summary.skipped) == (10, 6, 4)
    assert sim.counters.requests.get("/v1/chat/completions") == 6
    assert sorted(ids(out)) == sorted(f"q{i}" for i in range(10))
    assert sum(p.status == "skipped" for p in seen) == 4


def test_torn_last_line_is_repaired(
    tmp_path: Path, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "o.jsonl"
    run_batch(items(3), client, MODEL, output=out)
    whole = out.read_bytes()
    out.write_bytes(whole + b'{"id": "q3", "model": "acme/ch')  # a crash mid-line
    caplog.set_level(logging.WARNING, logger="lmstrix")
    summary = run_batch(items(5), client, MODEL, output=out)
    assert "torn last line" in caplog.text
    assert (summary.done, summary.skipped) == (2, 3)
    assert sorted(ids(out)) == sorted(f"q{i}" for i in range(5))
    assert out.read_bytes().startswith(whole)


def test_last_line_that_is_not_json_is_repaired(tmp_path: Path, client: Client) -> None:
    out = tmp_path / "o.jsonl"
    out.write_bytes(b'{"id": "q0", "output": "1"}\n\n\x00\x00\x00\n')
    summary = run_batch(items(2), client, MODEL, output=out)
    assert (summary.done, summary.skipped) == (1, 1)
    assert sorted(ids(out)) == ["q0", "q1"]


def test_damage_before_the_last_line_is_refused(tmp_path: Path, client: Client) -> None:
    out = tmp_path / "o.jsonl"
    damaged = b'{"id": "q0"}\nnot json\n{"id": "q1"}\n'
    out.write_bytes(damaged)
    with pytest.raises(ConfigError, match="line 2: not a complete JSON record"):
        run_batch(items(3), client, MODEL, output=out)
    assert out.read_bytes() == damaged


def test_repeated_ids_in_the_input_run_once(
    tmp_path: Path, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [*items(3), {"id": "q1", "prompt": "again"}, {"id": 5, "prompt": "a"}]
    rows.append({"id": "5", "prompt": "b"})  # 5 and "5" are the same item
    caplog.set_level(logging.WARNING, logger="lmstrix")
    summary = run_batch(rows, client, MODEL, output=tmp_path / "o.jsonl")
    assert (summary.total, summary.done, summary.skipped) == (6, 4, 2)
    assert "appeared before in the input" in caplog.text


@pytest.mark.skipif(sys.platform == "win32", reason="the writer lock is POSIX-only")
def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    first = bio.OutputFile(tmp_path / "o.jsonl")
    first.open()
    try:
        with pytest.raises(ConfigError, match="another batch is writing"):
            bio.OutputFile(tmp_path / "o.jsonl").open()
    finally:
        first.close()
        first.close()
    second = bio.OutputFile(tmp_path / "o.jsonl")
    assert second.open() == set()
    second.close()


def test_output_that_cannot_be_opened(tmp_path: Path, client: Client) -> None:
    with pytest.raises(ConfigError, match="cannot open the batch output"):
        run_batch(items(1), client, MODEL, output=tmp_path)  # a directory


def test_a_short_write_never_leaves_a_torn_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = bio.OutputFile(tmp_path / "o.jsonl")
    out.open()
    out.write({"id": 1})
    real_write = os.write
    calls = []

    def half_then_fail(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        out.write({"id": 2, "output": "x" * 100})
    monkeypatch.undo()
    out.write({"id": 3})
    out.close()
    assert [r["id"] for r in lines(tmp_path / "o.jsonl")] == [1, 3]
    with pytest.raises(ValueError, match="not open"):
        out.write({"id": 4})


def test_scan_of_a_missing_file(tmp_path: Path) -> None:
    assert bio.scan_output(tmp_path / "none.jsonl") == (set(), 0, 0)


# ------------------------------------------------------------------- workers and rate


def test_default_workers_come_from_parallel_slots(client: Client, sim: FakeLMStudio) -> None:
    assert default_workers(client, MODEL) == 3  # SimModel(parallel=3), loaded
    instance = sim.loaded()[0].id
    assert default_workers(client, instance) == 3
    assert default_workers(client, SMALL) == batch.DEFAULT_WORKERS  # not loaded


def test_default_workers_when_the_server_cannot_say(sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="*", kind="status", status=500, times=5))
    with Client(sim.base_url, max_retries=0) as client:
        assert default_workers(client, MODEL) == 4


def test_run_uses_the_parallel_slots(
    tmp_path: Path, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: List[int] = []
    real_init = batch._Run.__init__

    def capture(self: Any, *args: Any) -> None:
        real_init(self, *args)
        seen.append(self.workers)

    monkeypatch.setattr(batch._Run, "__init__", capture)
    run_batch(items(2), client, MODEL, output=tmp_path / "o.jsonl")
    run_batch(items(2, 2), client, MODEL, output=tmp_path / "o.jsonl", workers=7)
    assert seen == [3, 7]


def test_rpm_spaces_requests(tmp_path: Path, client: Client) -> None:
    out = tmp_path / "o.jsonl"
    run_batch(items(6), client, MODEL, output=out, workers=4, rpm=600)  # one per 0.1 s
    starts = sorted(datetime.fromisoformat(r["started_at"]) for r in lines(out))
    spread = (starts[-1] - starts[0]).total_seconds()
    assert spread >= 0.45  # 5 gaps of 0.1 s; a lower bound only, never a speed check


# ------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_cleanly_and_the_run_resumes(tmp_path: Path, client: Client) -> None:
    out = tmp_path / "o.jsonl"

    def interrupt_after_five(p: BatchProgress) -> None:
        if p.done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(items(40), client, MODEL, output=out, workers=4, on_progress=interrupt_after_five)
    first = ids(out)  # every line complete (lines() checks the tail)
    assert 5 <= len(first) < 40
    assert len(set(first)) == len(first)
    summary = run_batch(items(40), client, MODEL, output=out, workers=4)
    assert summary.skipped == len(first)
    assert sorted(ids(out)) == sorted(f"q{i}" for i in range(40))
