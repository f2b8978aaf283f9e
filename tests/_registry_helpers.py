"""Shared by the registry tests: the server URL they use and a file snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

SERVER = "http://localhost:1234"


def snapshot(path: Path) -> Tuple[bytes, int]:
    """The file's bytes and modification time, to prove it was left untouched."""
    return path.read_bytes(), path.stat().st_mtime_ns
