"""Model downloads (LM Studio 0.4+): start one, ask how it goes, follow it to the end.

:class:`DownloadsMixin` is one of :class:`~lmstrix.Client`'s bases; it uses the client's
request plumbing (``_json``) and its API detection (``server_api``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional
from urllib.parse import quote

from .._log import logger
from ..errors import APIError, APIStatusError, APITimeoutError, ModelNotFoundError
from ._download_job import DownloadJob
from ._errormap import error_message

__all__ = ["DEFAULT_POLL_S", "DownloadsMixin", "ProgressCallback"]

log = logger(__name__)

ProgressCallback = Callable[[DownloadJob], None]
"""Called with each new state of a followed download."""

DEFAULT_POLL_S = 1.0
"""Seconds between two status requests while following a download."""

_DOWNLOAD = "/api/v1/models/download"
_STATUS = "/api/v1/models/download/status/"


class DownloadsMixin:
    """``download``, ``download_status`` and ``wait_for_download`` for the Client."""

    if TYPE_CHECKING:
        base_url: str

        @property
        def server_api(self) -> str: ...

        def _json(
            self,
            method: str,
            path: str,
            body: Optional[Mapping[str, Any]] = None,
            *,
            model: Optional[str] = None,
            operation: str = "models",
        ) -> Dict[str, Any]: ...

    def download(self, model: str, *, quantization: Optional[str] = None) -> DownloadJob:
        """Ask the server to download ``model`` (a catalog id or a Hugging Face URL).

        ``quantization`` (``"Q4_K_M"``) picks a variant; LM Studio takes it with Hugging
        Face URLs only. The result's ``status`` is ``"downloading"`` (follow it with
        :meth:`wait_for_download`) or ``"already_downloaded"`` (no ``job_id`` then).

        Raises:
            ModelNotFoundError: the catalog has no such model.
            APIError: the server cannot download (it is not LM Studio 0.4 or newer).
        """
        self._require_downloads()
        body: Dict[str, Any] = {"model": model}
        if quantization:
            body["quantization"] = quantization
        try:
            answer = self._json("POST", _DOWNLOAD, body, model=model)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(
                f"{self.base_url} cannot download {model!r}: {error_message(exc.body)}. "
                "Give a catalog id (publisher/name, as lmstudio.ai/models lists them) or a "
                "Hugging Face URL",
                url=exc.url,
                status_code=exc.status_code,
                body=exc.body,
                model=model,
            ) from exc
        job = DownloadJob.from_wire(answer, model)
        log.info("%s: download of %s: %s", self.base_url, model, job.status)
        return job

    def download_status(self, job_id: str, *, model: str = "") -> DownloadJob:
        """The current state of download ``job_id`` (``model`` names it in the result).

        Raises:
            APIStatusError: the server knows no such job (``job_not_found``).
        """
        self._require_downloads()
        path = _STATUS + quote(job_id, safe="")
        try:
            answer = self._json("GET", path)
        except APIStatusError as exc:
            if exc.status_code != 404 and "job_not_found" not in str(exc):
                raise
            raise APIStatusError(
                f"{self.base_url} has no download job {job_id!r} (job_not_found): it may "
                "belong to an earlier run of LM Studio; start the download again "
                "(it says already_downloaded when the model is there)",
                url=exc.url,
                status_code=exc.status_code,
                body=exc.body,
            ) from exc
        return DownloadJob.from_wire(answer, model or str(answer.get("model") or ""))

    def wait_for_download(
        self,
        job: DownloadJob,
        *,
        on_progress: Optional[ProgressCallback] = None,
        poll_s: float = DEFAULT_POLL_S,
        timeout: Optional[float] = None,
    ) -> DownloadJob:
        """Follow ``job`` until it ends; return its final state.

        ``on_progress`` is called with each state read (the first one included);
        ``poll_s`` is the pause between two status requests; ``timeout`` (seconds)
        bounds the whole wait. Stopping the wait (Ctrl-C, a timeout) does not stop the
        download: LM Studio carries on.

        Raises:
            APIError: the download failed (the server's reason in the message).
            APITimeoutError: ``timeout`` passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if on_progress is not None:
                on_progress(job)
            if job.done or job.job_id is None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise APITimeoutError(
                    f"download of {job.model} (job {job.job_id}) on {self.base_url} did not "
                    f"finish within {timeout:g} s; it goes on in LM Studio",
                    url=self.base_url + _STATUS + job.job_id,
                )
            if poll_s > 0:
                time.sleep(poll_s)
            job = self.download_status(job.job_id, model=job.model)
        if job.status == "failed":
            reason = f": {job.error}" if job.error else ""
            raise APIError(
                f"download of {job.model} (job {job.job_id}) failed on {self.base_url}{reason}; "
                "check the disk space and network of the machine LM Studio runs on, then try "
                "again",
                url=self.base_url + _DOWNLOAD,
            )
        return job

    def _require_downloads(self) -> None:
        api = self.server_api
        if api != "v1":
            raise APIError(
                f"cannot download models through {self.base_url}: downloads need LM Studio "
                f"0.4 or newer (this server speaks the {api!r} API); download in the app or "
                "with `lms get`",
                url=self.base_url,
            )
