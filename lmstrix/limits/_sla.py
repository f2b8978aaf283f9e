"""`SLAWatch`: an observer raising events when p95 time to first token or the error rate
passes a threshold.

``Client(observers=[SLAWatch(on_event, ttft_p95_s=2.0, error_rate=0.05)])``. It keeps
the last ``window`` calls of each server and model; once it has ``min_calls`` of them,
it calls ``on_event`` with an :class:`SLAEvent` when a figure passes its threshold
(``breached=True``), and once more when it is back within it (``breached=False``).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from .._log import logger

__all__ = ["SLAEvent", "SLAWatch", "percentile"]

log = logger(__name__)

_WATCHED = frozenset(("chat", "completion", "embedding", "respond"))


@dataclass(frozen=True)
class SLAEvent:
    """A figure of one server and model passed its threshold, or came back within it.

    ``kind`` is ``"ttft_p95"`` (seconds) or ``"error_rate"`` (a fraction);
    ``calls`` is how many recent calls the figure was measured on.
    """

    kind: str
    server: str
    model: Optional[str]
    value: float
    threshold: float
    calls: int
    breached: bool


def percentile(values: List[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in 0..1; not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class _Window:
    def __init__(self, size: int) -> None:
        self.ttft: Deque[float] = deque(maxlen=size)
        self.failed: Deque[bool] = deque(maxlen=size)
        self.breached: Dict[str, bool] = {"ttft_p95": False, "error_rate": False}


class SLAWatch:
    """An observer (``Client(observers=[...])``) watching p95 time to first token and
    the error rate of each server and model over its last ``window`` calls.

    Args:
        on_event: called with each :class:`SLAEvent` (in the thread that made the call).
        ttft_p95_s: the p95 time to first token, in seconds, not to pass (``None``: not
            watched). Calls whose time to first token is unknown do not count.
        error_rate: the fraction of failed calls not to pass (``None``: not watched).
            A stream closed by the caller is no failure.
        window: how many recent calls each figure is measured on.
        min_calls: how many calls are needed before a figure is judged.
    """

    def __init__(
        self,
        on_event: Callable[[SLAEvent], Any],
        *,
        ttft_p95_s: Optional[float] = None,
        error_rate: Optional[float] = None,
        window: int = 100,
        min_calls: int = 20,
    ) -> None:
        if window < 1 or min_calls < 1:
            raise ValueError("window and min_calls must be at least 1")
        self.on_event = on_event
        self.ttft_p95_s = ttft_p95_s
        self.error_rate = error_rate
        self.window = window
        self.min_calls = min(min_calls, window)
        self._lock = threading.Lock()
        self._windows: Dict[Tuple[str, Optional[str]], _Window] = {}

    def __repr__(self) -> str:
        return f"SLAWatch(ttft_p95_s={self.ttft_p95_s}, error_rate={self.error_rate})"

    def __call__(self, event: Any) -> None:
        """Take one :class:`~lmstrix.CallEvent`."""
        if getattr(event, "operation", None) not in _WATCHED:
            return
        server, model = str(event.server), event.model
        ttft = event.time_to_first_token_s
        events: List[SLAEvent] = []
        with self._lock:
            window = self._windows.get((server, model))
            if window is None:
                window = self._windows[(server, model)] = _Window(self.window)
            window.failed.append(event.outcome == "error")
            if ttft is not None:
                window.ttft.append(float(ttft))
            if self.error_rate is not None and len(window.failed) >= self.min_calls:
                rate = sum(window.failed) / len(window.failed)
                events += self._judge(window, "error_rate", rate, self.error_rate, server, model)
            if self.ttft_p95_s is not None and len(window.ttft) >= self.min_calls:
                p95 = percentile(list(window.ttft), 0.95)
                events += self._judge(window, "ttft_p95", p95, self.ttft_p95_s, server, model)
        for sla_event in events:
            try:
                self.on_event(sla_event)
            except Exception:
                log.exception("SLA event handler failed on %s", sla_event)

    def _judge(
        self,
        window: _Window,
        kind: str,
        value: float,
        threshold: float,
        server: str,
        model: Optional[str],
    ) -> List[SLAEvent]:
        breached = value > threshold
        if breached == window.breached[kind]:
            return []
        window.breached[kind] = breached
        calls = len(window.failed if kind == "error_rate" else window.ttft)
        return [SLAEvent(kind, server, model, value, threshold, calls, breached)]
