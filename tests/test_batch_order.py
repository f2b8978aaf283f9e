"""Prefix ordering in the batch runner: grouping, defaults, resume, and the prompt cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from lmstrix import Client, ConfigError, PromptLibrary
from lmstrix.batch import run_batch
from lmstrix.batch._order import (
    blocks,
    order_jobs,
    prefix_order,
    prompt_text,
    resolve_order,
    shared_prefix_share,
)
from lmstrix.cli import main
from lmstrix.testing import FakeLMStudio, SimModel

MODEL = "acme/chat-7b"
DOCS = {
    name: " ".join(f"{name}-word{i}" for i in range(400)) for name in ("alpha", "beta", "gamma")
}
CHAT = "/v1/chat/completions"
TEMPLATE = "{{doc}}\n\nQuestion: {{question}}"


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=[SimModel(key=MODEL, declared_context=32768, parallel=2)]) as s:
        s.preload(MODEL)
        yield s


@pytest.fixture
def client(sim: FakeLMStudio) -> Iterator[Client]:
    with Client(sim.base_url) as c:
        yield c


def interleaved(n: int) -> List[Dict[str, Any]]:
    """Questions about three documents, the documents taking turns (the worst order)."""
    names = sorted(DOCS)
    return [
        {"id": f"q{i}", "doc": DOCS[names[i % 3]], "question": f"what is item {i}?"}
        for i in range(n)
    ]


def records(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_prefix_order_puts_shared_prefixes_next_to_each_other() -> None:
    texts = ["alpha|q1", "beta|q1", "alpha|q2", "beta|q2", "alpha|q3"]
    order = prefix_order(texts)
    assert [texts[i] for i in order] == ["alpha|q1", "alpha|q2", "alpha|q3", "beta|q1", "beta|q2"]
    runs, before, after = order_jobs(list("abcde"), texts, 1)
    assert runs == [["a", "c"], ["e"], ["b", "d"]]  # runs of 2 at most, cut at a group end
    assert after > before == 0
    assert shared_prefix_share([]) == 0.0
    assert shared_prefix_share(["same", "same"]) == pytest.approx(0.5)


def test_blocks_are_contiguous_runs_covering_everything() -> None:
    assert blocks([], 4) == []
    runs = blocks(list(range(40)), 4)
    assert [x for run in runs for x in run] == list(range(40))
    assert all(run == list(range(run[0], run[0] + len(run))) for run in runs)
    assert len(runs) == 14 and max(len(r) for r in runs) == 3
    assert blocks([1, 2], 8) == [[1], [2]]
    texts = ["xx1", "xx2", "xx3", "yy1", "yy2"]
    assert blocks(list("abcde"), 1, texts) == [["a", "b"], ["c"], ["d", "e"]]


def test_prompt_text_covers_roles_and_contents() -> None:
    a = prompt_text([{"role": "system", "content": "S"}, {"role": "user", "content": "x"}])
    b = prompt_text([{"role": "system", "content": "S"}, {"role": "user", "content": "y"}])
    assert a != b and a[:-1] == b[:-1]
    assert prompt_text([{"role": "user", "content": [{"type": "text"}]}]) == "user\x1f"


def test_order_defaults_to_prefix_for_templates_only() -> None:
    assert resolve_order(None, templated=True) == "prefix"
    assert resolve_order(None, templated=False) == "input"
    assert resolve_order("input", templated=True) == "input"
    with pytest.raises(ConfigError, match="order must be one of prefix, input"):
        resolve_order("random", templated=False)


def test_templated_batch_runs_in_prefix_order_and_keeps_every_id(
    sim: FakeLMStudio, client: Client, tmp_path: Path
) -> None:
    given = interleaved(12)
    out = tmp_path / "out.jsonl"
    summary = run_batch(given, client, MODEL, output=out, template=TEMPLATE, workers=1)
    assert summary.order == "prefix" and summary.done == 12 and summary.failed == 0
    rows = records(out)
    assert sorted(r["id"] for r in rows) == sorted(item["id"] for item in given)
    # One worker: the server saw the documents grouped, each group back to back.
    sent = [r[3]["messages"][0]["content"] for r in sim.received if r[1] == CHAT]
    heads = [text.split("-", 1)[0] for text in sent]
    assert heads == ["alpha"] * 4 + ["beta"] * 4 + ["gamma"] * 4
    # Each answer belongs to its own item (the sim answers from the question's text).
    for row in rows:
        assert row["output"] and row["error"] is None
    doc = summary.to_dict()
    assert doc["order"] == "prefix" and doc["prefix_share"] > doc["input_prefix_share"]


def test_prefix_order_processes_fewer_prompt_tokens_than_input_order(
    sim: FakeLMStudio, client: Client, tmp_path: Path
) -> None:
    given = interleaved(18)
    processed = {}
    for order in ("input", "prefix"):
        sim.reset_counters()
        summary = run_batch(
            given,
            client,
            MODEL,
            output=tmp_path / f"{order}.jsonl",
            template=TEMPLATE,
            workers=1,
            order=order,
        )
        assert summary.order == order and summary.done == 18
        counters = sim.counters
        processed[order] = counters.processed_tokens
        assert counters.prompt_tokens > 0
    # Input order reprocesses a whole document per item; prefix order once per document.
    assert processed["prefix"] * 3 < processed["input"]


def test_input_order_is_kept_when_asked_and_for_plain_prompts(
    sim: FakeLMStudio, client: Client, tmp_path: Path
) -> None:
    plain = [{"id": i, "prompt": f"What is {i}+1?"} for i in (3, 1, 2)]
    summary = run_batch(plain, client, MODEL, output=tmp_path / "a.jsonl", workers=1)
    assert summary.order == "input" and summary.prefix_share is None
    sent = [r[3]["messages"][0]["content"] for r in sim.received if r[1] == CHAT]
    assert sent == ["What is 3+1?", "What is 1+1?", "What is 2+1?"]
    library = PromptLibrary.from_dict({"ask": TEMPLATE})
    summary = run_batch(
        interleaved(3),
        client,
        MODEL,
        output=tmp_path / "b.jsonl",
        template="ask",
        library=library,
        order="input",
    )
    assert summary.order == "input" and summary.to_dict()["prefix_share"] is None


def test_prefix_order_resumes_by_id(sim: FakeLMStudio, client: Client, tmp_path: Path) -> None:
    given = interleaved(9)
    out = tmp_path / "out.jsonl"
    first = run_batch(given[:5], client, MODEL, output=out, template=TEMPLATE)
    assert first.done == 5
    summary = run_batch(given + given[:2], client, MODEL, output=out, template=TEMPLATE)
    assert (summary.done, summary.skipped, summary.total) == (4, 7, 11)
    assert sorted(r["id"] for r in records(out)) == sorted(item["id"] for item in given)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_order_option(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    items = tmp_path / "in.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in interleaved(6)), encoding="utf-8")
    base = ["--server", sim.base_url, "batch", str(items), "-m", MODEL, "--template", TEMPLATE]
    code, out, err = _cli(capsys, *base, "-o", str(tmp_path / "a.jsonl"))
    assert code == 0, err
    assert "prefix order:" in out and "of prompt text repeats" in out
    code, out, err = _cli(
        capsys, "--json", *base, "-o", str(tmp_path / "b.jsonl"), "--order", "input"
    )
    assert code == 0, err
    assert json.loads(out)["order"] == "input"
    code, _, err = _cli(capsys, *base, "-o", str(tmp_path / "c.jsonl"), "--order", "random")
    assert code == 2 and "random" in err
