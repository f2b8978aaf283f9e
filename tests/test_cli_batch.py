"""``lmstrix batch``: the command wired to ``lmstrix.batch``, resumable, with its exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from lmstrix.cli import main
from lmstrix.testing import FakeLMStudio, Fault, SimModel

MODEL = "acme/small-8k"


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=[SimModel(MODEL, 8192)]) as server:
        yield server


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _items(path: Path, rows: List[Dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _batch(sim: FakeLMStudio, items: Path, output: Path, model: str = MODEL) -> List[str]:
    """The command line of one batch run, global options first."""
    return ["--server", sim.base_url, "batch", str(items), "-o", str(output), "-m", model]


def test_batch_runs_every_item_and_resumes(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    items = _items(
        tmp_path / "in.jsonl",
        [
            {"id": 1, "prompt": "What is 2+2?"},
            {"id": 2, "prompt": "What is 3+3?"},
            {"id": 3, "prompt": "What is 1+6?"},
        ],
    )
    out_file = tmp_path / "out.jsonl"
    base = _batch(sim, items, out_file)
    code, out, err = _run(
        capsys, "--json", *base, "--workers", "2", "--temperature", "0", "--max-tokens", "16"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert {"total", "done", "skipped", "failed", "seconds"} <= set(summary)
    assert (summary["total"], summary["done"], summary["failed"]) == (3, 3, 0)
    lines = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 3
    assert "batch:" in err  # progress on stderr
    code, out, _ = _run(capsys, *base)
    assert code == 0
    assert "3 skipped" in out


def test_batch_with_a_template_and_a_failed_item(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    library = tmp_path / "p.json"
    library.write_text(json.dumps({"add": "What is {{a}}+{{b}}?"}), encoding="utf-8")
    items = _items(
        tmp_path / "in.jsonl", [{"id": "x", "a": 1, "b": 1}, {"id": "y", "a": 2, "b": 3}]
    )
    sim.inject(Fault(kind="status", status=400, times=1))
    code, out, err = _run(
        capsys,
        "--server",
        sim.base_url,
        "--json",
        "batch",
        str(items),
        "-o",
        str(tmp_path / "out.jsonl"),
        "-m",
        MODEL,
        "--prompts",
        str(library),
        "--template",
        "add",
        "--workers",
        "1",
        "--retries",
        "0",
        "--rpm",
        "6000",
    )
    assert code == 1, err  # one item failed
    summary = json.loads(out)
    assert summary["failed"] == 1 and summary["done"] == 2


@pytest.mark.parametrize(
    "extra",
    [
        ["--workers", "0"],
        ["--retries", "-1"],
        ["--rpm", "0"],
        ["--max-tokens", "0"],
        ["--prompts", "lib.json"],
    ],
)
def test_batch_bad_options_exit_2(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path, extra: List[str]
) -> None:
    items = _items(tmp_path / "in.jsonl", [{"id": 1, "prompt": "hi"}])
    code, out, _ = _run(capsys, *_batch(sim, items, tmp_path / "o.jsonl"), *extra)
    assert code == 2 and out == ""


def test_batch_unreadable_input_exits_2_and_unknown_model_exits_1(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    code, _, err = _run(capsys, *_batch(sim, tmp_path / "none.jsonl", tmp_path / "o.jsonl"))
    assert code == 2 and "none.jsonl" in err
    items = _items(tmp_path / "in.jsonl", [{"id": 1, "prompt": "hi"}])
    code, _, err = _run(capsys, *_batch(sim, items, tmp_path / "o.jsonl", "acme/small"))
    assert code == 1 and "did you mean" in err and MODEL in err


def test_batch_ctrl_c_exits_130(
    capsys: pytest.CaptureFixture[str],
    sim: FakeLMStudio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = _items(tmp_path / "in.jsonl", [{"id": i, "prompt": "What is 1+1?"} for i in range(5)])

    def interrupt(self: object, message: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("lmstrix.cli._output.Output.progress", interrupt)
    code, out, err = _run(capsys, *_batch(sim, items, tmp_path / "o.jsonl"), "--workers", "1")
    assert code == 130 and out == ""
    assert "running the same command again" in err


def test_batch_without_the_batch_module_says_what_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "lmstrix.batch", None)
    code, out, err = _run(capsys, "batch", "in.jsonl", "-o", "out.jsonl", "-m", MODEL)
    assert code == 1 and out == ""
    assert "no lmstrix.batch module" in err
