"""``lmstrix load --estimate``: LM Studio's own memory estimate, through the ``lms`` command.

``lms load MODEL --estimate-only -y [-c N]`` asks LM Studio (over its SDK API, not HTTP)
how much memory a load would take, without loading. It prints lines like::

    Model: qwen/qwen3-4b-2507
    Context Length: 16,384
    Estimated GPU Memory:   3.21 GB
    Estimated Total Memory: 3.54 GB

    Estimate: This model may be loaded based on your resource guardrails settings.

:func:`parse_estimate` reads those (colour codes and all); what it does not know is kept
as the raw text. The standard library's ``subprocess`` runs ``lms``; nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any, Dict, List, Optional

from ._session import CliError

__all__ = ["LMS_INSTALL_HINT", "estimate_load", "find_lms", "parse_estimate"]

LMS_INSTALL_HINT = (
    "install it with `npx lmstudio install-cli` (or run `~/.lmstudio/bin/lms bootstrap` "
    "once LM Studio is installed), then open a new shell"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE = re.compile(r"([0-9][0-9.,]*)\s*([kKmMgGtT]?[bB])\b")
_TIMEOUT_S = 120.0


def find_lms() -> Optional[str]:
    """The ``lms`` command: on ``PATH``, else in LM Studio's home (``<home>/bin``)."""
    found = shutil.which("lms")
    if found:
        return found
    from .._discovery import lmstudio_home

    home = lmstudio_home(os.environ)
    if home is None:
        return None
    for name in ("lms", "lms.exe"):
        candidate = os.path.join(home, "bin", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _bytes(text: str) -> Optional[int]:
    match = _SIZE.search(text)
    if match is None:
        return None
    try:
        number = float(match.group(1).replace(",", ""))
    except ValueError:
        return None
    return int(number * _UNITS[match.group(2).lower()])


def parse_estimate(output: str) -> Dict[str, Any]:
    """The fields of ``lms load --estimate-only`` output (``None`` where not printed).

    ``passes_guardrails`` is True when LM Studio says the model may be loaded, False
    when it says the load will fail, ``None`` when it says neither. ``parsed`` is False
    when no memory figure was found (then only ``raw`` means anything).
    """
    text = _ANSI.sub("", output)
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), value.strip())
    verdict = fields.get("estimate", "").lower()
    context = fields.get("context length", "").replace(",", "").replace(".", "")
    doc: Dict[str, Any] = {
        "model": fields.get("model"),
        "context_length": int(context) if context.isdigit() else None,
        "gpu_offload": fields.get("gpu offload"),
        "gpu_memory": fields.get("estimated gpu memory"),
        "gpu_memory_bytes": _bytes(fields.get("estimated gpu memory", "")),
        "total_memory": fields.get("estimated total memory"),
        "total_memory_bytes": _bytes(fields.get("estimated total memory", "")),
        "confidence": (fields.get("confidence") or "").lower() or None,
        "passes_guardrails": (
            True if "may be loaded" in verdict else False if "will fail" in verdict else None
        ),
        "raw": text.strip(),
    }
    doc["parsed"] = doc["gpu_memory_bytes"] is not None or doc["total_memory_bytes"] is not None
    return doc


def estimate_load(model: str, context_length: Optional[int]) -> Dict[str, Any]:
    """Run ``lms load MODEL --estimate-only`` and return :func:`parse_estimate`'s fields.

    Raises:
        CliError: ``lms`` is not installed, cannot run, or fails (its message shown).
    """
    lms = find_lms()
    if lms is None:
        raise CliError(
            "--estimate asks LM Studio through its `lms` command, which is not on PATH "
            f"(nor in LM Studio's bin folder): {LMS_INSTALL_HINT}"
        )
    argv: List[str] = [lms, "load", model, "--estimate-only", "-y"]
    if context_length is not None:
        argv += ["--context-length", str(context_length)]
    try:
        done = subprocess.run(  # a fixed argv, no shell
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CliError(f"could not run {lms}: {exc}") from exc
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        said = _ANSI.sub("", output).strip().splitlines()[-5:]
        raise CliError(
            f"`lms load {model} --estimate-only` failed (exit {done.returncode})"
            + (": " + " / ".join(line.strip() for line in said if line.strip()) if said else "")
        )
    return parse_estimate(output)
