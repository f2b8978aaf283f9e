"""A client sent to another process (a batch's calls on a process pool or a Dask cluster).

A :class:`~lmstrix.Client` pickles as its settings: server, token, timeouts, retries.
Its connections, middleware and observers stay in the process that made it. On the
other side, one client per distinct settings is made and then reused by every call that
process runs, so its connections are kept alive across calls.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, Tuple

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["client_settings", "rebuilt"]

_MADE: Dict[Tuple[Any, ...], Client] = {}
_LOCK = threading.Lock()


def client_settings(client: Client) -> Tuple[Any, ...]:
    """What a client is made from, as a hashable tuple (the token included)."""
    auth = client._headers.get("Authorization", "")
    token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
    return (client.base_url, token, client.timeout, client.strict_model, client.retry_policy)


def rebuilt(settings: Tuple[Any, ...]) -> Client:
    """The client of this process for ``settings`` (made on first use, then reused)."""
    from ._client import Client

    with _LOCK:
        client = _MADE.get(settings)
        if client is None:
            base_url, token, timeout, strict, retry = settings
            client = Client(
                base_url, api_token=token, timeout=timeout, strict_model=strict, retry=retry
            )
            _MADE[settings] = client
        return client
