"""Simulated model downloads: ``POST /api/v1/models/download`` and its status endpoint.

A catalog of downloadable :class:`SimModel` s; a job's progress follows the simulated
clock (each status request lets one simulated second pass), a model in ``failing``
fails half-way, and a finished model joins the server's models.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence
from urllib.parse import unquote

from ._engine import SimError
from ._models import SimModel

if TYPE_CHECKING:
    from ._engine import Engine
    from ._routes import Exchange

__all__ = ["DownloadDesk", "demo_catalog", "download_route"]

_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)  # simulated time 0, for timestamps
_STATUS_PREFIX = "/api/v1/models/download/status/"
_FAIL_AT = 0.5  # a failing download stops at this share


def demo_catalog() -> List[SimModel]:
    """What the simulator offers for download by default: two small chat models."""
    return [
        SimModel(
            "lmstrix-demo/fresh-chat-2b",
            32768,
            24_576,
            16_384,
            params_string="2B",
            description="A download from the simulated catalog.",
        ),
        SimModel(
            "lmstrix-demo/fresh-coder-3b",
            65536,
            40_960,
            28_672,
            params_string="3B",
            trained_for_tool_use=True,
            description="A second download from the simulated catalog.",
        ),
    ]


def _stamp(clock: float) -> str:
    when = _EPOCH + timedelta(seconds=clock)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass
class _Job:
    id: str
    model: SimModel
    started: float
    status: str = "downloading"
    ended: Optional[float] = None


class DownloadDesk:
    """The download jobs of one simulated server.

    ``bytes_per_second`` is the simulated speed; ``step_s`` the simulated seconds each
    status request lets pass; models whose key is in ``failing`` fail half-way.
    """

    def __init__(
        self,
        engine: Engine,
        catalog: Sequence[SimModel],
        *,
        bytes_per_second: float,
        failing: Sequence[str] = (),
        step_s: float = 1.0,
    ) -> None:
        if bytes_per_second <= 0:
            raise ValueError("download_bytes_per_s must be positive")
        self._engine = engine
        self.catalog: Dict[str, SimModel] = {m.key: m for m in catalog}
        self.bytes_per_second = float(bytes_per_second)
        self.failing = frozenset(failing)
        self.step_s = step_s
        self._jobs: Dict[str, _Job] = {}
        self._lock = threading.Lock()

    def start(self, key: str) -> Dict[str, Any]:
        """Start downloading ``key`` (a running job of it is reused); the answer's body."""
        base = key.split("@", 1)[0]
        if base in self._engine.models:
            return {"status": "already_downloaded"}
        model = self.catalog.get(base)
        if model is None:
            raise SimError(
                404, f"Model {key} was not found in the LM Studio catalog", type="model_not_found"
            )
        with self._lock:
            job = next(
                (j for j in self._jobs.values() if j.model is model and j.status == "downloading"),
                None,
            )
            if job is None:
                job = _Job("job_" + uuid.uuid4().hex[:10], model, self._engine.clock)
                self._jobs[job.id] = job
        return {
            "job_id": job.id,
            "status": job.status,
            "total_size_bytes": model.size_bytes,
            "started_at": _stamp(job.started),
        }

    def status(self, job_id: str) -> Dict[str, Any]:
        """One status request: time passes, the job moves on; the answer's body."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise SimError(404, f"No download job with id {job_id}", type="job_not_found")
        self._engine.advance(self.step_s)
        self._engine.sleep(self.step_s)
        total = job.model.size_bytes
        with self._lock:
            done = self._progress(job, total)
        body: Dict[str, Any] = {
            "job_id": job.id,
            "status": job.status,
            "total_size_bytes": total,
            "downloaded_bytes": done,
            "started_at": _stamp(job.started),
        }
        if job.status == "downloading":
            left_s = (total - done) / self.bytes_per_second
            body["bytes_per_second"] = self.bytes_per_second
            body["estimated_completion"] = _stamp(self._engine.clock + left_s)
        elif job.ended is not None:
            body["completed_at"] = _stamp(job.ended)
        return body

    def _progress(self, job: _Job, total: int) -> int:
        """Bytes downloaded now; ends the job when it is complete (or fails)."""
        if job.status != "downloading":
            return total if job.status == "completed" else int(total * _FAIL_AT)
        now = self._engine.clock
        done = min(total, int((now - job.started) * self.bytes_per_second))
        if job.model.key in self.failing and done >= total * _FAIL_AT:
            job.status, job.ended = "failed", now
            return int(total * _FAIL_AT)
        if done >= total:
            job.status, job.ended = "completed", now
            self._engine.models.setdefault(job.model.key, job.model)
        return done


def _desk(ex: Exchange) -> DownloadDesk:
    desk = ex.engine.downloads
    if desk is None:  # pragma: no cover - FakeLMStudio always sets one
        raise RuntimeError("this simulated server has no download desk")
    return desk


def _download(ex: Exchange, body: Any) -> None:
    from ._routes import _check_keys, _require_object

    body = _require_object(body)
    _check_keys(body, frozenset({"model", "quantization"}))
    key = body.get("model")
    if not isinstance(key, str) or not key:
        raise SimError(400, '"model" is required', code="missing_required_parameter", param="model")
    ex.send_json(200, _desk(ex).start(key))


def download_route(method: str, path: str) -> Optional[Callable[[Exchange, Any], None]]:
    """The download endpoint serving ``method path`` (LM Studio 0.4+), or None."""
    if (method, path) == ("POST", "/api/v1/models/download"):
        return _download
    if method == "GET" and path.startswith(_STATUS_PREFIX) and len(path) > len(_STATUS_PREFIX):
        job_id = unquote(path[len(_STATUS_PREFIX) :])
        return lambda ex, body: ex.send_json(200, _desk(ex).status(job_id))
    return None
