"""Benchmark: a 100,000-row Parquet batch with flat memory, and its resume after a kill.

The simulator runs in one child process with its model preloaded (4 parallel slots);
the batch runs in another, ``run_batch(read_items("in.parquet"), ...,
output=ColumnarOutput("out.parquet"))``, and reports its resident memory (VmRSS from
/proc/self/status, else the peak from ``resource``) at every tenth of the items and
after the Parquet file is written. The same is done for a tenth of the rows (at least
one Parquet row group, 10,000 rows): a flat batch has the same peak for both. Then a
run is killed (SIGKILL) at about a third, and run again: the second run must send
only the items the first had not finished (the journal says which) and end with every
row in the Parquet file.

    python benchmarks/bench_datasets.py [--rows N] [--quick] [--json]

Needs the [datasets] extra (pyarrow). Memory is the figure; seconds are reported for
scale only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from _common import ChildServer, Target, emit_json, print_table, print_targets

MODEL = "bench/parquet-1b"
ROOT = Path(__file__).resolve().parent.parent


def serve() -> int:
    """Child-process entry (``--serve``): the simulator, the model preloaded."""
    from lmstrix.testing import FakeLMStudio, SimModel

    model = SimModel(key=MODEL, declared_context=4096, parallel=4)
    with FakeLMStudio(models=[model]) as fake:
        fake.preload(MODEL)
        print(f"PORT {fake.port}", flush=True)
        sys.stdin.read()
    return 0


def rss_mb() -> float:
    """This process's resident memory now (Linux), else its peak so far, in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def run(url: str, source: str, target: str, rows: int) -> int:
    """Child-process entry (``--run``): the batch, printing JSON lines of memory."""
    import lmstrix
    from lmstrix.batch import run_batch
    from lmstrix.integrations.datasets import ColumnarOutput, read_items

    marks = {max(1, rows * k // 10) for k in range(1, 11)}
    started = time.perf_counter()

    def progress(step: Any) -> None:
        seen = step.done + step.skipped + step.failed
        if seen in marks:
            print(json.dumps({"items": seen, "rss_mb": round(rss_mb(), 1)}), flush=True)

    with lmstrix.Client(url, max_retries=0) as client:
        summary = run_batch(
            read_items(source),
            client,
            MODEL,
            output=ColumnarOutput(target),
            workers=8,
            on_progress=progress,
        )
    end = {"end": True, "rss_mb": round(rss_mb(), 1), "done": summary.done}
    end.update(skipped=summary.skipped, seconds=round(time.perf_counter() - started, 1))
    print(json.dumps(end), flush=True)
    return 0


def make_input(path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, pa.schema([("id", pa.string()), ("prompt", pa.string())])) as out:
        for start in range(0, rows, 10_000):
            ids = [f"row-{i}" for i in range(start, min(rows, start + 10_000))]
            prompts = [f"What is {i}+1?" for i in range(start, min(rows, start + 10_000))]
            out.write_table(pa.table({"id": ids, "prompt": prompts}))


def batch(
    url: str, source: str, target: str, rows: int, *, kill_at: Optional[int] = None
) -> List[Dict[str, Any]]:
    """Run the batch child; with ``kill_at``, SIGKILL it once that many items are done."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])}
    command = [sys.executable, __file__, "--run", url, source, target, str(rows)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    lines: List[Dict[str, Any]] = []
    for raw in proc.stdout:
        line = json.loads(raw)
        lines.append(line)
        if kill_at is not None and line.get("items", 0) >= kill_at:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    proc.stdout.close()
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="20,000 rows (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    rows = 20_000 if args.quick else args.rows
    import pyarrow.parquet as pq

    from lmstrix.integrations.datasets import ROWS_PER_GROUP

    # The Parquet file is written a row group at a time: a reference smaller than one
    # group would measure the group's buffer, not growth with the number of rows.
    small = max(ROWS_PER_GROUP, rows // 10)

    child = ChildServer(__file__, "--serve")
    try:
        with tempfile.TemporaryDirectory() as folder:
            runs: Dict[str, List[Dict[str, Any]]] = {}
            for label, count in ((f"{small:,} rows", small), (f"{rows:,} rows", rows)):
                source, target = f"{folder}/in-{count}.parquet", f"{folder}/out-{count}.parquet"
                make_input(source, count)
                runs[label] = batch(child.url, source, target, count)
                assert pq.read_metadata(target).num_rows == count
            source, target = f"{folder}/in-{rows}.parquet", f"{folder}/resumed.parquet"
            killed = batch(child.url, source, target, rows, kill_at=rows // 3)
            with open(target + ".jsonl", encoding="utf-8") as journal:
                journal_rows = sum(1 for _ in journal)
            resumed = batch(child.url, source, target, rows)
            final_rows = pq.read_metadata(target).num_rows
    finally:
        child.close()
    peaks = {label: max(x["rss_mb"] for x in lines) for label, lines in runs.items()}
    big, little = peaks[f"{rows:,} rows"], peaks[f"{small:,} rows"]
    end = resumed[-1]
    targets = [
        Target(f"peak RSS, {rows:,} rows / {small:,} rows", big / little, "<=", 1.25, "x"),
        Target("rows in the Parquet file after kill + resume", final_rows, ">=", rows),
    ]
    result = {
        "rows": rows,
        "rss_mb_by_progress": runs,
        "peak_rss_mb": peaks,
        "killed_after_items": killed[-1].get("items"),
        "journal_rows_at_kill": journal_rows,
        "resumed": {"done": end["done"], "skipped": end["skipped"], "seconds": end["seconds"]},
        "final_rows": final_rows,
        "targets": [t.to_dict() for t in targets],
    }
    if args.json:
        emit_json(result)
        return 0
    table_rows = []
    for label, lines in runs.items():
        series = " ".join(f"{x['rss_mb']:.0f}" for x in lines if "items" in x)
        table_rows.append([label, series, lines[-1]["rss_mb"], peaks[label], lines[-1]["seconds"]])
    print_table(
        ["batch", "RSS MB at 10%, 20%, ... 100%", "after Parquet", "peak MB", "seconds"],
        table_rows,
        title="Memory of a Parquet batch (the batch process)",
    )
    print(
        f"\nKilled at {killed[-1].get('items'):,} items ({journal_rows:,} lines in the journal); "
        f"the resumed run sent {end['done']:,} and skipped {end['skipped']:,}; "
        f"the Parquet file has {final_rows:,} rows."
    )
    print_targets(targets)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve())
    if sys.argv[1:2] == ["--run"]:
        sys.exit(run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
    sys.exit(main())
