"""Native chat edge cases: the simulator's refusals on the wire, and odd streams.

The simulator's ``/api/v1/chat`` is driven with plain ``http.client`` to check what it
answers to bad requests (the documented error objects). Streams a real server might
send but the simulator does not (no blank line after ``chat.end``, bad event data, a
JSON answer to a stream request) come from a middleware answering in the server's
place, so the client's stream reader sees exactly those bytes.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
from _sim_http import Http

from lmstrix import Client, Request, Response, StreamError
from lmstrix.errors import APIStatusError
from lmstrix.testing import FakeLMStudio, SimModel
from lmstrix.transport._stdlib import BufferedResponse

PLAIN = "acme/plain-1b"


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio([SimModel(PLAIN, 8192)]) as server:
        yield server


@pytest.fixture
def http(sim: FakeLMStudio) -> Iterator[Http]:
    client = Http(sim)
    yield client
    client.close()


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ([1], None, "JSON object"),
        ({"model": PLAIN, "input": "x", "max_tokens": 5}, None, "Unrecognized key"),
        ({"input": "x"}, "model", '"model" is required'),
        ({"model": PLAIN}, "input", '"input" is required'),
        ({"model": PLAIN, "input": []}, "input", "non-empty array"),
        ({"model": PLAIN, "input": [{"type": "audio"}]}, "input", "unsupported input"),
        ({"model": PLAIN, "input": "x", "context_length": 0}, "context_length", "positive"),
        ({"model": PLAIN, "input": "x", "previous_response_id": "r1"}, None, "resp_"),
        ({"model": PLAIN, "input": "x", "reasoning": "max"}, "reasoning", "one of"),
    ],
)
def test_simulator_refuses_bad_requests_like_lm_studio(
    http: Http, body: Any, param: Any, words: str
) -> None:
    status, reply = http.post("/api/v1/chat", body)
    assert status == 400
    error = reply["error"]
    assert error["type"] == "invalid_request" and words in error["message"]
    assert error.get("param") == param or param is None


def test_simulator_answers_text_items_and_unknown_model(http: Http) -> None:
    status, reply = http.post(
        "/api/v1/chat", {"model": PLAIN, "input": [{"type": "text", "content": "1 + 2"}]}
    )
    assert status == 200 and reply["output"] == [{"type": "message", "content": "3"}]
    status, reply = http.post("/api/v1/chat", {"model": "nope", "input": "x"})
    assert status == 404 and reply["error"]["type"] == "model_not_found"


def test_native_chat_is_only_on_v1_servers() -> None:
    for api in ("v0", "openai"):
        with FakeLMStudio([SimModel(PLAIN, 8192)], api=api) as sim:
            http = Http(sim)
            status, reply = http.post("/api/v1/chat", {"model": PLAIN, "input": "x"})
            http.close()
            assert "error" in reply and status in (200, 404)
            assert "output" not in reply


def test_load_failure_in_a_stream_is_an_error_event_then_chat_end(http: Http) -> None:
    body = {"model": PLAIN, "input": "hi", "context_length": 100_000}
    status, _, items = http.stream("/api/v1/chat", body)
    assert status == 200
    kinds = [item["type"] for item in items]
    assert kinds == ["chat.start", "model_load.start", "error", "chat.end"]
    assert "insufficient system resources" in items[2]["error"]["message"]
    assert "response_id" not in items[3]["result"]  # nothing generated, nothing stored


def _answering(content_type: str, body: bytes, status: int = 200) -> Callable[..., Response]:
    def middleware(request: Request, call_next: Callable[[Request], Response]) -> Response:
        return BufferedResponse(status, {"content-type": content_type}, body)

    return middleware


def _sse(*events: Tuple[str, Dict[str, Any]], blank_end: bool = True) -> bytes:
    text = "\n\n".join(f"event: {k}\ndata: {json.dumps(d)}" for k, d in events)
    return (text + ("\n\n" if blank_end else "")).encode()


RESULT = {"model_instance_id": PLAIN, "output": [{"type": "message", "content": "hi"}]}


def _stream(body: bytes, content_type: str = "text/event-stream", status: int = 200) -> Any:
    client = Client("http://127.0.0.1:9", middleware=[_answering(content_type, body, status)])
    return client.stream_respond(PLAIN, "x")


def test_chat_end_without_a_final_blank_line_still_ends_the_stream() -> None:
    body = _sse(
        ("message.delta", {"type": "message.delta", "content": "hi"}),
        ("chat.end", {"type": "chat.end", "result": RESULT}),
        blank_end=False,
    )
    assert _stream(body).text() == "hi"


def test_event_type_from_the_data_and_untyped_errors() -> None:
    data = b'data: {"type": "message.delta", "content": "a"}\n\ndata: {"error": {}}\n\n'
    stream = _stream(data)
    with pytest.raises(StreamError, match="the server sent an error") as info:
        stream.text()
    assert info.value.kind == "error_event" and info.value.text == "a"
    odd = _stream(b'data: {"x": 1}\n\n')
    assert next(odd).type == "unknown"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"data: not json\n\n", "bad event data"),
        (b"data: [1]\n\n", "not an object"),
        (_sse(("chat.end", {"type": "chat.end"})), "no result object"),
        (_sse(("message.delta", {"type": "message.delta", "content": "x"})), "without chat.end"),
    ],
)
def test_malformed_streams_raise_stream_error(body: bytes, words: str) -> None:
    with pytest.raises(StreamError, match=words):
        _stream(body).text()


def test_a_json_answer_to_a_stream_request_is_one_chat_end() -> None:
    stream = _stream(json.dumps(RESULT).encode(), "application/json")
    events = list(stream)
    assert [e.type for e in events] == ["chat.end"]
    assert stream.result.text == "hi"
    with pytest.raises(APIStatusError, match="not a JSON object"):
        _stream(b"[1, 2]", "application/json")


def test_error_event_before_chat_end_keeps_the_text_so_far() -> None:
    body = _sse(
        ("message.delta", {"type": "message.delta", "content": "par"}),
        ("error", {"type": "error", "error": {"type": "unknown", "message": "boom"}}),
        ("chat.end", {"type": "chat.end", "result": RESULT}),
    )
    with pytest.raises(StreamError, match="boom") as info:
        _stream(body).text()
    assert info.value.text == "par" and info.value.body["result"] == RESULT


def test_progress_without_a_fraction_is_not_reported() -> None:
    seen: List[Tuple[str, float]] = []
    body = _sse(
        ("model_load.progress", {"type": "model_load.progress"}),
        ("model_load.progress", {"type": "model_load.progress", "progress": 1}),
        ("chat.end", {"type": "chat.end", "result": RESULT}),
    )
    client = Client("http://127.0.0.1:9", middleware=[_answering("text/event-stream", body)])
    client.stream_respond(PLAIN, "x", on_progress=lambda k, f: seen.append((k, f))).text()
    assert seen == [("model_load", 1.0)]
