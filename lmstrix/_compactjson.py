"""Compact JSON for lines and hashes, with the C encoder made once.

``json.JSONEncoder.encode`` builds a new C encoder on every call; :func:`compact` and
:func:`canonical` reuse one, which saves about a quarter of the time for the small
objects the audit log and the response cache encode on every model call.
"""

from __future__ import annotations

import json
from typing import Any, Callable

__all__ = ["canonical", "compact"]

_PLAIN = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_SORTED = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _reusing(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has the C encoder
        return encoder.encode
    encode = make(
        None,  # no circular-reference check: these values are plain data
        encoder.default,
        json.encoder.encode_basestring,
        encoder.indent,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )
    return lambda value: "".join(encode(value, 0))


compact: Callable[[Any], str] = _reusing(_PLAIN)
"""``value`` as JSON without spaces, non-ASCII characters kept."""

canonical: Callable[[Any], str] = _reusing(_SORTED)
"""``value`` as canonical JSON: :func:`compact` with every object's keys sorted."""
