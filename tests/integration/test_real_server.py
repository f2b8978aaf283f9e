"""lmstrix against a real OpenAI-compatible server: llama-cpp-python serving SmolLM2-135M.

The server (see ``conftest.py`` and ``llama_server.py``) speaks only the OpenAI API
(``/v1``) and has quirks the simulator cannot prove we handle: no usage in streams,
``: ping`` comment lines in SSE, an empty 200 body when a streamed prompt overflows the
context, a running stream cut with ``[DONE]`` when another request arrives. Answers
are checked at temperature 0, where this model is deterministic.

The CLI against this server (``chat --json``, ``test --json``) is tested in
``test_real_cli.py``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import pytest

import lmstrix

# Questions SmolLM2-135M-Instruct answers right at temperature 0 (it says "3 + 5 = 8").
ARITHMETIC = [
    ("What is 2+2? Answer with a number only.", 4),
    ("What is 3+5? Answer with a number only.", 8),
    ("What is 10+10? Answer with a number only.", 20),
]
QUESTION, ANSWER = ARITHMETIC[1]
# About 10 tokens per sentence: repeated n_ctx // 4 times it is ~2.5x the context.
FILLER = "The quick brown fox jumps over the lazy dog. "
# sse-starlette (under llama-cpp-python) sends ": ping" every 15 s; allow for slow hosts.
PING_WAIT_S = 45.0
# SmolLM2's "<|im_end|>": banning it keeps a generation going until max_tokens.
END_OF_TURN_TOKEN = "2"


def last_number(text: str) -> Optional[int]:
    """The last integer in ``text`` (the model writes "3 + 5 = 8")."""
    found = re.findall(r"-?\d+", text)
    return int(found[-1]) if found else None


def overflowing_prompt(n_ctx: int) -> str:
    """A prompt of about 2.5 times ``n_ctx`` tokens."""
    return FILLER * (n_ctx // 4)


def streamed_text(client: lmstrix.Client, model: str, prompt: str, **params: Any) -> str:
    """The whole answer of ``stream_chat`` (the stream closed afterwards)."""
    with client.stream_chat(model, prompt, **params) as stream:
        return stream.text()


def raw_post(base_url: str, path: str, body: Dict[str, Any]) -> Tuple[int, Dict[str, str], bytes]:
    """POST without lmstrix, to see what the server itself sends."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


def raw_get(base_url: str, path: str) -> int:
    """The status of a GET, without lmstrix."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class RecordingProxy:
    """A loopback TCP relay that keeps a copy of every byte the server sends back.

    Lets a test see the raw SSE stream the client consumed (``: ping`` lines included)
    without patching anything in lmstrix.
    """

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._received = bytearray()
        self._sockets: List[socket.socket] = []
        self.ping_seen = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def received(self) -> bytes:
        """Everything the server sent to the client so far."""
        with self._lock:
            return bytes(self._received)

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
                upstream = socket.create_connection(self._target)
            except OSError:
                return
            with self._lock:
                self._sockets += [downstream, upstream]
            for src, dst, record in ((downstream, upstream, False), (upstream, downstream, True)):
                threading.Thread(target=self._pump, args=(src, dst, record), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    with self._lock:
                        self._received += data
                        if b"\n: ping" in self._received or self._received.startswith(b": ping"):
                            self.ping_seen.set()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop relaying and close every connection."""
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ModelHold:
    """Keep the server's single model busy until :meth:`release`.

    llama-cpp-python serves one request at a time (a FIFO lock); a stream that waits
    for the model gets its headers at once, then only ``: ping`` comments (every 15 s)
    until the model is free. It also cuts a running *stream* short as soon as another
    request waits (``interrupt_requests``, on by default), so the hold is a queue of
    plain requests: ``count`` short generations of ``tokens`` tokens each (end of turn
    banned; 2-4 s each on a 2-core runner, about a minute in all, which outlasts the
    15 s on much faster hosts too). On release the queued ones are dropped by the
    server when their turn comes (it checks for a gone client before generating);
    only the running one finishes, so the test waits little beyond the ping.
    """

    def __init__(self, base_url: str, model: str, *, count: int = 30, tokens: int = 200) -> None:
        self._conns: List[http.client.HTTPConnection] = []
        parts = urlsplit(base_url)
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Write a very long story about a cat."}],
            "temperature": 0,
            "max_tokens": tokens,
            "logit_bias": {END_OF_TURN_TOKEN: -100},
        }
        headers = {"Content-Type": "application/json"}
        try:
            for _ in range(count):
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                self._conns.append(conn)
                conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
        except BaseException:
            self.release()
            raise
        time.sleep(0.5)  # let every one reach the server's queue before the test's request

    def release(self) -> None:
        """Close the connections without reading the answers."""
        for conn in self._conns:
            if conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns = []


