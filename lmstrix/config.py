"""Settings: arguments win over environment variables, which win over defaults.

Everything here is a pure function of its inputs (the environment is passed in or
read at call time, never at import), so it is easy to test and safe to embed; the one
exception is the default server, which may come from the port file LM Studio writes
(:mod:`lmstrix._discovery`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import List, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_SERVER",
    "TOKEN_ENV_VARS",
    "Timeout",
    "normalize_base_url",
    "resolve_base_url",
    "resolve_token",
    "servers_from_env",
]

DEFAULT_BASE_URL = "http://localhost:1234"
ENV_SERVER = "LMSTRIX_SERVER"
# LM Studio's own clients disagree on the name; the JS SDK and docs say LM_API_TOKEN.
TOKEN_ENV_VARS = ("LM_API_TOKEN", "LMSTUDIO_API_TOKEN")

# Path suffixes people paste from other tools' settings; the client adds its own.
_API_SUFFIXES = ("/api/v1", "/api/v0", "/v1")


@dataclass(frozen=True)
class Timeout:
    """Timeouts in seconds: to connect, to read an answer, and to read a model load.

    Local models can be slow (long prompts, big models on CPU), so the read timeouts
    are generous; the connect timeout is short so a stopped server is noticed fast.
    """

    connect_s: float = 5.0
    read_s: float = 600.0
    load_s: float = 900.0

    def __post_init__(self) -> None:
        for name in ("connect_s", "read_s", "load_s"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 < value < math.inf  # NaN fails this too
            ):
                raise ConfigError(
                    f"Timeout.{name} must be a positive, finite number of seconds, not {value!r}"
                )

    @classmethod
    def coerce(cls, value: object) -> Timeout:
        """Accept ``None`` (defaults), a number (read timeout) or a :class:`Timeout`."""
        if value is None:
            return cls()
        if isinstance(value, Timeout):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(
                connect_s=min(5.0, float(value)),
                read_s=float(value),
                load_s=max(900.0, float(value)),
            )
        raise ConfigError(f"timeout must be seconds (a number) or lmstrix.Timeout, not {value!r}")


def normalize_base_url(url: str) -> str:
    """Return ``scheme://host:port`` (plus any path prefix) without a trailing API suffix.

    >>> normalize_base_url("localhost:1234")
    'http://localhost:1234'
    >>> normalize_base_url("HTTP://LocalHost:1234/v1/")
    'http://localhost:1234'
    >>> normalize_base_url("http://10.0.0.5:1234/api/v0")
    'http://10.0.0.5:1234'
    >>> normalize_base_url("https://example.org/lmstudio")
    'https://example.org/lmstudio'
    """
    text = url.strip()
    if not text:
        raise ConfigError("server URL is empty; give one like http://localhost:1234")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError(f"server URL {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise ConfigError(f"server URL {url!r} has no host; give one like http://localhost:1234")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"server URL {url!r} has an invalid port") from exc
    if port == 0:
        raise ConfigError(f"server URL {url!r} has port 0 (ports are 1-65535)")
    host = parts.hostname.lower()
    if not _good_host(host, bracketed=parts.netloc.startswith("[")):
        raise ConfigError(
            f"server URL {url!r}: {host!r} is not a host name or address "
            "(give one like http://localhost:1234)"
        )
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    for suffix in _API_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme.lower(), netloc, path, "", ""))


_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")  # one part of a DNS name


def _good_host(host: str, *, bracketed: bool) -> bool:
    """A DNS name, an IPv4 address, or (in brackets) an IPv6 address."""
    if bracketed or host.replace(".", "").isdigit():
        import ipaddress  # only for addresses: keeps import lmstrix light

        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True
    return all(_LABEL.fullmatch(label) for label in host.rstrip(".").split("."))


def resolve_base_url(url: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> str:
    """Pick the server URL: the argument, else ``$LMSTRIX_SERVER``, else the local LM
    Studio's port as LM Studio wrote it down (``~/.lmstudio/.internal/http-server.json``,
    see :mod:`lmstrix._discovery`; logged at INFO), else the default.

    ``$LMSTRIX_SERVER`` may list several servers, comma-separated (for the command line
    and :func:`servers_from_env`); a single :class:`~lmstrix.Client` then takes the first.
    """
    env = os.environ if environ is None else environ
    if url:
        return normalize_base_url(url)
    return servers_from_env(env)[0]


def servers_from_env(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """The servers ``$LMSTRIX_SERVER`` lists (comma-separated), or the one found on disk
    (see :func:`resolve_base_url`), or the default one.

    ``lmstrix.Pool(servers_from_env())`` is a pool over them.

    Raises:
        ConfigError: one of them is not a server URL.
    """
    env = os.environ if environ is None else environ
    listed = [part.strip() for part in (env.get(ENV_SERVER) or "").split(",") if part.strip()]
    if listed:
        return [normalize_base_url(url) for url in listed]
    from ._discovery import discover_server  # reads a file or two: only when needed

    found = discover_server(env)
    return [found.url if found else normalize_base_url(DEFAULT_BASE_URL)]


def resolve_token(
    token: Optional[str] = None, environ: Optional[Mapping[str, str]] = None
) -> Optional[str]:
    """Pick the API token: the argument, else ``$LM_API_TOKEN``, else ``$LMSTUDIO_API_TOKEN``."""
    if token:
        return token
    env = os.environ if environ is None else environ
    for name in TOKEN_ENV_VARS:
        value = env.get(name)
        if value:
            return value
    return None
