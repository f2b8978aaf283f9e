"""``--audit``/``--label``, ``audit verify``, ``--cache``, the run metrics and ``stats``.

Both front ends, against the simulator: audited calls verify, an edited line is exit 1;
a cached repeat sends no second request; ``batch``/``test`` sum their calls up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from _cli_helpers import Entry, front_ends
from _cli_helpers import run_cli as _run

from lmstrix.cli._session import Session
from lmstrix.testing import FakeLMStudio, Fault, SimModel

MODEL = "acme/small-8k"
ENTRIES = front_ends()


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=[SimModel(MODEL, 8192)]) as server:
        yield server


def _chats(sim: FakeLMStudio) -> int:
    return sum(n for path, n in sim.counters.requests.items() if "chat" in path)


def _items(path: Path, prompts: List[str]) -> Path:
    rows = [{"id": i, "prompt": p} for i, p in enumerate(prompts)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(("front", "entry"), ENTRIES)
def test_audited_calls_verify_and_tampering_is_exit_1(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path, front: str, entry: Entry
) -> None:
    audit = tmp_path / "audit.jsonl"
    for _ in range(2):
        code, _, err = _run(
            capsys,
            entry,
            *("--server", sim.base_url, "--audit", str(audit), "--label", "team-a"),
            *("chat", MODEL, "hello", "--no-stream"),
        )
        assert code == 0, err
    lines = _lines(audit)
    assert len(lines) == 2 and {line["label"] for line in lines} == {"team-a"}
    assert {line["model"] for line in lines} == {MODEL}
    code, out, _ = _run(capsys, entry, "audit", "verify", str(audit))
    assert code == 0 and out.startswith("OK") and "2 lines" in out
    assert lines[-1]["hash"] in out
    code, out, _ = _run(capsys, entry, "--json", "audit", "verify", str(audit))
    assert code == 0 and json.loads(out)["head"] == lines[-1]["hash"]

    lines[0]["model"] = "acme/other"  # edit the first line, keep its hash
    audit.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    code, out, _ = _run(capsys, entry, "audit", "verify", str(audit))
    assert code == 1 and "line 1" in out and "edited" in out
    code, out, _ = _run(capsys, entry, "--json", "audit", "verify", str(audit))
    found = json.loads(out)
    assert code == 1 and found["ok"] is False and found["bad_line"] == 1


@pytest.mark.parametrize(("front", "entry"), ENTRIES)
def test_audit_verify_of_a_missing_file_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, front: str, entry: Entry
) -> None:
    code, out, err = _run(capsys, entry, "audit", "verify", str(tmp_path / "none.jsonl"))
    assert code == 2 and out == "" and "cannot read" in err


def test_audit_verify_with_a_head_catches_lines_cut_off(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    entry = ENTRIES[0][1]
    audit = tmp_path / "audit.jsonl"
    for _ in range(2):
        _run(capsys, entry, "--server", sim.base_url, "--audit", str(audit), "chat", MODEL, "hi")
    head = _lines(audit)[-1]["hash"]
    code, _, _ = _run(capsys, entry, "audit", "verify", str(audit), "--head", head)
    assert code == 0
    audit.write_text(audit.read_text(encoding="utf-8").splitlines(True)[0], encoding="utf-8")
    code, out, _ = _run(capsys, entry, "audit", "verify", str(audit), "--head", head)
    assert code == 1 and "cut off" in out


@pytest.mark.parametrize(("front", "entry"), ENTRIES)
def test_a_cached_repeat_sends_no_second_request(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path, front: str, entry: Entry
) -> None:
    cache = tmp_path / "cache.sqlite"
    ask = ["--server", sim.base_url, "-v", "chat", MODEL, "what is 2+2?", "--no-stream"]
    code, first, err = _run(capsys, entry, *ask, "--temperature", "0", "--cache", str(cache))
    assert code == 0 and "cache: 0 hits, 1 misses, 1 stored" in err
    sent = _chats(sim)
    assert sent == 1
    code, again, err = _run(capsys, entry, *ask, "--temperature", "0", "--cache", str(cache))
    assert code == 0 and again == first
    assert _chats(sim) == sent  # answered from the cache
    assert "cache: 1 hits, 0 misses" in err
    code, _, err = _run(capsys, entry, *ask, "--cache", str(cache))  # not deterministic
    assert code == 0 and _chats(sim) == sent + 1 and "0 hits, 0 misses" in err


def test_batch_with_a_cache_sends_each_prompt_once(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    entry = ENTRIES[0][1]
    items = _items(tmp_path / "in.jsonl", ["what is 1+1?", "what is 2+2?"])
    cache = tmp_path / "cache.sqlite"
    for run in ("a", "b"):
        code, _, err = _run(
            capsys,
            entry,
            *("--server", sim.base_url, "batch", str(items), "-o", str(tmp_path / f"{run}.jsonl")),
            *("-m", MODEL, "--temperature", "0", "--cache", str(cache), "--workers", "1"),
        )
        assert code == 0, err
    assert _chats(sim) == 2  # the second run was all hits
    outputs = [[r["output"] for r in _lines(tmp_path / f"{run}.jsonl")] for run in ("a", "b")]
    assert outputs[0] == outputs[1] and all(outputs[0])


def _metered(
    capsys: pytest.CaptureFixture[str], entry: Entry, sim: FakeLMStudio, out: Path, *args: str
) -> Tuple[Dict[str, Any], Dict[str, Any], str]:
    """Run a command with ``--json --metrics-out out``: its document, metric totals, stderr."""
    command = ["--server", sim.base_url, "--json", *args, "--metrics-out", str(out)]
    code, stdout, err = _run(capsys, entry, *command)
    assert code == 0, err
    doc = json.loads(stdout)
    totals: Dict[str, Any] = doc["metrics"]["totals"]
    assert json.loads(out.read_text(encoding="utf-8"))["totals"] == totals
    return doc, totals, err


@pytest.mark.parametrize(("front", "entry"), ENTRIES)
def test_batch_sums_up_its_calls_and_stats_shows_them(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path, front: str, entry: Entry
) -> None:
    items = _items(tmp_path / "in.jsonl", ["a?", "b?", "c?"])
    snapshot = tmp_path / "metrics.json"
    batch = ["batch", str(items), "-o", str(tmp_path / "o"), "-m", MODEL]
    doc, totals, err = _metered(capsys, entry, sim, snapshot, *batch)
    assert doc["done"] == 3
    assert totals["calls"] == 3 == _chats(sim) and totals["errors"] == 0
    assert totals["input_tokens"] == sim.counters.prompt_tokens > 0
    assert totals["output_tokens"] == sim.counters.generated_tokens > 0
    assert "metrics: 3 calls, 0 errors" in err and "latency p50" in err

    code, out, _ = _run(capsys, entry, "stats", str(snapshot))
    assert code == 0 and MODEL in out and "total: 3 calls" in out
    code, out, _ = _run(capsys, entry, "stats", str(snapshot), "--prometheus")
    assert code == 0 and "# TYPE lmstrix_call_duration_seconds summary" in out
    assert f'lmstrix_calls_total{{server="{sim.base_url}",model="{MODEL}"' in out
    assert "lmstrix_call_duration_seconds_count{" in out and "} 3\n" in out
    code, out, _ = _run(capsys, entry, "--json", "stats", str(snapshot))
    assert code == 0 and json.loads(out)["totals"] == totals


def test_test_sums_up_its_calls(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    registry = ["--registry", str(tmp_path / "r.json")]
    test = [*registry, "test", MODEL, "--trials", "1"]
    doc, totals, err = _metered(capsys, ENTRIES[0][1], sim, tmp_path / "m.json", *test)
    assert doc["models"][0]["status"] == "done"
    calls = {row["operation"]: row["calls"] for row in doc["metrics"]["series"]}
    assert calls["chat"] == _chats(sim) > 0 and calls["load"] == sim.counters.loads
    assert totals["calls"] == sum(calls.values())
    # a probe the server refuses (too long) sends tokens but reports no usage
    assert 0 < totals["input_tokens"] <= sim.counters.prompt_tokens
    assert f"metrics: {totals['calls']} calls" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("not json", "not JSON"), ('{"a": 1}', "not a metrics snapshot")],
)
def test_stats_of_a_bad_file_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: Any, message: str
) -> None:
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    for _, entry in ENTRIES:
        code, out, err = _run(capsys, entry, "stats", str(path))
        assert code == 2 and out == "" and message in err


def test_stats_prometheus_and_json_together_is_bad_usage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"series": [], "totals": {}}), encoding="utf-8")
    code, _, err = _run(capsys, ENTRIES[0][1], "--json", "stats", str(path), "--prometheus")
    assert code == 2 and "--prometheus" in err


def test_an_unwritable_metrics_out_is_bad_usage(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    items = _items(tmp_path / "in.jsonl", ["a?"])
    code, _, err = _run(
        capsys,
        ENTRIES[0][1],
        *("--server", sim.base_url, "batch", str(items), "-o", str(tmp_path / "o")),
        *("-m", MODEL, "--metrics-out", str(tmp_path / "no" / "such" / "m.json")),
    )
    assert code == 2 and "--metrics-out" in err


def test_over_several_servers_the_pool_clients_are_cached_and_audited(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    audit, cache = tmp_path / "audit.jsonl", tmp_path / "cache.sqlite"
    with FakeLMStudio(models=[SimModel(MODEL, 8192)]) as other:
        servers = ["--server", sim.base_url, "--server", other.base_url]
        ask = [*servers, "--audit", str(audit), "chat", MODEL, "hi", "--temperature", "0"]
        for _ in range(2):
            code, out, err = _run(capsys, ENTRIES[0][1], *ask, "--cache", str(cache))
            assert code == 0 and out.strip(), err
        assert _chats(sim) + _chats(other) == 1  # the repeat came from the cache
        lines = _lines(audit)
        assert len(lines) == 2 and lines[0]["server"] in (sim.base_url, other.base_url)
    code, _, _ = _run(capsys, ENTRIES[0][1], "audit", "verify", str(audit))
    assert code == 0


def test_failed_calls_are_counted_by_kind(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    items = _items(tmp_path / "in.jsonl", ["a?", "b?"])
    snapshot = tmp_path / "m.json"
    sim.inject(Fault(kind="status", status=400, times=1))
    code, _, err = _run(
        capsys,
        ENTRIES[0][1],
        *("--server", sim.base_url, "batch", str(items), "-o", str(tmp_path / "o")),
        *("-m", MODEL, "--retries", "0", "--workers", "1", "--metrics-out", str(snapshot)),
    )
    assert code == 1 and "metrics: 2 calls, 1 errors" in err
    code, out, _ = _run(capsys, ENTRIES[0][1], "stats", str(snapshot), "--prometheus")
    assert code == 0 and 'lmstrix_errors_total{server="' in out and 'kind="' in out


def test_observers_and_middleware_come_before_the_first_client(sim: FakeLMStudio) -> None:
    session = Session(server=sim.base_url)
    session.client()
    with pytest.raises(RuntimeError, match="before the first client"):
        session.observe(lambda event: None)
    session.close()
