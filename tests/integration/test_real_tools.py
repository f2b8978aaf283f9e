"""Tools against a real OpenAI-compatible server that ignores them (llama-cpp-python).

The server of this suite (see ``conftest.py``) serves SmolLM2-135M with its own chat
template and no function-calling chat format: it accepts ``tools`` in a request and
answers with plain text. These tests check that lmstrix sends a tool definition (and a
function turned into one) without an error and reads the answer correctly: **no tool
call happens here**, and each test asserts that there is none rather than pretending one
was made. Tool calls themselves are tested against the simulator (``tests/test_tools.py``,
``tests/test_tool_loop.py``).
"""

from __future__ import annotations

from typing import List

import lmstrix

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
QUESTION = "What is the weather in Paris?"


def test_a_tool_definition_is_sent_without_error_and_no_call_happens(
    client: lmstrix.Client, model: str
) -> None:
    """The server takes ``tools`` and ignores them: a text answer, no ``tool_calls``."""
    done = client.chat(model, QUESTION, tools=[WEATHER], temperature=0, max_tokens=24)
    assert done.tool_calls == ()  # this server never calls a tool; nothing is invented
    assert done.finish_reason in ("stop", "length")
    assert done.text.strip()


def test_a_streamed_answer_with_tools_has_no_tool_call_fragments(
    client: lmstrix.Client, model: str
) -> None:
    """Streamed, the same: text chunks, no ``delta.tool_calls`` fragment, no joined call."""
    with client.stream_chat(model, QUESTION, tools=[WEATHER], temperature=0, max_tokens=24) as s:
        chunks = list(s)
        done = s.completion
    assert [c.tool_calls for c in chunks if c.tool_calls] == []
    assert done.tool_calls == ()
    assert done.text.strip()


def test_the_tool_loop_ends_after_one_step_when_the_server_ignores_tools(
    client: lmstrix.Client, model: str
) -> None:
    """``run_tools`` sends the function as a definition; the server answers in text at
    once, so the loop makes one model call and the function is never run."""
    ran: List[str] = []

    def get_weather(city: str) -> str:
        """The current weather in a city."""
        ran.append(city)
        return "sunny"

    run = client.run_tools(
        model, QUESTION, {"get_weather": get_weather}, temperature=0, max_tokens=24
    )
    assert run.steps == 1
    assert ran == [] and run.calls == ()
    assert run.completion.tool_calls == ()
    assert [m["role"] for m in run.messages] == ["user", "assistant"]
