"""Checks of option values that both front ends share (a ``ValueError`` is bad usage)."""

from __future__ import annotations

import math

__all__ = ["positive_seconds", "server_url"]


def positive_seconds(text: str) -> float:
    """A number of seconds above 0 (not nan or inf); ``ValueError`` names what is wrong."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive, finite number of seconds, not {text!r}")
    return value


def server_url(text: str) -> str:
    """A server URL: ``http(s)://host[:port][/path]`` (``host:port`` alone means http).

    :func:`lmstrix.config.normalize_base_url` checks it (a DNS name, an IPv4 address or
    a bracketed IPv6 address, a port 1-65535); ``ValueError`` names what is wrong.
    Returns ``text`` unchanged (the client normalises it).
    """
    from ..config import normalize_base_url

    try:
        normalize_base_url(text)
    except ValueError as exc:  # ConfigError, or urllib's own complaint about brackets
        message = str(exc).replace("server URL ", "")
        if repr(text) not in message:
            message = f"{text!r} is not a server URL: {message}"
        raise ValueError(message) from None
    return text
