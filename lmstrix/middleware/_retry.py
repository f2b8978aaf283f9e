"""Seam A: the middleware chain around a transport, and the one retry policy.

A middleware is any callable ``m(request, call_next) -> Response``: it may read or
replace the :class:`~lmstrix.Request`, call ``call_next(request)`` zero or more times,
and read or replace the response. ``Client(middleware=[m1, m2])`` builds the chain once:
the retry middleware outermost, then ``m1``, ``m2``, then the transport. So your
middleware sees every attempt that goes on the wire, retries included.

Retries live here and nowhere else. :class:`RetryPolicy` is a frozen value in the
shape of urllib3's ``Retry``: each retry makes a new policy with :meth:`~RetryPolicy.increment`.
A transport does not retry; the stdlib transport only replaces a pooled keep-alive
connection that the server closed while it sat idle (connection management: the
request never reached the server), which is not a retry of the request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, FrozenSet, Optional, Sequence

from .._log import logger
from ..errors import APIConnectionError

if TYPE_CHECKING:
    from ..transport._request import Request
    from ..transport._stdlib import Response

__all__ = ["CallNext", "Middleware", "RetryMiddleware", "RetryPolicy", "build_chain"]

log = logger(__name__)

CallNext = Callable[["Request"], "Response"]
"""The rest of the chain: send ``request`` on and return the response."""

Middleware = Callable[["Request", CallNext], "Response"]
"""``m(request, call_next) -> Response``."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to send a request again, and how long to wait first (a frozen value).

    ``total`` bounds all retries; ``connect`` those of failures where the request
    surely did not reach the server; ``read`` those of connections that broke after it
    may have (never for a timeout, never for a request marked not to be repeated, such
    as a model load); ``status`` those of answers with a status in ``statuses``.
    ``None`` means bounded by ``total`` only. The n-th retry waits
    ``min(backoff_max_s, backoff_factor_s * 2**n)`` scaled by a random factor in
    ``[1 - jitter, 1]``, or the server's ``Retry-After`` up to ``retry_after_max_s``.
    """

    total: int = 2
    connect: Optional[int] = None
    read: Optional[int] = None
    status: Optional[int] = None
    statuses: FrozenSet[int] = frozenset((429, 503))
    backoff_factor_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 60.0
    jitter: float = 0.5
    retries_done: int = 0

    @classmethod
    def from_client_options(
        cls, max_retries: int, backoff_s: float = 0.5, max_s: float = 8.0
    ) -> RetryPolicy:
        """The policy behind ``Client(max_retries=, retry_backoff_s=, retry_max_s=)``."""
        return cls(
            total=max(0, int(max_retries)),
            backoff_factor_s=backoff_s,
            backoff_max_s=max_s,
            retry_after_max_s=max(max_s, 60.0),
        )

    @property
    def exhausted(self) -> bool:
        """True when a count went below zero: the last failure is final."""
        counts = (self.total, self.connect, self.read, self.status)
        return any(c is not None and c < 0 for c in counts)

    def error_kind(self, exc: APIConnectionError, request: Request) -> Optional[str]:
        """``"connect"`` or ``"read"`` when ``exc`` may be retried for ``request``, else None."""
        if not exc.sent:
            return "connect"
        if isinstance(exc, TimeoutError) or not request.retry_if_sent:
            return None
        return "read"

    def increment(self, kind: str) -> RetryPolicy:
        """The policy after one more retry of ``kind`` (``connect``, ``read`` or ``status``)."""
        current = getattr(self, kind)
        return replace(
            self,
            total=self.total - 1,
            retries_done=self.retries_done + 1,
            **({kind: current - 1} if current is not None else {}),
        )

    def backoff_s(self, retry_after: Optional[str] = None) -> float:
        """Seconds to wait before the next retry (``retry_after``: the header's value)."""
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = -1.0
            if seconds >= 0:
                return min(seconds, self.retry_after_max_s)
        import random  # on first use: `import lmstrix` stays light

        base = min(self.backoff_max_s, self.backoff_factor_s * (2.0**self.retries_done))
        return base * (1.0 - self.jitter * random.random())  # jitter spreads out clients


class RetryMiddleware:
    """The one retry loop: sends again what ``policy`` allows, waiting as it says."""

    def __init__(self, policy: RetryPolicy, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"RetryMiddleware({self.policy!r})"

    def __call__(self, request: Request, call_next: CallNext) -> Response:
        policy = self.policy
        while True:
            try:
                response = call_next(request)
            except APIConnectionError as exc:
                kind = policy.error_kind(exc, request)
                if kind is None:
                    raise
                after = policy.increment(kind)
                if after.exhausted:
                    raise
                delay = policy.backoff_s()
            else:
                if response.status_code not in policy.statuses:
                    return response
                after = policy.increment("status")
                if after.exhausted:
                    return response
                retry_after = response.headers.get("retry-after")
                response.close()
                delay = policy.backoff_s(retry_after)
            log.info("retrying %s %s in %.2f s", request.method, request.url, delay)
            self._sleep(delay)
            policy = after


def build_chain(middleware: Sequence[Middleware], send: CallNext) -> CallNext:
    """Compose ``middleware`` (first outermost) around ``send`` into one callable, once."""
    handler = send
    for outer in reversed(middleware):
        handler = _link(outer, handler)
    return handler


def _link(outer: Middleware, inner: CallNext) -> CallNext:
    def call(request: Request) -> Response:
        return outer(request, inner)

    return call
