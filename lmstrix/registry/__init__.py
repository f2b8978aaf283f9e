"""The registry: what lmstrix has learnt about each model, in one JSON file.

Records, the file format, the cross-process lock and atomic writes live in the private
modules of this package; :class:`Registry` is the way in.
"""

from __future__ import annotations

from ._records import FAILURE_KINDS, PROBE_KINDS, STATUSES, RecordFieldError
from ._registry import (
    DEFAULT_SERVER,
    SCHEMA_VERSION,
    ModelRecord,
    ProbeRecord,
    Registry,
    SyncResult,
    normalize_server,
)
from ._settings import UserSettings

__all__ = [
    "DEFAULT_SERVER",
    "FAILURE_KINDS",
    "PROBE_KINDS",
    "SCHEMA_VERSION",
    "STATUSES",
    "ModelRecord",
    "ProbeRecord",
    "RecordFieldError",
    "Registry",
    "SyncResult",
    "UserSettings",
    "normalize_server",
]
