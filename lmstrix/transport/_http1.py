"""HTTP/1.1 request heads for the stdlib transport, built once per header set.

``http.client`` sends a request's head and body in two writes and validates every header
on every request. The stdlib transport instead writes head and body in one ``sendall``
(one system call, one TCP segment for a small request) and validates and encodes a
client's constant headers once, keeping the encoded block in a small cache.
``http.client`` still connects (TLS included) and parses the response.
"""

from __future__ import annotations

import re
import threading
from typing import Dict, Mapping, Optional, Tuple

__all__ = ["request_head"]

# What http.client refuses too: control characters, spaces and non-ASCII characters in
# the target, CR/LF or other control characters in header names and values (header
# injection).
_BAD_NAME = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_BAD_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_CACHE_SIZE = 64

_cache: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], Tuple[bytes, bool]] = {}
_lock = threading.Lock()


def request_head(
    method: str, target: str, host: str, headers: Mapping[str, str], body: Optional[bytes]
) -> bytes:
    """The encoded request line and headers of one request, ending with the blank line.

    ``host`` is the ``Host`` header's value. ``Host``, ``Accept-Encoding: identity`` and
    ``Content-Length`` are added as ``http.client`` adds them, unless ``headers`` has them.

    Raises:
        ValueError: a control character or space in ``method`` or ``target``, or an
            invalid header name or value.
    """
    if not (target.isprintable() and method.isprintable()) or " " in target or " " in method:
        raise ValueError(f"invalid characters in the request {method!r} {target!r}")
    key = (host, tuple(headers.items()))
    found = _cache.get(key)
    if found is None:
        found = _encode_headers(host, headers)
        with _lock:
            if len(_cache) >= _CACHE_SIZE:
                _cache.clear()
            _cache[key] = found
    block, has_length = found
    try:
        line = f"{method} {target} HTTP/1.1\r\n".encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"invalid characters in the request {method!r} {target!r}") from None
    if has_length or (body is None and method not in _BODY_METHODS):
        return line + block + b"\r\n"
    return line + block + b"Content-Length: %d\r\n\r\n" % (len(body) if body else 0)


def _encode_headers(host: str, headers: Mapping[str, str]) -> Tuple[bytes, bool]:
    names = set()
    lines = []
    for name, value in headers.items():
        if not name or _BAD_NAME.search(name):
            raise ValueError(f"invalid header name {name!r}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"invalid value for header {name!r}")
        names.add(name.lower())
        lines.append(f"{name}: {value}\r\n")
    extra = []
    if "host" not in names:
        extra.append(f"Host: {host}\r\n")
    if "accept-encoding" not in names:
        extra.append("Accept-Encoding: identity\r\n")
    block = "".join(extra + lines).encode("latin-1")
    return block, "content-length" in names
