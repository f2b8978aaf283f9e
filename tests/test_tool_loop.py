"""``run_tools``: the tool loop over the simulator's scripted tool calls, on loopback.

The model's turns are scripted (``lmstrix.testing.ToolScript``); what the loop sent back
is read from the requests the simulator received.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List

import pytest

import lmstrix
from lmstrix.client import ToolRun, run_tools
from lmstrix.pool import Pool
from lmstrix.testing import FakeLMStudio, SimModel, ToolScript

MODEL = "sim/tool-user"


def server(*steps: Any) -> FakeLMStudio:
    return FakeLMStudio([SimModel(MODEL, 8192, tool_script=ToolScript(steps))])


def chat_bodies(fake: FakeLMStudio) -> List[Dict[str, Any]]:
    return [r.body for r in fake.received if r.path == "/v1/chat/completions"]


class Weather:
    """A tool that counts its calls."""

    def __init__(self) -> None:
        self.cities: List[str] = []

    def __call__(self, city: str) -> Dict[str, Any]:
        """The weather in a city."""
        self.cities.append(city)
        return {"city": city, "sky": "sunny", "celsius": 21}


@pytest.fixture
def three_steps() -> Iterator[FakeLMStudio]:
    # Turn 1: arguments that are not JSON; turn 2: corrected; turn 3: the answer.
    with server([("get_weather", '{"city": "Par')], [("get_weather", {"city": "Paris"})]) as fake:
        yield fake


def test_a_three_step_loop_reports_a_bad_argument_and_the_model_corrects(
    three_steps: FakeLMStudio,
) -> None:
    weather = Weather()
    with lmstrix.Client(three_steps.base_url) as client:
        run = client.run_tools(MODEL, "Weather in Paris?", {"get_weather": weather})
    assert isinstance(run, ToolRun)
    assert run.steps == 3
    assert weather.cities == ["Paris"]  # the bad call never reached the function
    assert run.text == 'Tool results: get_weather: {"city": "Paris", "sky": "sunny", "celsius": 21}'
    sent = chat_bodies(three_steps)
    assert len(sent) == 3
    assert sent[0]["tools"][0]["function"]["name"] == "get_weather"
    error = sent[1]["messages"][-1]
    assert error["role"] == "tool"
    assert error["content"].startswith("error: the arguments of tool call 'get_weather' are not")
    assert error["tool_call_id"] == sent[1]["messages"][-2]["tool_calls"][0]["id"]
    roles = [m["role"] for m in run.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert [c.name for c in run.calls] == ["get_weather", "get_weather"]
    assert run.messages[-1] == {"role": "assistant", "content": run.text}


def test_every_kind_of_bad_call_goes_back_to_the_model_as_an_error() -> None:
    def divide(a: float, b: float) -> float:
        """a / b."""
        return a / b

    calls = [
        ("no_such_tool", {}),
        ("divide", {"a": 1}),
        ("divide", {"a": 1, "b": 0}),
        ("divide", "[1, 2]"),
        ("divide", {"a": 6, "b": 3}),
    ]
    with server(calls) as fake, lmstrix.Client(fake.base_url) as client:
        run = client.run_tools(MODEL, "Divide", [divide], parallel=False)
    results = [m["content"] for m in run.messages if m["role"] == "tool"]
    assert results[0] == "error: there is no tool named 'no_such_tool'; the tools are: divide"
    assert results[1].startswith("error: bad arguments for divide: missing a required argument")
    assert results[2] == "error: divide raised ZeroDivisionError: division by zero"
    assert results[3].startswith("error: the arguments of tool call 'divide' are not a JSON object")
    assert results[4] == "2.0"
    assert run.steps == 2


def test_parallel_calls_in_one_turn_run_together_and_keep_their_order() -> None:
    second_done = threading.Event()
    threads: List[str] = []

    def first(x: int) -> str:
        threads.append(threading.current_thread().name)
        # Only returns once the second call has finished: they must run at once.
        return "first saw second done" if second_done.wait(30) else "first ran alone"

    def second(x: int) -> str:
        threads.append(threading.current_thread().name)
        second_done.set()
        return "second done"

    turn = [("first", {"x": 1}), ("second", {"x": 2})]
    with server(turn) as fake, lmstrix.Client(fake.base_url) as client:
        run = client.run_tools(MODEL, "Go", {"first": first, "second": second})
    asked = run.messages[1]["tool_calls"]
    results = run.messages[2:4]
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in asked]
    assert [r["content"] for r in results] == ["first saw second done", "second done"]
    assert all(name.startswith("lmstrix-tool") for name in threads)
    assert run.text == "Tool results: first: first saw second done; second: second done"


def test_without_parallel_the_calls_run_in_order_in_the_calling_thread() -> None:
    seen: List[str] = []

    def note(x: int) -> int:
        seen.append(f"{x}:{threading.current_thread().name}")
        return x

    turn = [("note", {"x": 1}), ("note", {"x": 2})]
    with server(turn) as fake, lmstrix.Client(fake.base_url) as client:
        run = client.run_tools(MODEL, "Go", {"note": note}, parallel=False)
    me = threading.current_thread().name
    assert seen == [f"1:{me}", f"2:{me}"]
    assert run.text == "Tool results: note: 1; note: 2"


def test_reaching_max_steps_raises_with_the_exchange_so_far() -> None:
    weather = Weather()
    again = [("get_weather", {"city": "Oslo"})]
    with server(again, again, again, again) as fake, lmstrix.Client(fake.base_url) as client:
        with pytest.raises(lmstrix.ToolLoopError, match=r"still asked for tools \(get_weather\)"):
            client.run_tools(MODEL, "Weather?", {"get_weather": weather}, max_steps=3)
        try:
            client.run_tools(MODEL, "Weather?", {"get_weather": weather}, max_steps=2)
        except lmstrix.ToolLoopError as exc:
            caught = exc
    assert len(chat_bodies(fake)) == 5
    # The calls of the last step were not run: 2 of the first loop's 3, 1 of the second's 2.
    assert weather.cities == ["Oslo"] * 3
    assert caught.run.steps == 2
    assert caught.run.completion.tool_calls[0].name == "get_weather"
    assert [m["role"] for m in caught.run.messages] == ["user", "assistant", "tool", "assistant"]


def test_bad_loop_arguments_are_refused_before_sending() -> None:
    with server() as fake, lmstrix.Client(fake.base_url) as client:
        with pytest.raises(ValueError, match="max_steps must be at least 1"):
            client.run_tools(MODEL, "Hi", {"f": print}, max_steps=0)
        with pytest.raises(TypeError, match="multiple values for argument 'tools'"):
            client.run_tools(MODEL, "Hi", {"f": print}, tools=[])
        with pytest.raises(TypeError, match="tool 'f' is not callable"):
            client.run_tools(MODEL, "Hi", {"f": 42})
        with pytest.raises(TypeError, match=r"a mapping \{name: function\} or a list"):
            client.run_tools(MODEL, "Hi", "f")  # type: ignore[arg-type]
    assert chat_bodies(fake) == []


def test_one_call_event_per_model_call(three_steps: FakeLMStudio) -> None:
    events: List[lmstrix.CallEvent] = []
    with lmstrix.Client(three_steps.base_url, observers=[events.append]) as client:
        client.run_tools(MODEL, "Weather in Paris?", {"get_weather": Weather()}, temperature=0)
    assert [(e.operation, e.outcome, e.finish_reason) for e in events] == [
        ("chat", "ok", "tool_calls"),
        ("chat", "ok", "tool_calls"),
        ("chat", "ok", "stop"),
    ]
    assert all(e.parameters["temperature"] == 0 for e in events)
    assert all("messages" not in e.parameters for e in events)


def test_the_loop_runs_over_a_pool_and_the_plain_function(three_steps: FakeLMStudio) -> None:
    with Pool([three_steps.base_url]) as pool:
        run = pool.run_tools(MODEL, "Weather in Paris?", {"get_weather": Weather()})
    assert run.steps == 3
    with lmstrix.Client(three_steps.base_url) as client:
        again = run_tools(client, MODEL, list(run.messages[:1]), {"get_weather": Weather()})
    assert again.text == run.text


def test_results_that_are_not_text_are_sent_as_json_or_text() -> None:
    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    loop: List[Any] = []
    loop.append(loop)
    tools = {"odd": lambda: {"value": Odd()}, "loop": lambda: loop, "none": lambda: None}
    turn = [("odd", {}), ("loop", {}), ("none", "")]
    with server(turn) as fake, lmstrix.Client(fake.base_url) as client:
        run = client.run_tools(MODEL, "Go", tools)
    results = [m["content"] for m in run.messages if m["role"] == "tool"]
    assert results == ['{"value": "<odd>"}', "[[...]]", "null"]
