"""One server of a pool: its client, what it offers and has loaded, its calls, its health.

Everything a routing decision reads is here, under one lock per member: the models the
server offers (refreshed lazily when older than ``refresh_s``, or at once after a call
that may have loaded something), the calls in flight per model (counted on this side,
since the server does not say), and the failures that put the server in a cooldown.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from ..client import Client
from ..errors import APIError
from ..types import ModelInfo

__all__ = ["Member"]


class Member:
    """A server in a :class:`~lmstrix.pool.Pool` and the state routing needs about it."""

    def __init__(
        self,
        client: Client,
        *,
        refresh_s: float,
        allowed_fails: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.refresh_s = refresh_s
        self.allowed_fails = allowed_fails
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._models: Dict[str, ModelInfo] = {}
        self._fetched_at: Optional[float] = None
        self._in_flight: Dict[str, int] = {}
        self._fails = 0
        self._cooled_until = 0.0
        self.last_error = ""

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.client.base_url

    def __repr__(self) -> str:
        return f"<Member {self.url} in_flight={sum(self._in_flight.values())}>"

    # ------------------------------------------------------------------ health

    def healthy(self) -> bool:
        """False while the server is in its cooldown after repeated failures."""
        return self._clock() >= self._cooled_until

    def succeeded(self) -> None:
        """A call went through: the failure count starts again."""
        with self._lock:
            self._fails = 0

    def failed(self, reason: str) -> None:
        """A call failed because of the server (not the request): count it; cool down."""
        with self._lock:
            self._fails += 1
            self.last_error = reason
            if self._fails >= self.allowed_fails:
                self._cooled_until = self._clock() + self.cooldown_s
                self._fails = 0
                self._fetched_at = None  # look again when it is back

    # ------------------------------------------------------------------ models

    def models(self, *, force: bool = False) -> Dict[str, ModelInfo]:
        """The models the server offers, by key (cached for ``refresh_s``).

        Raises:
            APIError: the server could not be asked (counted as a failure).
        """
        with self._lock:
            fresh = self._fetched_at is not None and (
                self._clock() - self._fetched_at < self.refresh_s
            )
            if fresh and not force:
                return self._models
        try:
            found = self.client.list_models()
        except APIError as exc:
            self.failed(str(exc))
            raise
        with self._lock:
            self._models = {info.key: info for info in found}
            self._fetched_at = self._clock()
            return self._models

    def stale(self) -> None:
        """Forget the cached model list (a load, unload or JIT load changed it)."""
        with self._lock:
            self._fetched_at = None

    def find(self, model: str) -> Optional[ModelInfo]:
        """The server's model ``model`` (by key or loaded instance id), or None."""
        models = self.models()
        info = models.get(model)
        if info is not None:
            return info
        for candidate in models.values():
            if any(inst.id == model for inst in candidate.loaded_instances):
                return candidate
        return None

    def slots(self, info: ModelInfo) -> Tuple[int, int]:
        """``(slots, in flight)``: the model's parallel slots loaded here, and calls now."""
        total = sum(inst.parallel or 1 for inst in info.loaded_instances)
        with self._lock:
            return total, self._in_flight.get(info.key, 0)

    # ------------------------------------------------------------------ calls

    def acquire(self, key: str) -> None:
        """Count one more call in flight for ``key``."""
        with self._lock:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def release(self, key: str) -> None:
        """Count one call for ``key`` as finished."""
        with self._lock:
            left = self._in_flight.get(key, 0) - 1
            if left > 0:
                self._in_flight[key] = left
            else:
                self._in_flight.pop(key, None)

    def in_flight(self) -> int:
        """Calls in flight to this server, all models."""
        with self._lock:
            return sum(self._in_flight.values())

    def loaded(self) -> List[str]:
        """Keys of the models with a loaded instance, as last seen."""
        with self._lock:
            return [k for k, info in self._models.items() if info.loaded_instances]
