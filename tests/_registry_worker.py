"""Subprocess helper for the registry's concurrency and crash tests (not a test module).

Usage::

    python _registry_worker.py hammer REGISTRY WORKER_ID ROUNDS
    python _registry_worker.py crash REGISTRY LOG
    python _registry_worker.py hold-lock REGISTRY SECONDS
    python _registry_worker.py upserts REGISTRY WORKER_ID COUNT

``hammer`` makes ROUNDS updates through ``Registry.update``, alternating between a shared
and an own record: each bumps the record's counter and appends a probe.
``crash`` commits forever, each commit raising the ``counter`` record's
``working_context`` by one and appending a probe, and writes the committed number to LOG
only after the commit returned. ``hold-lock`` takes the
registry's lock file, says ``locked`` on stdout and sleeps. ``upserts`` makes COUNT
``Registry.upsert`` calls of records ``w{WORKER_ID}-{n}`` and prints the longest call in
seconds (an upper bound on the lock wait) on stdout.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lmstrix.registry import ModelRecord, ProbeRecord, Registry
from lmstrix.registry._filelock import FileLock

SERVER = "http://worker.test:1234"


def _bump(key: str, probe: ProbeRecord, old: Optional[ModelRecord]) -> ModelRecord:
    record = (old if old is not None else ModelRecord(key=key, server=SERVER)).with_probe(probe)
    return dataclasses.replace(record, working_context=(record.working_context or 0) + 1)


def hammer(path: str, worker: int, rounds: int) -> None:
    """Make ``rounds`` updates: even rounds bump the shared counter, odd ones the own one.

    Each update also appends a probe (size = round, trial = worker) to the record.
    """
    registry = Registry(path, server=SERVER)
    for round_no in range(rounds):
        key = "shared" if round_no % 2 == 0 else f"own-{worker}"
        probe = ProbeRecord("prompt", round_no, ok=True, trial=worker, at=0.0)
        registry.update(key, functools.partial(_bump, key, probe))


def crash(path: str, log_path: str) -> None:
    """Commit forever; log each commit number after the commit returned."""
    registry = Registry(path, server=SERVER)
    with open(log_path, "a", encoding="ascii") as log:
        log.write("ready\n")
        log.flush()
        while True:
            record = registry.update("counter", _grow)
            assert record is not None
            log.write(f"{record.working_context}\n")
            log.flush()


def _grow(old: Optional[ModelRecord]) -> ModelRecord:
    record = old if old is not None else ModelRecord(key="counter", server=SERVER)
    number = (record.working_context or 0) + 1
    # Growing data: one more probe each commit, with a detail of varying length.
    probe = ProbeRecord("load", number, ok=number % 3 != 0, detail="x" * (number % 97), at=0.0)
    return dataclasses.replace(record.with_probe(probe), working_context=number)


def hold_lock(path: str, seconds: float) -> None:
    """Hold the registry's lock file for ``seconds``."""
    registry = Registry(path)
    with FileLock(registry.lock_path):
        sys.stdout.write("locked\n")
        sys.stdout.flush()
        time.sleep(seconds)


def upserts(path: str, worker: int, count: int) -> None:
    """Upsert ``count`` records of this worker; print the longest call, in seconds."""
    registry = Registry(path, server=SERVER)
    longest = 0.0
    for n in range(count):
        started = time.monotonic()
        registry.upsert(ModelRecord(key=f"w{worker}-{n}", working_context=n))
        longest = max(longest, time.monotonic() - started)
    sys.stdout.write(f"{longest:.4f}\n")


def main(argv: List[str]) -> None:
    """Dispatch on the first argument."""
    mode, path = argv[0], argv[1]
    if mode == "hammer":
        hammer(path, int(argv[2]), int(argv[3]))
    elif mode == "crash":
        crash(path, argv[2])
    elif mode == "hold-lock":
        hold_lock(path, float(argv[2]))
    elif mode == "upserts":
        upserts(path, int(argv[2]), int(argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
