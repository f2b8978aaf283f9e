"""Benchmark: lmstrix's client against raw http.client, urllib and openai-python, side by side.

Run it from the repository root (or anywhere): ``python benchmarks/bench_client.py``
(``--quick`` for a short run, ``--json`` for machine output). Standard library and
lmstrix only; openai-python is measured when it is importable.

Four measurements, all in one run:

1. Non-streaming chat requests per second, sequential, against the same loopback
   server: the lmstrix ``Client``; raw ``http.client`` on one kept-alive connection
   (build JSON, send, read, parse: the floor any Python client stands on);
   ``urllib.request`` (a new connection per request); openai-python. The server is a
   minimal stdlib server in a child process (``socketserver`` threads, HTTP/1.1
   keep-alive, canned replies, no JSON parsing), so the client's own cost dominates.
   Each client gets a warm-up, then rounds of N requests, interleaved across clients
   (in an order that turns each round) so a busy moment hits them all; rates are the
   median round, ratios the median of the per-round ratios (each round's lmstrix rate
   over the other client's). In a
   full run the lmstrix and raw rates are also measured against the simulator
   (``lmstrix.testing``) to show how much slower a realistic Python server is.
2. SSE events per second: ``lmstrix.sse.SSEDecoder`` and openai-python's decoder on
   the same pre-built bytes (chat-chunk events split into 1-4 KB reads), and the full
   streaming path (``Client.stream_chat`` and openai's ``stream=True``) against the
   canned server.
3. ``import lmstrix`` and ``import openai`` wall time in fresh interpreters, minus an
   interpreter that imports nothing (median of several runs); also ``-I -S``, and
   ``import lmstrix; lmstrix.Client`` against ``import http.client``.
4. Streaming against raw ``http.client`` + ``json.loads`` on one kept-alive connection
   (``_bench_stream.py``): the time to the first chunk, chunks per second, and how many
   streams share one connection (the canned server counts the connections it accepts).

Targets (the summary prints PASS/MISS; the exit status is 0 either way):
lmstrix / raw http.client >= 0.8 requests per second, lmstrix / openai >= 2.0,
time to first chunk <= 1.3x raw, chunks per second >= 0.7x raw, ``import lmstrix``
adds < 20 ms, and ``import lmstrix; lmstrix.Client`` at most 15 ms above
``import http.client``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import socketserver
import subprocess
import sys
import threading
import time
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _bench_stream
from _common import (
    REPO_ROOT,
    ChildServer,
    Target,
    emit_json,
    fmt_ratio,
    median,
    print_table,
    print_targets,
)

import lmstrix
from lmstrix.sse import SSEDecoder

MODEL = "bench/canned-1b"
PROMPT = "Say hello."
ANSWER = "Hello! How can I help you today?"
STREAM_WORDS = 256  # content events per canned stream

TARGET_VS_RAW = 0.8
TARGET_VS_OPENAI = 2.0
TARGET_IMPORT_MS = 20.0
TARGET_TTFC_VS_RAW = 1.3  # time to first chunk, lmstrix over raw: at most
TARGET_CHUNKS_VS_RAW = 0.7  # streamed chunks per second, lmstrix over raw: at least
TARGET_CLIENT_OVER_HTTP_MS = 15.0  # `import lmstrix; lmstrix.Client` over `import http.client`

Call = Callable[[], str]


# ---------------------------------------------------------------------------- payloads


def _chunk(text: Optional[str], finish: Optional[str], first: bool = False) -> Dict[str, Any]:
    delta: Dict[str, Any] = {}
    if first:
        delta["role"] = "assistant"
    if text is not None:
        delta["content"] = text
    return {
        "id": "chatcmpl-bench0123456789",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "system_fingerprint": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def chat_body() -> bytes:
    """The canned non-streamed chat completion (LM Studio's shape)."""
    return json.dumps(
        {
            "id": "chatcmpl-bench0123456789",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": ANSWER},
                }
            ],
            "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23},
            "stats": {},
            "system_fingerprint": MODEL,
        }
    ).encode()


