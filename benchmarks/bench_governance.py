"""Benchmark: the cost of governance (metrics, an audit log, a cache that misses) on requests/s.

The simulator runs in a child process (so it does not share the client's GIL) with its
model preloaded. Sequential non-streaming chats are sent by three clients, in rounds
interleaved across them (the order turning each round):

- ``none``: a plain ``Client``;
- ``metrics + audit + cache miss``: ``lmstrix.observe.Metrics``, an ``AuditLog`` (each
  line chained and written before the call returns) and a ``ResponseCache`` on a SQLite
  file, every request a miss (``temperature=0``, a new prompt each time: the key is
  computed and looked up, and the answer queued for the cache's writer thread);
- ``all governance`` (reported, not a target): the same, plus ``Policy``, ``Budget``
  and ``RateLimit`` on one quota file, a ``UsageLog`` to a JSON-lines file and an
  ``SLAWatch``;
- ``floor`` (reported, not a target): what any cache and audit log that are safe across
  processes and lose nothing on a kill must do per call, and nothing else: one SQLite
  primary-key lookup before the request, and one locked append of a fixed line after
  it (flock, stat, write, unlock), with an observer that does nothing.

Rates are the median round; ratios the median of the per-round ratios over ``none``;
the microseconds each client adds per request are worked out from the median rates.
Target: ``metrics + audit + cache miss`` >= 0.85x ``none``.

    python benchmarks/bench_governance.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Sequence

from _common import ChildServer, Target, emit_json, print_table, print_targets

import lmstrix
from lmstrix.cache import ResponseCache
from lmstrix.limits import Budget, Policy, RateLimit, SLAWatch, UsageLog
from lmstrix.observe import AuditLog, Metrics

MODEL = "lmstrix-demo/tiny-chat-1b"
TARGET = 0.85
TARGET_CLIENT = "metrics + audit + cache miss"


def serve() -> int:
    """Child-process entry (``--serve``): the simulator, the model preloaded."""
    from lmstrix.testing import FakeLMStudio

    with FakeLMStudio() as fake:
        fake.preload(MODEL)
        print(f"PORT {fake.port}", flush=True)
        sys.stdin.read()
    return 0


class _FloorLookup:
    """Middleware: one SQLite primary-key lookup (a miss), then the request."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS t (key TEXT PRIMARY KEY, body BLOB)")

    def __call__(self, request: Any, call_next: Any) -> Any:
        self._db.execute("SELECT body FROM t WHERE key = ?", ("absent",)).fetchone()
        return call_next(request)


class _FloorAppend:
    """Observer: one fixed line appended under the lock, as a chained log must."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._line = b'{"line":"' + b"x" * 500 + b'"}\n'

    def __call__(self, event: Any) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            os.stat(self._path)
            os.write(self._fd, self._line)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)


def clients(url: str, folder: str) -> Dict[str, lmstrix.Client]:
    quota = f"{folder}/quota.sqlite"
    governed = [
        Policy({}, default={"models": ["lmstrix-demo/*"]}),
        ResponseCache(f"{folder}/cache-all.sqlite"),
        Budget(quota, tokens_per_day=10**12),
        RateLimit(requests_per_minute=10**9, tokens_per_minute=10**12, path=quota),
        UsageLog(f"{folder}/usage.jsonl"),
    ]
    watch = SLAWatch(lambda e: None, ttft_p95_s=60.0, error_rate=0.5)

    def observed(name: str) -> List[Any]:
        return [Metrics(), AuditLog(f"{folder}/{name}.jsonl")]

    return {
        "none": lmstrix.Client(url),
        TARGET_CLIENT: lmstrix.Client(
            url,
            observers=observed("audit"),
            middleware=[ResponseCache(f"{folder}/cache.sqlite")],
        ),
        "all governance": lmstrix.Client(
            url, label="bench", observers=[*observed("audit-all"), watch], middleware=governed
        ),
        "floor": lmstrix.Client(
            url,
            observers=[_FloorAppend(f"{folder}/floor.jsonl")],
            middleware=[_FloorLookup(f"{folder}/floor.sqlite")],
        ),
    }


def run(client: lmstrix.Client, count: int, prompts: Callable[[], str]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        client.chat(MODEL, prompts(), temperature=0, max_tokens=8)
    return count / (time.perf_counter() - started)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    rounds, count = (5, 100) if args.quick else (15, 200)
    serial = itertools.count()
    prompts = lambda: f"What is {next(serial)} + 1?"  # noqa: E731 - always a cache miss
    child = ChildServer(__file__, "--serve")
    rates: Dict[str, List[float]] = defaultdict(list)
    try:
        with tempfile.TemporaryDirectory() as folder:
            made = clients(child.url, folder)
            names = list(made)
            for client in made.values():
                run(client, 20, prompts)  # warm-up: connections, detection, files
            for r in range(rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    rates[name].append(run(made[name], count, prompts))
            for client in made.values():
                client.close()
    finally:
        child.close()
    median = {name: statistics.median(values) for name, values in rates.items()}
    ratio = {
        name: statistics.median(v / b for v, b in zip(values, rates["none"]))
        for name, values in rates.items()
    }
    overhead_us = {name: 1e6 / median[name] - 1e6 / median["none"] for name in median}
    targets = [Target(f"{TARGET_CLIENT} / none", ratio[TARGET_CLIENT], ">=", TARGET, "x")]
    if args.json:
        emit_json(
            {
                "rounds": rounds,
                "requests_per_round": count,
                "requests_per_s": median,
                "ratio_to_none": ratio,
                "added_us_per_request": overhead_us,
                "targets": [t.to_dict() for t in targets],
            }
        )
        return 0
    print("Sequential chats against the simulator, one new prompt per request")
    rows = [
        [name, round(median[name], 1), f"{ratio[name]:.3f}x", round(overhead_us[name])]
        for name in rates
    ]
    headers = ["client", "requests/s (median round)", "vs none", "added us/request"]
    print_table(headers, rows, title="Throughput")
    print(
        "The simulator answers in a fraction of a millisecond; a model on LM Studio takes "
        "tens of milliseconds or more,\nso the added microseconds per request are the "
        "figure to weigh against a real answer's time. 'floor' is a lookup and a locked\n"
        "append with no other work: the least a cache and an audit log that are safe "
        "across processes and lose nothing on a kill cost."
    )
    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
