"""Fault injection for the simulator: what can go wrong, and the book of armed faults."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import List, Optional

__all__ = ["FAULT_KINDS", "STREAM_FAULT_KINDS", "Fault", "FaultBook"]

STREAM_FAULT_KINDS = frozenset(
    {"drop_mid_stream", "truncate_stream", "error_event", "event_error_line", "ping_comments"}
)
"""Kinds that only apply to streaming requests (a non-streaming request skips them)."""

FAULT_KINDS = frozenset({"status", "html_500", "reset", "delay"}) | STREAM_FAULT_KINDS
"""Every fault kind :class:`Fault` accepts."""


@dataclass(frozen=True)
class Fault:
    """A failure the simulator applies to the next ``times`` matching requests.

    ``path`` is matched exactly (``"*"`` matches any path). Kinds:

    - ``"status"``: reply ``status`` with a JSON error body (and ``Retry-After`` when set);
    - ``"html_500"``: reply 500 with an HTML page;
    - ``"reset"``: close the connection (TCP reset) without any response;
    - ``"delay"``: sleep ``delay_s`` real seconds, then answer normally;
    - ``"drop_mid_stream"``: send ``after_chunks`` deltas, then close the socket abruptly;
    - ``"truncate_stream"``: send ``after_chunks`` deltas, then end the body cleanly
      with no ``finish_reason`` and no ``[DONE]``;
    - ``"error_event"``: send ``after_chunks`` deltas, then ``data: {"error": {...}}``;
    - ``"event_error_line"``: like ``error_event`` but preceded by an ``event: error`` line;
    - ``"ping_comments"``: interleave ``: ping`` comment lines in an otherwise normal stream.

    The stream kinds only match streaming requests.
    """

    path: str = "/v1/chat/completions"
    kind: str = "status"
    times: int = 1
    status: int = 503
    retry_after: Optional[float] = None
    after_chunks: int = 2
    delay_s: float = 0.0
    message: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {sorted(FAULT_KINDS)}")
        if self.times < 1:
            raise ValueError("Fault.times must be at least 1")

    @property
    def error_message(self) -> str:
        """The message put in the error body or event."""
        return self.message or f"Simulated fault ({self.kind}) on {self.path}"

    def matches(self, path: str, *, streaming: bool) -> bool:
        """Return True when this fault applies to a request for ``path``."""
        if self.path not in ("*", path):
            return False
        return streaming or self.kind not in STREAM_FAULT_KINDS


@dataclass
class _Armed:
    fault: Fault
    remaining: int


class FaultBook:
    """Armed faults with their remaining counts, first armed first used; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: List[_Armed] = []

    def arm(self, fault: Fault) -> None:
        """Add ``fault``; it applies to the next ``fault.times`` matching requests."""
        with self._lock:
            self._armed.append(_Armed(fault, fault.times))

    def take(self, path: str, *, streaming: bool) -> Optional[Fault]:
        """Use up one application of the first fault matching the request, if any."""
        with self._lock:
            for entry in self._armed:
                if entry.fault.matches(path, streaming=streaming):
                    entry.remaining -= 1
                    if not entry.remaining:
                        self._armed.remove(entry)
                    return entry.fault
        return None

    def pending(self) -> List[Fault]:
        """The faults not used up yet, each with ``times`` set to what remains."""
        with self._lock:
            return [dataclasses.replace(e.fault, times=e.remaining) for e in self._armed]

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()
