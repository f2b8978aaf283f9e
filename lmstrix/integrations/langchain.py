"""LangChain chat model and embeddings over lmstrix (extra ``[langchain]``).

:class:`ChatLMStrix` is a LangChain ``BaseChatModel`` over any lmstrix ``ChatClient``
(a :class:`~lmstrix.Client`, or a :class:`~lmstrix.Pool` of servers): invoke, stream,
tool binding (``bind_tools``), structured output (``with_structured_output``: a JSON
schema by default, or tool calling, or JSON mode), usage metadata, and the model's
measured context (the registry's ``working_context``) as ``profile["max_input_tokens"]``.
:class:`LMStrixEmbeddings` is a LangChain ``Embeddings``::

    from lmstrix.integrations.langchain import ChatLMStrix, LMStrixEmbeddings

    chat = ChatLMStrix(model="qwen3-4b", base_url="http://localhost:1234")
    print(chat.invoke("Hello").content)

``langchain_core`` is imported here; nothing else in lmstrix imports this module.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable, Dict, Iterator, List, Literal, Optional, Sequence, Union

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ToolCallChunk,
    UsageMetadata,
    convert_to_openai_messages,
)
from langchain_core.messages.tool import tool_call
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, model_validator

from .._log import logger
from ..client import Client
from ..config import resolve_base_url, resolve_token
from ..errors import ToolCallError
from ..types import Completion, ToolCall, Usage

__all__ = ["ChatLMStrix", "LMStrixEmbeddings"]

log = logger(__name__)

ToolLike = Union[Dict[str, Any], type, Callable[..., Any], BaseTool]
_StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]


def _own_client(
    base_url: Optional[str], token: Optional[str], timeout: Any, retries: Any
) -> Client:
    """A :class:`~lmstrix.Client` made from the settings (no I/O: it connects on first use)."""
    retries = 2 if retries is None else int(retries)
    return Client(base_url, api_token=token, timeout=timeout, max_retries=retries)


class ChatLMStrix(BaseChatModel):  # type: ignore[misc]
    """A LangChain chat model answered by an LM Studio server (or a pool of them).

    Args:
        model: the model key, or a list of keys: a fallback chain (the client tries them
            in order; with a registry, models whose measured context cannot hold the
            prompt are skipped).
        base_url: the server, when no ``client`` is given (default ``$LMSTRIX_SERVER``,
            then ``http://localhost:1234``).
        client: any lmstrix ``ChatClient``: a :class:`~lmstrix.Client` or a
            :class:`~lmstrix.Pool`; it is used as it is (its middleware, observers...).
        api_key: the bearer token (default ``$LM_API_TOKEN``), when no client is given.
        timeout, max_retries: the made client's read timeout and retries.
        temperature, max_tokens, stop: sent with every request when set.
        streaming: ``invoke`` streams the answer underneath (callbacks see tokens).
        model_kwargs: other request parameters (``seed``, ``top_p``, ...).
        registry: a :class:`~lmstrix.Registry`; its record of the model gives the
            profile (``max_input_tokens`` = the measured working context). Without one,
            the default registry is read, when it has the model.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    model: Union[str, List[str]]
    base_url: Optional[str] = None
    client: Any = Field(default=None, exclude=True)
    api_key: Optional[str] = Field(default=None, alias="api_token", repr=False)
    timeout: Optional[float] = None
    max_retries: int = 2
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    stop: Optional[List[str]] = None
    streaming: bool = False
    model_kwargs: Dict[str, Any] = Field(default_factory=dict)
    registry: Any = Field(default=None, exclude=True)

    @model_validator(mode="before")  # type: ignore[misc]
    @classmethod
    def _settings(cls, values: Any) -> Any:
        """``api_key`` or ``api_token``; without a client, the environment's server."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        token = values.pop("api_key", None) or values.pop("api_token", None)
        if values.get("client") is None:  # made here, once: instances are shared by threads
            values["base_url"] = resolve_base_url(values.get("base_url"))
            token = resolve_token(token)
            values["client"] = _own_client(
                values["base_url"], token, values.get("timeout"), values.get("max_retries")
            )
        values["api_token"] = token
        return values

    @property
    def _llm_type(self) -> str:
        return "lmstrix"

    @property
    def _identifying_params(self) -> Dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self._server(),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            **self.model_kwargs,
        }

    def _server(self) -> Optional[str]:
        url = getattr(self.client, "base_url", None)
        return url if isinstance(url, str) else self.base_url

    def _model_name(self, override: Any = None) -> str:
        chosen = override if override is not None else self.model
        return chosen if isinstance(chosen, str) else ",".join(chosen)

    def _get_ls_params(self, stop: Optional[List[str]] = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="lmstrix",
            ls_model_name=self._model_name(kwargs.get("model")),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stop = stop or kwargs.get("stop") or self.stop
        if stop:
            params["ls_stop"] = list(stop)
        return params

    # -- the profile: the model's measured context ---------------------------

    def _resolve_model_profile(self) -> Optional[ModelProfile]:
        working = measured_context(self.model, self.client, self.registry)
        if working is None:
            return None
        return ModelProfile(max_input_tokens=working, text_inputs=True, tool_calling=True)

    # -- calls -----------------------------------------------------------------

    def _params(self, stop: Optional[List[str]], kwargs: Dict[str, Any]) -> Dict[str, Any]:
        params: Dict[str, Any] = dict(self.model_kwargs)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        stop = stop if stop is not None else self.stop
        if stop:
            params["stop"] = list(stop)
        params.update(kwargs)
        params.pop("stream", None)
        return params

    def _generate(
        self,
        messages: List[BaseMessage],
        stop: Optional[List[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        params = self._params(stop, kwargs)
        model = params.pop("model", self.model)
        done: Completion = self.client.chat(model, wire_messages(messages), **params)
        message = AIMessage(
            content=done.text,
            tool_calls=[_tool_call(call) for call in done.tool_calls],
            usage_metadata=usage_metadata(done.usage),
            response_metadata=_response_metadata(done, model),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: List[BaseMessage],
        stop: Optional[List[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        params = self._params(stop, kwargs)
        model = params.pop("model", self.model)
        with self.client.stream_chat(model, wire_messages(messages), **params) as stream:
            for piece in stream:
                if not piece.text and not piece.tool_calls:
                    continue
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=piece.text,
                        tool_call_chunks=[_tool_call_chunk(call) for call in piece.tool_calls],
                    )
                )
                yield chunk  # BaseChatModel reports each chunk to the callbacks
            done = stream.completion
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=usage_metadata(done.usage),
                response_metadata=_response_metadata(done, model),
                chunk_position="last",
            )
        )

    # -- tools and structured output -------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[ToolLike],
        *,
        tool_choice: Union[str, bool, Dict[str, Any], None] = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` to the model (anything ``convert_to_openai_tool`` takes).

        ``tool_choice``: ``"auto"``, ``"none"``, ``"any"``/``"required"``/``True`` (some
        tool must be called), or a tool's name (that tool).
        """
        wire = [convert_to_openai_tool(one) for one in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = _tool_choice(tool_choice, wire)
        return self.bind(tools=wire, **kwargs)

    def with_structured_output(
        self,
        schema: Union[Dict[str, Any], type],
        *,
        method: _StructuredMethod = "json_schema",
        include_raw: bool = False,
        strict: Optional[bool] = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Union[Dict[str, Any], Any]]:
        """Answers as ``schema`` (a pydantic class, a TypedDict, or a JSON schema dict).

        ``method``: ``"json_schema"`` (the server constrains the answer to the schema;
        lmstrix sends it as the server wants it), ``"function_calling"`` (the model must
        call a tool shaped like the schema), or ``"json_mode"`` (any JSON object; say
        the shape in the prompt). A pydantic class gives instances, else dictionaries.
        """
        if kwargs:
            raise ValueError(f"unsupported arguments: {sorted(kwargs)}")
        pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        traced = {
            "ls_structured_output_format": {
                "kwargs": {"method": method, "strict": strict},
                "schema": convert_to_json_schema(schema),
            }
        }
        parser: Runnable[Any, Any]
        if method == "function_calling":
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            llm = self.bind_tools([tool], tool_choice=name, **traced)
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if pydantic
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            if method == "json_schema":
                llm = self.bind(schema=convert_to_json_schema(schema), **traced)
            else:
                llm = self.bind(response_format={"type": "json_object"}, **traced)
            parser = (
                PydanticOutputParser(pydantic_object=schema) if pydantic else JsonOutputParser()
            )
        else:
            raise ValueError(
                f"method must be 'json_schema', 'function_calling' or 'json_mode', not {method!r}"
            )
        if not include_raw:
            return llm | parser
        with_parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        without = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | with_parsed.with_fallbacks(
            [without], exception_key="parsing_error"
        )


class LMStrixEmbeddings(Embeddings):  # type: ignore[misc]
    """LangChain embeddings from an LM Studio embedding model.

    Args:
        model: the embedding model's key.
        base_url, client, api_key, timeout, max_retries: as for :class:`ChatLMStrix`.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: Optional[str] = None,
        client: Any = None,
        api_key: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        if client is None:
            self.base_url = resolve_base_url(base_url)
            self.api_key = resolve_token(api_key)
            client = _own_client(self.base_url, self.api_key, timeout, max_retries)
        self.client = client

    def __repr__(self) -> str:
        return f"LMStrixEmbeddings(model={self.model!r})"

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        """One vector per text, in order."""
        if not texts:
            return []
        rows: List[List[float]] = self.client.embed(self.model, list(texts))
        return rows

    def embed_query(self, text: str) -> List[float]:
        """The vector of one text."""
        return self.embed_documents([text])[0]


# -- conversions ---------------------------------------------------------------


def wire_messages(messages: Sequence[BaseMessage]) -> List[Dict[str, Any]]:
    """LangChain messages as OpenAI chat messages (tool calls and tool results kept)."""
    wire: List[Dict[str, Any]] = convert_to_openai_messages(list(messages), text_format="string")
    for message in wire:
        if message.get("role") == "assistant" and message.get("tool_calls"):
            message.setdefault("content", "")
    return wire


def usage_metadata(usage: Usage) -> Optional[UsageMetadata]:
    """LangChain usage from the server's counts (``None`` when it sent none)."""
    if usage.prompt_tokens is None and usage.completion_tokens is None:
        return None
    prompt = usage.prompt_tokens or 0
    answer = usage.completion_tokens or 0
    total = usage.total_tokens if usage.total_tokens is not None else prompt + answer
    return UsageMetadata(input_tokens=prompt, output_tokens=answer, total_tokens=total)


def _response_metadata(done: Completion, model: Any) -> Dict[str, Any]:
    name = done.model or (model if isinstance(model, str) else None)
    return {"model_name": name, "finish_reason": done.finish_reason, "model_provider": "lmstrix"}


def _tool_call(call: ToolCall) -> Any:
    try:
        arguments = call.parsed_arguments()
    except ToolCallError:  # LangChain keeps such calls as invalid_tool_calls on parse
        log.warning("tool call %r: arguments are not a JSON object", call.name)
        arguments = {}
    return tool_call(name=call.name, args=arguments, id=call.id or None)


def _tool_call_chunk(call: ToolCall) -> ToolCallChunk:
    return ToolCallChunk(
        name=call.name or None,
        args=call.arguments,
        id=call.id or None,
        index=call.index,
    )


def _tool_choice(choice: Union[str, bool, Dict[str, Any]], tools: List[Dict[str, Any]]) -> Any:
    if isinstance(choice, dict):
        return choice
    if choice is True or choice in ("any", "required"):
        if choice is True and len(tools) == 1:
            return _named(tools[0]["function"]["name"])
        return "required"
    if choice in ("auto", "none"):
        return choice
    names = [tool["function"]["name"] for tool in tools]
    if choice not in names:
        raise ValueError(f"tool_choice {choice!r} is not one of the bound tools {names}")
    return _named(str(choice))


def _named(name: str) -> Dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def measured_context(model: Any, client: Any, registry: Any) -> Optional[int]:
    """The model's measured working context in ``registry`` (or the default registry).

    The record of the client's server is used; for a pool, the largest among its
    servers (the pool routes a prompt to a server that can hold it). A fallback chain
    gives its first model's. ``None`` when no record has it.
    """
    key = model if isinstance(model, str) else (model[0] if model else None)
    if key is None:
        return None
    registry = registry if registry is not None else getattr(client, "registry", None)
    if registry is None:
        from ..registry import Registry

        registry = Registry()
    found: List[int] = []
    for server in _servers(client):
        record = registry.get(key, server=server)
        working = getattr(record, "working_context", None)
        if isinstance(working, int):
            found.append(working)
    return max(found) if found else None


def _servers(client: Any) -> List[str]:
    members = getattr(client, "members", None)
    if isinstance(members, list):
        return [m.client.base_url for m in members if hasattr(m, "client")]
    url = getattr(client, "base_url", None)
    return [url] if isinstance(url, str) else []
