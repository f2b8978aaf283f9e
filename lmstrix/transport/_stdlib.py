"""How bytes reach the server: the :class:`Transport` protocol and the stdlib transport.

A transport turns one :class:`~lmstrix.Request` into a :class:`Response` and converts every
low-level failure (``socket``, ``ssl``, ``http.client`` errors) into
:class:`~lmstrix.errors.APIConnectionError` or :class:`~lmstrix.errors.APITimeoutError`
at its boundary. It knows nothing about LM Studio and does not retry: the client's
middleware chain (:mod:`lmstrix.middleware`) does that.

Transports written for lmstrix 2.0's first pre-releases have a
``request(method, url, *, headers, body, timeout, read_timeout_s, stream)`` method
instead of ``send(request)``; :func:`as_transport` adapts them, and the client calls it
on whatever it is given.

:class:`StdlibTransport` keeps HTTP/1.1 connections alive and reuses them. Its pool
is shared safely between threads: a connection is used by one request at a time and
goes back to the pool only once its response has been read to the end.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Protocol, Tuple

from ..config import Timeout
from ..errors import APIConnectionError, APITimeoutError, ConfigError
from ._http1 import request_head
from ._request import READ_TIMEOUT, Request, frozen_map

if TYPE_CHECKING:
    import http.client

__all__ = [
    "BufferedResponse",
    "Request",
    "Response",
    "StdlibTransport",
    "Transport",
    "as_transport",
    "connection_error",
]


_READ_SIZE = 65536
_FIRST_READ_SIZE = 4096


class Response(Protocol):
    """One HTTP response: ``status_code``, lower-cased ``headers``, and its body.

    For a request made with ``stream=False`` the body is already read; for
    ``stream=True`` it is read by :meth:`iter_bytes` as the server sends it.
    """

    @property
    def status_code(self) -> int:
        """The HTTP status code."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Response headers, names lower-cased."""
        ...

    def read(self) -> bytes:
        """Return the whole body (reading the rest of it if needed)."""
        ...

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield the body in pieces as they arrive; ends when the body does."""
        ...

    def close(self) -> None:
        """Release the connection (dropping it if the body was not read to the end)."""
        ...


class Transport(Protocol):
    """Sends one request; converts low-level errors into lmstrix's own."""

    def send(self, request: Request) -> Response:
        """Send ``request`` and return the response once its status line has arrived.

        Connect within ``request.timeout.connect_s``; wait at most
        ``request.read_timeout_s`` between reads. Do not retry and do not follow
        redirects.

        Raises:
            APIConnectionError: the server could not be reached or the connection broke
                before a response; ``sent`` says whether the request may have arrived.
            APITimeoutError: connecting or waiting for the response took too long.
        """
        ...

    def close(self) -> None:
        """Close all pooled connections."""
        ...


def connection_error(exc: BaseException, url: str, *, sent: bool) -> APIConnectionError:
    """Translate a low-level exception into an :class:`APIConnectionError` (or timeout).

    ``sent`` records whether the request may have reached the server; the client
    retries only failures where it did not, or where no response began.
    """
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return APITimeoutError(
            f"timed out talking to {url} ({exc or 'no answer in time'}); "
            "the model may be busy or slow: raise the timeout (timeout=, --timeout) "
            "or try a smaller prompt",
            url=url,
            sent=sent,
        )
    if isinstance(exc, ConnectionRefusedError):
        return APIConnectionError(
            f"cannot reach the server at {url} (connection refused): start LM Studio's "
            "server (Developer tab > Start Server, or `lms server start`) "
            "or point lmstrix at the right one (base_url=, --server, LMSTRIX_SERVER)",
            url=url,
            sent=sent,
        )
    reason = str(exc) or type(exc).__name__
    return APIConnectionError(
        f"connection to {url} failed: {reason}; check that the server is running and reachable",
        url=url,
        sent=sent,
    )


class _Conn:
    """A pooled ``http.client`` connection and the pool key it belongs to."""

    __slots__ = ("http", "key", "read_s")

    def __init__(self, http: http.client.HTTPConnection, key: Tuple[str, str, int]) -> None:
        self.http = http
        self.key = key
        self.read_s = -1.0  # the socket timeout now set; -1 until connected