def sse_events(words: int) -> List[bytes]:
    """Encoded SSE events of one streamed answer: ``words`` content chunks, finish, usage, DONE."""
    events = []
    for i in range(words):
        piece = "word" if i == 0 else f" word{i}"
        events.append(_chunk(piece, None, first=i == 0))
    events.append(_chunk(None, "stop"))
    usage = _chunk(None, None)
    usage["choices"] = []
    usage["usage"] = {"prompt_tokens": 14, "completion_tokens": words, "total_tokens": words + 14}
    events.append(usage)
    out = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
    out.append(b"data: [DONE]\n\n")
    return out


# ---------------------------------------------------------------------------- servers


def _response(status: bytes, ctype: bytes, body: bytes, close: bool) -> bytes:
    head = [
        b"HTTP/1.1 " + status,
        b"Content-Type: " + ctype,
        b"Content-Length: " + str(len(body)).encode(),
    ]
    if close:
        head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class _CannedHandler(socketserver.StreamRequestHandler):
    """A minimal HTTP/1.1 keep-alive loop: parse just enough, answer prebuilt bytes."""

    replies: ClassVar[Dict[Tuple[str, bool], bytes]] = {}
    connections: ClassVar[List[int]] = [0]  # accepted so far (list: shared, mutable)

    def setup(self) -> None:
        super().setup()
        self.connections[0] += 1  # one server thread per connection; a GIL-atomic add
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        rfile, conn = self.rfile, self.connection
        while True:
            request_line = rfile.readline(65537)
            if not request_line.strip():
                return
            length, close = 0, request_line.rstrip().endswith(b"HTTP/1.0")
            while True:
                line = rfile.readline(65537)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            body = rfile.read(length) if length else b""
            path = request_line.split(b" ", 2)[1]
            if path.startswith(b"/v1/chat/completions"):
                kind = "sse" if b'"stream": true' in body or b'"stream":true' in body else "chat"
            elif path.startswith(b"/v1/models"):
                kind = "models"
            elif path == b"/bench/connections":
                count = json.dumps({"connections": self.connections[0]}).encode()
                conn.sendall(_response(b"200 OK", b"application/json", count, close))
                continue
            else:
                kind = "404"
            conn.sendall(self.replies[kind, close])
            if close:
                return


class _CannedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_canned() -> None:
    """Child-process entry: serve canned replies on 127.0.0.1, print the port, stop at EOF."""
    sse = b"".join(sse_events(STREAM_WORDS))
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
    bodies = {
        "chat": (b"200 OK", b"application/json", chat_body()),
        "sse": (b"200 OK", b"text/event-stream", sse),
        "models": (b"200 OK", b"application/json", models),
        "404": (b"404 Not Found", b"application/json", b'{"error":"not found"}'),
    }
    _CannedHandler.replies = {
        (kind, close): _response(*parts, close)
        for kind, parts in bodies.items()
        for close in (False, True)
    }
    with _CannedServer(("127.0.0.1", 0), _CannedHandler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"PORT {server.server_address[1]}", flush=True)
        sys.stdin.read()  # the parent closes our stdin to stop us
        server.shutdown()


def serve_sim() -> None:
    """Child-process entry: the lmstrix simulator with one model, same protocol as above."""
    from lmstrix.testing import FakeLMStudio, SimModel

    with FakeLMStudio(models=[SimModel(MODEL, 8192)], time_scale=0.0) as fake:
        print(f"PORT {fake.port}", flush=True)
        sys.stdin.read()


# ---------------------------------------------------------------------------- clients


def _request_body() -> bytes:
    messages = [{"role": "user", "content": PROMPT}]
    return json.dumps({"model": MODEL, "messages": messages, "max_tokens": 8}).encode()


def lmstrix_client(url: str) -> Tuple[Call, Callable[[], None]]:
    client = lmstrix.Client(url, max_retries=0)

    def call() -> str:
        return client.chat(MODEL, PROMPT, max_tokens=8).text

    return call, client.close


def raw_client(url: str) -> Tuple[Call, Callable[[], None]]:
    import http.client

    host, port = url.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def call() -> str:
        conn.request("POST", "/v1/chat/completions", body=_request_body(), headers=headers)
        answer = json.loads(conn.getresponse().read())
        return str(answer["choices"][0]["message"]["content"])

    return call, conn.close


