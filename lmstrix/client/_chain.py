"""Fallback chains: a list of model keys, tried in order until one answers.

A model is skipped, with no request sent, when the pre-flight fit check says the prompt
cannot fit its tested working context; it is left for the next one when it fails to
load, overflows, is missing, or its server fails. Errors that no other model would
avoid (a bad token) end the chain at once. When every model fails, one
:class:`~lmstrix.errors.FallbackError` names each failure.
"""

from __future__ import annotations

import functools
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    cast,
)

from .._log import logger
from ..errors import APIError, AuthenticationError, FallbackError

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["FitSkip", "ModelChoice", "call_chain", "chain_of", "chainable", "run_chain"]

log = logger(__name__)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
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


def call_chain(
    models: Sequence[str],
    prompt: Any,
    params: Dict[str, Any],
    registry: Optional[Registry],
    server: str,
    call: Callable[[str], T],
) -> T:
    """One server's fallback chain: skip models whose tested working context (in
    ``registry``, for ``server``) cannot hold ``prompt`` plus ``max_tokens``."""
    keys, _ = chain_of(models)

    def skip(key: str) -> Optional[str]:
        if registry is None:
            return None
        from ..registry._fit import fit_problem  # a registry given: its package is loaded

        record = registry.get(key, server=server)
        return fit_problem(record, prompt, params.get("max_tokens"))

    return run_chain(keys, call, skip=skip, where=f" on {server}")


def chainable(method: F) -> F:
    """Make a client method ``(self, model, prompt, **params)`` take a fallback chain:
    a list of keys runs :func:`call_chain` with the client's registry and server.

    ``fit_context=True`` in ``params`` makes sure each model tried is loaded with a
    context that holds the prompt first (``client.fit_context``, in ``_fitcontext.py``).
    """

    @functools.wraps(method)
    def wrapper(self: Any, model: Any, prompt: Any, **params: Any) -> Any:
        fitted = params.pop("fit_context", False)

        def one(key: str) -> Any:
            if fitted:
                self.fit_context(key, prompt, params.get("max_tokens"))
            return method(self, key, prompt, **params)

        if isinstance(model, str):
            return one(model)
        return call_chain(model, prompt, params, self.registry, self.base_url, one)

    return cast(F, wrapper)
