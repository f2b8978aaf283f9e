"""Middleware around the transport: ``m(request, call_next) -> Response``, and retries.

``Client(middleware=[...])`` runs each request through the chain; the retry middleware,
driven by a frozen :class:`RetryPolicy`, is always outermost. See
``docs/user-guide/extending.md``.
"""

from __future__ import annotations

from ._retry import CallNext, Middleware, RetryMiddleware, RetryPolicy, build_chain

__all__ = ["CallNext", "Middleware", "RetryMiddleware", "RetryPolicy", "build_chain"]