def urllib_client(url: str) -> Tuple[Call, Callable[[], None]]:
    import urllib.request

    # urlopen() itself, minus the environment's proxy settings (never wanted on loopback).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    target = url + "/v1/chat/completions"

    def call() -> str:
        request = urllib.request.Request(target, data=_request_body(), headers=headers)
        with opener.open(request) as resp:
            answer = json.loads(resp.read())
        return str(answer["choices"][0]["message"]["content"])

    return call, lambda: None


def openai_client(url: str) -> Tuple[Call, Callable[[], None]]:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    messages: Any = [{"role": "user", "content": PROMPT}]

    def call() -> str:
        reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8)
        return str(reply.choices[0].message.content)

    return call, client.close


def openai_version() -> Optional[str]:
    try:
        import openai
    except ImportError:
        return None
    return str(getattr(openai, "__version__", "?"))


# ---------------------------------------------------------------------------- measuring


def measure_rates(
    url: str, makers: Dict[str, Callable[[str], Tuple[Call, Callable[[], None]]]], args: Any
) -> Dict[str, Dict[str, Any]]:
    """Requests per second per client: warm-up, then interleaved rounds; median kept."""
    calls: Dict[str, Call] = {}
    closers: List[Callable[[], None]] = []
    try:
        for name, make in makers.items():
            call, close = make(url)
            closers.append(close)
            for _ in range(args.warmup):
                text = call()
            if text != ANSWER and "Simulated" not in text:
                raise RuntimeError(f"{name} read a wrong answer: {text!r}")
            calls[name] = call
        rounds: Dict[str, List[float]] = {name: [] for name in calls}
        names = list(calls)
        for turn in range(args.rounds):
            # The order turns each round, so no client always runs right after the same
            # one (urllib's round leaves the server closing hundreds of connections).
            shift = turn % len(names)
            for name in names[shift:] + names[:shift]:
                call = calls[name]
                start = time.perf_counter()
                for _ in range(args.requests):
                    call()
                rounds[name].append(args.requests / (time.perf_counter() - start))
    finally:
        for close in closers:
            close()
    return {
        name: {"rps": median(rates), "us_per_request": 1e6 / median(rates), "rounds": rates}
        for name, rates in rounds.items()
    }


def split_reads(data: bytes, seed: int = 0) -> List[bytes]:
    """Cut ``data`` into reads of 1-4 KB, as a socket would hand them over."""
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        n = rng.randint(1024, 4096)
        pieces.append(data[i : i + n])
        i += n
    return pieces


def lmstrix_decode(reads: List[bytes]) -> List[str]:
    dec = SSEDecoder()
    out: List[str] = []
    for piece in reads:
        out.extend(e.data for e in dec.feed(piece))
    out.extend(e.data for e in dec.flush())
    return out


def openai_decoder() -> Optional[Callable[[List[bytes]], List[str]]]:
    """openai-python's SSE decoder as a function of the reads, or None if unavailable."""
    try:
        from openai._streaming import SSEDecoder as OpenAIDecoder
    except ImportError:
        return None
    if hasattr(OpenAIDecoder, "iter_bytes"):

        def decode(reads: List[bytes]) -> List[str]:
            return [e.data for e in OpenAIDecoder().iter_bytes(iter(reads))]

        return decode
    return None  # pragma: no cover - an openai without iter_bytes: not measured


