"""Parquet files and Hugging Face datasets as batch input and output (extra ``[datasets]``):
streamed in, written from the crash-safe journal at the end, resumable after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

pa = pytest.importorskip("pyarrow", reason="the [datasets] extra is not installed")
pq = pytest.importorskip("pyarrow.parquet")

import lmstrix  # noqa: E402
from lmstrix.batch import run_batch  # noqa: E402
from lmstrix.integrations.datasets import (  # noqa: E402
    ColumnarOutput,
    read_items,
    read_parquet,
    write_parquet,
)
from lmstrix.testing import FakeLMStudio, SimModel  # noqa: E402
from tests._cli_helpers import front_ends, run_cli  # noqa: E402

MODEL = "lmstrix-demo/tiny-chat-1b"
ROOT = Path(__file__).resolve().parent.parent


def _parquet(path: Path, rows: int, *, ids: bool = True) -> None:
    table: Dict[str, List[Any]] = {"prompt": [f"What is {i}+1?" for i in range(rows)]}
    if ids:
        table["id"] = [f"item-{i}" for i in range(rows)]
    pq.write_table(pa.table(table), path, row_group_size=100)


def test_read_parquet_streams_rows_and_numbers_those_without_id(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    _parquet(path, 250, ids=False)
    rows = read_parquet(str(path), batch_size=64)
    first = next(rows)
    assert first == {"prompt": "What is 0+1?", "id": 1}
    assert [r["id"] for r in rows][-1] == 250
    with pytest.raises(lmstrix.ConfigError, match="cannot read the Parquet file"):
        read_parquet(str(tmp_path / "missing.parquet"))


def test_a_parquet_batch_writes_parquet_from_its_journal(tmp_path: Path) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    _parquet(source, 40)
    output = ColumnarOutput(str(target))
    assert output.journal == str(target) + ".jsonl" and "out.parquet" in repr(output)
    assert output.finish() == 0  # nothing run yet: nothing written
    stop_after = 15

    def stop(progress: Any) -> None:
        if progress.done >= stop_after:
            raise KeyboardInterrupt

    with FakeLMStudio() as fake, lmstrix.Client(fake.base_url) as client:
        with pytest.raises(KeyboardInterrupt):
            run_batch(
                read_items(str(source)), client, MODEL, output=output, workers=1, on_progress=stop
            )
        first = pq.read_table(target)  # written on the way out, with what was done
        assert first.num_rows >= stop_after
        fake.reset_counters()
        summary = run_batch(read_items(str(source)), client, MODEL, output=output, workers=2)
        sent = fake.counters.requests.get("/v1/chat/completions", 0)
    assert summary.done + summary.skipped == 40 and sent == 40 - first.num_rows  # no redo
    table = pq.read_table(target)
    assert table.num_rows == 40
    assert sorted(table.column("id").to_pylist()) == sorted(f"item-{i}" for i in range(40))
    assert {"output", "usage", "seconds", "attempts", "stats"} <= set(table.column_names)
    row = table.slice(0, 1).to_pylist()[0]
    assert row["usage"]["total_tokens"] > 0 and json.loads(row["stats"]) is not None


def test_write_parquet_keeps_unknown_fields_as_json(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    journal.write_text(
        json.dumps({"id": 1, "output": "a", "answered_by": {"model": "m"}})
        + "\n"
        + json.dumps({"id": "two", "output": None, "error": "boom", "usage": None})
        + "\n{torn",
        encoding="utf-8",
    )
    assert write_parquet(str(journal), str(tmp_path / "o.parquet"), rows_per_group=1) == 2
    rows = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert rows[0]["id"] == "1" and json.loads(rows[0]["answered_by"]) == {"model": "m"}
    assert rows[1]["error"] == "boom" and rows[1]["answered_by"] is None


def test_hugging_face_datasets_in_and_out(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    source = tmp_path / "in-ds"
    datasets.Dataset.from_dict({"prompt": [f"What is {i}+2?" for i in range(12)]}).save_to_disk(
        str(source)
    )
    output = ColumnarOutput(f"hf:{tmp_path / 'out-ds'}")
    with FakeLMStudio() as fake, lmstrix.Client(fake.base_url) as client:
        summary = run_batch(read_items(f"hf:{source}"), client, MODEL, output=output)
    assert summary.done == 12
    saved = datasets.load_from_disk(str(tmp_path / "out-ds"))
    assert sorted(int(i) for i in saved["id"]) == list(range(1, 13))
    both = datasets.DatasetDict({"a": datasets.Dataset.from_dict({"prompt": ["x"]})})
    both.save_to_disk(str(tmp_path / "split-ds"))
    with pytest.raises(lmstrix.ConfigError, match="several splits"):
        read_items(f"hf:{tmp_path / 'split-ds'}")
    with pytest.raises(lmstrix.ConfigError, match=r"neither a \.parquet file"):
        ColumnarOutput(str(tmp_path / "x.jsonl"))


@pytest.mark.parametrize(("name", "entry"), front_ends())
def test_lmstrix_batch_reads_and_writes_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, entry: Any
) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    _parquet(source, 6)
    with FakeLMStudio() as fake:
        args = ["--server", fake.base_url, "batch", str(source), "-o", str(target), "-m", MODEL]
        code, out, err = run_cli(capsys, entry, *args)
    assert code == 0, err
    assert "journal" in err and pq.read_table(target).num_rows == 6
    assert "6 done" in out


def test_lmstrix_batch_without_the_extra_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lmstrix.integrations.datasets", None)  # not importable
    (tmp_path / "in.jsonl").write_text('{"prompt": "hi"}\n', encoding="utf-8")
    code, _, err = run_cli(
        capsys,
        front_ends()[0][1],
        "--server",
        "http://127.0.0.1:9",
        "batch",
        str(tmp_path / "in.jsonl"),
        "-o",
        str(tmp_path / "out.parquet"),
        "-m",
        MODEL,
    )
    assert code == 2 and "pip install 'lmstrix[datasets]'" in err


_WORKER = textwrap.dedent(
    """
    import sys
    import lmstrix
    from lmstrix.batch import run_batch
    from lmstrix.integrations.datasets import ColumnarOutput, read_items
    url, model, source, target = sys.argv[1:5]
    def said(progress):
        if progress.done == 1:
            print("started", flush=True)
    with lmstrix.Client(url, max_retries=0) as client:
        run_batch(read_items(source), client, model, output=ColumnarOutput(target), workers=4,
                  on_progress=said)
    print("finished", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")
@pytest.mark.slow
def test_a_killed_parquet_batch_resumes(tmp_path: Path) -> None:
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    _parquet(source, 300)
    slow = SimModel(key="m/slow", declared_context=4096, parallel=4, decode_s_per_token=0.02)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with FakeLMStudio(models=[slow], time_scale=1.0) as fake:
        fake.preload("m/slow")
        command = [sys.executable, "-c", _WORKER, fake.base_url, "m/slow", str(source), str(target)]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        journal = Path(str(target) + ".jsonl")
        done_before = len(journal.read_text(encoding="utf-8").splitlines())
        assert 0 < done_before < 300 and not target.exists()  # killed: no Parquet yet
        fake.reset_counters()
        subprocess.run(command, check=True, env=env, capture_output=True, timeout=120)
        sent = fake.counters.requests.get("/v1/chat/completions", 0)
    assert pq.read_table(target).num_rows == 300
    assert sent <= 300 - done_before + 4  # at most the requests in flight at the kill again
