"""Benchmark: the cost of governance (metrics, an audit log, a cache that misses) on requests/s.

The simulator runs in a child process (so it does not share the client's GIL) with its
model preloaded. Sequential non-streaming chats are sent by four clients, in rounds
interleaved across them (the order turning each round, each client leading as many
rounds as the others):

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

Every client sends the same prompts in a round (a new number each: always a miss), so
a real model writes the same answers for each. Rates are the median round; ratios the
median of the per-round ratios over ``none``; the microseconds each client adds per
request are worked out from the median rates. The client process's CPU time per request
(all its threads: the cache's writer too; the server runs in another process) is given
beside them: unlike the rates, it does not move with the server's own speed.
Target: ``metrics + audit + cache miss`` >= 0.85x ``none``.

``--url URL`` runs the same clients against a server that is already running (LM
Studio, or the integration tests' llama.cpp server) instead of the simulator, with fewer
requests: what the same work costs against a real model's answer. There each prompt is
sent by the four clients in turn (the order turning with each prompt), so that the
server's own drift over seconds, larger than what governance costs, slows all of them
alike; each client's CPU time comes from one more round of its own. It asks
``--model``, by default the first model the server lists.

    python benchmarks/bench_governance.py [--quick] [--json] [--url URL [--model KEY]]
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
from typing import Any, Dict, List, Optional, Sequence, Tuple

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
        Policy({}, default={"models": ["*"], "operations": ["chat"]}),
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


def run(client: lmstrix.Client, model: str, prompts: Sequence[str]) -> Tuple[float, float]:
    """Requests/s, and the client process's CPU microseconds per request."""
    started, cpu = time.perf_counter(), time.process_time()
    for prompt in prompts:
        client.chat(model, prompt, temperature=0, max_tokens=8)
    cpu_us = (time.process_time() - cpu) * 1e6 / len(prompts)
    return len(prompts) / (time.perf_counter() - started), cpu_us


Rounds = Dict[str, List[Tuple[float, float]]]


def run_interleaved(
    made: Dict[str, lmstrix.Client], order: List[str], model: str, prompts: Sequence[str]
) -> Dict[str, float]:
    """Each client's requests/s in one round where every prompt is sent by every client in
    turn (the order turning with each prompt), so a server whose speed drifts over
    seconds slows every client alike."""
    spent = dict.fromkeys(order, 0.0)
    for i, prompt in enumerate(prompts):
        for name in order[i % len(order) :] + order[: i % len(order)]:
            started = time.perf_counter()
            made[name].chat(model, prompt, temperature=0, max_tokens=8)
            spent[name] += time.perf_counter() - started
    return {name: len(prompts) / spent[name] for name in order}


def measure(
    url: str, model: str, leads: int, count: int, warm: int, *, per_request: bool = False
) -> Rounds:
    """:func:`run`'s figures for each client and round (the same new prompts for all
    clients in a round). The order turns each round and each client leads ``leads``
    rounds, as many as the others: the first client of a round may meet a colder
    server. ``per_request`` interleaves the clients prompt by prompt within a round
    (:func:`run_interleaved`), for a real server whose speed drifts; each client's CPU
    time then comes from one more round of its own."""
    serial = itertools.count()
    fresh = lambda n: [f"What is {next(serial)} + 1?" for _ in range(n)]  # noqa: E731
    figures: Rounds = defaultdict(list)
    interleaved: Dict[str, List[float]] = defaultdict(list)  # per_request: rates alone
    with tempfile.TemporaryDirectory() as folder:
        made = clients(url, folder)
        names = list(made)
        for client in made.values():
            run(client, model, fresh(warm))  # warm-up: connections, detection, files
        for r in range(leads * len(names)):
            prompts = fresh(count)
            order = names[r % len(names) :] + names[: r % len(names)]
            if per_request:
                for name, rate in run_interleaved(made, order, model, prompts).items():
                    interleaved[name].append(rate)
            else:
                for name in order:
                    figures[name].append(run(made[name], model, prompts))
        for name, found in interleaved.items():  # all threads' CPU time: one client at a time
            cpu_us = run(made[name], model, fresh(count))[1]
            figures[name] = [(rate, cpu_us) for rate in found]
        for client in made.values():
            client.close()
    return figures


def first_model(url: str) -> str:
    """The key of the first model ``url`` lists."""
    with lmstrix.Client(url) as client:
        found = client.list_models()
    if not found:
        raise SystemExit(f"{url} lists no model: pass --model KEY")
    return found[0].key


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--url", help="a running server to use instead of the simulator")
    parser.add_argument("--model", help="the model to ask on --url (default: the first listed)")
    args = parser.parse_args(argv)
    if args.model and not args.url:
        parser.error("--model names a model of the server given with --url")
    if args.url:
        leads, count, warm = (1, 8, 2) if args.quick else (2, 12, 3)
        server = args.url
        model = args.model or first_model(args.url)
        figures = measure(args.url, model, leads, count, warm, per_request=True)
    else:
        leads, count, warm = (2, 60, 20) if args.quick else (4, 200, 20)
        server = "the simulator"
        child = ChildServer(__file__, "--serve")
        try:
            figures = measure(child.url, MODEL, leads, count, warm)
        finally:
            child.close()
    rates = {name: [rate for rate, _ in values] for name, values in figures.items()}
    cpu_us = {name: statistics.median(cpu for _, cpu in values) for name, values in figures.items()}
    median = {name: statistics.median(values) for name, values in rates.items()}
    ratio = {
        name: statistics.median(v / b for v, b in zip(values, rates["none"]))
        for name, values in rates.items()
    }
    overhead_us = {name: 1e6 / median[name] - 1e6 / median["none"] for name in median}
    against = f" ({server})" if args.url else ""
    targets = [Target(f"{TARGET_CLIENT} / none{against}", ratio[TARGET_CLIENT], ">=", TARGET, "x")]
    if args.json:
        emit_json(
            {
                "server": server,
                "rounds": len(figures["none"]),
                "requests_per_round": count,
                "requests_per_s": median,
                "ratio_to_none": ratio,
                "added_us_per_request": overhead_us,
                "client_cpu_us_per_request": cpu_us,
                "targets": [t.to_dict() for t in targets],
            }
        )
        return 0
    print(f"Sequential chats against {server}, one new prompt per request")
    rows = [
        [
            name,
            round(median[name], 2),
            f"{ratio[name]:.3f}x",
            round(overhead_us[name]),
            round(cpu_us[name]),
            round(cpu_us[name] - cpu_us["none"]),
        ]
        for name in rates
    ]
    headers = [
        "client",
        "requests/s (median round)",
        "vs none",
        "added us/request",
        "client CPU us/request",
        "added CPU us",
    ]
    print_table(headers, rows, title="Throughput")
    if not args.url:
        print(
            "The simulator answers in a fraction of a millisecond; a model on LM Studio "
            "takes tens of milliseconds or more,\nso the added microseconds per request are "
            "the figure to weigh against a real answer's time (--url, --model).\n'floor' is "
            "a lookup and a locked append with no other work: the least a cache and an "
            "audit log\nthat are safe across processes and lose nothing on a kill cost."
        )
    print_targets(targets)
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
