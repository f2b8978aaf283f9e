"""Many servers, many models: :class:`Pool`, fallback chains and routing by measured limits."""

from __future__ import annotations

from ._ensemble import EnsembleAnswer, EnsembleResult, ensemble
from ._pool import Pool
from ._routing import Candidate

__all__ = ["Candidate", "EnsembleAnswer", "EnsembleResult", "Pool", "ensemble"]
