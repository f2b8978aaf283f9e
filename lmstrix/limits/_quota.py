"""`RateLimit` (token buckets per minute) and `Budget` (tokens per day per label).

Both are middleware: ``Client(middleware=[Budget(...), RateLimit(...)])``. Each counts
a request's estimated tokens (see :func:`~lmstrix.limits.estimate_tokens`) before it is
sent, then replaces the estimate with the usage the server reported once the answer
ended. Give both a ``path`` to share the counts between processes (a SQLite file);
without one they are shared by the threads of this process.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Union

from .._log import logger
from ..errors import QuotaExceededError
from ._facts import INFERENCE, Ended, Facts, facts_of, metered
from ._ledger import Ledger, ledger_for

if TYPE_CHECKING:
    from os import PathLike

    from ..middleware import CallNext
    from ..transport._request import Request
    from ..transport._stdlib import Response

__all__ = ["Budget", "RateLimit"]

log = logger(__name__)


def _settled(facts: Facts, ended: Ended) -> float:
    """Tokens to count for a request that ended: what the server reported, nothing when
    it surely did no work (refused, or never reached), else the estimate."""
    if ended.usage is not None and ended.usage.total_tokens is not None:
        return float(ended.usage.total_tokens)
    if not ended.sent or ended.status >= 400:
        return 0.0
    return float(facts.estimate)


class RateLimit:
    """Token buckets for requests and tokens per minute, waiting when one is empty.

    Args:
        requests_per_minute: requests (chat, completion, embedding) allowed per
            minute, in bursts of up to a minute's worth; ``None``: no limit.
        tokens_per_minute: estimated tokens allowed per minute; ``None``: no limit.
        path: a SQLite file to share the buckets between processes.
        per_label: one pair of buckets per ``Client(label=...)`` instead of one in all.
        max_wait_s: the longest a request waits for its bucket; beyond, it raises
            :class:`~lmstrix.QuotaExceededError` (with ``retry_after_s``) unsent.
        completion_tokens: the answer size assumed when a request has no ``max_tokens``.
    """

    def __init__(
        self,
        requests_per_minute: Optional[float] = None,
        tokens_per_minute: Optional[float] = None,
        *,
        path: Union[str, PathLike[str], None] = None,
        per_label: bool = False,
        max_wait_s: float = 60.0,
        completion_tokens: int = 512,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (("requests", requests_per_minute), ("tokens", tokens_per_minute)):
            if value is not None and value <= 0:
                raise ValueError(f"{name}_per_minute must be positive (or None for no limit)")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.per_label = per_label
        self.max_wait_s = max_wait_s
        self.completion_tokens = completion_tokens
        self._ledger: Ledger = ledger_for(path)
        self._sleep = sleep
        self._clock = clock  # epoch seconds: processes sharing a file share the clock

    def __repr__(self) -> str:
        return (
            f"RateLimit(requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute})"
        )

    def __call__(self, request: Request, call_next: CallNext) -> Response:
        facts = facts_of(request, self.completion_tokens)
        if facts.operation not in INFERENCE:
            return call_next(request)
        scope = f":{facts.label or ''}" if self.per_label else ""
        self._acquire(facts, "requests", scope, self.requests_per_minute, 1.0)
        per_minute = self.tokens_per_minute
        if per_minute is None:
            return call_next(request)
        cost = min(float(facts.estimate), per_minute)  # a request larger than a minute waits one
        self._acquire(facts, "tokens", scope, per_minute, cost)
        tokens = f"tokens{scope}"

        def settle(ended: Ended) -> None:
            delta = _settled(facts, ended) - cost
            if delta:
                self._ledger.take(tokens, per_minute, per_minute / 60.0, delta, True, self._clock())

        return metered(request, call_next, settle)

    def _acquire(
        self, facts: Facts, kind: str, scope: str, per_minute: Optional[float], cost: float
    ) -> None:
        if per_minute is None:
            return
        name = kind + scope
        waited = 0.0
        while True:
            wait = self._ledger.take(
                name, per_minute, per_minute / 60.0, cost, False, self._clock()
            )
            if wait <= 0.0:
                return
            if waited + wait > self.max_wait_s:
                raise QuotaExceededError(
                    f"rate limit of {kind} ({per_minute:g} per minute) reached "
                    f"for label {facts.label!r}; the request would wait {wait:.1f} s more "
                    f"than max_wait_s={self.max_wait_s:g}; nothing was sent",
                    label=facts.label,
                    limit=per_minute,
                    requested=cost,
                    retry_after_s=wait,
                )
            log.debug("rate limit %s: waiting %.2f s", name, wait)
            self._sleep(wait)
            waited += wait

    def close(self) -> None:
        """Close the quota file (if any)."""
        self._ledger.close()


class Budget:
    """Tokens per UTC day per label: a call that would pass it raises before it is sent.

    Args:
        path: a SQLite file to share the totals between processes (``None``: this
            process only).
        tokens_per_day: the budget of every label not in ``labels`` (and of calls
            without a label); ``None``: those are not limited.
        labels: budgets of particular labels, overriding ``tokens_per_day``.
        completion_tokens: the answer size assumed when a request has no ``max_tokens``.

    The estimate is counted before sending (so parallel calls cannot overspend
    together) and replaced by the server's reported usage afterwards; a refused or
    unsent call counts nothing. The totals stay within the budget as long as the
    estimates are not below the real counts: give ``max_tokens`` to make them so.
    """

    def __init__(
        self,
        path: Union[str, PathLike[str], None] = None,
        *,
        tokens_per_day: Optional[float] = None,
        labels: Optional[Mapping[str, float]] = None,
        completion_tokens: int = 512,
    ) -> None:
        self.tokens_per_day = tokens_per_day
        self.labels = dict(labels or {})
        self.completion_tokens = completion_tokens
        self._ledger: Ledger = ledger_for(path)

    def __repr__(self) -> str:
        return f"Budget(tokens_per_day={self.tokens_per_day}, labels={self.labels!r})"

    def limit_of(self, label: Optional[str]) -> Optional[float]:
        """The daily budget of ``label`` (``None``: unlimited)."""
        if label is not None and label in self.labels:
            return self.labels[label]
        return self.tokens_per_day

    def used(self, label: Optional[str] = None) -> float:
        """Tokens counted today for ``label`` (in-flight estimates included)."""
        return self._ledger.used(label or "")

    def remaining(self, label: Optional[str] = None) -> Optional[float]:
        """Tokens left today for ``label`` (``None``: unlimited)."""
        limit = self.limit_of(label)
        return None if limit is None else max(0.0, limit - self.used(label))

    def __call__(self, request: Request, call_next: CallNext) -> Response:
        facts = facts_of(request, self.completion_tokens)
        limit = self.limit_of(facts.label)
        if facts.operation not in INFERENCE or limit is None:
            return call_next(request)
        name = facts.label or ""
        taken, before = self._ledger.reserve(name, limit, float(facts.estimate))
        if not taken:
            raise QuotaExceededError(
                f"daily token budget of label {facts.label!r} reached: {before:g} of "
                f"{limit:g} tokens used today and this call may need {facts.estimate}; "
                "nothing was sent (the budget resets at midnight UTC)",
                label=facts.label,
                limit=limit,
                used=before,
                requested=facts.estimate,
                retry_after_s=86400.0 - time.time() % 86400.0,  # to midnight UTC
            )

        def settle(ended: Ended) -> None:
            delta = _settled(facts, ended) - facts.estimate
            if delta:
                self._ledger.reserve(name, float("inf"), delta)

        return metered(request, call_next, settle)

    def close(self) -> None:
        """Close the quota file (if any)."""
        self._ledger.close()
