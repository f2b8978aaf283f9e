"""In-process metrics of model calls: an observer with counters and fixed-bucket histograms.

:class:`Metrics` keeps, per server, model and operation, the number of calls, errors by
kind, tokens in and out, and histograms of latency, time to first token and prefill and
decode speeds. Percentiles are estimated from the fixed buckets (linear inside a bucket,
clamped to the smallest and largest value seen), so memory stays constant however many
calls are made. Everything is guarded by one lock: one ``Metrics`` may observe many
clients in many threads.
"""

from __future__ import annotations

import bisect
import math
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

if TYPE_CHECKING:
    from ..client._calls import CallEvent

__all__ = ["Histogram", "Metrics"]


PERCENTILES = (50, 90, 95, 99)

SECONDS_BUCKETS: Tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
RATE_BUCKETS: Tuple[float, ...] = (
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    500.0,
    1000.0,
    2000.0,
    5000.0,
    10000.0,
    50000.0,
    100000.0,
)

# (snapshot key, Prometheus name, help text, buckets)
_HISTOGRAMS: Tuple[Tuple[str, str, str, Tuple[float, ...]], ...] = (
    ("latency_s", "lmstrix_call_duration_seconds", "Duration of a model call.", SECONDS_BUCKETS),
    (
        "time_to_first_token_s",
        "lmstrix_time_to_first_token_seconds",
        "Time from the request to the first token.",
        SECONDS_BUCKETS,
    ),
    (
        "prefill_tokens_per_s",
        "lmstrix_prefill_tokens_per_second",
        "Prompt tokens over the time to the first token.",
        RATE_BUCKETS,
    ),
    (
        "decode_tokens_per_s",
        "lmstrix_decode_tokens_per_second",
        "Generated tokens per second after the first token.",
        RATE_BUCKETS,
    ),
)
# (snapshot key, Prometheus name, help text)
_COUNTERS = (
    ("calls", "lmstrix_calls_total", "Model calls made."),
    ("input_tokens", "lmstrix_input_tokens_total", "Prompt tokens the server reported."),
    ("output_tokens", "lmstrix_output_tokens_total", "Generated tokens the server reported."),
)

Key = Tuple[str, str, str]  # server, model, operation