class _StdlibResponse:
    """A :class:`Response` over ``http.client``; returns its connection to the pool at EOF."""

    def __init__(
        self,
        transport: StdlibTransport,
        conn: _Conn,
        resp: http.client.HTTPResponse,
        url: str,
    ) -> None:
        self.status_code = resp.status
        self.headers: Dict[str, str] = {k.lower(): v for k, v in resp.getheaders()}
        self._transport = transport
        self._conn: Optional[_Conn] = conn
        self._resp = resp
        self._url = url
        self._body: Optional[bytes] = None

    def read(self) -> bytes:
        if self._body is None:
            self._body = b"".join(self.iter_bytes())
        return self._body

    def iter_bytes(self) -> Iterator[bytes]:
        if self._body is not None:
            if self._body:
                yield self._body
            return
        size = _FIRST_READ_SIZE  # small first: the first chunk of a stream goes out sooner
        while self._conn is not None:
            try:
                piece = self._resp.read1(size)
                size = _READ_SIZE
            except Exception as exc:  # socket, ssl and http.client errors alike
                self._drop()
                raise connection_error(exc, self._url, sent=True) from exc
            if not piece:
                self._finish()
                return
            yield piece

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # http.client only forgets a response it has seen closed; after a complete
            # read, closing it keeps the socket open for the next request.
            self._resp.close()
            self._transport._release(conn, reusable=not self._resp.will_close)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._transport._release(conn, reusable=False)

    def close(self) -> None:
        # A body not read to the end leaves bytes on the socket: the connection cannot
        # be reused, so it is closed rather than returned to the pool.
        self._drop()


