"""`Request`: one HTTP exchange as a plain value, the input of middleware and transports.

A request is built once by the client and passed down the middleware chain to the
transport (see :mod:`lmstrix.middleware`). It is frozen: a middleware that wants to
change it makes a new one with :meth:`Request.replace`. Per-request policy travels in
``extensions`` (a read-only mapping), under the names below, so no flag has to be
threaded through private methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping, Optional

from ..config import Timeout

__all__ = ["LABEL", "OPERATION", "READ_TIMEOUT", "RETRY_IF_SENT", "Request", "frozen_map"]

READ_TIMEOUT = "read_timeout_s"
"""Extension: the read timeout of this request in seconds (a model load waits minutes)."""

RETRY_IF_SENT = "retry_if_sent"
"""Extension: ``False`` when a request that may have reached the server must not be sent
again (a model load that crashed the server is not repeated blindly). Default ``True``."""

OPERATION = "operation"
"""Extension: the client call this request belongs to (``chat``, ``load``, ...)."""

LABEL = "label"
"""Extension: the user or tenant of the call (``Client(label=...)``); absent when unset."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def frozen_map(values: Optional[Mapping[str, Any]] = None) -> Mapping[str, Any]:
    """A read-only copy of ``values`` (the shared empty mapping when there are none)."""
    return MappingProxyType(dict(values)) if values else _EMPTY


@dataclass(frozen=True, repr=False)
class Request:
    """One HTTP request: what a middleware reads and a transport sends.

    ``headers`` and ``extensions`` are read-only mappings; ``body`` is the encoded body
    (``None`` for a GET). ``stream=True`` asks the transport to return as soon as the
    headers arrive and leave the body to ``Response.iter_bytes()``. ``extensions``
    carries per-request policy: :data:`READ_TIMEOUT`, :data:`RETRY_IF_SENT`,
    :data:`OPERATION`, :data:`LABEL`; middleware may add its own names.
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=frozen_map)
    body: Optional[bytes] = None
    timeout: Timeout = field(default_factory=Timeout)
    stream: bool = False
    extensions: Mapping[str, Any] = field(default_factory=frozen_map)

    def __repr__(self) -> str:
        # Headers are left out: the Authorization header carries the API token.
        size = "no body" if self.body is None else f"{len(self.body)} bytes"
        stream = ", stream" if self.stream else ""
        return f"<Request {self.method} {self.url} ({size}{stream})>"

    @property
    def read_timeout_s(self) -> float:
        """The read timeout for this request: its extension, else ``timeout.read_s``."""
        value = self.extensions.get(READ_TIMEOUT)
        return float(value) if value is not None else self.timeout.read_s

    @property
    def retry_if_sent(self) -> bool:
        """False when this request must not be repeated once it may have arrived."""
        return bool(self.extensions.get(RETRY_IF_SENT, True))

    def replace(self, **changes: Any) -> Request:
        """A copy with some fields changed (``headers``/``extensions`` copied read-only)."""
        for name in ("headers", "extensions"):
            if name in changes:
                changes[name] = frozen_map(changes[name])
        return replace(self, **changes)
