"""``lmstrix chat --native``: one question through LM Studio 0.4's native chat.

The answer goes to stdout (streamed as it comes with ``--stream``, the default on a
terminal); model-load and prompt-processing progress, which only the native endpoint
reports, go to stderr. ``--json`` prints the whole result instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

from ._output import EXIT_OK
from ._session import Session, UsageError

if TYPE_CHECKING:
    from ..client._native_types import NativeChatResult

__all__ = ["native_chat", "native_stats_line"]

_KINDS = {"model_load": "loading the model", "prompt_processing": "reading the prompt"}


def native_stats_line(result: NativeChatResult) -> str:
    """One line of the server's figures for ``--stats``."""
    stats = result.stats

    def num(value: Optional[float], fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    line = (
        f"stats: time to first token {num(stats.time_to_first_token_seconds, '.3f')} s, "
        f"{num(stats.tokens_per_second, '.1f')} tokens/s; "
        f"usage: {num(stats.input_tokens, 'd')} input + "
        f"{num(stats.total_output_tokens, 'd')} output tokens"
    )
    if stats.reasoning_output_tokens:
        line += f" ({stats.reasoning_output_tokens} reasoning)"
    if stats.model_load_time_seconds is not None:
        line += f"; model loaded in {stats.model_load_time_seconds:.2f} s"
    return line


def native_chat(
    session: Session,
    keys: Any,
    text: str,
    params: Dict[str, Any],
    *,
    system: Optional[str],
    streaming: bool,
    stats: bool,
    cache: Optional[str],
) -> int:
    """Ask ``keys`` (one model) ``text`` through ``/api/v1/chat``; print the answer.

    ``params`` are ``chat``'s (``temperature``, ``max_tokens``), renamed for the
    native endpoint.
    """
    if len(keys) > 1:
        raise UsageError("--native asks one model: a fallback chain (-m repeated) needs chat")
    if cache is not None:
        raise UsageError("--cache does not apply to --native (its answers are stored by LM Studio)")
    session.one_server()
    options: Dict[str, Any] = {"system_prompt": system, "temperature": params.get("temperature")}
    options["max_output_tokens"] = params.get("max_tokens")
    client = session.client()
    model = keys[0]

    def progress(kind: str, fraction: float) -> None:
        session.progress(f"{model}: {_KINDS.get(kind, kind)} {fraction:.0%}")

    from ..errors import ModelNotFoundError

    try:
        with client.stream_respond(model, text, on_progress=progress, **options) as stream:
            for event in stream:
                if event.type == "message.delta" and streaming:
                    session._end_progress()  # the answer starts below the progress line
                    session.write(event.content)
            result = stream.result
    except ModelNotFoundError as exc:
        raise session.unknown_model(model, exc) from exc
    if session.as_json:
        session.emit({"model": model, "server": session.base_url, **result.to_dict()})
    elif streaming:
        if not result.text.endswith("\n"):
            session.write("\n")
    else:
        session.echo(result.text.rstrip("\n"))
    if stats:
        session._err(native_stats_line(result))
    return EXIT_OK
