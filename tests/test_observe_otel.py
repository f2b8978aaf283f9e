"""``lmstrix.observe.otel.OpenTelemetry``: GenAI spans and metrics, checked with the SDK's
in-memory span exporter and metric reader (nothing is sent anywhere)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

import pytest

pytest.importorskip("opentelemetry.sdk")

from _otel import Recorded
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import lmstrix
from lmstrix.client._calls import CallEvent, run_operation
from lmstrix.observe.otel import CAPTURE_CONTENT_ENV
from lmstrix.testing import FakeLMStudio

CHAT = "lmstrix-demo/tiny-chat-1b"
EMBED = "lmstrix-demo/nomic-embed-text"
TOKEN = "sk-lm-otel-SECRET-42"


@pytest.fixture
def secured() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(api_token=TOKEN) as server:
        yield server


def _attrs(span: ReadableSpan) -> Dict[str, Any]:
    return dict(span.attributes or {})


def test_spans_of_a_load_chat_stream_embedding_and_failure(secured: FakeLMStudio) -> None:
    rec = Recorded(capture_content=False)
    port = secured.port
    with lmstrix.Client(secured.base_url, api_token=TOKEN, observers=[rec.observer]) as client:
        client.load(CHAT, context_length=4096)
        client.chat(CHAT, "What is 2+3?", temperature=0.2, max_tokens=50, top_p=0.9, seed=7)
        client.stream_chat(CHAT, "Tell me a story", stop=["\n\n"]).text()
        client.embed(EMBED, ["a", "b", "c"])
        with pytest.raises(lmstrix.ModelNotFoundError):
            client.chat("no/such-model", "hi")
    spans = rec.spans()
    assert [s.name for s in spans] == [
        f"load {CHAT}",
        f"chat {CHAT}",
        f"chat {CHAT}",
        f"embeddings {EMBED}",
        "chat no/such-model",
    ]
    assert all(s.kind == SpanKind.CLIENT for s in spans)
    for span in spans:
        attrs = _attrs(span)
        assert attrs["gen_ai.provider.name"] == "lmstudio"  # the server loaded a model
        assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == port
        assert span.start_time is not None and span.end_time is not None
        assert span.end_time >= span.start_time
    load, chat, stream, embedding, failed = (_attrs(s) for s in spans)
    assert load["gen_ai.operation.name"] == "load"
    assert load["gen_ai.request.model"] == CHAT
    assert load["lmstrix.request.context_length"] == 4096
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.request.model"] == CHAT
    assert chat["gen_ai.response.model"] == CHAT
    assert chat["gen_ai.request.temperature"] == 0.2
    assert chat["gen_ai.request.max_tokens"] == 50
    assert chat["gen_ai.request.top_p"] == 0.9
    assert chat["gen_ai.request.seed"] == 7
    assert chat["gen_ai.usage.input_tokens"] > 0
    assert chat["gen_ai.usage.output_tokens"] > 0
    assert "error.type" not in chat and spans[1].status.status_code == StatusCode.UNSET
    assert stream["lmstrix.stream"] is True
    assert stream["gen_ai.request.stop_sequences"] == ("\n\n",)
    assert stream["gen_ai.usage.output_tokens"] > 0
    assert stream["lmstrix.time_to_first_token_s"] >= 0
    assert embedding["gen_ai.operation.name"] == "embeddings"
    assert embedding["lmstrix.request.inputs"] == 3
    assert failed["error.type"] == "lmstrix.errors.ModelNotFoundError"
    assert spans[4].status.status_code == StatusCode.ERROR
    assert "gen_ai.response.model" not in failed
    assert chat["gen_ai.response.finish_reasons"] == ("stop",)
    assert stream["gen_ai.response.finish_reasons"] == ("stop",)
    # Content is not in a CallEvent (see OpenTelemetry's notes): none is recorded.
    assert not any("messages" in k for a in (chat, stream) for k in a)
    for span in spans:  # the token is nowhere in a span
        assert TOKEN not in repr(span.to_json())

    points = rec.points()
    durations = {
        (a["gen_ai.operation.name"], a.get("error.type")): p
        for a, p in points["gen_ai.client.operation.duration"]
    }
    assert durations[("chat", None)].count == 2
    assert durations[("chat", "lmstrix.errors.ModelNotFoundError")].count == 1
    assert durations[("embeddings", None)].count == 1 and durations[("load", None)].count == 1
    for attrs, _ in points["gen_ai.client.operation.duration"]:
        assert attrs["gen_ai.provider.name"] == "lmstudio" and attrs["server.port"] == port
    tokens = {a["gen_ai.token.type"]: p for a, p in points["gen_ai.client.token.usage"]}
    assert (
        tokens["input"].sum
        == chat["gen_ai.usage.input_tokens"] + stream["gen_ai.usage.input_tokens"]
    )
    assert tokens["output"].count == 2
    first_chunk = points["gen_ai.client.operation.time_to_first_chunk"]
    assert len(first_chunk) == 1 and first_chunk[0][1].count == 1  # the stream only
    assert first_chunk[0][0]["gen_ai.request.model"] == CHAT
    for name in points:
        assert TOKEN not in repr(points[name])


def test_provider_name_openai_server_and_add_client() -> None:
    with FakeLMStudio(api="openai") as server:
        rec = Recorded()
        with lmstrix.Client(server.base_url, observers=[rec.observer]) as client:
            assert rec.observer.add_client(client) is client
            client.chat(CHAT, "hi")
        assert _attrs(rec.spans()[0])["gen_ai.provider.name"] == "openai"
    with FakeLMStudio() as server:
        rec = Recorded()
        with lmstrix.Client(server.base_url, observers=[rec.observer]) as client:
            client.chat(CHAT, "hi")  # nothing known about the server yet
            rec.observer.add_client(client)
            client.chat(CHAT, "hi")
        names = [_attrs(s)["gen_ai.provider.name"] for s in rec.spans()]
        assert names == ["openai", "lmstudio"]
    fixed = Recorded(provider_name="my-box")
    fixed.observer(CallEvent("https://box.example:8443", "completion", "m"))
    attrs = _attrs(fixed.spans()[0])
    assert attrs["gen_ai.provider.name"] == "my-box"
    assert attrs["gen_ai.operation.name"] == "text_completion"
    assert (attrs["server.address"], attrs["server.port"]) == ("box.example", 8443)


def test_capture_content_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    assert Recorded().observer.capture_content is False
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "True")
    assert Recorded().observer.capture_content is True
    assert Recorded(capture_content=False).observer.capture_content is False
    assert "capture_content=True" in repr(Recorded().observer)


@dataclass(frozen=True)
class _EventWithFinish(CallEvent):
    finish_reason: Optional[str] = None


def test_finish_reason_and_request_details_when_an_event_has_them() -> None:
    rec = Recorded()
    event = _EventWithFinish(
        "http://localhost",
        "chat",
        "m",
        {"n": 2, "stop": "END", "response_format": {"type": "json_schema"}, "top_k": True},
        finish_reason="length",
    )
    rec.observer(event)
    attrs = _attrs(rec.spans()[0])
    assert attrs["gen_ai.response.finish_reasons"] == ("length",)
    assert attrs["gen_ai.request.choice.count"] == 2
    assert attrs["gen_ai.request.stop_sequences"] == ("END",)
    assert attrs["gen_ai.output.type"] == "json"
    assert "gen_ai.request.top_k" not in attrs  # a bool is not a number here
    assert attrs["server.port"] == 80
    bad_port = Recorded()
    bad_port.observer(CallEvent("http://box:port", "chat", "m"))
    attrs = _attrs(bad_port.spans()[0])
    assert attrs["server.address"] == "box" and "server.port" not in attrs  # not 80
    nameless = Recorded()
    nameless.observer(CallEvent("not a url", "unload", None))
    span = nameless.spans()[0]
    assert span.name == "unload" and "server.address" not in _attrs(span)


def test_content_is_recorded_only_when_asked(secured: FakeLMStudio) -> None:
    quiet, loud = Recorded(capture_content=False), Recorded(capture_content=True)
    observers = [quiet.observer, loud.observer]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3?"}]
    with lmstrix.Client(secured.base_url, api_token=TOKEN, observers=observers) as client:
        answer = client.chat(CHAT, messages, temperature=0)
        streamed = client.stream_chat(CHAT, "Tell me a story", max_tokens=12).text()
        client.complete(CHAT, "Once upon a time", max_tokens=5)
        client.embed(EMBED, ["one", "two"])
    for span in quiet.spans():
        assert not any(name.startswith("gen_ai.input") for name in _attrs(span))
    chat, stream, completion, embedding = (_attrs(s) for s in loud.spans())
    assert json.loads(chat["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "2+3?"}]},
    ]
    (out,) = json.loads(chat["gen_ai.output.messages"])
    assert out["role"] == "assistant" and out["finish_reason"] == answer.finish_reason
    assert out["parts"] == [{"type": "text", "content": answer.text}]
    (out,) = json.loads(stream["gen_ai.output.messages"])
    assert out["parts"][-1]["content"] == streamed
    assert json.loads(completion["gen_ai.input.messages"])[0]["parts"][0]["content"] == (
        "Once upon a time"
    )
    assert "gen_ai.input.messages" not in embedding  # texts to embed are no messages
    assert TOKEN not in repr([s.attributes for s in loud.spans()])


def test_a_context_search_is_the_parent_span_of_its_loads_and_chats() -> None:
    rec = Recorded()
    with FakeLMStudio() as server, lmstrix.Client(
        server.base_url, observers=[rec.observer]
    ) as client:
        report = lmstrix.find_context_limit(
            client, CHAT, min_context=2048, max_context=8192, resolution=2048, trials=1, seed=1
        )
    spans = rec.spans()
    (search,) = [s for s in spans if s.name == f"context_search {CHAT}"]
    assert search.kind == SpanKind.INTERNAL
    attrs = _attrs(search)
    assert attrs["lmstrix.search.working_context"] == report.working_context
    assert attrs["lmstrix.search.loads"] == report.loads
    assert attrs["lmstrix.search.max_context"] == 8192
    children = [s for s in spans if s is not search]
    assert {s.name.split()[0] for s in children} >= {"load", "chat"}
    assert all(
        s.parent is not None and s.parent.span_id == search.context.span_id for s in children
    )
    assert search.start_time <= min(s.start_time for s in children)
    assert search.end_time >= max(s.end_time for s in children)


def test_a_failed_operation_ends_its_span_with_the_error() -> None:
    rec = Recorded()
    with pytest.raises(RuntimeError):
        run_operation([rec.observer], ("http://h:1", "context_search", "m", {}), _boom, dict)
    (failed,) = rec.spans()
    assert failed.name == "context_search m" and failed.status.status_code == StatusCode.ERROR
    assert _attrs(failed)["error.type"] == "builtins.RuntimeError"
    rec.observer(CallEvent("http://h:1", "context_search", "m"))  # no span open: one made
    assert [s.name for s in rec.spans()] == ["context_search m", "context_search m"]


def _boom() -> Dict[str, Any]:
    raise RuntimeError("the search broke")
