"""``ChatStream``; it lives in :mod:`lmstrix.client` (this path is kept for imports)."""

from __future__ import annotations

from .client._stream import ChatStream

__all__ = ["ChatStream"]