@contextlib.contextmanager
def model_held_until_ping(base_url: str, model: str, proxy: RecordingProxy) -> Iterator[None]:
    """Hold the model until the client behind ``proxy`` has been sent a ``: ping``."""
    hold = ModelHold(base_url, model)

    def release_after_ping() -> None:
        proxy.ping_seen.wait(PING_WAIT_S)
        hold.release()

    releaser = threading.Thread(target=release_after_ping, daemon=True)
    releaser.start()
    try:
        yield
    finally:
        proxy.ping_seen.set()  # wake the releaser if the test failed early
        releaser.join()


# --------------------------------------------------------------------------- tests


def test_server_has_the_quirks_these_tests_cover(real_server: Tuple[str, int], model: str) -> None:
    """Guard: if a llama-cpp-python upgrade drops a quirk, the tests below cover less."""
    base_url, n_ctx = real_server
    assert raw_get(base_url, "/api/v1/models") == 404
    assert raw_get(base_url, "/api/v0/models") == 404
    stream = {"model": model, "temperature": 0, "max_tokens": 8, "stream": True}
    status, _, body = raw_post(
        base_url,
        "/v1/chat/completions",
        {**stream, "messages": [{"role": "user", "content": QUESTION}]},
    )
    assert status == 200
    assert b"data: [DONE]" in body
    assert b'"usage"' not in body, "the server now sends usage in streams"
    status, headers, body = raw_post(
        base_url,
        "/v1/chat/completions",
        {**stream, "messages": [{"role": "user", "content": overflowing_prompt(n_ctx)}]},
    )
    assert (status, body) == (200, b""), (
        "the server no longer answers an overflow with an empty stream"
    )
    assert headers["content-type"].startswith("text/event-stream")


def test_list_models_falls_back_to_v1_models(
    client: lmstrix.Client, own_model_key: Optional[str]
) -> None:
    models = client.list_models()
    assert client.server_api == "openai"
    assert not client.supports_load
    assert models, "the server lists at least one model"
    assert all(isinstance(m, lmstrix.ModelInfo) and m.key for m in models)
    if own_model_key is not None:  # the server conftest started: one model, by its alias
        assert [m.key for m in models] == [own_model_key]


@pytest.mark.parametrize(("question", "answer"), ARITHMETIC)
def test_chat_answers_arithmetic(
    client: lmstrix.Client, model: str, question: str, answer: int
) -> None:
    completion = client.chat(model, question, temperature=0, max_tokens=16)
    assert last_number(completion.text) == answer, completion.text
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens or 0) > 10
    assert 0 < (completion.usage.completion_tokens or 0) <= 16
    assert completion.model == model


def test_chat_takes_a_message_list(client: lmstrix.Client, model: str) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    completion = client.chat(model, messages, temperature=0, max_tokens=16)
    assert last_number(completion.text) == ANSWER, completion.text


@pytest.mark.parametrize(
    ("prompt", "max_tokens"),
    [(QUESTION, 16), ("Write one sentence about cats.", 48), ("Name three colors.", 40)],
)
def test_stream_chat_yields_the_same_text_as_chat(
    client: lmstrix.Client, model: str, prompt: str, max_tokens: int
) -> None:
    whole = client.chat(model, prompt, temperature=0, max_tokens=max_tokens)
    stream = client.stream_chat(model, prompt, temperature=0, max_tokens=max_tokens)
    with stream:
        chunks = list(stream)
    assert len(chunks) > 1, "the answer arrives in pieces"
    assert "".join(chunk.text for chunk in chunks) == whole.text
    streamed = stream.completion
    assert streamed.text == whole.text
    assert streamed.finish_reason == whole.finish_reason == "stop"
    # This server never sends usage in a stream: lmstrix must not invent any.
    assert streamed.usage.prompt_tokens in (None, whole.usage.prompt_tokens)


def test_stream_chat_text_reads_the_whole_answer(client: lmstrix.Client, model: str) -> None:
    text = streamed_text(client, model, QUESTION, temperature=0, max_tokens=16)
    assert last_number(text) == ANSWER, text


