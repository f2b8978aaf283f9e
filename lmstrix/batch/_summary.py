"""The outcome of a batch run: :class:`BatchSummary`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

__all__ = ["BatchSummary"]


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of :func:`run_batch`.

    ``total`` items were read; ``done`` of them were written in this run (``failed`` of
    those with an error) and ``skipped`` were already in ``output``. ``order`` is the
    order the items ran in; with ``"prefix"``, ``prefix_share`` is the share of prompt
    text that repeats the previous prompt's head (a prompt-cache hit) in that order and
    ``input_prefix_share`` the same in input order. ``mean_ttft_s`` is the mean time to
    first token the server reported (``None`` when it reports none).
    """

    total: int
    done: int
    skipped: int
    failed: int
    seconds: float
    output: str
    order: str = "input"
    prefix_share: Optional[float] = None
    input_prefix_share: Optional[float] = None
    mean_ttft_s: Optional[float] = None

    @property
    def succeeded(self) -> int:
        """Items answered without error in this run."""
        return self.done - self.failed

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (``seconds`` rounded to milliseconds)."""
        return {
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "succeeded": self.succeeded,
            "seconds": round(self.seconds, 3),
            "output": self.output,
            "order": self.order,
            "prefix_share": _rounded(self.prefix_share),
            "input_prefix_share": _rounded(self.input_prefix_share),
            "mean_ttft_s": _rounded(self.mean_ttft_s),
        }


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 4)
