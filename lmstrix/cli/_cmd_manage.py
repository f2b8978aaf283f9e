"""``lmstrix get MODEL`` (download a model into LM Studio 0.4+, showing progress) and
``lmstrix load --estimate`` (LM Studio's memory estimate, through ``lms``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ._output import EXIT_INTERRUPTED, EXIT_OK
from ._session import Session

if TYPE_CHECKING:
    from ..client._download_job import DownloadJob

__all__ = ["cmd_get", "progress_line", "show_estimate"]


def _size(count: Optional[float]) -> str:
    """Bytes in the units LM Studio shows (powers of 1000)."""
    if count is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{int(count)} B"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def progress_line(job: DownloadJob) -> str:
    """One progress line: percent, bytes, speed (MB/s) and time left."""
    parts = [f"{job.model}: {job.status}"]
    if job.fraction is not None:
        parts.append(f"{job.fraction * 100:5.1f}%")
    if job.total_size_bytes is not None:
        parts.append(f"{_size(job.downloaded_bytes or 0)} of {_size(job.total_size_bytes)}")
    if job.bytes_per_second:
        parts.append(f"{job.bytes_per_second / 1e6:.1f} MB/s")
    if job.eta_s is not None:
        parts.append(f"ETA {_duration(job.eta_s)}")
    return "  ".join(parts)


def cmd_get(
    session: Session,
    model: str,
    *,
    quantization: Optional[str] = None,
    poll: Optional[float] = None,
) -> int:
    """Start downloading ``model`` and follow it to the end (Ctrl-C stops following only)."""
    client = session.client()
    job = client.download(model, quantization=quantization)
    waiting = {} if poll is None else {"poll_s": poll}
    try:
        job = client.wait_for_download(
            job, on_progress=lambda state: session.progress(progress_line(state)), **waiting
        )
    except KeyboardInterrupt:
        session._err(
            f"stopped following the download of {model}; it continues in LM Studio "
            f"(job {job.job_id}); run `lmstrix get {model}` again to follow it"
        )
        return EXIT_INTERRUPTED
    if session.as_json:
        session.emit({"server": client.base_url, **job.to_dict()})
    elif job.status == "already_downloaded":
        session.echo(f"{model} is already downloaded on {client.base_url}")
    else:
        session.echo(f"downloaded {model} ({_size(job.total_size_bytes)}) on {client.base_url}")
    return EXIT_OK


def show_estimate(session: Session, model: str, context_length: Optional[int]) -> int:
    """``load --estimate``: LM Studio's memory estimate for a load, through ``lms``."""
    from ._lms import estimate_load

    found = estimate_load(model, context_length)
    if session.as_json:
        session.emit({"key": model, "requested_context": context_length, **found})
        return EXIT_OK
    if not found["parsed"]:
        session.echo(found["raw"])
        return EXIT_OK
    at = "the default context" if context_length is None else f"{context_length:,} tokens"
    verdict = {
        True: "LM Studio's guardrails would let it load",
        False: "LM Studio's guardrails would refuse the load",
        None: "no guardrail verdict given",
    }[found["passes_guardrails"]]
    confidence = f" (confidence: {found['confidence']})" if found["confidence"] else ""
    session.echo(
        f"estimate for {model} at {at}: GPU memory {found['gpu_memory'] or '?'}, total "
        f"memory {found['total_memory'] or '?'}{confidence}; {verdict}"
    )
    return EXIT_OK
