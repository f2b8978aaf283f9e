"""Streaming measurements for ``bench_client.py``: time to first chunk, chunks per second
and streams per connection, lmstrix against raw ``http.client`` + ``json.loads`` on one
kept-alive connection (the floor any Python streaming client stands on)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any, Callable, Dict, List, Tuple

import lmstrix

Run = Callable[[], Tuple[float, int]]  # one stream: (seconds to the first chunk, chunks)


def raw_stream(url: str, model: str, prompt: str) -> Tuple[Run, Callable[[], None]]:
    """One stream over one kept-alive ``http.client`` connection, parsed line by line."""
    host, port = url.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    messages = [{"role": "user", "content": prompt}]

    def run() -> Tuple[float, int]:
        start = time.perf_counter()
        body = json.dumps({"model": model, "messages": messages, "stream": True}).encode()
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        resp = conn.getresponse()
        first, chunks = 0.0, 0
        while True:
            line = resp.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            event = json.loads(data)
            if event.get("choices"):
                if not chunks:
                    first = time.perf_counter() - start
                chunks += 1
        resp.read()  # the end of the body: the connection stays usable
        return first, chunks

    return run, conn.close


def lmstrix_stream(url: str, model: str, prompt: str) -> Tuple[Run, Callable[[], None]]:
    """One ``Client.stream_chat`` read to its end."""
    client = lmstrix.Client(url, max_retries=0)

    def run() -> Tuple[float, int]:
        start = time.perf_counter()
        first, chunks = 0.0, 0
        for _ in client.stream_chat(model, prompt):
            if not chunks:
                first = time.perf_counter() - start
            chunks += 1
        return first, chunks

    return run, client.close


def connections(url: str) -> int:
    """How many connections the canned server has accepted so far."""
    host, port = url.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    try:
        conn.request("GET", "/bench/connections")
        return int(json.loads(conn.getresponse().read())["connections"])
    finally:
        conn.close()


def measure(url: str, model: str, prompt: str, args: Any) -> Dict[str, Dict[str, Any]]:
    """Per client: median time to first chunk, chunks per second, streams per connection.

    Interleaved rounds of ``args.streams`` streams each; medians of the rounds. Ratios
    (lmstrix over raw) are the medians of per-round ratios.
    """
    from _common import median

    makers = {"lmstrix": lmstrix_stream, "raw http.client": raw_stream}
    runs: Dict[str, Run] = {}
    closers: List[Callable[[], None]] = []
    per_conn: Dict[str, float] = {}
    try:
        for name, make in makers.items():
            before = connections(url)
            run, close = make(url, model, prompt)
            closers.append(close)
            for _ in range(max(5, args.warmup // 10)):
                run()
            runs[name] = run
            streams = max(5, args.warmup // 10)
            per_conn[name] = streams / max(1, connections(url) - before - 1)
        ttfc: Dict[str, List[float]] = {name: [] for name in runs}
        rates: Dict[str, List[float]] = {name: [] for name in runs}
        names = list(runs)
        for turn in range(args.rounds):
            for name in names[turn % 2 :] + names[: turn % 2]:  # the order turns each round
                run = runs[name]
                firsts, total, start = [], 0, time.perf_counter()
                for _ in range(args.streams):
                    first, chunks = run()
                    firsts.append(first)
                    total += chunks
                rates[name].append(total / (time.perf_counter() - start))
                ttfc[name].append(median(firsts))
    finally:
        for close in closers:
            close()
    return {
        name: {
            "ttfc_us": median(ttfc[name]) * 1e6,
            "chunks_per_s": median(rates[name]),
            "streams_per_connection": per_conn[name],
            "ttfc_rounds": ttfc[name],
            "rate_rounds": rates[name],
        }
        for name in runs
    }


def ratios(found: Dict[str, Dict[str, Any]]) -> Dict[str, float]:
    """lmstrix over raw: time to first chunk (lower is better) and chunks per second."""
    from _common import median

    ours, raw = found["lmstrix"], found["raw http.client"]
    return {
        "ttfc": median([a / b for a, b in zip(ours["ttfc_rounds"], raw["ttfc_rounds"])]),
        "chunks_per_s": median([a / b for a, b in zip(ours["rate_rounds"], raw["rate_rounds"])]),
    }
