"""Shared by the registry tests: the server URL they use, a file snapshot, a fake client."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from lmstrix.types import ModelInfo

SERVER = "http://localhost:1234"


def snapshot(path: Path) -> Tuple[bytes, int]:
    """The file's bytes and modification time, to prove it was left untouched."""
    return path.read_bytes(), path.stat().st_mtime_ns


class FakeClient:
    """Just what Registry.sync uses: ``base_url`` and ``list_models()``."""

    def __init__(self, base_url: str, models: List[ModelInfo]) -> None:
        self.base_url = base_url
        self.models = models

    def list_models(self) -> List[ModelInfo]:
        return list(self.models)
