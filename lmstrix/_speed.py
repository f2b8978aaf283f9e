"""The speed profile of a model, from the probes a context search sends anyway.

Each answered probe gives one :class:`SpeedPoint`: how fast the server read the prompt
(prefill, tokens per second) and wrote the answer (decode, tokens per second) at that
prompt size. No extra request is made. The figures come from the server when it sends
them (llama.cpp's ``timings``; LM Studio's ``stats`` with ``time_to_first_token``) and
otherwise from the client's clock: then the prefill rate is the prompt's new tokens over
the whole request time (a lower bound) and the decode rate is unknown.

Servers that keep the previous prompt's cache (LM Studio, llama.cpp) only process what
follows the shared prefix, so the prefill rate is computed over the tokens *new* to the
cache, estimated from the characters the probe shares with the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

from ._coerce import float_or_none as _float
from ._coerce import int_or_none as _int
from ._coerce import str_or_none as _str
from ._fingerprint import server_version_of

if TYPE_CHECKING:
    from .types import Completion

__all__ = ["SpeedLog", "SpeedPoint", "shared_prefix", "speed_point", "speed_summary"]


@dataclass(frozen=True)
class SpeedPoint:
    """Prefill and decode speed at one prompt size.

    ``prompt_tokens`` is the prompt's size (the server's count); ``new_tokens`` how many of
    them the server had to process (the rest was cached); ``prefill_tps`` and
    ``decode_tps`` are tokens per second (``None`` when unknown); ``source`` is
    ``"server"`` or ``"client"`` (timed by lmstrix, less exact).
    """

    prompt_tokens: int
    new_tokens: int
    prefill_tps: Optional[float] = None
    decode_tps: Optional[float] = None
    source: str = "server"

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "prefill_tps": self.prefill_tps,
            "decode_tps": self.decode_tps,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpeedPoint:
        """Build from :meth:`to_dict` output; bad values read as ``None`` (or 0)."""
        return cls(
            prompt_tokens=_int(data.get("prompt_tokens")) or 0,
            new_tokens=_int(data.get("new_tokens")) or 0,
            prefill_tps=_float(data.get("prefill_tps")),
            decode_tps=_float(data.get("decode_tps")),
            source=_str(data.get("source")) or "server",
        )


def shared_prefix(before: str, after: str) -> int:
    """The number of leading characters ``before`` and ``after`` share."""
    limit = min(len(before), len(after))
    step = 4096
    start = 0
    while start < limit and before[start : start + step] == after[start : start + step]:
        start += step
    start = min(start, limit)
    # The first differing block is scanned character by character.
    end = min(start + step, limit)
    while start < end and before[start] == after[start]:
        start += 1
    return start


def _rate(tokens: Optional[float], seconds: Optional[float]) -> Optional[float]:
    if tokens is None or seconds is None or tokens <= 0 or seconds <= 0:
        return None
    return round(tokens / seconds, 1)


def speed_point(
    answer: Completion, prompt_tokens: int, new_tokens: int, elapsed: float
) -> SpeedPoint:
    """One :class:`SpeedPoint` from an answered probe.

    ``prompt_tokens`` is the server's count of the prompt, ``new_tokens`` the estimate of
    those not in the server's cache, ``elapsed`` the request's wall time in seconds.
    """
    new_tokens = max(1, min(new_tokens, prompt_tokens))
    timings = answer.raw.get("timings")
    if isinstance(timings, Mapping):  # llama.cpp: exact counts and rates
        processed = _int(timings.get("prompt_n"))
        prefill = _float(timings.get("prompt_per_second"))
        decode = _float(timings.get("predicted_per_second"))
        if prefill is not None or decode is not None:
            return SpeedPoint(
                prompt_tokens,
                processed if processed is not None else new_tokens,
                None if prefill is None else round(prefill, 1),
                None if decode is None else round(decode, 1),
                "server",
            )
    stats = answer.stats
    if stats.source == "server" and stats.time_to_first_token_s is not None:
        return SpeedPoint(
            prompt_tokens,
            new_tokens,
            _rate(new_tokens, stats.time_to_first_token_s),
            None if stats.tokens_per_second is None else round(stats.tokens_per_second, 1),
            "server",
        )
    return SpeedPoint(prompt_tokens, new_tokens, _rate(new_tokens, elapsed), None, "client")


def speed_summary(points: Sequence[SpeedPoint], *, rows: int = 6) -> List[Dict[str, Any]]:
    """A short table of how the model slows as the context fills, for ``show``.

    One row per distinct prompt size (the best figures seen there, since a busy machine
    only makes a probe slower), at most ``rows`` rows spread over the sizes, smallest
    first. Each row is ``{prompt_tokens, prefill_tps, decode_tps, source}``; the last row
    also has ``prefill_ratio``/``decode_ratio``: its rate over the first row's, so 0.5
    means half as fast as with a small prompt.
    """
    best: Dict[int, SpeedPoint] = {}
    for point in points:
        old = best.get(point.prompt_tokens)
        if old is None or _key(point) > _key(old):
            best[point.prompt_tokens] = point
    ordered = [best[size] for size in sorted(best)]
    if len(ordered) > rows > 1:
        step = (len(ordered) - 1) / (rows - 1)
        ordered = [ordered[round(i * step)] for i in range(rows)]
    table = [
        {
            "prompt_tokens": p.prompt_tokens,
            "prefill_tps": p.prefill_tps,
            "decode_tps": p.decode_tps,
            "source": p.source,
        }
        for p in ordered
    ]
    if len(ordered) > 1:
        first, last = ordered[0], ordered[-1]
        table[-1]["prefill_ratio"] = _ratio(first.prefill_tps, last.prefill_tps)
        table[-1]["decode_ratio"] = _ratio(first.decode_tps, last.decode_tps)
    return table


def _ratio(first: Optional[float], last: Optional[float]) -> Optional[float]:
    return round(last / first, 3) if first and last else None


def _key(point: SpeedPoint) -> float:
    return (point.prefill_tps or 0.0) + (point.decode_tps or 0.0)


class SpeedLog:
    """Collects :class:`SpeedPoint` figures over a search, one per answered probe.

    It remembers the last prompt sent to each instance, to estimate how many of a new
    prompt's tokens were already in the server's cache (the shared prefix).
    """

    def __init__(self) -> None:
        self.points: List[SpeedPoint] = []
        self._last: Dict[str, str] = {}
        self.server_version: Optional[str] = None

    def note(
        self,
        instance: str,
        text: str,
        answer: Completion,
        prompt_tokens: Optional[int],
        elapsed: float,
        chars_per_token: float,
    ) -> None:
        """Record the probe ``text`` sent to ``instance`` and answered by ``answer``."""
        self.server_version = server_version_of(answer) or self.server_version
        previous = self._last.get(instance, "")
        self._last[instance] = text
        if not prompt_tokens:
            return
        cached = int(shared_prefix(previous, text) / max(chars_per_token, 0.1))
        self.points.append(speed_point(answer, prompt_tokens, prompt_tokens - cached, elapsed))