class Histogram:
    """Counts of values in fixed buckets (upper bounds, plus one for the rest). Not locked:
    :class:`Metrics` guards it."""

    __slots__ = ("bounds", "count", "counts", "max", "min", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Count one value."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def percentile(self, q: float) -> Optional[float]:
        """The ``q``-th percentile (0-100) estimated from the buckets; ``None`` when empty."""
        if not self.count:
            return None
        rank = q / 100.0 * self.count
        seen = 0
        for index, in_bucket in enumerate(self.counts):
            if in_bucket and seen + in_bucket >= rank:
                low = self.bounds[index - 1] if index else self.min
                high = self.bounds[index] if index < len(self.bounds) else self.max
                low, high = max(low, self.min), min(high, self.max)
                value = low + (high - low) * (rank - seen) / in_bucket
                return min(max(value, self.min), self.max)
            seen += in_bucket
        return self.max  # pragma: no cover - rank never passes the count

    def summary(self) -> Dict[str, Any]:
        """Count, sum, min, max, mean and the percentiles of :data:`PERCENTILES`."""
        out: Dict[str, Any] = {
            "count": self.count,
            "sum": self.sum,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "mean": self.sum / self.count if self.count else None,
        }
        for q in PERCENTILES:
            out[f"p{q}"] = self.percentile(q)
        return out


class _Series:
    __slots__ = ("calls", "errors", "histograms", "input_tokens", "outcomes", "output_tokens")

    def __init__(self) -> None:
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.errors: Dict[str, int] = {}
        self.outcomes: Dict[str, int] = {}
        self.histograms = {key: Histogram(bounds) for key, _, _, bounds in _HISTOGRAMS}


class Metrics:
    """An observer counting calls per server, model and operation (``Client(observers=[m])``).

    ``snapshot()`` gives the figures as a dictionary, ``prometheus()`` in Prometheus' text
    exposition format. Errors are counted by kind (the exception's class name). A stream
    closed before its end counts as a call with outcome ``closed``, not as an error.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: Dict[Key, _Series] = {}

    def __repr__(self) -> str:
        with self._lock:
            calls = sum(s.calls for s in self._series.values())
        return f"Metrics(series={len(self._series)}, calls={calls})"

    def __call__(self, event: CallEvent) -> None:
        """Count one finished call."""
        key = (event.server, event.model or "", event.operation)
        usage = event.usage
        values = (
            ("latency_s", event.total_s),
            ("time_to_first_token_s", event.time_to_first_token_s),
            ("prefill_tokens_per_s", event.prefill_tokens_per_s),
            ("decode_tokens_per_s", event.decode_tokens_per_s),
        )
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            series.calls += 1
            series.outcomes[event.outcome] = series.outcomes.get(event.outcome, 0) + 1
            if event.error is not None:
                kind = type(event.error).__name__
                series.errors[kind] = series.errors.get(kind, 0) + 1
            if usage is not None:
                series.input_tokens += usage.prompt_tokens or 0
                series.output_tokens += usage.completion_tokens or 0
            for name, value in values:
                if value is not None and math.isfinite(value):
                    series.histograms[name].add(value)

    def reset(self) -> None:
        """Forget every figure."""
        with self._lock:
            self._series.clear()

    def snapshot(self) -> Dict[str, Any]:
        """The figures so far: ``{"series": [...], "totals": {...}}``.

        Each series has ``server``, ``model``, ``operation``, ``calls``, ``errors`` (by
        kind), ``outcomes``, ``input_tokens``, ``output_tokens`` and, for
        ``latency_s``, ``time_to_first_token_s``, ``prefill_tokens_per_s`` and
        ``decode_tokens_per_s``, a summary with ``count``, ``sum``, ``min``, ``max``,
        ``mean``, ``p50``, ``p90``, ``p95`` and ``p99`` (``None`` where nothing was seen).
        """
        with self._lock:
            rows: List[Dict[str, Any]] = []
            for (server, model, operation), s in sorted(self._series.items()):
                row: Dict[str, Any] = {
                    "server": server,
                    "model": model,
                    "operation": operation,
                    "calls": s.calls,
                    "errors": dict(sorted(s.errors.items())),
                    "outcomes": dict(sorted(s.outcomes.items())),
                    "input_tokens": s.input_tokens,
                    "output_tokens": s.output_tokens,
                }
                for name, histogram in s.histograms.items():
                    row[name] = histogram.summary()
                rows.append(row)
        totals = {
            "calls": sum(r["calls"] for r in rows),
            "errors": sum(sum(r["errors"].values()) for r in rows),
            "input_tokens": sum(r["input_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
        }
        return {"series": rows, "totals": totals}

    def prometheus(self) -> str:
        """The figures in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            items = sorted(self._series.items())
            lines: List[str] = []
            for attr, name, help_text in _COUNTERS:
                _header(lines, name, help_text, "counter")
                for key, s in items:
                    lines.append(f"{name}{_labels(key)} {getattr(s, attr)}")
            _header(lines, "lmstrix_errors_total", "Failed model calls, by kind.", "counter")
            for key, s in items:
                for kind, n in sorted(s.errors.items()):
                    lines.append(f"lmstrix_errors_total{_labels(key, ('kind', kind))} {n}")
            for attr, name, help_text, _ in _HISTOGRAMS:
                _header(lines, name, help_text, "histogram")
                for key, s in items:
                    _histogram_lines(lines, name, key, s.histograms[attr])
        return "\n".join(lines) + "\n"


def _header(lines: List[str], name: str, help_text: str, kind: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _histogram_lines(lines: List[str], name: str, key: Key, histogram: Histogram) -> None:
    running = 0
    for bound, n in zip(histogram.bounds, histogram.counts):
        running += n
        lines.append(f"{name}_bucket{_labels(key, ('le', _number(bound)))} {running}")
    lines.append(f"{name}_bucket{_labels(key, ('le', '+Inf'))} {histogram.count}")
    lines.append(f"{name}_sum{_labels(key)} {_number(histogram.sum)}")
    lines.append(f"{name}_count{_labels(key)} {histogram.count}")


def _labels(key: Key, *extra: Tuple[str, str]) -> str:
    pairs = (("server", key[0]), ("model", key[1]), ("operation", key[2]), *extra)
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value))