def measure_decoders(args: Any) -> Dict[str, Any]:
    """SSE events per second of both decoders on the same bytes (median of the rounds)."""
    events = sse_events(STREAM_WORDS)
    per_stream = len(events)
    count = max(per_stream, args.sse_events // per_stream * per_stream)
    data = b"".join(events) * (count // per_stream)
    reads = split_reads(data)
    decoders: Dict[str, Callable[[List[bytes]], List[str]]] = {"lmstrix": lmstrix_decode}
    theirs = openai_decoder()
    if theirs is not None:
        decoders["openai"] = theirs
    expected = lmstrix_decode(reads)
    if len(expected) != count:
        raise RuntimeError(f"lmstrix decoded {len(expected)} events, expected {count}")
    for name, decode in decoders.items():
        if decode(reads) != expected:
            raise RuntimeError(f"the {name} decoder disagrees with lmstrix on the same bytes")
    rounds: Dict[str, List[float]] = {name: [] for name in decoders}
    for _ in range(args.rounds):
        for name, decode in decoders.items():
            start = time.perf_counter()
            decode(reads)
            rounds[name].append(count / (time.perf_counter() - start))
    return {
        "events": count,
        "bytes": len(data),
        "reads": len(reads),
        "rates": {name: median(r) for name, r in rounds.items()},
    }


def measure_streams(url: str, args: Any) -> Dict[str, float]:
    """Events per second through the whole streaming path of each client."""
    per_stream = len(sse_events(STREAM_WORDS))
    runners: Dict[str, Callable[[], int]] = {}
    closers: List[Callable[[], None]] = []
    client = lmstrix.Client(url, max_retries=0)
    closers.append(client.close)

    def run_lmstrix() -> int:
        with client.stream_chat(MODEL, PROMPT) as stream:
            return sum(1 for _ in stream)

    runners["lmstrix"] = run_lmstrix
    if openai_version() is not None:
        import openai

        oai = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        closers.append(oai.close)
        messages: Any = [{"role": "user", "content": PROMPT}]

        def run_openai() -> int:
            stream = oai.chat.completions.create(model=MODEL, messages=messages, stream=True)
            return sum(1 for _ in stream)

        runners["openai"] = run_openai
    try:
        for _ in range(max(2, args.warmup // 20)):
            for run in runners.values():
                run()
        rounds: Dict[str, List[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                for _ in range(args.streams):
                    run()
                rounds[name].append(args.streams * per_stream / (time.perf_counter() - start))
    finally:
        for close in closers:
            close()
    return {name: median(r) for name, r in rounds.items()}


def _spawn_ms(argv: List[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO_ROOT, check=True)
    return (time.perf_counter() - start) * 1000.0


def measure_imports(args: Any) -> Dict[str, Any]:
    """Median wall time of fresh interpreters, minus the empty one; interleaved runs."""
    py = sys.executable
    prefix = f"import sys; sys.path.insert(0, {REPO_ROOT!r})"
    cases: Dict[str, List[str]] = {
        "baseline": [py, "-c", "pass"],
        "http.client": [py, "-c", "import http.client"],
        "lmstrix": [py, "-c", "import lmstrix"],
        "lmstrix.Client": [py, "-c", "import lmstrix; lmstrix.Client"],
        "baseline -I -S": [py, "-I", "-S", "-c", prefix],
        "lmstrix -I -S": [py, "-I", "-S", "-c", prefix + "; import lmstrix"],
    }
    if openai_version() is not None:
        cases["openai"] = [py, "-c", "import openai"]
        cases["openai.OpenAI"] = [py, "-c", "import openai; openai.OpenAI"]
    # Write lmstrix's .pyc files first: with PYTHONDONTWRITEBYTECODE set, the warm-up
    # runs would not, and every run would compile the sources again.
    subprocess.run(
        [py, "-m", "compileall", "-q", os.path.join(REPO_ROOT, "lmstrix")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for argv in cases.values():  # warm the OS file cache
        _spawn_ms(argv)
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(args.import_runs):
        for name, argv in cases.items():
            times[name].append(_spawn_ms(argv))
    med = {name: median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    added, added_min = {}, {}
    for name in cases:
        if name.startswith("baseline"):
            continue
        base = "baseline -I -S" if name.endswith("-I -S") else "baseline"
        added[name] = med[name] - med[base]
        added_min[name] = low[name] - low[base]
    return {
        "median_ms": med,
        "min_ms": low,
        "added_ms": added,
        "added_min_ms": added_min,
        "runs": args.import_runs,
    }


# ---------------------------------------------------------------------------- report


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (CI)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--serve", choices=("canned", "sim"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve == "canned":
        serve_canned()
        return 0
    if args.serve == "sim":
        serve_sim()
        return 0
    args.warmup = 50 if args.quick else 200
    args.rounds = 5 if args.quick else 15
    args.requests = 200 if args.quick else 500
    args.sse_events = 20_000 if args.quick else 100_000
    args.streams = 20 if args.quick else 100
    args.import_runs = 7 if args.quick else 11

    version = openai_version()
    makers: Dict[str, Callable[[str], Tuple[Call, Callable[[], None]]]] = {
        "lmstrix Client": lmstrix_client,
        "raw http.client": raw_client,
        "urllib.request": urllib_client,
    }
    if version is not None:
        makers["openai-python"] = openai_client
    with ChildServer(__file__, "--serve", "canned") as server:
        rates = measure_rates(server.url, makers, args)
        streams = measure_streams(server.url, args)
        streaming = _bench_stream.measure(server.url, MODEL, PROMPT, args)
    sim_rates: Dict[str, Dict[str, Any]] = {}
    if not args.quick:
        sim_args = argparse.Namespace(warmup=50, rounds=5, requests=300)
        sim_makers = {k: makers[k] for k in ("lmstrix Client", "raw http.client")}
        with ChildServer(__file__, "--serve", "sim") as server:
            sim_rates = measure_rates(server.url, sim_makers, sim_args)
    decoders = measure_decoders(args)
    imports = measure_imports(args)

    def vs(name: str, table: Dict[str, Dict[str, Any]]) -> Optional[float]:
        # Paired: each round's lmstrix rate over the same round's rate of the other
        # client (measured right after it), then the median; steadier on a busy machine.
        if name not in table:
            return None
        pairs = zip(table["lmstrix Client"]["rounds"], table[name]["rounds"])
        return median([a / b for a, b in pairs])

    dec_rates = decoders["rates"]
    dec_ratio = dec_rates["lmstrix"] / dec_rates["openai"] if "openai" in dec_rates else None
    stream_ratio = streams["lmstrix"] / streams["openai"] if "openai" in streams else None
    vs_raw, vs_openai = vs("raw http.client", rates), vs("openai-python", rates)
    import_ms = imports["added_ms"]["lmstrix"]
    med_ms = imports["median_ms"]
    client_over_http = med_ms["lmstrix.Client"] - med_ms["http.client"]
    stream_vs_raw = _bench_stream.ratios(streaming)
    targets = [
        Target("requests/s: lmstrix / raw http.client", vs_raw, ">=", TARGET_VS_RAW, "x"),
        Target("requests/s: lmstrix / openai-python", vs_openai, ">=", TARGET_VS_OPENAI, "x"),
        Target(
            "first chunk: lmstrix / raw (time)",
            stream_vs_raw["ttfc"],
            "<=",
            TARGET_TTFC_VS_RAW,
            "x",
        ),
        Target(
            "chunks/s: lmstrix / raw + json.loads",
            stream_vs_raw["chunks_per_s"],
            ">=",
            TARGET_CHUNKS_VS_RAW,
            "x",
        ),
        Target("import lmstrix adds", import_ms, "<=", TARGET_IMPORT_MS, " ms"),
        Target(
            "lmstrix.Client over http.client",
            client_over_http,
            "<=",
            TARGET_CLIENT_OVER_HTTP_MS,
            " ms",
        ),
    ]

    if args.json:
        emit_json(
            {
                "benchmark": "bench_client",
                "quick": args.quick,
                "python": sys.version.split()[0],
                "openai": version,
                "server": "canned stdlib server in a child process (HTTP/1.1 keep-alive)",
                "settings": {
                    k: getattr(args, k)
                    for k in ("warmup", "rounds", "requests", "sse_events", "streams")
                },
                "requests_per_second": {k: v["rps"] for k, v in rates.items()},
                "requests_per_second_rounds": {k: v["rounds"] for k, v in rates.items()},
                "ratios": {
                    "lmstrix/raw": vs("raw http.client", rates),
                    "lmstrix/openai": vs("openai-python", rates),
                    "lmstrix/urllib": vs("urllib.request", rates),
                    "sse_decoder_lmstrix/openai": dec_ratio,
                    "stream_lmstrix/openai": stream_ratio,
                },
                "simulator_requests_per_second": {k: v["rps"] for k, v in sim_rates.items()},
                "sse_decoder": decoders,
                "stream_events_per_second": streams,
                "streaming_vs_raw": {
                    name: {k: v for k, v in found.items() if not k.endswith("_rounds")}
                    for name, found in streaming.items()
                },
                "streaming_ratios": stream_vs_raw,
                "imports": imports,
                "targets": [t.to_dict() for t in targets],
            }
        )
        return 0

    print(
        f"Python {sys.version.split()[0]}, lmstrix {lmstrix.__version__}, "
        f"openai-python {version or 'not installed'}"
    )
    print(
        "Server: a minimal stdlib loopback server in a child process (socketserver threads,\n"
        "HTTP/1.1 keep-alive, canned replies, no JSON parsing), so the client's cost dominates.\n"
        f"Sequential requests; {args.warmup} warm-up, then {args.rounds} interleaved rounds of "
        f"{args.requests};\nrates are median rounds, ratios the median of per-round ratios.\n"
    )

    def request_rows(found: Dict[str, Dict[str, Any]]) -> List[List[str]]:
        return [
            [n, f"{r['rps']:,.0f}", f"{r['us_per_request']:,.0f}", fmt_ratio(vs(n, found))]
            for n, r in found.items()
        ]

    def event_rows(found: Dict[str, float]) -> List[List[str]]:
        rows = [[n, f"{v:,.0f}", fmt_ratio(found["lmstrix"] / v)] for n, v in found.items()]
        if "openai" not in found:
            rows.append(["openai", "not installed", "-"])
        return rows

    missing = [["openai-python", "not installed", "-", "-"]] if version is None else []
    print_table(
        ["client", "requests/s", "us/request", "lmstrix / this"],
        request_rows(rates) + missing,
        title="Non-streaming chat, canned server",
    )
    if sim_rates:
        print_table(
            ["client", "requests/s", "us/request", "lmstrix / this"],
            request_rows(sim_rates),
            title="For reference: same requests against the simulator (lmstrix.testing, Python)",
        )
    print_table(
        ["decoder", "events/s", "lmstrix / this"],
        event_rows(dec_rates),
        title=(
            f"SSE decoding: {decoders['events']:,} chat-chunk events, {decoders['bytes']:,} bytes "
            f"in {decoders['reads']:,} reads of 1-4 KB"
        ),
    )
    print_table(
        ["client", "events/s", "lmstrix / this"],
        event_rows(streams),
        title=(
            f"Full streaming path, canned server: {args.streams} streams of "
            f"{len(sse_events(STREAM_WORDS))} events per round"
        ),
    )
    print_table(
        ["client", "first chunk us", "chunks/s", "streams/connection"],
        [
            [
                name,
                f"{found['ttfc_us']:,.0f}",
                f"{found['chunks_per_s']:,.0f}",
                f"{found['streams_per_connection']:,.1f}",
            ]
            for name, found in streaming.items()
        ],
        title=(
            f"Streaming against raw http.client + json.loads (one kept-alive connection): "
            f"{args.streams} streams per round"
        ),
    )
    med, low = imports["median_ms"], imports["min_ms"]
    added, added_min = imports["added_ms"], imports["added_min_ms"]
    irows = []
    for name in med:
        extra = [f"{added[name]:+.1f}", f"{added_min[name]:+.1f}"] if name in added else ["-"] * 2
        irows.append([name, f"{med[name]:.1f}", extra[0], f"{low[name]:.1f}", extra[1]])
    if version is None:
        irows.append(["openai", "not installed", "-", "-", "-"])
    print_table(
        ["interpreter runs", "median ms", "added", "min ms", "added (min)"],
        irows,
        title=(
            f"Import time: fresh interpreters, {imports['runs']} runs each (cwd = repo root); "
            "the target uses the median"
        ),
    )
    print_targets(targets)
    print(f"Also: lmstrix / urllib.request requests/s = {fmt_ratio(vs('urllib.request', rates))}")
    print(f"      SSE decoder lmstrix / openai = {fmt_ratio(dec_ratio)}")
    print(f"      full stream path lmstrix / openai = {fmt_ratio(stream_ratio)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
