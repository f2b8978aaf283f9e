"""``DownloadJob``: one model download as LM Studio 0.4+ reports it (``/api/v1/models/download``).

Plain data built from the server's answer; no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from .._coerce import float_or_none, int_or_none, str_or_none

__all__ = ["DOWNLOAD_STATUSES", "FINAL_STATUSES", "DownloadJob"]

DOWNLOAD_STATUSES = ("downloading", "paused", "completed", "failed", "already_downloaded")
"""The ``status`` values LM Studio reports for a download."""

FINAL_STATUSES = frozenset(("completed", "failed", "already_downloaded"))
"""The statuses after which a job changes no more."""


def _text(value: Any) -> Optional[str]:
    return str_or_none(value) or None


@dataclass(frozen=True)
class DownloadJob:
    """A download: its ``status`` and, while it runs, its progress.

    ``job_id`` is ``None`` when the model was already downloaded (the server starts no
    job then). Sizes are bytes; times are the server's ISO-8601 strings.
    """

    model: str
    status: str
    job_id: Optional[str] = None
    total_size_bytes: Optional[int] = None
    downloaded_bytes: Optional[int] = None
    bytes_per_second: Optional[float] = None
    started_at: Optional[str] = None
    estimated_completion: Optional[str] = None
    completed_at: Optional[str] = None
    error: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, body: Mapping[str, Any], model: str) -> DownloadJob:
        """Build from the answer of the download or download-status endpoint."""
        error = body.get("error")
        if isinstance(error, Mapping):
            error = error.get("message")
        return cls(
            model=_text(body.get("model")) or model,
            status=str(body.get("status") or "unknown"),
            job_id=_text(body.get("job_id")),
            total_size_bytes=int_or_none(body.get("total_size_bytes")),
            downloaded_bytes=int_or_none(body.get("downloaded_bytes")),
            bytes_per_second=float_or_none(body.get("bytes_per_second")),
            started_at=_text(body.get("started_at")),
            estimated_completion=_text(body.get("estimated_completion")),
            completed_at=_text(body.get("completed_at")),
            error=_text(error),
            raw=dict(body),
        )

    @property
    def done(self) -> bool:
        """True once the job is over: completed, failed or already downloaded."""
        return self.status in FINAL_STATUSES

    @property
    def ok(self) -> bool:
        """True when the model is (now) on the server's disk."""
        return self.status in ("completed", "already_downloaded")

    @property
    def fraction(self) -> Optional[float]:
        """Downloaded share, 0.0 to 1.0 (1.0 when done well; ``None`` when unknown)."""
        if self.ok:
            return 1.0
        if self.downloaded_bytes is None or not self.total_size_bytes:
            return None
        return min(1.0, self.downloaded_bytes / self.total_size_bytes)

    @property
    def eta_s(self) -> Optional[float]:
        """Seconds left at the current speed (``None`` when unknown or not downloading)."""
        if self.status != "downloading" or not self.bytes_per_second:
            return None
        if self.total_size_bytes is None or self.downloaded_bytes is None:
            return None
        return max(0, self.total_size_bytes - self.downloaded_bytes) / self.bytes_per_second

    def to_dict(self) -> Dict[str, Any]:
        """A plain dictionary (``raw`` left out)."""
        return {
            "model": self.model,
            "status": self.status,
            "job_id": self.job_id,
            "total_size_bytes": self.total_size_bytes,
            "downloaded_bytes": self.downloaded_bytes,
            "bytes_per_second": self.bytes_per_second,
            "started_at": self.started_at,
            "estimated_completion": self.estimated_completion,
            "completed_at": self.completed_at,
            "error": self.error,
        }
