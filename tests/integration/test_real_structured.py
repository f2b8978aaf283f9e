"""Structured output against a real llama-cpp-python server (SmolLM2-135M).

This server takes ``response_format: {"type": "json_object", "schema": ...}`` (its
grammar then constrains the answer) and refuses LM Studio's ``json_schema`` shape with
HTTP 500. lmstrix detects an OpenAI-only server and sends the schema its way, so
``response_format`` written as for LM Studio still gives an answer that validates.
The refusal is measured here and compared with what the simulator's ``openai`` mode
answers (``lmstrix.testing._structured.LLAMA_CPP_REFUSAL``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Tuple

import lmstrix
from lmstrix.jsonschema_lite import schema_errors
from lmstrix.testing import FakeLMStudio, SimModel

PERSON: Dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
LM_STUDIO_SHAPE = {
    "type": "json_schema",
    "json_schema": {"name": "person", "strict": True, "schema": PERSON},
}
PROMPT = "Describe a person as JSON with a name and an age."


def _post(url: str, body: Dict[str, Any]) -> Tuple[int, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_lm_studios_response_format_gives_validated_json(
    client: lmstrix.Client, model: str, show: Callable[[str], None]
) -> None:
    started = time.perf_counter()
    done = client.chat(model, PROMPT, response_format=LM_STUDIO_SHAPE, temperature=0, max_tokens=80)
    seconds = time.perf_counter() - started
    assert client.server_api == "openai"
    assert isinstance(done.parsed, dict)
    assert schema_errors(done.parsed, PERSON) == []
    assert json.loads(done.text) == done.parsed  # constrained by grammar: JSON only
    show(f"structured chat: {done.text!r} in {seconds:.1f} s")


def test_a_stream_with_a_schema_is_validated_at_its_end(client: lmstrix.Client, model: str) -> None:
    with client.stream_chat(model, PROMPT, schema=PERSON, temperature=0, max_tokens=80) as stream:
        pieces = [chunk.text for chunk in stream]
    assert len(pieces) > 1
    assert schema_errors(stream.completion.parsed, PERSON) == []


def test_the_servers_refusal_of_json_schema_is_what_the_simulator_answers(
    real_server: Tuple[str, int], model: str, show: Callable[[str], None]
) -> None:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 8,
        "response_format": LM_STUDIO_SHAPE,
    }
    status, real = _post(real_server[0] + "/v1/chat/completions", body)
    show(f"llama-cpp-python refuses json_schema: HTTP {status} {json.dumps(real)[:160]}")
    with FakeLMStudio([SimModel(model, 2048)], api="openai") as fake:
        sim_status, simulated = _post(fake.base_url + "/v1/chat/completions", body)
    assert status == sim_status == 500
    assert set(real["error"]) == set(simulated["error"])
    assert real["error"]["type"] == simulated["error"]["type"] == "internal_server_error"
    # The message names the server's own file path after a blank line: compare before it.
    head = real["error"]["message"].split("\n\n")[0]
    assert head == simulated["error"]["message"].split("\n\n")[0]
    assert "Input should be 'text' or 'json_object'" in head
