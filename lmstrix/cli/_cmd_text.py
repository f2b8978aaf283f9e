"""``lmstrix summarize`` and ``lmstrix ask``: long documents, map-reduce (``lmstrix.text``)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ._cmd_chat import read_text
from ._options import given
from ._output import EXIT_INTERRUPTED, EXIT_OK
from ._session import CliError, Session, UsageError

__all__ = ["cmd_ask", "cmd_summarize"]


def _document(session: Session, file: str) -> str:
    text = read_text(session, file)
    if not text.strip():
        raise UsageError(f"{file} is empty: give a document with some text in it")
    return text


def _progress(session: Session) -> Any:
    def report(step: Any) -> None:
        where = step.stage if step.stage != "reduce" else f"reduce round {step.level}"
        done = f"{step.done + step.skipped}/{step.total + step.skipped}"
        failed = f", {step.failed} failed" if step.failed else ""
        session.progress(f"{where}: {done} answered{failed}")

    return report


def _run(session: Session, model: str, state: Optional[str], call: Any) -> Any:
    from ..errors import ModelNotFoundError

    for name, value in (
        ("--workers", call.get("workers")),
        ("--max-tokens", call.get("max_tokens")),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, not {value}")
    client = session.chat_client(registry=session.registry())
    function = call.pop("function")
    try:
        return function(client, model, on_progress=_progress(session), state=state, **call)
    except KeyboardInterrupt:
        where = (
            f"the answers so far are in {state}, and running the same command again "
            "continues from there"
            if state
            else "give --state PATH to make a long run resumable"
        )
        raise CliError(f"interrupted; {where}", EXIT_INTERRUPTED) from None
    except ModelNotFoundError as exc:
        raise session.unknown_model(model, exc) from exc


def _show(session: Session, result: Any) -> int:
    if session.as_json:
        session.emit(result.to_dict())
    else:
        session.echo(result.text)
    levels = " -> ".join(str(len(level)) for level in result.levels)
    session.note(
        f"{len(result.chunks)} chunks, {result.requests} requests, texts per level: {levels} "
        f"(working context {result.working_context:,} tokens)"
    )
    return EXIT_OK


def cmd_summarize(
    session: Session,
    file: str,
    *,
    model: str,
    state: Optional[str] = None,
    max_tokens: Optional[int] = None,
    workers: Optional[int] = None,
    instructions: Optional[str] = None,
    working_context: Optional[int] = None,
) -> int:
    """Summarize ``file`` with ``model`` (:func:`lmstrix.text.summarize`)."""
    from ..text import summarize

    call: Dict[str, Any] = {
        "function": summarize,
        "text": _document(session, file),
        **given(
            max_tokens=max_tokens,
            workers=workers,
            instructions=instructions,
            working_context=working_context,
        ),
    }
    return _show(session, _run(session, model, state, call))


def cmd_ask(
    session: Session,
    file: str,
    question: str,
    *,
    model: str,
    state: Optional[str] = None,
    max_tokens: Optional[int] = None,
    workers: Optional[int] = None,
    instructions: Optional[str] = None,
    working_context: Optional[int] = None,
    extractive: bool = False,
    embedding_model: Optional[str] = None,
) -> int:
    """Answer ``question`` about ``file`` with ``model`` (:func:`lmstrix.text.ask`)."""
    from ..text import ask

    if embedding_model and not extractive:
        raise UsageError("--embedding-model is for --extractive: give both, or neither")
    if extractive and not embedding_model:
        raise UsageError(
            "--extractive ranks the document by embedding: name the server's embedding "
            "model with --embedding-model E (see `lmstrix list`)"
        )
    call: Dict[str, Any] = {
        "function": ask,
        "text": _document(session, file),
        "question": question,
        "mode": "extractive" if extractive else "map",
        **given(
            max_tokens=max_tokens,
            workers=workers,
            instructions=instructions,
            working_context=working_context,
            embedding_model=embedding_model,
        ),
    }
    return _show(session, _run(session, model, state, call))
