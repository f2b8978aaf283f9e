"""The notebooks under docs/notebooks/ run top to bottom against the simulator (nbclient,
a fresh kernel each), and each cell's output holds what the notebook promises (the
``expect`` texts in its cell metadata). The seconds each notebook took are printed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, List

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tools are in the dev extra")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
BOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 60


def _text(outputs: List[Any]) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            data = output.get("data", {})
            parts.append(data.get("text/plain", ""))
            if "image/png" in data:
                parts.append("<image/png>")
        elif output.get("output_type") == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(parts)


def test_the_four_notebooks_are_there() -> None:
    names = [book.stem for book in BOOKS]
    assert names == [
        "01-getting-started",
        "02-understanding-context-limits",
        "03-building-workflows",
        "04-performance-tuning",
    ]


@pytest.mark.parametrize("path", BOOKS, ids=[book.stem for book in BOOKS])
def test_a_notebook_runs_and_shows_what_it_promises(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = nbformat.read(str(path), as_version=4)
    env_home = {"LMSTRIX_HOME": str(tmp_path / "home"), "MPLBACKEND": "Agg"}
    old = {k: os.environ.get(k) for k in env_home}
    os.environ.update(env_home)
    try:
        started = time.perf_counter()
        client = nbclient.NotebookClient(
            book,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
        seconds = time.perf_counter() - started
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    checked = 0
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        text = _text(cell.get("outputs", []))
        for expected in cell.metadata.get("lmstrix", {}).get("expect", []):
            assert expected in text, (
                f"{path.name}: {expected!r} not in the output of:\n{cell.source}\n---\n{text}"
            )
            checked += 1
    assert checked >= 3, f"{path.name} checks too little"
    with capsys.disabled():
        print(f"\nnotebook {path.name}: ran in {seconds:.1f} s, {checked} outputs checked")