class BufferedResponse:
    """A :class:`Response` whose body is already in memory (any transport may use it)."""

    def __init__(self, status_code: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self._body = body

    def read(self) -> bytes:
        return self._body

    def iter_bytes(self) -> Iterator[bytes]:
        if self._body:
            yield self._body

    def close(self) -> None:
        pass


class StdlibTransport:
    """HTTP/1.1 keep-alive transport on ``http.client``; thread-safe; stdlib only.

    ``max_idle`` bounds the idle connections kept per host.
    """

    def __init__(self, *, max_idle: int = 16) -> None:
        self._max_idle = max_idle
        self._idle: Dict[Tuple[str, str, int], List[_Conn]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"StdlibTransport(max_idle={self._max_idle})"

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: Optional[bytes],
        timeout: Timeout,
        read_timeout_s: Optional[float] = None,
        stream: bool = False,
    ) -> Response:
        """Send one request given field by field (the pre-``Request`` signature)."""
        request = _legacy_request(method, url, headers, body, timeout, read_timeout_s, stream)
        return self.send(request)

    def send(self, request: Request) -> Response:
        """Send one request over a pooled connection (see :class:`Transport`)."""
        method, url, headers, body = request.method, request.url, request.headers, request.body
        timeout, stream = request.timeout, request.stream
        key, target, host = _split(url)
        try:
            head = request_head(method, target, host, headers, body)
        except ValueError as exc:  # a header with a line break, say: nothing to retry
            raise ConfigError(f"cannot send a request to {url}: {exc}") from exc
        data = head + body if body else head
        read_s = request.read_timeout_s
        # Connection management, not a retry: a pooled connection may have been closed
        # by the server while idle, which shows up as a reset or an empty reply before
        # any byte of a response. For a GET that request never reached the application,
        # so it goes once more on a new connection. Everything else is the retry
        # middleware's decision (the error says sent=True).
        for _ in range(self._max_idle + 1):
            conn, reused = self._acquire(key, timeout)
            try:
                if conn.http.sock is None:
                    self._connect(conn)
            except Exception as exc:  # refused, DNS, connect timeout: nothing was sent
                self._release(conn, reusable=False)
                raise connection_error(exc, url, sent=False) from exc
            try:
                resp = self._exchange(conn, method, data, read_s)
            except (ConnectionResetError, BrokenPipeError) as exc:  # incl. RemoteDisconnected
                self._release(conn, reusable=False)
                # Only a GET is sent again here: for anything else the caller decides.
                if reused and method in ("GET", "HEAD"):
                    continue
                raise connection_error(exc, url, sent=True) from exc
            except Exception as exc:  # timeouts, ssl and protocol errors
                self._release(conn, reusable=False)
                raise connection_error(exc, url, sent=True) from exc
            if stream:
                return _StdlibResponse(self, conn, resp, url)
            try:
                data = resp.read()
            except Exception as exc:  # cut or timed out while reading the body
                self._release(conn, reusable=False)
                raise connection_error(exc, url, sent=True) from exc
            headers = {k.lower(): v for k, v in resp.getheaders()}
            resp.close()
            self._release(conn, reusable=not resp.will_close)
            return BufferedResponse(resp.status, headers, data)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _connect(conn: _Conn) -> None:
        conn.http.connect()
        # Requests are small writes answered at once: no Nagle delay.
        conn.http.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.read_s = -1.0

    @staticmethod
    def _exchange(conn: _Conn, method: str, data: bytes, read_s: float) -> http.client.HTTPResponse:
        sock: socket.socket = conn.http.sock
        if conn.read_s != read_s:  # a system call saved on most requests
            sock.settimeout(read_s)
            conn.read_s = read_s
        # Head and body in one write (see _http1); http.client parses the answer.
        sock.sendall(data)
        resp: http.client.HTTPResponse = conn.http.response_class(sock, method=method)
        resp.begin()
        return resp

    def _acquire(self, key: Tuple[str, str, int], timeout: Timeout) -> Tuple[_Conn, bool]:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                break
            if not _dropped(conn):
                return conn, True
            conn.http.close()
        import http.client

        scheme, host, port = key
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        return _Conn(cls(host, port, timeout=timeout.connect_s), key), False

    def _release(self, conn: _Conn, *, reusable: bool) -> None:
        if reusable and not self._closed:
            with self._lock:
                idle = self._idle.setdefault(conn.key, [])
                if len(idle) < self._max_idle:
                    idle.append(conn)
                    return
        conn.http.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when released."""
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.http.close()


def _dropped(conn: _Conn) -> bool:
    """True when the server closed an idle connection (it reads as ready: EOF)."""
    import select

    sock = conn.http.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


_SPLIT_CACHE: Dict[str, Tuple[Tuple[str, str, int], str, str]] = {}


def _split(url: str) -> Tuple[Tuple[str, str, int], str, str]:
    """The pool key, request target and ``Host`` header of ``url`` (cached: a client
    reuses a few URLs)."""
    found = _SPLIT_CACHE.get(url)
    if found is None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        scheme, hostname = parts.scheme, parts.hostname or ""
        port = parts.port or _default_port(scheme)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        try:
            host = hostname.encode("ascii").decode("ascii")
        except UnicodeEncodeError:
            host = hostname.encode("idna").decode("ascii")
        host = f"[{host}]" if ":" in host else host
        if port != _default_port(scheme):
            host = f"{host}:{port}"
        found = ((scheme, hostname, port), target, host)
        if len(_SPLIT_CACHE) < 256:
            _SPLIT_CACHE[url] = found
    return found


def _legacy_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: Optional[bytes],
    timeout: Timeout,
    read_timeout_s: Optional[float],
    stream: bool,
) -> Request:
    extensions = {} if read_timeout_s is None else {READ_TIMEOUT: read_timeout_s}
    return Request(method, url, frozen_map(headers), body, timeout, stream, frozen_map(extensions))


class _LegacyTransport:
    """Adapts a transport with the old ``request(method, url, ...)`` method to ``send``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"{self.inner!r}"

    def send(self, request: Request) -> Response:
        extra = request.extensions.get(READ_TIMEOUT)
        response: Response = self.inner.request(
            request.method,
            request.url,
            headers=request.headers,
            body=request.body,
            timeout=request.timeout,
            read_timeout_s=None if extra is None else float(extra),
            stream=request.stream,
        )
        return response

    def close(self) -> None:
        self.inner.close()


def as_transport(transport: Any) -> Transport:
    """``transport`` itself when it has ``send(request)``; an adapter for the old
    ``request(method, url, ...)`` signature; ``TypeError`` for anything else."""
    if callable(getattr(transport, "send", None)):
        found: Transport = transport
        return found
    if callable(getattr(transport, "request", None)):
        return _LegacyTransport(transport)
    raise TypeError(f"{transport!r} is not a transport: it has no send(request) method")
