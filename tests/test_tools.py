"""Tools on chat and stream_chat: definitions sent, tool calls decoded, streamed fragments joined.

Against the simulator's scripted tool calls (``lmstrix.testing.ToolScript``) on loopback;
the pure parts (schemas from functions, fragment joining, wire decoding) without a server.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from test_stream_contract import Canned, _completion, _json, canned  # noqa: F401 (a fixture)

import lmstrix
from lmstrix.client._toolcalls import ToolCallJoiner, tool_definition, wire_tools
from lmstrix.testing import FakeLMStudio, SimModel, SimToolCall, ToolScript
from lmstrix.types import Chunk, Completion, ToolCall

MODEL = "sim/tool-user"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TWO_CALLS = ToolScript(
    [[("get_weather", {"city": "Paris"}), SimToolCall("get_time", '{"zone": "Europe/Paris"}')]]
)


def server(script: Optional[ToolScript]) -> FakeLMStudio:
    return FakeLMStudio([SimModel(MODEL, 8192, tool_script=script)])


@pytest.fixture
def scripted() -> Iterator[FakeLMStudio]:
    with server(TWO_CALLS) as fake:
        yield fake


def chat_bodies(fake: FakeLMStudio) -> List[Dict[str, Any]]:
    return [r.body for r in fake.received if r.path == "/v1/chat/completions"]


def test_tool_calls_are_decoded_from_a_whole_answer(scripted: FakeLMStudio) -> None:
    with lmstrix.Client(scripted.base_url) as client:
        done = client.chat(MODEL, "Weather and time in Paris?", tools=[WEATHER])
    assert done.finish_reason == "tool_calls"
    assert done.text == ""
    assert not done.is_empty
    assert [(c.name, c.arguments, c.index) for c in done.tool_calls] == [
        ("get_weather", '{"city": "Paris"}', 0),
        ("get_time", '{"zone": "Europe/Paris"}', 1),
    ]
    assert all(c.id.isdigit() for c in done.tool_calls)
    assert done.tool_calls[0].parsed_arguments() == {"city": "Paris"}
    assert done.to_dict()["tool_calls"][1] == {
        "id": done.tool_calls[1].id,
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"zone": "Europe/Paris"}'},
    }


def test_a_definition_is_sent_as_given_with_tool_choice(scripted: FakeLMStudio) -> None:
    with lmstrix.Client(scripted.base_url) as client:
        client.chat(MODEL, "Weather?", tools=[WEATHER], tool_choice="required")
    sent = chat_bodies(scripted)[-1]
    assert sent["tools"] == [WEATHER]
    assert sent["tool_choice"] == "required"


def test_streamed_fragments_are_joined_by_index(scripted: FakeLMStudio) -> None:
    with lmstrix.Client(scripted.base_url) as client:
        stream = client.stream_chat(MODEL, "Weather and time in Paris?", tools=[WEATHER])
        chunks = list(stream)
        done = stream.completion
    fragments = [f for chunk in chunks for f in chunk.tool_calls]
    # Each call: a head with id and name, then its arguments in several pieces.
    heads = [f for f in fragments if f.name]
    assert [(h.name, h.arguments, h.index) for h in heads] == [
        ("get_weather", "", 0),
        ("get_time", "", 1),
    ]
    pieces = [f for f in fragments if f.index == 0 and not f.name]
    assert len(pieces) > 1 and all(p.id == "" for p in pieces)
    assert "".join(p.arguments for p in pieces) == '{"city": "Paris"}'
    assert done.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in done.tool_calls] == [
        (heads[0].id, "get_weather", '{"city": "Paris"}'),
        (heads[1].id, "get_time", '{"zone": "Europe/Paris"}'),
    ]
    assert done.usage.completion_tokens  # the usage event still counts
    assert done.stats.time_to_first_token_s is not None  # the first fragment counts as output


def test_a_json_answer_with_tool_calls_to_a_stream_request_keeps_them(
    canned: Tuple[str, Canned],  # noqa: F811 (the fixture)
) -> None:
    url, answers = canned
    whole = _completion("", "tool_calls")
    whole["choices"][0]["message"]["tool_calls"] = [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    answers[("/v1/chat/completions", True)] = _json(whole)
    with lmstrix.Client(url) as client:
        stream = client.stream_chat("acme/chat-7b", "Call f", tools=[WEATHER])
        chunks = list(stream)
    assert [c.tool_calls for c in chunks] == [(ToolCall("1", "f", "{}", 0),)]
    assert stream.completion.tool_calls == (ToolCall("1", "f", "{}", 0),)


def test_unparseable_tool_call_text_comes_back_as_content() -> None:
    garbled = '<tool_call>{"name": "get_weather", "arguments": {"city":'
    with server(ToolScript([garbled])) as fake, lmstrix.Client(fake.base_url) as client:
        done = client.chat(MODEL, "Weather in Paris?", tools=[WEATHER])
        streamed = client.stream_chat(MODEL, "Weather in Paris?", tools=[WEATHER]).completion
    for answer in (done, streamed):
        assert answer.tool_calls == ()
        assert answer.finish_reason == "stop"
        assert answer.text == garbled


def test_a_tool_without_a_name_is_refused_before_sending(scripted: FakeLMStudio) -> None:
    nameless = {"type": "function", "function": {"parameters": {"type": "object"}}}
    with lmstrix.Client(scripted.base_url) as client:
        with pytest.raises(ValueError, match=r"tools\[1\] has no function name"):
            client.chat(MODEL, "Weather?", tools=[WEATHER, nameless])
        with pytest.raises(ValueError, match=r"tools\[0\] has no function name"):
            client.stream_chat(MODEL, "Weather?", tools=[{"function": {"name": ""}}])
        with pytest.raises(TypeError, match="must be a list"):
            client.chat(MODEL, "Weather?", tools=WEATHER)
        with pytest.raises(TypeError, match=r"tools\[0\] must be a tool definition"):
            client.chat(MODEL, "Weather?", tools=[42])
        with pytest.raises(ValueError, match="tool_choice must be one of auto, none, required"):
            client.chat(MODEL, "Weather?", tools=[WEATHER], tool_choice="always")
    assert chat_bodies(scripted) == []


def test_other_kinds_of_tool_pass_through_and_a_type_is_added() -> None:
    mcp = {"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:9"}
    untyped = {"function": {"name": "f"}}
    assert wire_tools([mcp, untyped], {"type": "function", "function": {"name": "f"}}) == [
        mcp,
        {"type": "function", "function": {"name": "f"}},
    ]


def test_functions_are_sent_as_definitions_built_from_their_signature(
    scripted: FakeLMStudio,
) -> None:
    def get_weather(city: str, days: int = 1) -> str:
        """The weather in a city.

        Longer text that is not sent.

        Args:
            city: the city's name
            days (int): how many days ahead
        """
        return "sunny"

    with lmstrix.Client(scripted.base_url) as client:
        client.chat(MODEL, "Weather?", tools=[get_weather])
    assert chat_bodies(scripted)[-1]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "the city's name"},
                        "days": {"type": "integer", "description": "how many days ahead"},
                    },
                    "required": ["city"],
                },
            },
        }
    ]


def test_annotations_map_to_json_schema_types() -> None:
    def everything(
        a: float,
        b: bool,
        c: list,  # type: ignore[type-arg]
        d: List[int],
        e: Dict[str, Any],
        f: Optional[str] = None,
        g: Any = None,
        h: NoSuchType = None,  # type: ignore[name-defined]  # noqa: F821
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Returns:
        nothing
        """

    schema = tool_definition(everything)["function"]
    assert "description" in schema
    assert schema["parameters"]["properties"] == {
        "a": {"type": "number"},
        "b": {"type": "boolean"},
        "c": {"type": "array"},
        "d": {"type": "array", "items": {"type": "integer"}},
        "e": {"type": "object"},
        "f": {"type": "string"},
        "g": {},
        "h": {},
    }
    assert schema["parameters"]["required"] == ["a", "b", "c", "d", "e"]


