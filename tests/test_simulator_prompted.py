"""The simulator takes tool-call arguments and JSON-mode keys from the user's message."""

from __future__ import annotations

import json

import lmstrix
from lmstrix.testing import FakeLMStudio
from lmstrix.testing._prompted import json_mode_schema, prompt_values

MODEL = "lmstrix-demo/solid-3b"
TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "parameters": {
            "type": "object",
            "properties": {
                "a": {"type": "integer"},
                "b": {"type": "number"},
                "c": {"type": "integer"},
                "who": {"type": "string"},
                "note": {"type": "string"},
            },
            "required": ["a", "b", "c", "who", "note"],
        },
    },
}


def test_tool_arguments_take_the_numbers_and_quoted_texts_in_order() -> None:
    with FakeLMStudio() as fake, lmstrix.Client(fake.base_url) as client:
        done = client.chat(MODEL, "Add 3 and 2.5 for '你好啊集团' please", tools=[TOOL])
    assert [json.loads(c.arguments) for c in done.tool_calls] == [
        {"a": 3, "b": 2.5, "c": 1, "who": "你好啊集团", "note": "please"}
    ]


def test_json_mode_answers_with_the_keys_the_prompt_quotes() -> None:
    prompt = "Tell me a joke. Return JSON with 'setup' and \"punchline\" keys. It's short."
    with FakeLMStudio() as fake, lmstrix.Client(fake.base_url) as client:
        done = client.chat(MODEL, prompt, response_format={"type": "json_object"})
    assert json.loads(done.text) == {"setup": "example", "punchline": "example"}


def test_values_and_schemas_left_alone() -> None:
    values = prompt_values(None)
    assert values.number(True) is None
    assert values.text() is None
    assert prompt_values("x 7 y").number(False) == 7
    assert prompt_values("x -1.5 y").number(False) == -1.5
    shaped = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert json_mode_schema(shaped, "'a' 'b'") is shaped
    assert json_mode_schema({"type": "object"}, "no quotes") == {"type": "object"}
    assert json_mode_schema({"type": "object"}, "'two words' 'ok' 'ok'") == {
        "type": "object",
        "properties": {"ok": {"type": "string"}},
        "required": ["ok"],
    }
