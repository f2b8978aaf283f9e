"""Stream contract holes, over both transports: pooled connections, JSON answers, empty ones.

- a stream read to ``[DONE]`` leaves its connection in the pool (counted by the simulator);
- a server that answers a stream request with one JSON completion gives that completion
  as a one-chunk stream;
- an empty non-streamed answer raises the same ``StreamError(kind="empty")`` as an empty
  streamed one.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, Tuple

import pytest
from test_client import MODELS, new_transport

import lmstrix
from lmstrix import Client
from lmstrix.testing import FakeLMStudio


@pytest.fixture(params=["stdlib", "requests"])
def transport_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_streams_read_to_done_reuse_one_connection(transport_name: str) -> None:
    with FakeLMStudio(models=MODELS) as sim:
        with Client(sim.base_url, transport=new_transport(transport_name)) as client:
            for i in range(200):
                stream = client.stream_chat("acme/chat-7b", f"What is {i}+1?", max_tokens=4)
                assert stream.text()
            client.chat("acme/chat-7b", "What is 2+3?")
        counters = sim.counters
    assert counters.streams == 200
    assert counters.connections <= 2  # was one new connection per stream


def test_a_stream_closed_early_does_not_poison_the_pool(transport_name: str) -> None:
    with FakeLMStudio(models=MODELS) as sim:
        with Client(sim.base_url, transport=new_transport(transport_name)) as client:
            for _ in range(3):
                stream = client.stream_chat("acme/chat-7b", "Tell me a long story about rivers")
                next(stream)
                stream.close()  # unread bytes: this connection is dropped, not reused
                assert client.stream_chat("acme/chat-7b", "What is 2+3?").text()
        assert sim.counters.connections <= 4


# -- a canned server for answers the simulator does not give ---------------------------------

Canned = Dict[Tuple[str, bool], Tuple[str, bytes]]  # (path, streamed?) -> (content type, body)


def _completion(text: str, finish: str = "stop") -> Dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "acme/chat-7b",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def _json(payload: Any) -> Tuple[str, bytes]:
    return "application/json", json.dumps(payload).encode()


def _events(*payloads: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)


EMPTY_STREAM = _events(
    {"model": "acme/chat-7b", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
) + (b"data: [DONE]\n\n")


@pytest.fixture
def canned() -> Iterator[Tuple[str, Canned]]:
    answers: Canned = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            ctype, data = answers[(self.path, bool(body.get("stream")))]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


def test_a_json_answer_to_a_stream_request_is_a_one_chunk_stream(
    canned: Tuple[str, Canned], transport_name: str
) -> None:
    url, answers = canned
    answers[("/v1/chat/completions", True)] = _json(_completion("Five."))
    with Client(url, transport=new_transport(transport_name)) as client:
        stream = client.stream_chat("acme/chat-7b", "What is 2+3?")
        chunks = list(stream)
        assert [(c.text, c.finish_reason) for c in chunks] == [("Five.", "stop")]
        done = stream.completion
        assert done.text == "Five." and done.usage.total_tokens == 7
        assert done.model == "acme/chat-7b"
        answers[("/v1/chat/completions", True)] = ("application/json", b"[1, 2]")
        with pytest.raises(lmstrix.StreamError, match="did not stream"):
            client.stream_chat("acme/chat-7b", "What is 2+3?")


def test_empty_answers_fail_alike_streamed_or_not(
    canned: Tuple[str, Canned], transport_name: str
) -> None:
    url, answers = canned
    answers[("/v1/chat/completions", False)] = _json(_completion(""))
    answers[("/v1/chat/completions", True)] = ("text/event-stream", EMPTY_STREAM)
    with Client(url, transport=new_transport(transport_name)) as client:
        with pytest.raises(lmstrix.StreamError) as plain:
            client.chat("acme/chat-7b", "hi")
        with pytest.raises(lmstrix.StreamError) as streamed:
            client.stream_chat("acme/chat-7b", "hi").text()
        # a tool call with no text is an answer, not an empty one
        answers[("/v1/chat/completions", False)] = _json(_completion("", finish="tool_calls"))
        assert client.chat("acme/chat-7b", "hi").finish_reason == "tool_calls"
    assert plain.value.kind == streamed.value.kind == "empty"
    assert "no text at all" in str(plain.value) and "no answer at all" in str(streamed.value)
