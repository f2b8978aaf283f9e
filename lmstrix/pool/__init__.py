"""Many servers, many models: :class:`Pool`, fallback chains and routing by measured limits."""

from __future__ import annotations

from ._pool import Pool
from ._stream import PooledStream

__all__ = ["Pool", "PooledStream"]
