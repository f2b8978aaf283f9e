"""Fallback chains: a list of model keys, tried in order until one answers.

A model is skipped, with no request sent, when the pre-flight fit check says the prompt
cannot fit its tested working context; it is left for the next one when it fails to
load, overflows, is missing, or its server fails. Errors that no other model would
avoid (a bad token) end the chain at once. When every model fails, one
:class:`~lmstrix.errors.FallbackError` names each failure.
"""

from __future__ import annotations

import logging
from typing import Callable, List, Optional, Sequence, Tuple, TypeVar, Union

from ..errors import APIError, AuthenticationError, FallbackError

__all__ = ["FitSkip", "ModelChoice", "chain_of", "run_chain"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

T = TypeVar("T")
ModelChoice = Union[str, Sequence[str]]


class FitSkip(Exception):
    """Raised by a call that did not send anything because the prompt cannot fit."""


def chain_of(model: ModelChoice) -> Tuple[List[str], bool]:
    """``(keys, is_chain)``: a single key, or the keys of a list (a fallback chain)."""
    if isinstance(model, str):
        return [model], False
    keys = list(model)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise ValueError("a fallback chain is a non-empty list of model keys")
    return keys, True


def run_chain(
    keys: Sequence[str],
    call: Callable[[str], T],
    *,
    skip: Optional[Callable[[str], Optional[str]]] = None,
    where: str = "",
) -> T:
    """Call ``call(key)`` for each key in turn until one returns.

    ``skip(key)`` returns why a key is skipped without a request (or None). ``call`` may
    raise :class:`FitSkip` for the same. Raises :class:`FallbackError` naming every
    failure when no key answers.
    """
    failures: List[Tuple[str, str]] = []
    errors: List[BaseException] = []
    for key in keys:
        reason = skip(key) if skip is not None else None
        if reason is not None:
            failures.append((key, f"skipped: {reason}"))
            log.info("fallback chain: skipping %s: %s", key, reason)
            continue
        try:
            return call(key)
        except FitSkip as exc:
            failures.append((key, f"skipped: {exc}"))
        except AuthenticationError:
            raise
        except APIError as exc:
            failures.append((key, f"{type(exc).__name__}: {exc}"))
            errors.append(exc)
            log.info("fallback chain: %s failed (%s), trying the next model", key, exc)
    listing = "; ".join(f"{key}: {why}" for key, why in failures)
    raise FallbackError(
        f"every model of the fallback chain failed{where}: {listing}",
        failures=failures,
        errors=errors,
    )
