"""What one batch item's call needs: the call itself, its pacing, and how its failure counts."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, List, Mapping

from ..errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ContextOverflowError,
    ModelNotFoundError,
)

if TYPE_CHECKING:
    from ..client._client import Client
    from ..types import Completion

__all__ = ["RateLimiter", "chat", "error_dict", "is_fatal", "now", "retryable"]


def chat(
    client: Client, model: str, messages: List[Mapping[str, Any]], params: Dict[str, Any]
) -> Completion:
    """One item's call, as run on an executor (a module-level function, so it pickles)."""
    return client.chat(model, messages, **params)


class RateLimiter:
    """Spaces requests ``60 / rpm`` seconds apart across threads."""

    def __init__(self, rpm: float) -> None:
        self.interval = 60.0 / rpm
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> bool:
        """Wait for this thread's turn; False when ``stop`` was set meanwhile."""
        with self._lock:
            now = time.monotonic()
            turn = max(now, self._next)
            self._next = turn + self.interval
        return not stop.wait(turn - now) if turn > now else not stop.is_set()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def error_dict(exc: BaseException) -> Dict[str, Any]:
    error: Dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, APIStatusError):
        error["status_code"] = exc.status_code
    return error


def is_fatal(exc: BaseException) -> bool:
    """Errors about the whole batch, not this item: every other item would fail too."""
    if isinstance(exc, (AuthenticationError, ModelNotFoundError)):
        return True
    return isinstance(exc, APIConnectionError) and not isinstance(exc, TimeoutError)


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, ContextOverflowError):
        return False
    if isinstance(exc, APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, APIConnectionError)
