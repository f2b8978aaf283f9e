"""The tool loop: ask the model, run the functions it calls, send back the results, repeat.

:func:`run_tools` works over any :class:`~lmstrix.ChatClient` (a
:class:`~lmstrix.Client`, a :class:`~lmstrix.Pool`...); ``client.run_tools(...)`` is the
same through :class:`ToolsMixin`. Each step is one ``chat`` call (so one
:class:`~lmstrix.CallEvent` per step). A call the function cannot take (arguments that
are not a JSON object, an unknown tool, arguments that do not fit the signature) or a
function that raises is answered with ``"error: ..."`` as the tool's result, so the
model can correct itself; only the step limit ends the loop with an error
(:class:`~lmstrix.ToolLoopError`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Sequence,
    Tuple,
    Union,
    cast,
)

from .._log import logger
from .._threads import map_in_threads
from ..errors import ToolCallError, ToolLoopError
from ..types import Completion, ToolCall
from ._replies import Messages, messages_of

if TYPE_CHECKING:
    from ._calls import ChatClient

__all__ = ["ToolRun", "ToolsMixin", "run_tools"]

log = logger(__name__)

Tools = Union[Mapping[str, Callable[..., Any]], Sequence[Callable[..., Any]]]
"""Functions by the name the model calls them, or a list of functions (named by
``__name__``)."""

MAX_WORKERS = 4
"""At most this many tool calls of one turn run at once."""


@dataclass(frozen=True)
class ToolRun:
    """The end of a tool loop: the model's last ``completion``, the whole exchange as
    ``messages`` (the caller's, the assistant's tool calls, the ``tool`` results and the
    final answer; send it back to go on), ``steps`` (model calls made) and ``calls``
    (every tool call run, in order)."""

    completion: Completion
    messages: Tuple[Mapping[str, Any], ...]
    steps: int
    calls: Tuple[ToolCall, ...] = ()

    @property
    def text(self) -> str:
        """The final answer's text."""
        return self.completion.text


def run_tools(
    chat_client: ChatClient,
    model: str,
    messages: Messages,
    tools: Tools,
    *,
    max_steps: int = 8,
    parallel: bool = True,
    **params: Any,
) -> ToolRun:
    """Chat with tools until the model answers without calling one.

    Each step sends the conversation with the tools' definitions (built from the
    functions' signatures and docstrings), runs the calls the model makes and appends
    their results as ``role: "tool"`` messages, in the order of the calls. Several
    calls in one turn run together on a small thread pool when ``parallel`` is true
    (the functions must then be thread-safe). ``params`` go to each ``chat`` call
    (``temperature``, ``tool_choice``, ...).

    Raises:
        ToolLoopError: after ``max_steps`` model calls the model still asked for tools
            (``error.run`` holds the exchange; its last calls were not run).
        ValueError: ``max_steps`` is below 1, or a function cannot be described.
        TypeError: ``tools`` is neither a mapping nor a list of functions.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    functions = _named(tools)
    from ._toolcalls import tool_definition

    definitions = [tool_definition(f, name) for name, f in functions.items()]
    transcript: List[Mapping[str, Any]] = list(messages_of(messages))
    done_calls: List[ToolCall] = []
    for step in range(1, max_steps + 1):
        done = chat_client.chat(model, transcript, tools=definitions, **params)
        transcript.append(_assistant_message(done))
        if not done.tool_calls:
            return ToolRun(done, tuple(transcript), step, tuple(done_calls))
        if step == max_steps:
            break
        results = _run_calls(done.tool_calls, functions, parallel=parallel)
        for call, result in zip(done.tool_calls, results):
            transcript.append({"role": "tool", "tool_call_id": call.id, "content": result})
        done_calls.extend(done.tool_calls)
    run = ToolRun(done, tuple(transcript), max_steps, tuple(done_calls))
    asked = ", ".join(call.name for call in done.tool_calls)
    raise ToolLoopError(
        f"model {model!r} still asked for tools ({asked}) after {max_steps} steps; "
        "raise max_steps, simplify the task, or read error.run.messages to see the loop",
        run=run,
    )


def _named(tools: Tools) -> Dict[str, Callable[..., Any]]:
    if isinstance(tools, Mapping):
        named = dict(tools)
    elif isinstance(tools, (list, tuple)):
        named = {getattr(f, "__name__", ""): f for f in tools}
    else:
        raise TypeError(
            "tools must be a mapping {name: function} or a list of functions, "
            f"not {type(tools).__name__}"
        )
    for name, function in named.items():
        if not callable(function):
            raise TypeError(f"tool {name!r} is not callable: {function!r:.100}")
    return named


def _assistant_message(done: Completion) -> Dict[str, Any]:
    message: Dict[str, Any] = {"role": "assistant", "content": done.text}
    if done.tool_calls:
        message["tool_calls"] = [call.to_dict() for call in done.tool_calls]
    return message


def _run_calls(
    calls: Sequence[ToolCall], functions: Mapping[str, Callable[..., Any]], *, parallel: bool
) -> List[str]:
    """Each call's result text, in the order of ``calls``."""
    if not parallel or len(calls) < 2:
        return [run_call(call, functions) for call in calls]
    run = functools.partial(run_call, functions=functions)
    return map_in_threads(run, calls, workers=MAX_WORKERS, name="lmstrix-tool")


def run_call(call: ToolCall, functions: Mapping[str, Callable[..., Any]]) -> str:
    """Run one tool call; its result as text, or ``"error: ..."`` saying what went wrong."""
    function = functions.get(call.name)
    if function is None:
        known = ", ".join(sorted(functions)) or "none"
        return f"error: there is no tool named {call.name!r}; the tools are: {known}"
    try:
        arguments = call.parsed_arguments()
    except ToolCallError as exc:
        return f"error: {exc}; send the arguments as one JSON object"
    try:
        import inspect

        inspect.signature(function).bind(**arguments)
    except TypeError as exc:
        return f"error: bad arguments for {call.name}: {exc}"
    except ValueError:  # a builtin without a signature: let the call itself judge
        pass
    try:
        result = function(**arguments)
    except Exception as exc:
        log.warning("tool %s raised %s", call.name, type(exc).__name__, exc_info=True)
        return f"error: {call.name} raised {type(exc).__name__}: {exc}"
    return _as_text(result)


def _as_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # a circular structure
        return str(result)


class ToolsMixin:
    """Adds :meth:`run_tools` to a client with a ``chat`` method."""

    def run_tools(self, model: str, messages: Messages, tools: Tools, **options: Any) -> ToolRun:
        """Chat with tools until the model answers without calling one; ``options`` are
        ``max_steps``, ``parallel`` and chat parameters (see
        :func:`~lmstrix.client.run_tools`)."""
        return run_tools(cast("ChatClient", self), model, messages, tools, **options)
