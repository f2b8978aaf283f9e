"""The response cache: a middleware answering repeated deterministic requests from SQLite.

``Client(middleware=[lmstrix.cache.ResponseCache("cache.sqlite")])``. See
``docs/user-guide/governance.md``.
"""

from __future__ import annotations

from ._cache import CacheStats, ResponseCache, is_deterministic

__all__ = ["CacheStats", "ResponseCache", "is_deterministic"]
