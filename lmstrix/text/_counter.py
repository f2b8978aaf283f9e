"""A model's token counter from the registry: its calibrated characters per token.

No tokenizer reaches a client over HTTP; the context search calibrates, per model and
server, how many characters one of the model's tokens holds, and the registry keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Union

from ._split import TokenCounter, estimate_counter

if TYPE_CHECKING:
    from ..registry import ModelRecord, Registry

__all__ = ["records_of", "servers_of", "token_counter"]


def servers_of(client_or_pool: Any) -> List[str]:
    """The base URLs behind a client (one) or a pool (each of its servers)."""
    servers = getattr(client_or_pool, "servers", None)
    if isinstance(servers, list):
        return [str(s) for s in servers]
    return [str(client_or_pool.base_url)]


def records_of(client_or_pool: Any, model: Union[str, Sequence[str]]) -> List[ModelRecord]:
    """The registry records of ``model`` (a key or a chain's keys) on the servers behind
    ``client_or_pool``; none without a registry."""
    registry: Optional[Registry] = getattr(client_or_pool, "registry", None)
    if registry is None:
        return []
    keys = [model] if isinstance(model, str) else list(model)
    found = []
    for server in servers_of(client_or_pool):
        for key in keys:
            record = registry.get(key, server=server)
            if record is not None:
                found.append(record)
    return found


def calibrated_chars_per_token(records: Sequence[ModelRecord]) -> Optional[float]:
    """The lowest calibrated characters per token of ``records`` (the estimate errs
    high), or None when none is calibrated."""
    known = [r.chars_per_token for r in records if r.chars_per_token and r.chars_per_token > 0]
    return min(known) if known else None


def token_counter(client_or_pool: Any, model: Union[str, Sequence[str]]) -> TokenCounter:
    """Count a text's tokens as ``model`` would, from the registry's calibration.

    ``client_or_pool`` is a :class:`~lmstrix.Client` or :class:`~lmstrix.Pool` with a
    registry; the characters per token calibrated for ``model`` on its server (the
    lowest over a pool's servers, or over a fallback chain's keys) make an upper
    estimate with a safety margin. With no registry or no calibration, the estimate
    assumes 3 characters per token, which is high for most tokenizers and text.
    """
    return estimate_counter(calibrated_chars_per_token(records_of(client_or_pool, model)))
