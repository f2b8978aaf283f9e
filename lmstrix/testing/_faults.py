"""Fault injection for the simulator: what can go wrong, and the book of armed faults."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, List, Optional

__all__ = ["FAULT_KINDS", "STREAM_FAULT_KINDS", "Fault", "FaultBook"]

STREAM_FAULT_KINDS = frozenset(
    {"drop_mid_stream", "truncate_stream", "error_event", "event_error_line", "ping_comments"}
)
"""Kinds that only apply to streaming requests (a non-streaming request skips them)."""

FAULT_KINDS = (
    frozenset({"status", "html_500", "text_502", "reset", "reset_after", "delay", "schema_invalid"})
    | STREAM_FAULT_KINDS
)
"""Every fault kind :class:`Fault` accepts."""


@dataclass(frozen=True)
class Fault:
    """A failure the simulator applies to ``times`` matching requests, after ``skip``.

    ``path`` is matched exactly (``"*"`` matches any path, loads included). The first
    ``skip`` matching requests go through untouched, so ``Fault(path="*", kind=K,
    skip=i)`` (or :meth:`Fault.at`) fails exactly the request at position ``i`` (from 0)
    of whatever the client does. Kinds:

    - ``"status"``: reply ``status`` with a JSON error body (and ``Retry-After`` when set);
    - ``"html_500"``: reply 500 with an HTML page;
    - ``"text_502"``: reply 502 with a ``text/plain`` body, as a proxy in front of the
      server does (``502 Bad Gateway``, or ``message``);
    - ``"reset"``: close the connection (TCP reset) without any response, before the
      request is handled (a load is not done);
    - ``"reset_after"``: handle the request (a load is done, a prompt is processed), then
      close the connection with a reset instead of replying: the reply is lost;
    - ``"delay"``: sleep ``delay_s`` real seconds, then answer normally (past a client's
      read timeout this is a timeout; the server still does the work afterwards);
    - ``"drop_mid_stream"``: send ``after_chunks`` deltas, then close the socket abruptly;
    - ``"truncate_stream"``: send ``after_chunks`` deltas, then end the body cleanly
      with no ``finish_reason`` and no ``[DONE]``;
    - ``"error_event"``: send ``after_chunks`` deltas, then ``data: {"error": {...}}``;
    - ``"event_error_line"``: like ``error_event`` but preceded by an ``event: error`` line;
    - ``"ping_comments"``: interleave ``: ping`` comment lines in an otherwise normal stream;
    - ``"schema_invalid"``: a request asking for JSON with a schema is answered with JSON
      that lacks the first required property (or, with none required, is cut short).

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
    skip: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {sorted(FAULT_KINDS)}")
        if self.times < 1:
            raise ValueError("Fault.times must be at least 1")
        if self.skip < 0:
            raise ValueError("Fault.skip must not be negative")

    @classmethod
    def at(cls, position: int, kind: str, **fields: Any) -> Fault:
        """One fault of ``kind`` at request ``position`` (0 = the next request), any path.

        ``fields`` sets the other fields (``path`` narrows what is counted).
        """
        fields.setdefault("path", "*")
        return cls(kind=kind, skip=position, **fields)

    @classmethod
    def drop_stream_after_chunks(cls, chunks: int, **fields: Any) -> Fault:
        """Cut the next streamed chat answer after ``chunks`` deltas (``drop_mid_stream``).

        The socket is closed abruptly, as when a server restarts or a proxy drops the
        connection; ``fields`` sets the other fields (``times``, ``skip``, ``path``).
        """
        return cls(kind="drop_mid_stream", after_chunks=chunks, **fields)

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
    skip: int


class FaultBook:
    """Armed faults with their remaining counts, first armed first used; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: List[_Armed] = []

    def arm(self, fault: Fault) -> None:
        """Add ``fault``; it applies to ``fault.times`` matching requests after ``skip``."""
        with self._lock:
            self._armed.append(_Armed(fault, fault.times, fault.skip))

    def take(self, path: str, *, streaming: bool) -> Optional[Fault]:
        """Use up one application of the first due fault matching the request, if any.

        Every matching fault still skipping counts the request, whichever fault fires.
        """
        chosen: Optional[_Armed] = None
        with self._lock:
            for entry in self._armed:
                if not entry.fault.matches(path, streaming=streaming):
                    continue
                if entry.skip:
                    entry.skip -= 1
                elif chosen is None:
                    chosen = entry
            if chosen is None:
                return None
            chosen.remaining -= 1
            if not chosen.remaining:
                self._armed.remove(chosen)
            return chosen.fault

    def pending(self) -> List[Fault]:
        """The faults not used up yet, with ``times`` and ``skip`` set to what remains."""
        with self._lock:
            return [
                dataclasses.replace(e.fault, times=e.remaining, skip=e.skip) for e in self._armed
            ]

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()
