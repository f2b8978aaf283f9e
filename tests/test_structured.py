"""Structured output against the simulator: response_format adapted to the server kind,
Completion.parsed (content, fences, reasoning), the bounded retry, streams, and the
simulator's own refusals (LM Studio's 400, llama-cpp-python's 500)."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, List

import pytest

import lmstrix
from lmstrix import Completion, SchemaValidationError
from lmstrix.client._response_format import Structured, take_structured, wire_format
from lmstrix.client._structured import StructuredCall, find_json, json_candidates
from lmstrix.testing import FakeLMStudio, Fault, SimModel
from lmstrix.testing._structured import LLAMA_CPP_REFUSAL, LMSTUDIO_REFUSAL, example_value

MODEL = "acme/chat-7b"
PERSON: Dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 10},
        "age": {"type": "integer", "minimum": 18},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}
EXPECTED = {"name": "examplexxx", "age": 18, "tags": ["a", "a"]}


@pytest.fixture(params=["v1", "v0", "openai"])
def sim(request: pytest.FixtureRequest) -> Iterator[FakeLMStudio]:
    model = SimModel(key=MODEL, declared_context=8192)
    with FakeLMStudio([model], api=request.param) as fake:
        yield fake


def chat_bodies(fake: FakeLMStudio) -> List[Dict[str, Any]]:
    return [r.body for r in fake.received if r.path.endswith("/chat/completions")]


def test_a_schema_is_sent_in_the_servers_style_and_parsed(sim: FakeLMStudio) -> None:
    with lmstrix.Client(sim.base_url) as client:
        done = client.chat(MODEL, "a person", schema=PERSON)
    assert done.parsed == EXPECTED
    assert json.loads(done.text) == EXPECTED
    (body,) = chat_bodies(sim)
    assert "schema" not in body and "schema_retries" not in body
    if sim.api == "openai":  # llama-cpp-python's way
        assert body["response_format"] == {"type": "json_object", "schema": PERSON}
    else:
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "response", "strict": True, "schema": PERSON},
        }
    assert done.to_dict()["parsed"] == EXPECTED


def test_lm_studios_own_response_format_is_adapted_to_llama_cpp() -> None:
    asked = {"type": "json_schema", "json_schema": {"name": "p", "strict": False, "schema": PERSON}}
    with FakeLMStudio([SimModel(key=MODEL, declared_context=8192)], api="openai") as fake:
        with lmstrix.Client(fake.base_url) as client:
            done = client.chat(MODEL, "a person", response_format=asked)
        assert chat_bodies(fake)[0]["response_format"] == {"type": "json_object", "schema": PERSON}
    assert done.parsed == EXPECTED


def test_a_forced_style_is_sent_as_it_is(sim: FakeLMStudio) -> None:
    style = "json_object" if sim.api == "openai" else "json_schema"
    with lmstrix.Client(sim.base_url) as client:
        client.schema_style = style
        assert client.chat(MODEL, "x", schema=PERSON).parsed == EXPECTED
        wrong = "json_schema" if sim.api == "openai" else "json_object"
        with pytest.raises(lmstrix.APIStatusError) as caught:
            client.chat(MODEL, "x", schema=PERSON, schema_style=wrong)
    assert "response_format" in str(caught.value.body)
    assert [b["response_format"]["type"] for b in chat_bodies(sim)] == [style, wrong]


def test_a_wrong_guess_of_the_style_switches_once_and_is_remembered(sim: FakeLMStudio) -> None:
    with lmstrix.Client(sim.base_url) as client:
        client._api = "v1" if sim.api == "openai" else "openai"  # detection got it wrong
        assert client.chat(MODEL, "x", schema=PERSON).parsed == EXPECTED
        assert client.chat(MODEL, "y", schema=PERSON).parsed == EXPECTED
    sent = [b["response_format"]["type"] for b in chat_bodies(sim)]
    right = "json_object" if sim.api == "openai" else "json_schema"
    wrong = "json_schema" if sim.api == "openai" else "json_object"
    assert sent == [wrong, right, right]


def test_the_simulators_refusals_mirror_the_real_servers() -> None:
    for api, shape, status, body in [
        ("v1", {"type": "json_object"}, 400, {"error": LMSTUDIO_REFUSAL}),
        ("v0", {"type": "json_object", "schema": PERSON}, 400, {"error": LMSTUDIO_REFUSAL}),
        (
            "openai",
            {"type": "json_schema", "json_schema": {"schema": PERSON}},
            500,
            {
                "error": {
                    "message": LLAMA_CPP_REFUSAL % ("json_schema", "/v1/chat/completions"),
                    "type": "internal_server_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
    ]:
        with FakeLMStudio([SimModel(key=MODEL, declared_context=8192)], api=api) as fake:
            with lmstrix.Client(fake.base_url, max_retries=0) as client:
                client.schema_style = shape["type"]
                with pytest.raises(lmstrix.APIStatusError) as caught:
                    client.chat(MODEL, "x", response_format=shape)
        assert (caught.value.status_code, caught.value.body) == (status, body)
    assert "Input should be 'text' or 'json_object'" in LLAMA_CPP_REFUSAL


def test_lm_studio_wants_a_schema_inside_json_schema() -> None:
    with FakeLMStudio([SimModel(key=MODEL, declared_context=8192)]) as fake:
        with lmstrix.Client(fake.base_url) as client:
            with pytest.raises(lmstrix.APIStatusError, match="schema' is required"):
                client._json(
                    "POST",
                    "/v1/chat/completions",
                    {
                        "model": MODEL,
                        "messages": [{"role": "user", "content": "x"}],
                        "response_format": {"type": "json_schema", "json_schema": {}},
                    },
                )
            done = client.chat(MODEL, "x", response_format={"type": "text"})
    assert done.parsed is None and not done.text.startswith("{")


def test_an_invalid_answer_is_shown_to_the_model_and_asked_again(sim: FakeLMStudio) -> None:
    with lmstrix.Client(sim.base_url) as client:
        client.list_models()  # detection done: the counters below are the chat only
        sim.reset_counters()
        sim.inject(Fault(kind="schema_invalid"))
        done = client.chat(MODEL, "a person", schema=PERSON)
    assert done.parsed == EXPECTED
    assert sum(sim.counters.requests.values()) == 2
    first, second = chat_bodies(sim)
    assert len(first["messages"]) == 1
    bad_answer = {k: v for k, v in EXPECTED.items() if k != "name"}
    assert second["messages"][1:] == [
        {"role": "assistant", "content": json.dumps(bad_answer)},
        {
            "role": "user",
            "content": "Your answer failed validation: $: missing required property 'name'; "
            "answer again with JSON only.",
        },
    ]


def test_the_retry_limit_raises_schema_validation_error(sim: FakeLMStudio) -> None:
    sim.inject(Fault(kind="schema_invalid", times=3))
    with lmstrix.Client(sim.base_url) as client:
        with pytest.raises(SchemaValidationError) as caught:
            client.chat(MODEL, "a person", schema=PERSON, schema_retries=2)
    err = caught.value
    assert isinstance(err, ValueError) and isinstance(err, lmstrix.LMStrixError)
    assert err.errors == ["$: missing required property 'name'"]
    assert json.loads(err.text) == {"age": 18, "tags": ["a", "a"]}
    assert (err.tries, err.model) == (3, MODEL)
    assert "3 answers" in str(err) and "schema_retries" in str(err)
    assert len(chat_bodies(sim)) == 3


def test_no_retry_at_zero_and_a_schema_without_required_keys(sim: FakeLMStudio) -> None:
    sim.inject(Fault(kind="schema_invalid"))
    loose = {"type": "object", "properties": {"a": {"type": "integer"}}}
    with lmstrix.Client(sim.base_url) as client:
        with pytest.raises(SchemaValidationError) as caught:
            client.chat(MODEL, "x", schema=loose, schema_retries=0)
    assert caught.value.errors == ["$: the answer is not JSON"]
    assert caught.value.text == '{"a": 1'
    assert "in answer:" in str(caught.value)


def test_a_bare_json_request_gets_any_object(sim: FakeLMStudio) -> None:
    with lmstrix.Client(sim.base_url) as client:
        client.schema_style = "json_object" if sim.api == "openai" else "json_schema"
        done = client.chat(MODEL, "x", response_format={"type": "json_object"})
    assert done.parsed == {}
    sent = chat_bodies(sim)[0]["response_format"]
    assert sent == wire_format(Structured(), client.schema_style)


def test_a_stream_with_a_schema_has_parsed_at_its_end(sim: FakeLMStudio) -> None:
    with lmstrix.Client(sim.base_url) as client:
        with client.stream_chat(MODEL, "a person", schema=PERSON) as stream:
            pieces = [chunk.text for chunk in stream]
        assert len(pieces) > 2
        assert stream.completion.parsed == EXPECTED
        sim.inject(Fault(kind="schema_invalid"))
        broken = client.stream_chat(MODEL, "a person", schema=PERSON)
        with pytest.raises(SchemaValidationError) as caught:
            broken.text()
    assert caught.value.tries == 1  # a stream is never asked again
    assert len(chat_bodies(sim)) == 2


def test_complete_with_a_schema_appends_the_error_to_the_prompt(sim: FakeLMStudio) -> None:
    sim.inject(Fault(kind="schema_invalid", path="/v1/completions"))
    with lmstrix.Client(sim.base_url) as client:
        done = client.complete(MODEL, "A person as JSON:", schema=PERSON)
    assert done.parsed == EXPECTED
    prompts = [r.body["prompt"] for r in sim.received if r.path == "/v1/completions"]
    assert prompts[0] == "A person as JSON:"
    assert prompts[1].startswith('A person as JSON:{"age": 18')
    assert prompts[1].endswith("answer again with JSON only.\n")


def test_a_cut_answer_says_so() -> None:
    call = StructuredCall(Structured(schema=PERSON), {"messages": []}, MODEL)
    _, errors = call.check(Completion(text='{"name": "x', finish_reason="length"))
    assert errors[-1] == "$: the answer was cut short by max_tokens (finish_reason length)"


# -- finding the JSON -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        '{"a": 1}',
        '```json\n{"a": 1}\n```',
        'Here it is:\n```\n{"a": 1}\n```\nDone.',
        'Sure! {"a": 1} is the answer.',
        '```python\nx = 1\n```\n```json\n{"a": 1}\n```',
    ],
)
def test_json_in_content_with_fences_or_prose(content: str) -> None:
    assert find_json(content, "", {"required": ["a"]}) == (True, {"a": 1}, [])


def test_json_in_reasoning_when_the_content_has_none() -> None:
    reasoning = 'The user wants a person. I will answer {"name": "Ada Lovelace", "age": 36}.'
    found, value, _ = find_json("", reasoning, PERSON)
    assert found and value == {"name": "Ada Lovelace", "age": 36}
    found, value, _ = find_json("I cannot.", reasoning, PERSON)
    assert found and value["age"] == 36
    call = StructuredCall(Structured(schema=PERSON), {"messages": []}, MODEL)
    assert call.finish(Completion(text="", reasoning=reasoning)).parsed == value


def test_the_content_wins_and_the_first_valid_candidate_is_taken() -> None:
    reasoning = '{"name": "From Reasoning", "age": 40}'
    found, value, _ = find_json('{"name": "From Content", "age": 30}', reasoning, PERSON)
    assert found and value["name"] == "From Content"
    found, value, _ = find_json('{"name": "short"}', reasoning, PERSON)
    assert found and value["name"] == "From Reasoning"


def test_errors_name_the_most_likely_candidate() -> None:
    assert find_json('{"name": 1, "age": 30}', "", PERSON) == (
        False,
        None,
        ["$.name: expected string, got integer"],
    )
    assert find_json("no json here", "nor here", PERSON)[2] == ["$: the answer is not JSON"]
    assert find_json("[1, 2]", "", None) == (True, [1, 2], [])


def test_candidates_skip_broken_pieces() -> None:
    text = '{broken [1, 2] and {"a": {"b": 2}} ```json\nnot json\n```'
    assert list(json_candidates(text)) == [{"a": {"b": 2}}, [1, 2]]
    assert list(json_candidates("   ")) == []
    assert list(json_candidates("```json\n{}")) == [{}]  # an unclosed fence


# -- asking ------------------------------------------------------------------------------


def test_bad_structured_parameters_are_refused_before_sending() -> None:
    for params, error in [
        ({"schema": "x"}, TypeError),
        ({"schema": PERSON, "response_format": {"type": "json_object"}}, ValueError),
        ({"response_format": "json"}, TypeError),
        ({"response_format": {"type": "yaml"}}, ValueError),
        ({"response_format": {"type": "json_schema", "json_schema": "x"}}, TypeError),
        ({"response_format": {"type": "json_object", "schema": 3}}, TypeError),
        ({"schema": PERSON, "schema_retries": -1}, ValueError),
        ({"schema": PERSON, "schema_retries": True}, ValueError),
        ({"schema": PERSON, "schema_style": "xml"}, ValueError),
    ]:
        with pytest.raises(error):
            take_structured(dict(params))


def test_taking_the_parameters() -> None:
    params: Dict[str, Any] = {"schema_retries": 3, "schema_style": "json_object", "seed": 1}
    assert take_structured(params) is None
    assert params == {"seed": 1}
    params = {"response_format": {"type": "json_schema", "json_schema": {"schema": PERSON}}}
    asked = take_structured(params)
    assert asked == Structured(schema=PERSON, name="response", strict=True, retries=1)
    assert params == {}
    params = {"response_format": {"type": "text"}}
    assert take_structured(params) is None and params == {"response_format": {"type": "text"}}


def test_a_client_wide_style_must_be_known() -> None:
    with FakeLMStudio([SimModel(key=MODEL, declared_context=8192)]) as fake:
        with lmstrix.Client(fake.base_url) as client:
            client.schema_style = "yaml"
            with pytest.raises(ValueError, match="schema_style"):
                client.chat(MODEL, "x", schema=PERSON)


# -- the simulator's answers -------------------------------------------------------------


def test_example_values_conform_to_their_schema() -> None:
    from lmstrix.jsonschema_lite import schema_errors

    schemas: List[Dict[str, Any]] = [
        PERSON,
        {"type": ["null", "number"], "exclusiveMinimum": 1, "maximum": 1.2},
        {"type": "integer", "exclusiveMaximum": 0},
        {"type": "number", "minimum": 5, "exclusiveMaximum": 5.2},
        {"type": "string", "maxLength": 3},
        {"const": [1]},
        {"oneOf": [{"type": "boolean"}, {"type": "null"}]},
        {"type": "null"},
        {"items": [{"type": "string"}, {"type": "integer"}]},
        {"type": "array", "maxItems": 0},
        {
            "allOf": [{"$ref": "#/$defs/a"}, {"required": ["b"], "properties": {"b": {}}}],
            "$defs": {"a": {"properties": {"a": {"type": "boolean"}}, "required": ["a"]}},
        },
    ]
    for schema in schemas:
        value = example_value(schema, schema)
        assert schema_errors(value, schema) == [], (schema, value)


def test_when_the_other_style_fails_too_the_first_error_is_raised() -> None:
    refusal = "response_format.json_schema: the schema is not supported"
    with FakeLMStudio([SimModel(key=MODEL, declared_context=8192)]) as fake:
        fake.inject(Fault(kind="status", status=400, message=refusal))
        with lmstrix.Client(fake.base_url, max_retries=0) as client:
            client.list_models()
            with pytest.raises(lmstrix.APIStatusError, match="schema is not supported"):
                client.chat(MODEL, "x", schema=PERSON)
            assert client._seen_style is None  # nothing learnt from two refusals
        sent = [b["response_format"]["type"] for b in chat_bodies(fake)]
    assert sent == ["json_schema", "json_object"]


def test_an_error_that_is_no_refusal_of_the_style_is_raised_at_once() -> None:
    with FakeLMStudio([SimModel(key=MODEL, declared_context=8192)]) as fake:
        fake.inject(Fault(kind="status", status=400, message="response_format: too deep"))
        with lmstrix.Client(fake.base_url, max_retries=0) as client:
            with pytest.raises(lmstrix.APIStatusError, match="too deep"):
                client.chat(MODEL, "x", schema=PERSON)
        assert len(chat_bodies(fake)) == 1
