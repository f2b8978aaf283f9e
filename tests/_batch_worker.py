"""Subprocess helper for the batch crash test (not a test module).

Usage::

    python _batch_worker.py BASE_URL MODEL INPUT OUTPUT WORKERS

Runs ``run_batch`` over INPUT (read with ``read_items``) against the server at BASE_URL
and appends to OUTPUT. Prints ``started`` on stdout at the first progress event, so the
test knows the run is under way before it kills it; prints ``finished`` at the end.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lmstrix import Client
from lmstrix.batch import BatchProgress, read_items, run_batch


def main() -> None:
    base_url, model, source, output, workers = sys.argv[1:6]
    said = []

    def progress(_: BatchProgress) -> None:
        if not said:
            said.append(True)
            sys.stdout.write("started\n")
            sys.stdout.flush()

    with Client(base_url, max_retries=0) as client:
        summary = run_batch(
            read_items(source),
            client,
            model,
            output=output,
            workers=int(workers),
            on_progress=progress,
        )
    sys.stdout.write(f"finished {summary.done} {summary.skipped}\n")


if __name__ == "__main__":
    main()
