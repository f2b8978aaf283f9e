"""LM Studio's native chat (``/api/v1/chat``): respond, stream_respond, conversations.

Against the simulator over real sockets: typed output items, stats, the named events
with progress, stored conversations continued by ``previous_response_id``, the clear
error from servers without the endpoint, and the one CallEvent per call.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

import pytest

import lmstrix
from lmstrix import CallEvent, Client, ConfigError, ContextOverflowError, StreamError
from lmstrix.client import (
    Conversation,
    InvalidToolCallItem,
    MessageItem,
    NativeChatResult,
    NativeEvent,
    ReasoningItem,
    ToolCallItem,
    UnknownItem,
)
from lmstrix.errors import APIError, APIStatusError, ModelNotFoundError
from lmstrix.testing import FakeLMStudio, Fault, SimModel

THINKER = "acme/thinker-4b"
PLAIN = "acme/plain-1b"
MODELS = [SimModel(THINKER, 32768, reasoning=True), SimModel(PLAIN, 8192)]


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(MODELS) as server:
        yield server


@pytest.fixture
def client(sim: FakeLMStudio) -> Iterator[Client]:
    with Client(sim.base_url) as c:
        yield c


def _chat_bodies(sim: FakeLMStudio) -> List[dict]:
    return [r.body for r in sim.received if r.path == "/api/v1/chat"]


def test_respond_gives_text_items_stats_and_a_stored_id(sim: FakeLMStudio, client: Client) -> None:
    result = client.respond(PLAIN, "What is 6 * 7?", temperature=0.2, max_output_tokens=50)
    assert isinstance(result, lmstrix.NativeChatResult)
    assert result.text == "42"
    assert result.output == (MessageItem("42"),)
    assert result.model_instance_id == PLAIN
    assert result.response_id is not None and result.response_id.startswith("resp_")
    stats = result.stats
    assert stats.input_tokens is not None and stats.input_tokens > 5
    assert stats.total_output_tokens == 1
    assert stats.reasoning_output_tokens == 0
    assert stats.tokens_per_second is not None and stats.tokens_per_second > 0
    assert stats.time_to_first_token_seconds is not None
    assert stats.model_load_time_seconds is not None  # this request JIT-loaded the model
    assert result.usage.total_tokens == stats.input_tokens + 1
    body = _chat_bodies(sim)[-1]
    assert body == {
        "model": PLAIN,
        "input": "What is 6 * 7?",
        "temperature": 0.2,
        "max_output_tokens": 50,
    }
    again = client.respond(PLAIN, "What is 1 + 1?")
    assert again.text == "2"
    assert again.stats.model_load_time_seconds is None  # already loaded: no load time


def test_reasoning_model_gives_reasoning_then_message(client: Client) -> None:
    result = client.respond(THINKER, "Explain a KV cache")
    kinds = [item.type for item in result.output]
    assert kinds == ["reasoning", "message"]
    assert isinstance(result.output[0], ReasoningItem)
    assert result.reasoning.startswith("The user asks: Explain a KV cache")
    assert result.text == f"Simulated answer from {THINKER} to: Explain a KV cache"
    assert result.stats.reasoning_output_tokens == len(result.reasoning.split())
    off = client.respond(THINKER, "Explain a KV cache", reasoning="off")
    assert [item.type for item in off.output] == ["message"]


def test_reasoning_setting_a_model_lacks_is_refused(client: Client) -> None:
    with pytest.raises(APIStatusError, match="does not support reasoning") as info:
        client.respond(PLAIN, "hi", reasoning="high")
    assert info.value.status_code == 400


def test_per_request_context_length_loads_at_that_size(sim: FakeLMStudio, client: Client) -> None:
    client.respond(PLAIN, "hello", context_length=2048)
    assert [(i.key, i.context_length) for i in sim.loaded()] == [(PLAIN, 2048)]
    with pytest.raises(ContextOverflowError):
        client.respond(PLAIN, "word " * 3000)


def test_input_items_and_system_prompt(sim: FakeLMStudio, client: Client) -> None:
    plain = client.respond(PLAIN, "2 + 2", store=False)
    items = client.respond(
        PLAIN,
        ["2 + 2", {"type": "image", "data_url": "data:image/png;base64,AAAA"}],
        system_prompt="You are terse and always answer with numbers only please.",
        store=False,
    )
    assert items.text == "4"
    assert _chat_bodies(sim)[-1]["input"] == [
        {"type": "message", "content": "2 + 2"},
        {"type": "image", "data_url": "data:image/png;base64,AAAA"},
    ]
    assert items.stats.input_tokens is not None and plain.stats.input_tokens is not None
    assert items.stats.input_tokens > plain.stats.input_tokens  # the system prompt counted


def test_store_false_gives_no_response_id(client: Client) -> None:
    result = client.respond(PLAIN, "hello", store=False)
    assert result.response_id is None
    assert result.text


def test_stored_conversation_continues_with_the_history(sim: FakeLMStudio, client: Client) -> None:
    first = client.respond(PLAIN, "My name is Ada and I like ponies.")
    alone = client.respond(PLAIN, "What is my name?", store=False)
    second = client.respond(PLAIN, "What is my name?", previous_response_id=first.response_id)
    assert second.response_id not in (None, first.response_id)
    assert first.stats.input_tokens is not None and first.stats.total_output_tokens is not None
    assert alone.stats.input_tokens is not None and second.stats.input_tokens is not None
    # The continued prompt holds the first turn and its answer: it is that much longer.
    grown = second.stats.input_tokens - alone.stats.input_tokens
    assert grown >= first.stats.input_tokens - 12 + first.stats.total_output_tokens
    assert _chat_bodies(sim)[-1]["previous_response_id"] == first.response_id


def test_unknown_previous_response_is_refused_by_the_server(client: Client) -> None:
    with pytest.raises(APIStatusError, match="No stored response"):
        client.respond(PLAIN, "hi", previous_response_id="resp_doesnotexist")


@pytest.mark.parametrize("bad", ["abc", "chatcmpl-1", 7])
def test_previous_response_id_must_be_a_response_id(sim: FakeLMStudio, bad: object) -> None:
    with Client(sim.base_url) as client:
        with pytest.raises(ConfigError, match="resp_") as info:
            client.respond(PLAIN, "hi", previous_response_id=bad)
        assert isinstance(info.value, ValueError)
    assert _chat_bodies(sim) == []  # refused before sending


def test_bad_arguments_are_refused_before_sending(sim: FakeLMStudio, client: Client) -> None:
    with pytest.raises(TypeError, match="max_tokens"):
        client.respond(PLAIN, "hi", max_tokens=5)
    with pytest.raises(TypeError, match="input must be"):
        client.respond(PLAIN, 42)  # type: ignore[arg-type]
    assert _chat_bodies(sim) == []


def test_unknown_model_is_model_not_found(client: Client) -> None:
    with pytest.raises(ModelNotFoundError, match="nope"):
        client.respond("nope/missing", "hi")


def test_conversation_object_say_reset_fork(client: Client) -> None:
    conv = client.conversation(PLAIN, temperature=0)
    assert isinstance(conv, Conversation) and conv.response_id is None
    sizes = []
    for text in ("one two three", "four five", "six"):
        result = conv.say(text)
        assert result.response_id == conv.response_id
        assert result.stats.input_tokens is not None
        sizes.append(result.stats.input_tokens)
    assert sizes[0] < sizes[1] < sizes[2]  # the history grows on the server
    assert conv.turns == 3
    branch = conv.fork()
    assert branch.response_id == conv.response_id and branch is not conv
    left = conv.say("left")
    right = branch.say("right")
    assert left.stats.input_tokens is not None and right.stats.input_tokens is not None
    assert abs(left.stats.input_tokens - right.stats.input_tokens) <= 2  # same history
    assert conv.response_id != branch.response_id
    conv.reset()
    fresh = conv.say("six")
    assert conv.turns == 1
    assert fresh.stats.input_tokens is not None and fresh.stats.input_tokens < sizes[2]
    assert "Conversation" in repr(conv)


def test_conversation_refuses_store_false(client: Client) -> None:
    with pytest.raises(ConfigError, match="store"):
        client.conversation(PLAIN, store=False)
    with pytest.raises(ConfigError, match="response_id"):
        client.conversation(PLAIN, previous_response_id="resp_x")


def test_conversation_raises_when_the_server_does_not_store() -> None:
    def respond(model: str, text: object, **options: object) -> NativeChatResult:
        return NativeChatResult((MessageItem("ok"),))

    with pytest.raises(APIError, match="did not store"):
        Conversation(respond, PLAIN).say("hi")


def test_stream_of_named_events_with_progress(client: Client) -> None:
    progress: List[Tuple[str, float]] = []
    with client.stream_respond(
        THINKER, "Explain a KV cache", on_progress=lambda k, f: progress.append((k, f))
    ) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "chat.start" and kinds[-1] == "chat.end"
    order = [
        "model_load.start",
        "model_load.end",
        "prompt_processing.start",
        "prompt_processing.end",
        "reasoning.start",
        "reasoning.end",
        "message.start",
        "message.end",
    ]
    positions = [kinds.index(k) for k in order]
    assert positions == sorted(positions)
    assert [f for k, f in progress if k == "model_load"] == [0.25, 0.5, 0.75, 1.0]
    assert [f for k, f in progress if k == "prompt_processing"] == [0.5, 1.0]
    deltas = "".join(e.content for e in events if e.type == "message.delta")
    result = stream.result
    assert deltas == result.text == f"Simulated answer from {THINKER} to: Explain a KV cache"
    thinking = "".join(e.content for e in events if e.type == "reasoning.delta")
    assert thinking == result.reasoning
    assert result.stats.model_load_time_seconds is not None
    assert events[-1].result == result
    assert stream.text() == result.text
    load_end = events[kinds.index("model_load.end")]
    assert load_end.data["load_time_seconds"] == result.stats.model_load_time_seconds
    assert "done" in repr(stream)


def test_stream_text_reads_to_the_end_and_connection_is_reused(
    sim: FakeLMStudio, client: Client
) -> None:
    client.respond(PLAIN, "warm up")
    before = sim.counters.connections
    for _ in range(3):
        assert client.stream_respond(PLAIN, "3 + 4").text() == "7"
    assert sim.counters.connections == before  # each stream left its connection reusable


def test_stream_error_event_then_chat_end_raises_with_partial_result(client: Client) -> None:
    stream = client.stream_respond(PLAIN, "word " * 3000, context_length=1024)
    seen: List[NativeEvent] = []
    with pytest.raises(StreamError, match="greater than the context length") as info:
        seen.extend(stream)
    assert [e.type for e in seen][-2:] == ["error", "chat.end"]  # chat.end still comes
    assert seen[-2].error is not None and seen[-2].error["type"] == "invalid_request"
    assert info.value.kind == "error_event"
    assert info.value.body["result"]["output"] == []
    with pytest.raises(lmstrix.LMStrixError, match="closed before its end"):
        stream.text()


@pytest.mark.parametrize(
    ("kind", "failure"),
    [
        ("truncate_stream", "truncated"),
        ("drop_mid_stream", "disconnected"),
        ("error_event", "error_event"),
    ],
)
def test_stream_cut_short_raises_with_the_text_so_far(
    sim: FakeLMStudio, client: Client, kind: str, failure: str
) -> None:
    client.respond(PLAIN, "warm up")  # loaded: the stream is chat.start, prompt, message...
    sim.inject(Fault(path="/api/v1/chat", kind=kind, after_chunks=8))
    stream = client.stream_respond(PLAIN, "tell me about the sea")
    with pytest.raises(StreamError) as info:
        stream.text()
    assert info.value.kind == failure
    assert info.value.text == "Simulated answer"  # two deltas came before the cut


def test_close_mid_stream_stops_and_reports_closed(sim: FakeLMStudio) -> None:
    seen: List[CallEvent] = []
    with Client(sim.base_url, observers=[seen.append]) as client:
        stream = client.stream_respond(PLAIN, "tell me about the sea")
        first = next(stream)
        assert first.type == "chat.start"
        stream.close()
        stream.close()
        assert list(stream) == []
        assert "closed" in repr(stream)
    assert [e.outcome for e in seen] == ["closed"]


def test_call_events_carry_usage_and_ttft(sim: FakeLMStudio) -> None:
    seen: List[CallEvent] = []
    with Client(sim.base_url, observers=[seen.append]) as client:
        result = client.respond(PLAIN, "What is 2 + 2?", temperature=0, system_prompt="Secret.")
        streamed = client.stream_respond(PLAIN, "What is 3 + 3?").result
        with pytest.raises(ModelNotFoundError):
            client.respond("nope/missing", "hi")
    assert [(e.operation, e.stream, e.outcome) for e in seen] == [
        ("respond", False, "ok"),
        ("respond", True, "ok"),
        ("respond", False, "error"),
    ]
    first, second = seen[0], seen[1]
    assert first.usage is not None and first.usage.prompt_tokens == result.stats.input_tokens
    assert first.usage.completion_tokens == 1
    assert first.time_to_first_token_s == result.stats.time_to_first_token_seconds
    assert first.decode_tokens_per_s == result.stats.tokens_per_second
    assert first.served_model == PLAIN
    assert first.parameters == {"temperature": 0}  # never the input or the system prompt
    assert second.usage is not None
    assert second.usage.prompt_tokens == streamed.stats.input_tokens
    assert second.time_to_first_token_s == streamed.stats.time_to_first_token_seconds


@pytest.mark.parametrize("api", ["v0", "openai"])
def test_servers_without_native_chat_get_a_clear_error(api: str) -> None:
    with FakeLMStudio(MODELS, api=api) as sim, Client(sim.base_url) as client:
        # Not yet detected: the server's own answer (200 "Unexpected endpoint" or 404).
        with pytest.raises(APIStatusError, match=r"LM Studio 0\.4 or newer") as info:
            client.respond(PLAIN, "hi")
        assert "/api/v1/chat" in str(info.value)
        with pytest.raises(APIStatusError, match=r"LM Studio 0\.4 or newer"):
            client.stream_respond(PLAIN, "hi")
        assert client.server_api == api
        sent = len(sim.received)
        # Detected: refused before sending, naming the server's API.
        with pytest.raises(APIError, match=f"speaks the '{api}' API"):
            client.respond(PLAIN, "hi")
        with pytest.raises(APIError, match=r"LM Studio 0\.4 or newer"):
            client.stream_respond(PLAIN, "hi")
        with pytest.raises(APIError, match=r"LM Studio 0\.4 or newer"):
            client.conversation(PLAIN).say("hi")
        assert len(sim.received) == sent


def test_output_items_decode_every_documented_type() -> None:
    raw = {
        "model_instance_id": "m",
        "output": [
            {"type": "reasoning", "content": "think"},
            {
                "type": "tool_call",
                "tool": "search",
                "arguments": {"q": "kv cache"},
                "output": "found 3",
                "provider_info": {"type": "plugin", "plugin_id": "mcp/web"},
            },
            {"type": "tool_call", "tool": "calc", "arguments": '{"x": 1}'},
            {"type": "tool_call", "tool": "calc", "arguments": "not json"},
            {"type": "invalid_tool_call", "reason": "bad args", "metadata": {"tool": "calc"}},
            {"type": "message", "content": "answer"},
            {"type": "image_generation", "url": "x"},
            "not an object",
        ],
        "stats": {"input_tokens": 3, "total_output_tokens": 4, "tokens_per_second": "fast"},
    }
    result = NativeChatResult.from_dict(raw)
    reasoning, tool, tool_text, tool_bad, invalid, message, unknown = result.output
    assert reasoning == ReasoningItem("think")
    assert isinstance(tool, ToolCallItem)
    assert tool.tool == "search" and tool.arguments == {"q": "kv cache"}
    assert tool.output == "found 3" and tool.provider_info["plugin_id"] == "mcp/web"
    assert isinstance(tool_text, ToolCallItem) and tool_text.arguments == {"x": 1}
    assert tool_text.output is None
    assert isinstance(tool_bad, ToolCallItem) and tool_bad.arguments == {"_text": "not json"}
    assert invalid == InvalidToolCallItem("bad args", {"tool": "calc"})
    assert message == MessageItem("answer")
    assert isinstance(unknown, UnknownItem) and unknown.type == "image_generation"
    assert unknown.raw["url"] == "x"  # kept, not dropped
    assert result.text == "answer" and result.response_id is None
    assert result.stats.tokens_per_second is None  # a wrong type is no figure
    assert result.usage.total_tokens == 7
    dumped = result.to_dict()
    assert dumped["output"][-1] == {"type": "image_generation", "url": "x"}
    assert dumped["stats"]["input_tokens"] == 3
    empty = NativeChatResult.from_dict({"output": "x", "stats": None})
    assert empty.output == () and empty.text == "" and empty.usage.total_tokens is None
    with pytest.raises(AttributeError):
        message.content = "changed"  # type: ignore[misc]


def test_native_event_accessors() -> None:
    delta = NativeEvent("message.delta", {"type": "message.delta", "content": "hi"})
    assert delta.content == "hi" and delta.progress is None and delta.result is None
    progress = NativeEvent("model_load.progress", {"progress": 0.5})
    assert progress.progress == 0.5 and progress.content == "" and progress.error is None
