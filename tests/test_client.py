"""The Client against the simulator over real loopback sockets: the contract suite.

Every test that talks to a server runs over both transports, the stdlib one and
``RequestsTransport`` (skipped only when ``requests`` is not installed), through the
``make_client`` fixture. Tests that look inside the stdlib pool stay stdlib-only.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Callable, Iterator, List

import pytest

import lmstrix
from lmstrix import Client
from lmstrix.testing import FakeLMStudio, Fault, SimModel
from lmstrix.transport import StdlibTransport, Transport

TOKEN = "sk-lm-Abc12345:SECRETsecretSECRET0000"

MODELS = [
    SimModel(
        key="acme/chat-7b",
        declared_context=32768,
        loadable_context=20000,
        working_context=12000,
    ),
    SimModel(
        key="acme/fit-3b",
        declared_context=65536,
        loadable_context=30000,
        working_context=16000,
        auto_fit=True,
    ),
    SimModel(
        key="nomic/embed",
        declared_context=2048,
        loadable_context=2048,
        working_context=2048,
        type="embedding",
    ),
]


MakeClient = Callable[..., Client]


def new_transport(name: str) -> Transport:
    """A fresh transport of the kind ``name`` (``requests`` skips when not installed)."""
    if name == "stdlib":
        return StdlibTransport()
    pytest.importorskip("requests")
    from lmstrix.requests_transport import RequestsTransport

    return RequestsTransport()


@pytest.fixture(params=["stdlib", "requests"])
def transport_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_client(transport_name: str) -> MakeClient:
    """``Client(...)`` over the transport under test."""

    def make(*args: Any, **kwargs: Any) -> Client:
        return Client(*args, transport=new_transport(transport_name), **kwargs)

    return make


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=MODELS) as server:
        yield server


@pytest.fixture
def client(sim: FakeLMStudio, make_client: MakeClient) -> Iterator[Client]:
    with make_client(sim.base_url, max_retries=2, retry_backoff_s=0.01) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- detection, models


@pytest.mark.parametrize("api", ["v1", "v0", "openai"])
def test_detection_and_list_models(api: str, make_client: MakeClient) -> None:
    with FakeLMStudio(models=MODELS, api=api) as sim, make_client(sim.base_url) as client:
        models = client.list_models()
        assert client.server_api == api
        assert {m.key for m in models} == {"acme/chat-7b", "acme/fit-3b", "nomic/embed"}
        chat = next(m for m in models if m.key == "acme/chat-7b")
        if api == "openai":
            assert chat.max_context_length is None
        else:
            assert chat.max_context_length == 32768
            embed = next(m for m in models if m.key == "nomic/embed")
            assert embed.type == "embedding"
        assert client.list_models() == models  # second call uses the detected API
        assert client.supports_load is (api == "v1")


def test_get_model_suggests_close_matches(client: Client) -> None:
    assert client.get_model("acme/chat-7b").key == "acme/chat-7b"
    with pytest.raises(lmstrix.ModelNotFoundError) as info:
        client.get_model("acme/chat-7")
    assert "acme/chat-7b" in str(info.value)


def test_load_reports_requested_and_applied(client: Client, sim: FakeLMStudio) -> None:
    inst = client.load("acme/chat-7b", context_length=8192)
    assert inst.context_length == 8192
    assert inst.requested_context_length == 8192
    assert not inst.auto_fitted
    body = sim.received[-1][3]
    assert body == {"model": "acme/chat-7b", "context_length": 8192, "echo_load_config": True}
    assert [i.id for i in client.loaded_instances()] == [inst.id]
    client.unload(inst.id)
    assert client.loaded_instances() == []


def test_load_auto_fit_is_visible(client: Client) -> None:
    inst = client.load("acme/fit-3b", context_length=60000)
    assert inst.requested_context_length == 60000
    assert inst.context_length is not None
    assert inst.context_length < 60000
    assert inst.auto_fitted


def test_load_refused_and_unknown(client: Client) -> None:
    with pytest.raises(lmstrix.ModelLoadError) as info:
        client.load("acme/chat-7b", context_length=30000)
    assert "insufficient system resources" in str(info.value)
    assert info.value.status_code == 400
    with pytest.raises(lmstrix.ModelNotFoundError) as nf:
        client.load("nope/none", context_length=4096)
    assert nf.value.status_code == 404
    with pytest.raises(TypeError):
        client.load("acme/chat-7b", parallel=2)


def test_load_needs_v1(make_client: MakeClient) -> None:
    with FakeLMStudio(models=MODELS, api="v0") as sim, make_client(sim.base_url) as client:
        with pytest.raises(lmstrix.APIError) as info:
            client.load("acme/chat-7b", context_length=4096)
        assert "LM Studio 0.4" in str(info.value)


def test_unload_unknown_instance(client: Client) -> None:
    with pytest.raises(lmstrix.APIStatusError):
        client.unload("ghost")


# ---------------------------------------------------------------- inference


def test_chat_answers_and_sends_what_was_asked(client: Client, sim: FakeLMStudio) -> None:
    done = client.chat("acme/chat-7b", "What is 2+3?", temperature=0, max_tokens=16)
    assert "5" in done.text
    assert done.finish_reason in ("stop", "length")
    assert done.usage.prompt_tokens and done.usage.prompt_tokens > 0
    assert done.model is not None
    assert done.model.startswith("acme/chat-7b")
    sent = sim.received[-1]
    assert sent[0] == "POST"
    assert sent[1] == "/v1/chat/completions"
    assert sent[3]["messages"] == [{"role": "user", "content": "What is 2+3?"}]
    assert sent[3]["temperature"] == 0
    assert sent[3]["stream"] is False


def test_chat_rejects_bad_messages(client: Client) -> None:
    with pytest.raises(TypeError):
        client.chat("acme/chat-7b", [{"content": "no role"}])


def test_complete_and_embed(client: Client) -> None:
    done = client.complete("acme/chat-7b", "Once upon a time", max_tokens=8)
    assert done.text
    vectors = client.embed("nomic/embed", ["a", "b"])
    assert len(vectors) == 2
    assert all(isinstance(x, float) for x in vectors[0])
    assert vectors[0] != vectors[1]
    assert client.embed("nomic/embed", "a") == vectors[:1]


def test_stream_matches_chat(client: Client, sim: FakeLMStudio) -> None:
    whole = client.chat("acme/chat-7b", "Tell me about rivers", temperature=0)
    with client.stream_chat("acme/chat-7b", "Tell me about rivers", temperature=0) as stream:
        pieces = [chunk.text for chunk in stream]
    assert len(pieces) > 1
    assert "".join(pieces) == whole.text
    done = stream.completion
    assert done.text == whole.text
    assert done.usage.prompt_tokens == whole.usage.prompt_tokens
    assert done.finish_reason == whole.finish_reason
    assert done.stats.time_to_first_token_s is not None
    assert sim.received[-1][3]["stream_options"] == {"include_usage": True}


def test_stream_complete(client: Client) -> None:
    stream = client.stream_complete("acme/chat-7b", "Once upon a time", max_tokens=8)
    assert stream.text() == client.complete("acme/chat-7b", "Once upon a time", max_tokens=8).text


def test_stream_errors_surface_at_the_call(client: Client) -> None:
    with pytest.raises(lmstrix.ModelNotFoundError):
        client.stream_chat("nope/none", "hi")


def test_overflow_non_stream_and_stream(client: Client) -> None:
    client.load("acme/chat-7b", context_length=4096)
    long_prompt = "word " * 8000
    with pytest.raises(lmstrix.ContextOverflowError) as info:
        client.chat("acme/chat-7b", long_prompt)
    assert "acme/chat-7b" in str(info.value)
    with pytest.raises(lmstrix.StreamError) as serr:
        client.stream_chat("acme/chat-7b", long_prompt).text()
    assert serr.value.kind in ("error_event", "empty")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("error_event", "error_event"),
        ("event_error_line", "error_event"),
        ("drop_mid_stream", "disconnected"),
        ("truncate_stream", "truncated"),
    ],
)
def test_stream_failures_keep_partial_text(
    client: Client, sim: FakeLMStudio, kind: str, expected: str
) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind=kind, after_chunks=2))
    stream = client.stream_chat("acme/chat-7b", "Tell me a long story about mountains")
    with pytest.raises(lmstrix.StreamError) as info:
        for _ in stream:
            pass
    assert info.value.kind == expected
    assert info.value.text  # what arrived before the failure is kept
    assert "acme/chat-7b" in str(info.value)
    # a half-read stream is never retried silently
    assert sim.counters.requests.get("/v1/chat/completions") == 1
    # and the client still works afterwards
    assert client.chat("acme/chat-7b", "What is 2+3?").text


def test_ping_comments_are_ignored(client: Client, sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="ping_comments"))
    text = client.stream_chat("acme/chat-7b", "What is 2+3?").text()
    assert "5" in text


def test_breaking_out_releases_the_connection(client: Client) -> None:
    for _ in range(5):
        stream = client.stream_chat("acme/chat-7b", "Tell me a long story about mountains")
        next(iter(stream))
        stream.close()
        stream.close()  # idempotent
        assert list(stream) == []
        with pytest.raises(lmstrix.LMStrixError):
            stream.text()
    assert client.chat("acme/chat-7b", "What is 2+3?").text


# ---------------------------------------------------------------- retries and failures


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(client: Client, sim: FakeLMStudio, status: int) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="status", status=status, retry_after=0))
    assert client.chat("acme/chat-7b", "What is 2+3?").text
    assert sim.counters.requests.get("/v1/chat/completions") == 2


def test_retries_are_capped(sim: FakeLMStudio, make_client: MakeClient) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="status", status=503, times=10))
    with make_client(sim.base_url, max_retries=2, retry_backoff_s=0.001) as client:
        with pytest.raises(lmstrix.APIStatusError) as info:
            client.chat("acme/chat-7b", "hi")
    assert info.value.status_code == 503
    assert sim.counters.requests.get("/v1/chat/completions") == 3


def test_500_is_not_retried(client: Client, sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="html_500"))
    with pytest.raises(lmstrix.APIStatusError) as info:
        client.chat("acme/chat-7b", "hi")
    assert info.value.status_code == 500
    assert "HTML" in str(info.value)
    assert sim.counters.requests.get("/v1/chat/completions") == 1


def test_reset_before_response_is_retried(client: Client, sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="reset"))
    assert client.chat("acme/chat-7b", "What is 2+3?").text


def test_reset_during_load_is_not_retried(client: Client, sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/api/v1/models/load", kind="reset"))
    with pytest.raises(lmstrix.APIConnectionError):
        client.load("acme/chat-7b", context_length=4096)
    assert client.loaded_instances() == []


def test_connection_refused_is_one_friendly_line(make_client: MakeClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with make_client(url, max_retries=1, retry_backoff_s=0.001) as client:
        with pytest.raises(lmstrix.APIConnectionError) as info:
            client.list_models()
    message = str(info.value)
    assert "\n" not in message
    assert url in message
    assert "connection refused" in message
    assert "lms server start" in message
    assert isinstance(info.value, ConnectionError)


def test_timeout_is_an_api_timeout(sim: FakeLMStudio, make_client: MakeClient) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="delay", delay_s=1.0))
    with make_client(sim.base_url, timeout=lmstrix.Timeout(1, 0.2, 1)) as client:
        with pytest.raises(lmstrix.APITimeoutError) as info:
            client.chat("acme/chat-7b", "hi")
    assert "timed out" in str(info.value)
    assert isinstance(info.value, TimeoutError)


# ---------------------------------------------------------------- auth and secrets


def test_token_is_sent_and_never_shown(
    caplog: pytest.LogCaptureFixture, make_client: MakeClient
) -> None:
    caplog.set_level(logging.DEBUG, logger="lmstrix")
    with FakeLMStudio(models=MODELS, api_token=TOKEN) as sim:
        with make_client(sim.base_url) as anonymous:
            with pytest.raises(lmstrix.AuthenticationError) as info:
                anonymous.list_models()
            assert "LM_API_TOKEN" in str(info.value)
        with make_client(sim.base_url, api_token="sk-lm-wrong000:wrongwrongwrongwrong") as wrong:
            with pytest.raises(lmstrix.AuthenticationError) as info2:
                wrong.chat("acme/chat-7b", "hi")
            assert "wrongwrong" not in str(info2.value)
        with make_client(sim.base_url, api_token=TOKEN) as client:
            assert client.list_models()
            done = client.chat("acme/chat-7b", "What is 2+3?")
            assert "5" in done.text
            assert TOKEN not in repr(client)
            assert "***" in repr(client)
            with pytest.raises(lmstrix.ModelNotFoundError) as nf:
                client.chat("nope/none", "hi")
        assert all("authorization" not in {k.lower() for k in r[2]} for r in sim.received)
    assert TOKEN not in caplog.text
    assert TOKEN not in str(nf.value) and TOKEN not in repr(nf.value)
    assert "SECRET" not in caplog.text


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch, make_client: MakeClient) -> None:
    monkeypatch.setenv("LM_API_TOKEN", TOKEN)
    with FakeLMStudio(models=MODELS, api_token=TOKEN) as sim, make_client(sim.base_url) as client:
        assert client.list_models()


# ---------------------------------------------------------------- model identity


def test_wrong_model_answered_warns_or_raises(
    caplog: pytest.LogCaptureFixture, make_client: MakeClient
) -> None:
    with FakeLMStudio(models=MODELS, lenient_model_names=True) as sim:
        with make_client(sim.base_url) as client:
            client.load("acme/chat-7b", context_length=4096)
            caplog.set_level(logging.WARNING, logger="lmstrix")
            done = client.chat("acme/typo", "What is 2+3?")
            assert done.model == "acme/chat-7b"
            assert "acme/typo" in caplog.text
        with make_client(sim.base_url, strict_model=True) as strict:
            with pytest.raises(lmstrix.ModelNotFoundError):
                strict.chat("acme/typo", "What is 2+3?")
            with pytest.raises(lmstrix.ModelNotFoundError):
                strict.stream_chat("acme/typo", "What is 2+3?").text()


# ---------------------------------------------------------------- threads and connections


def test_shared_client_across_threads(client: Client) -> None:
    errors: List[BaseException] = []
    texts: List[str] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for _ in range(10):
                if len(texts) % 2:
                    text = client.chat("acme/chat-7b", "What is 2+3?").text
                else:
                    text = client.stream_chat("acme/chat-7b", "What is 2+3?").text()
                with lock:
                    texts.append(text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(texts) == 80
    assert all("5" in t for t in texts)


def test_keep_alive_reuses_connections(sim: FakeLMStudio) -> None:
    # stdlib-only: it looks inside StdlibTransport's pool (see test_requests_transport.py)
    transport = StdlibTransport()
    with Client(sim.base_url, transport=transport) as client:
        for _ in range(5):
            client.chat("acme/chat-7b", "What is 2+3?")
        idle = sum(len(v) for v in transport._idle.values())
    assert idle == 1
