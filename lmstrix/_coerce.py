"""Tolerant conversions of JSON values, shared by the wire types and the registry.

Servers and older files send numbers as floats, strings where numbers belong, or
nothing at all; a wrong type becomes ``None`` rather than an exception.
"""

from __future__ import annotations

import math
from typing import Any, Optional

__all__ = ["bool_or_none", "float_or_none", "int_or_none", "str_or_none"]


def int_or_none(value: Any) -> Optional[int]:
    """An int, or a float holding a whole number, as int; anything else (bool too) None."""
    if type(value) is int:  # the common case first: registries hold many of these
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def float_or_none(value: Any) -> Optional[float]:
    """A finite int or float as float; anything else (bool, NaN, infinity) None."""
    if type(value) is float and math.isfinite(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def str_or_none(value: Any) -> Optional[str]:
    """A str as it is; anything else None."""
    return value if isinstance(value, str) else None


def bool_or_none(value: Any) -> Optional[bool]:
    """A bool as it is; anything else None."""
    return value if isinstance(value, bool) else None
