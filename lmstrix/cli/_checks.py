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


_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"  # one part of a DNS name


def server_url(text: str) -> str:
    """A server URL: ``http(s)://host[:port][/path]`` (``host:port`` alone means http).

    The host must be a DNS name, an IPv4 address or a bracketed IPv6 address, and a
    port 1-65535; ``ValueError`` names what is wrong. Returns ``text`` unchanged (the
    client normalises it).
    """
    import ipaddress
    import re
    from urllib.parse import urlsplit

    from ..config import normalize_base_url

    try:
        parts = urlsplit(normalize_base_url(text))
    except ValueError as exc:  # ConfigError, or urllib's own complaint about brackets
        message = str(exc).replace("server URL ", "")
        if repr(text) not in message:
            message = f"{text!r} is not a server URL: {message}"
        raise ValueError(message) from None
    host = parts.hostname or ""
    good = True
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            good = False
    elif parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            good = False
    else:
        good = all(re.fullmatch(_LABEL, label) for label in host.rstrip(".").split("."))
    if not good:
        raise ValueError(
            f"{text!r} is not a server URL: {host!r} is not a host name or address "
            "(give one like http://localhost:1234)"
        )
    if parts.port == 0:
        raise ValueError(f"{text!r} is not a server URL: port 0 (ports are 1-65535)")
    return text
