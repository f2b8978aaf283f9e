"""Benchmark: the cost of governance (an observer, a cache that misses) on requests/s.

The simulator runs in a child process (so it does not share the client's GIL) with its
model preloaded. Sequential non-streaming chats are sent by three clients, in rounds
interleaved across them (the order turning each round):

- ``none``: a plain ``Client``;
- ``observer + cache miss``: a metrics-like observer (counts, errors, latencies and
  tokens per server and model; ``lmstrix.observe.Metrics`` when it exists, else the
  trivial one below) and a ``ResponseCache`` on a SQLite file, every request a miss
  (``temperature=0``, a new prompt each time: the key is computed, looked up, and the
  answer stored);
- ``all governance`` (reported, not a target): the same, plus ``Policy``, ``Budget``
  and ``RateLimit`` on one quota file, a ``UsageLog`` to a JSON-lines file and an
  ``SLAWatch``.

Rates are the median round; ratios the median of the per-round ratios over ``none``;
the microseconds each client adds per request are worked out from the median rates.
Target: ``observer + cache miss`` >= 0.85x ``none``.

    python benchmarks/bench_governance.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Sequence

from _common import ChildServer, Target, emit_json, print_table, print_targets

import lmstrix
from lmstrix.cache import ResponseCache
from lmstrix.limits import Budget, Policy, RateLimit, SLAWatch, UsageLog

MODEL = "lmstrix-demo/tiny-chat-1b"
TARGET = 0.85


def serve() -> int:
    """Child-process entry (``--serve``): the simulator, the model preloaded."""
    from lmstrix.testing import FakeLMStudio

    with FakeLMStudio() as fake:
        fake.preload(MODEL)
        print(f"PORT {fake.port}", flush=True)
        sys.stdin.read()
    return 0


class TrivialMetrics:
    """A metrics-like observer: calls, errors, latencies and tokens per server and model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Dict[Any, int] = defaultdict(int)
        self.errors: Dict[Any, int] = defaultdict(int)
        self.latency: Dict[Any, List[float]] = defaultdict(list)
        self.tokens: Dict[Any, int] = defaultdict(int)

    def __call__(self, event: lmstrix.CallEvent) -> None:
        key = (event.server, event.model, event.operation)
        with self._lock:
            self.calls[key] += 1
            if not event.ok:
                self.errors[key] += 1
            self.latency[key].append(event.total_s)
            if event.usage is not None:
                self.tokens[key] += event.usage.total_tokens or 0


def metrics_observer() -> Any:
    try:
        from lmstrix.observe import Metrics  # type: ignore[import-not-found]
    except ImportError:
        return TrivialMetrics(), "trivial observer (lmstrix.observe.Metrics is not there)"
    return Metrics(), "lmstrix.observe.Metrics"


def clients(url: str, folder: str, observer: Any) -> Dict[str, lmstrix.Client]:
    cache = ResponseCache(f"{folder}/cache.sqlite")
    quota = f"{folder}/quota.sqlite"
    governed = [
        Policy({}, default={"models": ["lmstrix-demo/*"]}),
        ResponseCache(f"{folder}/cache-all.sqlite"),
        Budget(quota, tokens_per_day=10**12),
        RateLimit(requests_per_minute=10**9, tokens_per_minute=10**12, path=quota),
        UsageLog(f"{folder}/usage.jsonl"),
    ]
    watch = SLAWatch(lambda e: None, ttft_p95_s=60.0, error_rate=0.5)
    return {
        "none": lmstrix.Client(url),
        "observer + cache miss": lmstrix.Client(url, observers=[observer], middleware=[cache]),
        "all governance": lmstrix.Client(
            url, label="bench", observers=[observer, watch], middleware=governed
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
    observer, observer_name = metrics_observer()
    serial = itertools.count()
    prompts = lambda: f"What is {next(serial)} + 1?"  # noqa: E731 - always a cache miss
    child = ChildServer(__file__, "--serve")
    rates: Dict[str, List[float]] = defaultdict(list)
    try:
        with tempfile.TemporaryDirectory() as folder:
            made = clients(child.url, folder, observer)
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
    targets = [
        Target("observer + cache miss / none", ratio["observer + cache miss"], ">=", TARGET, "x")
    ]
    if args.json:
        emit_json(
            {
                "observer": observer_name,
                "rounds": rounds,
                "requests_per_round": count,
                "requests_per_s": median,
                "ratio_to_none": ratio,
                "added_us_per_request": overhead_us,
                "targets": [t.to_dict() for t in targets],
            }
        )
        return 0
    print(f"Sequential chats against the simulator; observer: {observer_name}")
    rows = [
        [name, round(median[name], 1), f"{ratio[name]:.3f}x", round(overhead_us[name])]
        for name in rates
    ]
    headers = ["client", "requests/s (median round)", "vs none", "added us/request"]
    print_table(headers, rows, title="Throughput")
    print(
        "The simulator answers in a fraction of a millisecond; a model on LM Studio takes "
        "tens of milliseconds or more,\nso the added microseconds per request are the "
        "figure to weigh against a real answer's time."
    )
    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
