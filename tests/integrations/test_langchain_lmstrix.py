"""What ChatLMStrix adds beyond LangChain's standard suites: any ChatClient (a pool),
fallback chains, the measured context as profile, tool_choice forms, message history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

import lmstrix
from lmstrix.integrations.langchain import ChatLMStrix, LMStrixEmbeddings, wire_messages
from lmstrix.registry import ModelRecord, Registry
from lmstrix.testing import FakeLMStudio, SimModel, ToolScript

MODEL = "lmstrix-demo/solid-3b"
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


def test_over_a_pool_with_the_measured_context_as_profile(tmp_path: Path) -> None:
    with FakeLMStudio() as one, FakeLMStudio() as two:
        registry = Registry(tmp_path / "registry.json")
        registry.upsert(ModelRecord(key=MODEL, working_context=3000), server=one.base_url)
        registry.upsert(ModelRecord(key=MODEL, working_context=5000), server=two.base_url)
        with lmstrix.Pool([one.base_url, two.base_url], registry=registry) as pool:
            chat = ChatLMStrix(model=MODEL, client=pool)
            assert chat.profile is not None
            assert chat.profile["max_input_tokens"] == 5000  # the pool routes to either
            answer = chat.invoke("Say hello")
        assert isinstance(answer, AIMessage)
        assert answer.content
        assert answer.response_metadata["finish_reason"] == "stop"
        assert answer.usage_metadata is not None
        assert answer.usage_metadata["total_tokens"] == (
            answer.usage_metadata["input_tokens"] + answer.usage_metadata["output_tokens"]
        )


def test_profile_from_the_default_registry_else_none() -> None:
    with FakeLMStudio() as fake:
        assert ChatLMStrix(model=MODEL, base_url=fake.base_url).profile is None
        Registry().upsert(ModelRecord(key=MODEL, working_context=2048), server=fake.base_url)
        chat = ChatLMStrix(model=[MODEL, "other"], base_url=fake.base_url)
        assert chat.profile is not None
        assert chat.profile["max_input_tokens"] == 2048


def test_a_fallback_chain_answers_with_the_first_model_that_works() -> None:
    with FakeLMStudio() as fake:
        chat = ChatLMStrix(model=["no/such-model", MODEL], base_url=fake.base_url)
        answer = chat.invoke("Say hello")
        assert answer.response_metadata["model_name"].startswith(MODEL)
        assert chat._get_ls_params()["ls_model_name"] == f"no/such-model,{MODEL}"


def test_tool_choice_forms_reach_the_server() -> None:
    with FakeLMStudio(api_token="t0ken") as fake:  # refuses requests without the token
        chat = ChatLMStrix(model=MODEL, base_url=fake.base_url, api_key="t0ken")
        for choice, sent in [
            ("add", {"type": "function", "function": {"name": "add"}}),
            (True, {"type": "function", "function": {"name": "add"}}),
            ("any", "required"),
            ("auto", "auto"),
        ]:
            answer = chat.bind_tools([ADD], tool_choice=choice).invoke("Add 2 and 40")
            assert fake.received[-1].body["tool_choice"] == sent
            assert answer.tool_calls[0]["args"] == {"a": 2, "b": 40}
        with pytest.raises(ValueError, match="not one of the bound tools"):
            chat.bind_tools([ADD], tool_choice="subtract")


def test_a_conversation_with_tool_results_and_arguments_that_are_not_json() -> None:
    script = ToolScript([[("add", '{"a": 2, "b":')]])
    with FakeLMStudio([SimModel("test/tools", 8192, tool_script=script)]) as fake:
        chat = ChatLMStrix(model="test/tools", base_url=fake.base_url)
        first = chat.bind_tools([ADD]).invoke("Add 2 and 40")
        assert first.tool_calls == [] or first.tool_calls[0]["args"] == {}
        history = [
            SystemMessage("You add numbers."),
            HumanMessage("Add 2 and 40"),
            AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 40}, "id": "7"}]),
            ToolMessage("42", tool_call_id="7"),
        ]
        final = chat.bind_tools([ADD]).invoke(history)
        assert final.content == "Tool results: add: 42"
        sent = fake.received[-1].body["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
        assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == {"a": 2, "b": 40}
        assert sent[3]["tool_call_id"] == "7"


def test_streaming_flag_and_wire_messages() -> None:
    with FakeLMStudio() as fake:
        chat = ChatLMStrix(model=MODEL, base_url=fake.base_url, streaming=True, max_tokens=3)
        answer = chat.invoke("Tell me a story")
        assert fake.received[-1].body["stream"] is True
        assert answer.response_metadata["finish_reason"] == "length"
        assert answer.usage_metadata is not None
        assert answer.usage_metadata["output_tokens"] == 3
    assert wire_messages([HumanMessage([{"type": "text", "text": "hi"}])]) == [
        {"role": "user", "content": "hi"}
    ]


def test_embeddings_over_a_client() -> None:
    with FakeLMStudio() as fake, lmstrix.Client(fake.base_url) as client:
        embeddings = LMStrixEmbeddings("lmstrix-demo/nomic-embed-text", client=client)
        rows = embeddings.embed_documents(["a", "b"])
        assert len(rows) == 2
        assert rows[0] == embeddings.embed_query("a")
        assert embeddings.embed_documents([]) == []
        assert "nomic" in repr(embeddings)
