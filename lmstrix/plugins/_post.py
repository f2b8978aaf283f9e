"""Output post-processors: functions applied to a finished :class:`~lmstrix.Completion`.

A post-processor takes a completion and returns one (a changed copy, or the same). Three
come with lmstrix, and plugins add more by name (``post_processors()``):

- ``strip-reasoning``: a ``<think>...</think>`` block at the start of the text moves to
  ``reasoning`` (models whose server does not separate it);
- ``extract-code``: the text becomes the content of its first fenced code block (the
  text as it was when there is none);
- ``json``: the text must be JSON (a fenced block is unwrapped first); it becomes the
  JSON written compactly, or :class:`PostProcessError` says why not.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any, Callable, Dict, Iterable, Mapping, Sequence

from ..errors import LMStrixError
from ..types import Completion

__all__ = [
    "BUILTIN_POST_PROCESSORS",
    "PostProcessError",
    "PostProcessingClient",
    "PostProcessor",
    "check_names",
    "post_process",
]

PostProcessor = Callable[[Completion], Completion]
"""``post_processor(completion) -> completion``."""

_THINK = re.compile(r"\A\s*<think>(.*?)</think>\s*", re.DOTALL)
_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


class PostProcessError(LMStrixError, ValueError):
    """A post-processor could not apply to an answer (``json`` on text that is no JSON)."""


def strip_reasoning(done: Completion) -> Completion:
    """Move a leading ``<think>...</think>`` block of the text into ``reasoning``."""
    found = _THINK.match(done.text)
    if found is None:
        return done
    reasoning = "\n".join(part for part in (done.reasoning, found.group(1).strip()) if part)
    return replace(done, text=done.text[found.end() :], reasoning=reasoning)


def extract_code(done: Completion) -> Completion:
    """The content of the text's first fenced code block (the text itself if none)."""
    found = _FENCE.search(done.text)
    return done if found is None else replace(done, text=found.group(1))


def as_json(done: Completion) -> Completion:
    """The text as compact JSON; a fenced block is unwrapped first.

    Raises:
        PostProcessError: the text is not JSON.
    """
    text = extract_code(done).text.strip()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PostProcessError(
            f"the answer is not JSON ({exc}): {text[:80]!r}; ask for JSON in the prompt, "
            "or use a schema"
        ) from exc
    return replace(done, text=json.dumps(value, ensure_ascii=False, separators=(",", ":")))


BUILTIN_POST_PROCESSORS: Dict[str, PostProcessor] = {
    "strip-reasoning": strip_reasoning,
    "extract-code": extract_code,
    "json": as_json,
}


def post_process(
    done: Completion, names: Iterable[str], available: Mapping[str, PostProcessor]
) -> Completion:
    """Apply the post-processors ``names``, in order, from ``available``.

    Raises:
        PostProcessError: a name is unknown (the message lists the known ones), or a
            post-processor failed.
    """
    for name in names:
        step = available.get(name)
        if step is None:
            known = ", ".join(sorted(available)) or "none"
            raise PostProcessError(f"no post-processor named {name!r}; known: {known}")
        try:
            done = step(done)
        except PostProcessError:
            raise
        except Exception as exc:  # a plugin's function: name it in the error
            raise PostProcessError(f"post-processor {name!r} failed: {exc}") from exc
    return done


def check_names(names: Iterable[str], available: Mapping[str, PostProcessor]) -> None:
    """Refuse unknown post-processor names before anything is sent.

    Raises:
        PostProcessError: a name is unknown (the message lists the known ones).
    """
    unknown = [name for name in names if name not in available]
    if unknown:
        known = ", ".join(sorted(available)) or "none"
        raise PostProcessError(f"no post-processor named {unknown[0]!r}; known: {known}")


class PostProcessingClient:
    """A chat client whose ``chat`` answers go through post-processors; everything else
    is the wrapped client's (streams are not post-processed: they are shown as they come).
    """

    def __init__(
        self, inner: Any, names: Sequence[str], available: Mapping[str, PostProcessor]
    ) -> None:
        check_names(names, available)
        self._inner = inner
        self._names = tuple(names)
        self._available = available

    def chat(self, model: Any, messages: Any, **params: Any) -> Completion:
        """The wrapped client's answer, post-processed."""
        return post_process(
            self._inner.chat(model, messages, **params), self._names, self._available
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __reduce__(self) -> Any:
        return (PostProcessingClient, (self._inner, self._names, dict(self._available)))
