"""Structured output: find the JSON in an answer, check it against the schema, ask again.

:class:`StructuredMixin` gives :class:`~lmstrix.Client` the hook its ``chat``,
``complete`` and ``stream_chat`` call when a request asks for JSON (``schema=`` or a
JSON ``response_format``, see :mod:`lmstrix.client._response_format`). The answer's JSON
is looked for in the content (whole, in a ```json fence, or inside prose), then in the
reasoning (``reasoning_content``/``reasoning``) where reasoning models sometimes put it;
the first value that conforms to the schema (checked by :mod:`lmstrix.jsonschema_lite`)
becomes ``Completion.parsed``. An answer without one is shown to the model with what was
wrong, up to ``schema_retries`` times; then :class:`~lmstrix.SchemaValidationError`.
A stream is checked once at its end (it cannot be asked again: its text is already out).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
    cast,
)

from .._log import logger
from ..errors import APIStatusError, SchemaValidationError
from ..types import Completion
from ._response_format import (
    STRUCTURED_KEYS,
    STYLES,
    Structured,
    style_for,
    take_structured,
    wire_format,
)

__all__ = ["StructuredCall", "StructuredMixin", "find_json", "json_candidates"]

log = logger(__name__)

T = TypeVar("T")
_FENCE = "```"
_MAX_EMBEDDED_TRIES = 200
_MAX_ERRORS_SHOWN = 10
_decoder = json.JSONDecoder()


def _fenced(text: str) -> Iterator[str]:
    """The insides of the ``` fences of ``text`` (a ``json`` tag or none), in order."""
    start = text.find(_FENCE)
    while start >= 0:
        body_at = text.find("\n", start)
        end = text.find(_FENCE, body_at + 1) if body_at >= 0 else -1
        if end < 0:
            return
        tag = text[start + 3 : body_at].strip().lower()
        if tag in ("", "json", "json5", "jsonc"):
            yield text[body_at + 1 : end]
        start = text.find(_FENCE, end + 3)


def _embedded(text: str) -> Iterator[Any]:
    """JSON objects and arrays written inside prose, outermost ones, last first."""
    found: List[Any] = []
    at, tries = 0, 0
    while tries < _MAX_EMBEDDED_TRIES:
        starts = [i for i in (text.find("{", at), text.find("[", at)) if i >= 0]
        if not starts:
            break
        at, tries = min(starts), tries + 1
        try:
            value, end = _decoder.raw_decode(text, at)
        except ValueError:
            at += 1
            continue
        found.append(value)
        at = end
    return reversed(found)


def json_candidates(text: str) -> Iterator[Any]:
    """Every JSON value ``text`` may mean, most likely first: the whole text, each
    ```json fence, then objects and arrays inside prose (last first)."""
    stripped = text.strip()
    if not stripped:
        return
    for piece in (stripped, *_fenced(stripped)):
        try:
            value = json.loads(piece)
        except ValueError:
            continue
        yield value
    yield from _embedded(stripped)


def find_json(
    content: str, reasoning: str = "", schema: Optional[Any] = None
) -> Tuple[bool, Any, List[str]]:
    """``(found, value, errors)``: the first JSON value in ``content`` (then in
    ``reasoning``) that conforms to ``schema``; else ``found`` is False and ``errors``
    says what was wrong with the most likely value (or that there was no JSON)."""
    if schema is not None:  # imported once, and only when answers are checked
        from ..jsonschema_lite import schema_errors
    first_errors: Optional[List[str]] = None
    for text in (content, reasoning):
        for value in json_candidates(text):
            errors = schema_errors(value, schema) if schema is not None else []
            if not errors:
                return True, value, []
            if first_errors is None:
                first_errors = errors
    if first_errors is not None:
        return False, None, first_errors
    return False, None, ["$: the answer is not JSON"]


def _refuses_style(body: Any) -> bool:
    """True when an error body reads like a refusal of the ``response_format`` style
    (LM Studio: "'response_format.type' must be 'json_schema' or 'text'"; llama-cpp-python:
    "... 'response_format', 'type' ... Input should be 'text' or 'json_object'")."""
    text = str(body)
    return "response_format" in text and ("json_schema" in text or "json_object" in text)


class StructuredCall:
    """One request asking for JSON: checks its answers and rewrites it to ask again."""

    def __init__(self, asked: Structured, body: Dict[str, Any], model: str) -> None:
        self.asked = asked
        self.body = body
        self.model = model

    def check(self, done: Completion) -> Tuple[Any, List[str]]:
        """``(value, [])`` for a good answer, else ``(None, errors)``."""
        found, value, errors = find_json(done.text, done.reasoning, self.asked.schema)
        if found:
            return value, []
        if done.finish_reason == "length":
            errors = [*errors, "$: the answer was cut short by max_tokens (finish_reason length)"]
        return None, errors

    def complete(self, call: Callable[[], Completion]) -> Completion:
        """Call until an answer conforms (at most ``1 + retries`` calls)."""
        tries = self.asked.retries + 1
        for attempt in range(1, tries + 1):
            done = call()
            value, errors = self.check(done)
            if not errors:
                return replace(done, parsed=value)
            if attempt == tries:
                raise self.failure(done, errors, tries)
            log.info("model %s: invalid JSON answer (%s); asking again", self.model, errors[0])
            self.ask_again(done, errors)
        raise AssertionError("unreachable")  # pragma: no cover

    def finish(self, done: Completion) -> Completion:
        """The end of a stream: ``done`` with ``parsed``, or the error (no retry)."""
        value, errors = self.check(done)
        if errors:
            raise self.failure(done, errors, 1)
        return replace(done, parsed=value)

    def failure(self, done: Completion, errors: List[str], tries: int) -> SchemaValidationError:
        shown = "; ".join(errors[:3]) + ("; ..." if len(errors) > 3 else "")
        answers = "answer" if tries == 1 else f"{tries} answers"
        return SchemaValidationError(
            f"model {self.model!r} gave no valid JSON for the schema in {answers}: {shown}. "
            "Raise schema_retries, simplify the schema, or try a model that follows schemas "
            "(the error's .errors and .text hold the details)",
            errors=errors,
            text=done.text,
            tries=tries,
            model=self.model,
        )

    def ask_again(self, done: Completion, errors: List[str]) -> None:
        """Show the model its answer and what was wrong with it (chat: two messages;
        plain completion: appended to the prompt)."""
        listed = "; ".join(errors[:_MAX_ERRORS_SHOWN])
        note = f"Your answer failed validation: {listed}; answer again with JSON only."
        said = done.text or done.reasoning
        if "messages" in self.body:
            self.body["messages"] = [
                *self.body["messages"],
                {"role": "assistant", "content": said},
                {"role": "user", "content": note},
            ]
        else:
            self.body["prompt"] = f"{self.body.get('prompt', '')}{said}\n\n{note}\n"


class StructuredMixin:
    """The structured-output side of :class:`~lmstrix.Client`.

    ``schema_style`` forces how JSON is asked for on every call of this client:
    ``"json_schema"`` or ``"json_object"`` (``None``: by the detected server kind, and
    switched once, for the rest of the client's life, if the server refuses it and takes
    the other; when it refuses both, the first refusal is raised).
    """

    schema_style: Optional[str] = None
    _seen_style: Optional[str] = None

    if TYPE_CHECKING:

        @property
        def server_api(self) -> str: ...

    def _structured(self, body: Dict[str, Any], model: str) -> Optional[StructuredCall]:
        """Turn ``body``'s structured-output parameters into the server's
        ``response_format``; ``None`` when no JSON answer is asked."""
        asked = take_structured(body)
        if asked is None:
            return None
        forced = asked.style or self.schema_style
        if forced is not None and forced not in STYLES:
            raise ValueError(f"schema_style must be one of {STYLES}, not {forced!r}")
        style = forced or self._seen_style or style_for(self.server_api)
        body["response_format"] = wire_format(asked, style)
        return StructuredCall(replace(asked, style=forced), body, model)

    def _send_structured(self, call: StructuredCall, send: Callable[[], T]) -> T:
        """``send()``; when the server refuses the ``response_format`` style it was
        guessed to take, switch to the other style (and remember it) and send again."""
        try:
            return send()
        except APIStatusError as exc:
            if call.asked.style is not None or not _refuses_style(exc.body):
                raise
            first = exc
        sent = call.body["response_format"]["type"]
        other = STYLES[1] if sent == STYLES[0] else STYLES[0]
        log.warning("%s refused response_format %s; trying %s", first.url, sent, other)
        call.body["response_format"] = wire_format(call.asked, other)
        try:
            result = send()
        except APIStatusError as exc:
            # Both refused: the error of the style the server kind calls for says more.
            log.warning("%s refused response_format %s too: %s", exc.url, other, exc.message)
            raise first from None
        self._seen_style = other
        return result

    def _send_checked(
        self, body: Dict[str, Any], model: str, send: Callable[[], T], *, stream: bool = False
    ) -> T:
        """``send()`` the request in ``body``; when it asks for JSON, adapt its
        ``response_format`` first and check the answer (a stream: at its end)."""
        call = None if STRUCTURED_KEYS.isdisjoint(body) else self._structured(body, model)
        if call is None:
            return send()
        sender = cast("Callable[[], Any]", send)  # a Completion, or a ChatStream (stream)
        if not stream:
            return cast("T", call.complete(lambda: self._send_structured(call, sender)))
        found = self._send_structured(call, sender)
        found._finish = call.finish
        return cast("T", found)
