"""``lmstrix chat`` (a question, or an interactive chat) and ``lmstrix prompt render``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from ._output import EXIT_OK
from ._session import Session, UsageError

if TYPE_CHECKING:
    from ..prompts._render import PromptLibrary
    from ..types import Completion

__all__ = ["cmd_chat", "cmd_prompt_render", "read_text", "stats_line"]


def read_text(session: Session, path: str) -> str:
    """The text of ``path`` (``-`` is stdin); an unreadable file is bad input (exit 2)."""
    if path == "-":
        return session.stdin.read()
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {path}: not UTF-8 text ({exc.reason})") from None


def _library(path: str) -> PromptLibrary:
    from ..prompts._render import PromptLibrary

    return PromptLibrary.from_file(path)


def _prompt(
    session: Session,
    prompt: Optional[str],
    file: Optional[str],
    prompts: Optional[str],
    template: Optional[str],
    variables: Sequence[str],
) -> str:
    """The user message, from the argument, ``-f``, stdin, or a rendered template."""
    from ..prompts._render import parse_assignments

    if prompt is not None and file is not None:
        raise UsageError("give the prompt as an argument or with -f FILE, not both")
    text = prompt if file is None else read_text(session, file)
    if template is None:
        if prompts is not None or variables:
            raise UsageError("--prompts and --var need --template NAME")
        if text is None and not session.is_tty(session.stdin):
            text = session.stdin.read()
        if not text or not text.strip():
            raise UsageError("no prompt: give one as an argument, with -f FILE, or on stdin")
        return text
    if prompts is None:
        raise UsageError("--template needs --prompts FILE (a JSON or TOML prompt library)")
    values: Dict[str, Any] = parse_assignments(variables)
    if text is not None:  # the prompt text fills {{input}} unless --var input=... says else
        values.setdefault("input", text)
    return _library(prompts).render(template, values)


def stats_line(completion: Completion) -> str:
    stats, usage = completion.stats, completion.usage

    def num(value: Optional[float], fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    return (
        f"stats: time to first token {num(stats.time_to_first_token_s, '.3f')} s, "
        f"{num(stats.tokens_per_second, '.1f')} tokens/s, "
        f"total {num(stats.total_time_s, '.2f')} s; "
        f"usage: {num(usage.prompt_tokens, 'd')} prompt + {num(usage.completion_tokens, 'd')} "
        f"completion = {num(usage.total_tokens, 'd')} tokens"
    )


def _model_keys(session: Session, models: Union[str, List[str], None]) -> List[str]:
    """The model keys given, else the ``default-model`` setting (a usage error if unset)."""
    from ._chains import model_keys

    if models:
        return model_keys(models)
    from ._cmd_config import default_model

    default = default_model(session)
    if default is None:
        raise UsageError("no model: give a model or run lmstrix config set default-model KEY")
    if session.verbosity > 0:
        session.note(f"using the default model {default} (lmstrix config get default-model)")
    return [default]


def _interactive(session: Session, *given: Any) -> bool:
    """True for an interactive chat: no prompt, ``-f`` or template option given, stdin a
    terminal, no ``--json``."""
    if any(value is not None and value != [] for value in given):
        return False
    return not session.as_json and session.is_tty(session.stdin)


def cmd_chat(
    session: Session,
    model: Optional[str] = None,
    prompt: Optional[str] = None,
    *,
    file: Optional[str] = None,
    system: Optional[str] = None,
    temperature: Optional[float] = None,
    max_tokens: Optional[int] = None,
    ttl: Optional[int] = None,
    stream: Optional[bool] = None,
    stats: bool = False,
    prompts: Optional[str] = None,
    template: Optional[str] = None,
    variables: Sequence[str] = (),
    models: Sequence[str] = (),
    cache: Optional[str] = None,
    native: bool = False,
    schema: Optional[str] = None,
    post: Sequence[str] = (),
) -> int:
    """Ask ``model`` one question; stream the answer when stdout is a terminal.

    ``models`` (``--model`` repeated) is a fallback chain, given instead of ``model``
    (the first argument is then the prompt). Over several servers a Pool answers.
    ``cache`` is a :class:`~lmstrix.cache.ResponseCache` file for deterministic requests.
    ``native`` asks through LM Studio 0.4's native chat (see ``_cmd_respond``).
    No model: the ``default-model`` setting. No prompt and stdin a terminal: an
    interactive chat (:mod:`lmstrix.cli._interactive`).
    ``schema`` is a JSON schema file: the answer is validated JSON (see ``_chat_schema``).
    ``post`` names post-processors applied to the answer, which is then printed whole.
    """
    from ._chat_schema import load_schema
    from ._cmd_observe import cached

    if models:
        if prompt is not None:
            raise UsageError("with -m/--model, give at most one argument: the prompt")
        model, prompt = None, model
    keys = _model_keys(session, list(models) or model)
    if max_tokens is not None and max_tokens < 1:
        raise UsageError(f"--max-tokens must be at least 1, not {max_tokens}")
    params: Dict[str, Any] = {}
    if temperature is not None:
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if ttl is not None:
        if ttl < 1:
            raise UsageError(f"--ttl takes a number of seconds of at least 1, not {ttl}")
        params["ttl"] = ttl
    if post and (native or stream):
        raise UsageError("--post prints the processed answer whole: drop --native/--stream")
    if _interactive(session, prompt, file, template, prompts, list(variables), schema):
        from ._interactive import run_interactive

        with cached(session, cache):
            return run_interactive(session, keys, system=system, params=params, show_stats=stats)
    text = _prompt(session, prompt, file, prompts, template, variables)
    messages: List[Dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": text})
    if len(keys) == 1:
        from ._overflow import OverflowCheck

        OverflowCheck(session).warn(keys[0], messages, max_tokens)
    if schema is not None:  # a JSON answer, validated, printed whole unless --stream
        if native:
            raise UsageError("--schema works with the OpenAI-compatible chat, not --native")
        params["schema"], stream = load_schema(session, schema), bool(stream)
    streaming = (
        stream if stream is not None else (not session.as_json and session.is_tty(session.stdout))
    )
    if native:
        from ._cmd_respond import native_chat

        return native_chat(
            session,
            keys,
            text,
            params,
            system=system,
            streaming=streaming,
            stats=stats,
            cache=cache,
        )
    with cached(session, cache):
        completion = _ask(session, keys, messages, params, streaming and not post, list(post))
    if stats:
        session._err(stats_line(completion))
    return EXIT_OK


def _ask(
    session: Session,
    keys: List[str],
    messages: List[Dict[str, str]],
    params: Dict[str, Any],
    streaming: bool,
    post: Sequence[str] = (),
) -> Completion:
    """Ask the chain ``keys``, print the answer (or the JSON document); the completion.
    ``post``: post-processors for the answer (``--post``)."""
    from ..errors import ModelNotFoundError
    from ._chains import Answers, chain_client, choice
    from ._chat_schema import json_extras, shown

    answers = Answers()
    from ._plugins import post_processed

    client = post_processed(session, chain_client(session, keys, answers), post)
    wanted = choice(keys)
    try:
        completion: Completion
        if streaming:
            with client.stream_chat(wanted, messages, **params) as answer:
                for chunk in answer:
                    session.write(chunk.text)
                completion = answer.completion
            if not completion.text.endswith("\n"):
                session.write("\n")
        else:
            completion = client.chat(wanted, messages, **params)
            session.echo(shown(session, completion))
    except ModelNotFoundError as exc:
        raise session.unknown_model(keys[0], exc) from exc
    answered, server = answers.last() or (keys[0], None)
    if answered != keys[0]:
        session.note(
            f"answered by {answered}"
            + (f" on {server}" if server else "")
            + (
                f" (the fallback chain's first choice, {keys[0]}, was skipped or failed; "
                "-v says why)"
            )
        )
    if session.as_json:
        doc: Dict[str, Any] = {"model": answered, "server": server}
        if len(keys) > 1:
            doc["chain"] = keys
        session.emit(
            {
                **doc,
                "served_by": completion.model,
                "text": completion.text,
                "finish_reason": completion.finish_reason,
                "usage": completion.usage.to_dict(),
                "stats": completion.stats.to_dict(),
                **json_extras(completion, params),
            }
        )
    return completion


def cmd_prompt_render(
    session: Session, file: str, name: str, *, variables: Sequence[str] = ()
) -> int:
    """Render the entry ``name`` of the prompt library ``file`` with ``--var`` values."""
    from ..prompts._render import parse_assignments

    text = _library(file).render(name, parse_assignments(variables))
    if session.as_json:
        session.emit({"file": file, "name": name, "text": text})
    else:
        session.echo(text)
    return EXIT_OK
