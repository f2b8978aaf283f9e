"""Which failures of a context-search step say something about the model, and which not.

A load or a probe can fail for reasons that have nothing to do with the model at that
size: an HTML 500 page, a proxy's text/plain 502, a connection reset, a timeout. Such
a failure is retried (the same step, after a short backoff) and never becomes a
measurement; if it persists the search stops and can be resumed. The rules (also in
``docs/user-guide/context-search.md``, "Transient failures"):

* **load, HTTP 4xx**: a refusal (LM Studio's memory guardrail answers 400 before
  allocating anything): a measurement.
* **load, HTTP 5xx naming a load failure** ("failed to load model", "has crashed",
  "model_load_failed", "out of memory", an exit code): the engine ran and died at that
  size: a measurement (a crash).
* **load, any other 5xx** (an HTML page, a gateway's 502/503/504 text): transient.
* **load, connection reset**: transient if the server still answers afterwards; if
  it is gone, the load took it down: the "attempting N" mark stays in the registry, so
  a resumed search counts it as a crash at N (the machine's safety comes first).
* **load, timeout**: transient (the next attempt may find the model loaded or loading).
* **probe, overflow or truncation**: the instance could not hold the prompt: no
  verdict on the model (:class:`~lmstrix.context._strategy.ProbeOutcome` ``fits``).
* **probe, 5xx or another error status, connection reset**: transient.
* **probe, timeout**: transient, unless every retry times out too: a genuine
  long-prefill timeout, the model's failure at that size.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple, TypeVar

from ..client._errormap import error_message
from ..errors import APIConnectionError, APIStatusError

if TYPE_CHECKING:
    from ..client import Client
    from ..types import ModelInfo

__all__ = [
    "RETRY_DELAYS",
    "get_model",
    "list_models",
    "load_failure_is_measurement",
    "overflow_tokens",
    "retrying",
    "server_text",
]

_T = TypeVar("_T")

RETRY_DELAYS: Tuple[float, ...] = (0.5, 2.0, 5.0)
"""Seconds to wait before each retry of a step that failed transiently (three retries)."""

_LOAD_FAILURE_MARKERS = (
    "failed to load model",
    "has crashed",
    "model_load_failed",
    "out of memory",
    "exit code",
    "exited before becoming healthy",
    "insufficient system resources",
)
_N_KEEP_RE = re.compile(r"n_keep:\s*([0-9]+)")


def server_text(exc: APIStatusError) -> str:
    """What the server itself said (its error message, or the raw body)."""
    message = error_message(exc.body)
    if message is not None:
        return message
    return str(exc.body or "")


def load_failure_is_measurement(exc: APIStatusError) -> Tuple[bool, bool]:
    """``(measurement, refused)`` for a failed load: is it the model failing at that
    size, and was it a refusal before anything was allocated (4xx)?"""
    if 400 <= exc.status_code < 500:
        return True, True
    text = server_text(exc).lower()
    return any(m in text for m in _LOAD_FAILURE_MARKERS), False


def overflow_tokens(exc: APIStatusError) -> Optional[int]:
    """The prompt size an overflow error names (llama.cpp's ``n_keep: N``), if any."""
    match = _N_KEEP_RE.search(server_text(exc))
    return int(match.group(1)) if match else None


def retrying(step: Callable[[bool], Optional[_T]], delays: Sequence[float]) -> Optional[_T]:
    """Run ``step`` until it gives an outcome (None is a transient failure), sleeping
    each of ``delays`` between tries; ``step(True)`` is the last try. None when every
    try failed."""
    for attempt in range(len(delays) + 1):
        outcome = step(attempt == len(delays))
        if outcome is not None:
            return outcome
        if attempt < len(delays):
            time.sleep(delays[attempt])
    return None


def _retried(call: Callable[[], _T], delays: Sequence[float]) -> _T:
    """``call()``, retried after a reset, a timeout or a 5xx (a 4xx is raised at once)."""

    def once(last: bool) -> Optional[_T]:
        try:
            return call()
        except (APIConnectionError, APIStatusError) as exc:
            if last or (isinstance(exc, APIStatusError) and exc.status_code < 500):
                raise
            return None

    result = retrying(once, delays)
    assert result is not None  # the last try raises rather than give None
    return result


def get_model(client: Client, key: str, delays: Sequence[float]) -> ModelInfo:
    """``client.get_model(key)``, retried after a reset, a timeout or a 5xx."""
    return _retried(lambda: client.get_model(key), delays)


def list_models(client: Client, delays: Sequence[float]) -> List[ModelInfo]:
    """``client.list_models()``, retried after a reset, a timeout or a 5xx."""
    return _retried(client.list_models, delays)