def test_stream_chat_copes_with_ping_comments(
    real_server: Tuple[str, int], client: lmstrix.Client, model: str
) -> None:
    base_url, _ = real_server
    whole = client.chat(model, QUESTION, temperature=0, max_tokens=16)
    with RecordingProxy(base_url) as proxy, lmstrix.Client(proxy.url, timeout=120) as proxied:
        with model_held_until_ping(base_url, model, proxy):
            text = streamed_text(proxied, model, QUESTION, temperature=0, max_tokens=16)
        raw = proxy.received
    assert proxy.ping_seen.is_set()
    assert b": ping" in raw, (
        f"no ': ping' reached the client within {PING_WAIT_S:.0f} s (the model was free "
        "too early?); this test did not exercise ping comments"
    )
    assert raw.index(b": ping") < raw.index(b"data:"), "the ping came before the answer"
    assert text == whole.text
    assert last_number(text) == ANSWER


class SilentShortAnswer(AssertionError):
    """A stream the server cut short was taken for a whole answer."""


def cut_stream_error(stream: lmstrix.ChatStream) -> lmstrix.StreamError:
    """Read ``stream`` to its end; the :class:`StreamError` it raised, as expected."""
    try:
        for _ in stream:
            pass
    except lmstrix.StreamError as exc:
        return exc
    raise SilentShortAnswer(
        f"the cut stream ended with finish_reason={stream.completion.finish_reason!r} "
        f"after {len(stream.completion.text)} characters, and no error"
    )


# Only SilentShortAnswer counts as the expected failure: a server that could not be
# started (the fixture fails) or any other error still shows as a failure.
def test_stream_cut_short_by_another_request_is_not_a_silent_short_answer(
    real_server: Tuple[str, int], client: lmstrix.Client, model: str
) -> None:
    # llama-cpp-python's default ``interrupt_requests`` ends a running stream with
    # ``data: [DONE]`` -- and no finish_reason -- as soon as another request waits.
    base_url, _ = real_server
    story = "Write a very long story about a cat."
    other_body = {
        "model": model,
        "temperature": 0,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    other = threading.Thread(target=raw_post, args=(base_url, "/v1/chat/completions", other_body))
    with client.stream_chat(
        model, story, temperature=0, max_tokens=400, logit_bias={END_OF_TURN_TOKEN: -100}
    ) as stream:
        first = next(chunk for chunk in stream if chunk.text)
        other.start()
        try:
            error = cut_stream_error(stream)
        finally:
            other.join()
    assert error.kind == "truncated"
    assert error.text.startswith(first.text)


def test_complete_continues_the_prompt(client: lmstrix.Client, model: str) -> None:
    completion = client.complete(model, "1, 2, 3, 4,", temperature=0, max_tokens=12)
    assert completion.text.startswith(" 5, 6, 7"), completion.text
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 12


def test_prompt_over_n_ctx_raises_context_overflow_error(
    real_server: Tuple[str, int], client: lmstrix.Client, model: str
) -> None:
    _, n_ctx = real_server
    with pytest.raises(lmstrix.ContextOverflowError) as caught:
        client.chat(model, overflowing_prompt(n_ctx), temperature=0, max_tokens=8)
    assert caught.value.status_code == 400
    assert str(n_ctx) in str(caught.value)


def test_streamed_prompt_over_n_ctx_raises_stream_error(
    real_server: Tuple[str, int], client: lmstrix.Client, model: str
) -> None:
    _, n_ctx = real_server
    with pytest.raises(lmstrix.StreamError) as caught:
        streamed_text(client, model, overflowing_prompt(n_ctx), temperature=0, max_tokens=8)
    assert caught.value.text == ""
    assert caught.value.kind == "empty"


def test_the_server_still_answers_after_an_overflow(client: lmstrix.Client, model: str) -> None:
    completion = client.chat(model, QUESTION, temperature=0, max_tokens=16)
    assert last_number(completion.text) == ANSWER


def test_find_context_limit_on_an_openai_only_server(
    real_server: Tuple[str, int], client: lmstrix.Client, model: str
) -> None:
    # Without a load endpoint the search measures the working context of the
    # model as served (DESIGN: "skip 3 and search the working limit"). SmolLM2
    # finds the needle up to n_ctx here; prompts above n_ctx overflow (HTTP 400).
    _, n_ctx = real_server
    report = lmstrix.find_context_limit(
        client, model, min_context=256, max_context=n_ctx, resolution=512, trials=2, seed=2
    )
    assert report.status == "done", report.reason
    assert report.loads == 0
    assert report.loadable_context is None
    assert report.working_context is not None
    assert n_ctx // 2 <= report.working_context <= n_ctx
    assert report.requests >= len(report.probes) >= 2
    assert report.prompt_tokens >= report.working_context
    assert all(p.size <= n_ctx for p in report.probes if p.ok)