def test_a_union_of_types_accepts_anything_and_a_name_can_be_given() -> None:
    from typing import Union

    def pick(x: Union[int, str]) -> None:
        pass

    made = tool_definition(pick, "choose")["function"]
    assert made["name"] == "choose"
    assert "description" not in made
    assert made["parameters"]["properties"] == {"x": {}}
    with pytest.raises(ValueError, match=r"give .* a name"):
        tool_definition(lambda x: x)


def test_parsed_arguments_says_what_is_wrong() -> None:
    with pytest.raises(lmstrix.ToolCallError, match="'f' are not JSON") as caught:
        ToolCall("1", "f", '{"a": ').parsed_arguments()
    assert isinstance(caught.value, ValueError)
    assert caught.value.call.name == "f"
    with pytest.raises(lmstrix.ToolCallError, match="not a JSON object"):
        ToolCall("1", "f", "[1, 2]").parsed_arguments()
    assert ToolCall("1", "f", "  ").parsed_arguments() == {}


def test_wire_decoding_is_tolerant() -> None:
    answer = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [
                        {"id": 7, "function": {"name": "f", "arguments": {"a": 1}}},
                        "not a call",
                        {"function": "nonsense"},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    done = Completion.from_wire(answer, chat=True, elapsed_s=0.1)
    assert done.tool_calls == (
        ToolCall("7", "f", '{"a": 1}', 0),
        ToolCall("", "", "", 2),
    )
    assert Completion.from_wire(answer, chat=False, elapsed_s=0.1).tool_calls == ()
    delta = {"choices": [{"delta": {"tool_calls": [{"index": 3, "function": {"arguments": "x"}}]}}]}
    assert Chunk.from_wire(delta, chat=True).tool_calls == (ToolCall("", "", "x", 3),)
    assert Chunk.from_wire({"choices": [{"delta": {"content": "hi"}}]}, chat=True).tool_calls == ()
    assert Chunk.from_wire({"choices": [{"delta": "tool_calls"}]}, chat=True).tool_calls == ()


def test_the_joiner_joins_interleaved_fragments_by_index() -> None:
    joiner = ToolCallJoiner()
    assert not joiner
    joiner.add([ToolCall("b", "second", "", 1), ToolCall("a", "first", '{"x"', 0)])
    joiner.add([ToolCall("", "", ": 1}", 0), ToolCall("", "", "{}", 1)])
    assert joiner
    assert joiner.calls() == (
        ToolCall("a", "first", '{"x": 1}', 0),
        ToolCall("b", "second", "{}", 1),
    )


def test_the_default_simulated_model_calls_the_first_tool_with_schema_arguments() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "scale": {"type": "string", "enum": ["C", "F"]},
            "exact": {"type": "boolean"},
            "hours": {"type": "array"},
            "options": {"type": "object"},
            "ratio": {"type": "number"},
            "anything": {},
        },
    }
    timer = {"type": "function", "function": {"name": "get_time"}}
    full = {"type": "function", "function": {"name": "forecast", "parameters": schema}}
    with server(None) as fake, lmstrix.Client(fake.base_url) as client:
        first = client.chat(MODEL, "Forecast for Lyon!", tools=[full, timer])
        named = client.chat(
            MODEL,
            "What time is it?",
            tools=[full, timer],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
        plain = client.chat(MODEL, "Hello", tools=[full], tool_choice="none")
    assert [c.name for c in first.tool_calls] == ["forecast"]
    assert first.tool_calls[0].parsed_arguments() == {
        "city": "Lyon",
        "days": 1,
        "scale": "C",
        "exact": True,
        "hours": [],
        "options": {},
        "ratio": 1.5,
        "anything": "Lyon",
    }
    assert [(c.name, c.parsed_arguments()) for c in named.tool_calls] == [("get_time", {})]
    assert plain.tool_calls == () and plain.text.startswith("Simulated answer")


def test_the_simulator_quotes_tool_results_by_name() -> None:
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "1", "content": "rain"},
        {"role": "tool", "tool_call_id": "9", "content": json.dumps({"t": 3})},
    ]
    with server(None) as fake, lmstrix.Client(fake.base_url) as client:
        done = client.chat(MODEL, messages, tools=[WEATHER])
        streamed = client.stream_chat(MODEL, messages, tools=[WEATHER]).text()
    assert done.text == 'Tool results: w: rain; tool: {"t": 3}'
    assert streamed == done.text


def test_past_its_script_a_model_without_results_answers_as_usual() -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Weather?"},
    ]
    with server(ToolScript(["first turn"])) as fake, lmstrix.Client(fake.base_url) as client:
        done = client.chat(MODEL, messages, tools=[WEATHER])
    assert done.tool_calls == ()
    assert done.text.startswith("Simulated answer")


def test_observers_see_the_names_of_the_tools_offered(scripted: FakeLMStudio) -> None:
    events: List[lmstrix.CallEvent] = []

    def get_time(zone: str) -> str:
        """The time in a zone."""
        return "noon"

    with lmstrix.Client(scripted.base_url, observers=[events.append]) as client:
        client.chat(MODEL, "Weather and time?", tools=[WEATHER, get_time], tool_choice="auto")
    (event,) = events
    assert event.parameters["tools"] == ["get_weather", "get_time"]  # not their schemas
    assert event.parameters["tool_choice"] == "auto"
    assert lmstrix.client._calls.call_parameters({"tools": [{"type": "mcp"}, 7]})["tools"] == [
        "mcp",
        "?",
    ]
