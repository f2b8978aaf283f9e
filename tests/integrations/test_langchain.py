"""LangChain's standard test suites (``langchain-tests``) against the simulator.

The unit suites check construction, parameters and tool binding without a server; the
integration suites call a :class:`~lmstrix.testing.FakeLMStudio` on loopback. Features
lmstrix does not offer are declared unsupported below (so their tests skip):
image, audio, PDF and video inputs, image and PDF tool messages, Anthropic-style inputs,
cache and reasoning usage details, serialization (a model holds a live client), and the
VCR (recorded HTTP) timing test.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Tuple, Type

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_tests.integration_tests import (
    ChatModelIntegrationTests,
    EmbeddingsIntegrationTests,
)
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from lmstrix.integrations.langchain import ChatLMStrix, LMStrixEmbeddings
from lmstrix.testing import FakeLMStudio

CHAT_MODEL = "lmstrix-demo/solid-3b"
OTHER_MODEL = "lmstrix-demo/tiny-chat-1b"
EMBED_MODEL = "lmstrix-demo/nomic-embed-text"
UNIT_URL = "http://127.0.0.1:9"  # the unit suites never send a request
_SERVER: Dict[str, str] = {}


@pytest.fixture(scope="module")
def _simulator() -> Iterator[FakeLMStudio]:
    with FakeLMStudio() as fake:
        _SERVER["url"] = fake.base_url
        yield fake
    _SERVER.clear()


class _Declared:
    """What lmstrix and LM Studio support, shared by the chat suites."""

    @property
    def chat_model_class(self) -> Type[ChatLMStrix]:
        return ChatLMStrix

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def structured_output_kwargs(self) -> Dict[str, Any]:
        return {"method": "json_schema"}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return OTHER_MODEL

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False

    @property
    def supports_anthropic_inputs(self) -> bool:
        return False


EnvParams = Tuple[Dict[str, str], Dict[str, Any], Dict[str, Any]]


def _from_env(model: str) -> EnvParams:
    """The server and token from the environment, as lmstrix.Client takes them."""
    return (
        {"LMSTRIX_SERVER": UNIT_URL, "LM_API_TOKEN": "secret-token"},
        {"model": model},
        {"base_url": UNIT_URL, "api_key": "secret-token"},
    )


class TestChatLMStrixUnit(_Declared, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> Dict[str, Any]:
        return {"model": CHAT_MODEL, "base_url": UNIT_URL}

    @property
    def init_from_env_params(self) -> EnvParams:
        return _from_env(CHAT_MODEL)


@pytest.mark.usefixtures("_simulator")
class TestChatLMStrixIntegration(_Declared, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> Dict[str, Any]:
        return {"model": CHAT_MODEL, "base_url": _SERVER["url"]}


class _Embeddings:
    @property
    def embeddings_class(self) -> Type[LMStrixEmbeddings]:
        return LMStrixEmbeddings

    @property
    def embedding_model_params(self) -> Dict[str, Any]:
        return {"model": EMBED_MODEL, "base_url": _SERVER.get("url", UNIT_URL)}


class TestLMStrixEmbeddingsUnit(_Embeddings, EmbeddingsUnitTests):
    @property
    def init_from_env_params(self) -> EnvParams:
        return _from_env(EMBED_MODEL)


@pytest.mark.usefixtures("_simulator")
class TestLMStrixEmbeddingsIntegration(_Embeddings, EmbeddingsIntegrationTests):
    pass
