"""A resumable batch: answers written once per item, even across a crash.

python examples/batch_processing.py                                   # the simulator
python examples/batch_processing.py --server http://localhost:1234 [--model KEY]

It writes 12 questions to a JSONL file, runs the first half, "crashes" (a torn last
line is appended to the output, as a process killed mid-write would leave it), then
resumes over the whole file: the torn line is cut off, the answered items are skipped,
and every id ends up in the output exactly once. Files go to a temporary directory.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional

import _common

import lmstrix
from lmstrix.batch import BatchProgress, default_workers, read_items, run_batch
from lmstrix.testing import SimModel

SIM_MODEL = "example/batch-3b"


def questions() -> List[Dict[str, Any]]:
    """Twelve small questions, each with an id."""
    return [{"id": f"q{n:02d}", "prompt": f"What is {n} * {n + 1}?"} for n in range(1, 13)]


def show(progress: BatchProgress) -> None:
    """A one-line progress display on stderr (called after each item)."""
    total = "?" if progress.total is None else progress.total
    sys.stderr.write(
        f"\r  {progress.done} done, {progress.skipped} skipped, {progress.failed} failed"
        f" (of {total})   "
    )
    sys.stderr.flush()


def run(client: lmstrix.Client, model: str) -> None:
    """Run, crash, resume; check and print the output."""
    params = {"temperature": 0, "max_tokens": 32}
    with tempfile.TemporaryDirectory(prefix="lmstrix-batch-") as folder:
        source = os.path.join(folder, "questions.jsonl")
        output = os.path.join(folder, "answers.jsonl")
        with open(source, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(item) + "\n" for item in questions())
        print(f"model: {model}, {default_workers(client, model)} workers (its parallel slots)")

        first_half = list(read_items(source))[:6]
        summary = run_batch(first_half, client, model, output=output, params=params)
        print(f"first run: {summary.done} done, {summary.failed} failed")

        with open(output, "a", encoding="utf-8") as f:
            f.write('{"id": "q07", "output": "half a li')  # what a kill mid-write leaves
        summary = run_batch(
            read_items(source), client, model, output=output, params=params, on_progress=show
        )
        sys.stderr.write("\n")
        print(
            f"resumed: {summary.done} done, {summary.skipped} skipped, "
            f"{summary.failed} failed in {summary.seconds:.2f} s"
        )

        with open(output, encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        ids = sorted(str(r["id"]) for r in records)
        once = ids == sorted(q["id"] for q in questions())
        print(f"output: {len(records)} lines, every id exactly once: {'yes' if once else 'NO'}")
        for record in sorted(records, key=lambda r: str(r["id"]))[:3]:
            answer = record["output"] if record["error"] is None else record["error"]["message"]
            print(f"  {record['id']}: {answer!r} ({record['seconds']:.3f} s)")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the batch against ``--server``, or the simulator."""
    args = _common.parser("Run a resumable batch, crash it, resume it.").parse_args(argv)
    # Shows the warning run_batch logs when it cuts off the torn line.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    fleet = [SimModel(key=SIM_MODEL, declared_context=8192, parallel=4)]
    try:
        with _common.connect(args, fleet, preload=[SIM_MODEL], time_scale=0.05) as client:
            run(client, _common.pick_model(client, args.model))
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
