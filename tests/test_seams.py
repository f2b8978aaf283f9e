"""The two seams over both transports: middleware sees every request, observers every call.

Seam A: ``Client(middleware=[...])`` and the one retry middleware (its pure policy is
tested in ``test_retry_policy.py``). Seam B: ``Client(observers=[...])`` receives one
``CallEvent`` per chat, completion, embedding, stream, load and unload, failed ones too.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, List

import pytest
from test_client import MODELS, TOKEN, new_transport

import lmstrix
from lmstrix import CallEvent, ChatClient, Client, Request
from lmstrix.testing import FakeLMStudio, Fault
from lmstrix.transport import BufferedResponse, Response, StdlibTransport

Recorder = List[Request]


@pytest.fixture(params=["stdlib", "requests"])
def transport_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=MODELS, api_token=TOKEN) as server:
        yield server


class Seen:
    """A test middleware and a test observer in one: records what passes."""

    def __init__(self) -> None:
        self.requests: List[Request] = []
        self.statuses: List[int] = []
        self.events: List[CallEvent] = []

    def middleware(self, request: Request, call_next: Any) -> Response:
        self.requests.append(request)
        response: Response = call_next(request)
        self.statuses.append(response.status_code)
        return response

    def observe(self, event: CallEvent) -> None:
        self.events.append(event)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def client(sim: FakeLMStudio, transport_name: str, seen: Seen) -> Iterator[Client]:
    with Client(
        sim.base_url,
        api_token=TOKEN,
        transport=new_transport(transport_name),
        retry_backoff_s=0.001,
        middleware=[seen.middleware],
        observers=[seen.observe],
    ) as c:
        yield c


def test_client_is_a_chat_client(client: Client) -> None:
    assert isinstance(client, ChatClient)


def test_middleware_sees_every_request(client: Client, sim: FakeLMStudio, seen: Seen) -> None:
    client.list_models()
    inst = client.load("acme/chat-7b", context_length=4096)
    client.chat("acme/chat-7b", "What is 2+3?", temperature=0)
    client.stream_chat("acme/chat-7b", "What is 2+3?").text()
    client.embed("nomic/embed", ["a", "b"])
    client.unload(inst.id)
    with pytest.raises(lmstrix.ModelNotFoundError):
        client.chat("nope/none", "hi")
    ops = [r.extensions.get("operation") for r in seen.requests]
    assert ops[0] == "models"  # API detection
    assert ops[-6:] == ["load", "chat", "chat", "embedding", "unload", "chat"]
    assert len(seen.requests) == sim.counters.total_requests
    load = next(r for r in seen.requests if r.extensions.get("operation") == "load")
    assert load.method == "POST" and load.url.endswith("/api/v1/models/load")
    assert load.read_timeout_s == client.timeout.load_s
    assert load.retry_if_sent is False
    streamed = [r for r in seen.requests if r.stream]
    assert len(streamed) == 1 and streamed[0].url == sim.base_url + "/v1/chat/completions"
    chat = seen.requests[-1]
    assert chat.read_timeout_s == client.timeout.read_s and chat.retry_if_sent
    assert chat.body is not None and b"nope/none" in chat.body
    assert seen.statuses[-1] == 404
    # the token is in the headers the transport sends, never in a request's repr
    assert chat.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(chat) and "POST" in repr(chat)


def test_middleware_sees_each_retry(client: Client, sim: FakeLMStudio, seen: Seen) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="status", status=503, retry_after=0))
    client.chat("acme/chat-7b", "What is 2+3?")
    assert seen.statuses == [503, 200]
    assert seen.requests[0] is seen.requests[1]  # the same frozen request, sent twice


def test_middleware_can_change_and_answer_requests(sim: FakeLMStudio, transport_name: str) -> None:
    def tag(request: Request, call_next: Any) -> Response:
        headers = {**request.headers, "X-Tag": "seams"}
        response: Response = call_next(request.replace(headers=headers))
        return response

    def canned(request: Request, call_next: Any) -> Response:
        if request.url.endswith("/v1/embeddings"):
            body = b'{"data": [{"index": 0, "embedding": [1.0, 2.0]}]}'
            return BufferedResponse(200, {"content-type": "application/json"}, body)
        response: Response = call_next(request)
        return response

    transport = new_transport(transport_name)
    with Client(sim.base_url, api_token=TOKEN, transport=transport, middleware=[tag, canned]) as c:
        assert c.embed("nomic/embed", "x") == [[1.0, 2.0]]
        assert c.chat("acme/chat-7b", "What is 2+3?").text
    assert "/v1/embeddings" not in sim.counters.requests
    assert sim.received[-1][2].get("x-tag") == "seams"


def test_observer_sees_every_call(client: Client, seen: Seen) -> None:
    inst = client.load("acme/chat-7b", context_length=4096)
    client.chat("acme/chat-7b", "What is 2+3?", temperature=0, max_tokens=16)
    client.complete("acme/chat-7b", "Once upon a time", max_tokens=8)
    client.stream_chat("acme/chat-7b", "Tell me about rivers", temperature=0).text()
    client.embed("nomic/embed", ["a", "b", "c"])
    client.unload(inst.id)
    ops = [(e.operation, e.stream, e.outcome) for e in seen.events]
    assert ops == [
        ("load", False, "ok"),
        ("chat", False, "ok"),
        ("completion", False, "ok"),
        ("chat", True, "ok"),
        ("embedding", False, "ok"),
        ("unload", False, "ok"),
    ]
    load, chat, completion, stream, embed, unload = seen.events
    assert load.parameters == {"context_length": 4096} and load.model == "acme/chat-7b"
    assert chat.parameters == {"temperature": 0, "max_tokens": 16}
    assert stream.parameters == {"temperature": 0}
    assert embed.parameters == {"inputs": 3} and embed.usage is None
    assert unload.model == inst.id
    for event in (chat, completion, stream):
        assert event.server == client.base_url
        assert event.usage is not None and event.usage.prompt_tokens
        assert event.served_model == "acme/chat-7b"
        assert event.error is None and event.ok
        assert event.total_s > 0 and event.started_at > 0
    assert stream.time_to_first_token_s is not None
    assert stream.prefill_tokens_per_s is not None and stream.decode_tokens_per_s is not None
    assert "rivers" not in repr(seen.events) and TOKEN not in repr(seen.events)


def test_observer_sees_failed_and_closed_calls(
    client: Client, sim: FakeLMStudio, seen: Seen
) -> None:
    with pytest.raises(lmstrix.ModelNotFoundError):
        client.chat("nope/none", "hi")
    with pytest.raises(lmstrix.ModelNotFoundError):
        client.stream_chat("nope/none", "hi")
    sim.inject(Fault(path="/api/v1/models/load", kind="reset"))
    with pytest.raises(lmstrix.APIConnectionError):
        client.load("acme/chat-7b", context_length=4096)
    sim.inject(Fault(path="/v1/chat/completions", kind="error_event", after_chunks=2))
    with pytest.raises(lmstrix.StreamError):
        client.stream_chat("acme/chat-7b", "Tell me a long story about mountains").text()
    stream = client.stream_chat("acme/chat-7b", "Tell me a long story about mountains")
    next(stream)
    stream.close()
    stream.close()  # one event only
    outcomes = [(e.operation, e.stream, e.outcome, type(e.error).__name__) for e in seen.events]
    assert outcomes == [
        ("chat", False, "error", "ModelNotFoundError"),
        ("chat", True, "error", "ModelNotFoundError"),
        ("load", False, "error", "APIConnectionError"),
        ("chat", True, "error", "StreamError"),
        ("chat", True, "closed", "NoneType"),
    ]


def test_a_failing_observer_is_logged_and_never_breaks_the_call(
    sim: FakeLMStudio, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: CallEvent) -> None:
        raise RuntimeError("observer bug")

    seen = Seen()
    caplog.set_level(logging.ERROR, logger="lmstrix")
    with Client(sim.base_url, api_token=TOKEN, observers=[broken, seen.observe]) as client:
        assert client.chat("acme/chat-7b", "What is 2+3?").text
        assert client.stream_chat("acme/chat-7b", "What is 2+3?").text()
    assert [e.operation for e in seen.events] == ["chat", "chat"]
    assert "observer bug" in caplog.text


class _OldStyleTransport:
    """A user transport written for the pre-``Request`` signature."""

    def __init__(self) -> None:
        self.inner = StdlibTransport()
        self.read_timeouts: List[Any] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        self.read_timeouts.append(kwargs["read_timeout_s"])
        return self.inner.request(method, url, **kwargs)

    def close(self) -> None:
        self.inner.close()


def test_old_style_transports_are_adapted(sim: FakeLMStudio) -> None:
    old = _OldStyleTransport()
    with Client(sim.base_url, api_token=TOKEN, transport=old) as client:
        client.load("acme/chat-7b", context_length=4096)
        assert client.stream_chat("acme/chat-7b", "What is 2+3?").text()
    assert old.read_timeouts[-2:] == [client.timeout.load_s, None]
    with pytest.raises(TypeError):
        Client(sim.base_url, transport=object())  # type: ignore[arg-type]


def test_stdlib_transport_refuses_header_injection(sim: FakeLMStudio) -> None:
    with Client(sim.base_url, api_token="sk-lm-abc\r\nX-Evil: 1") as client:
        with pytest.raises(lmstrix.ConfigError, match="invalid value for header"):
            client.chat("acme/chat-7b", "hi")
    assert sim.counters.total_requests == 0
    transport = StdlibTransport()
    with pytest.raises(lmstrix.ConfigError, match="invalid characters"):
        transport.send(Request("GET", sim.base_url + "/v1/mo dels"))
    with pytest.raises(lmstrix.ConfigError, match="invalid header name"):
        transport.send(Request("GET", sim.base_url + "/v1/models", headers={"Bad Name": "x"}))
    # the headers http.client would add are not doubled when a caller sets them
    response = transport.send(
        Request(
            "GET",
            sim.base_url + "/v1/models",
            headers={"Host": "example", "Authorization": f"Bearer {TOKEN}"},
        )
    )
    assert response.status_code == 200
    assert sim.received[-1][2]["host"] == "example"
    transport.close()
