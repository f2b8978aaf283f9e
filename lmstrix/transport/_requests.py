"""``RequestsTransport``: the :class:`~lmstrix.transport.Transport` contract over ``requests``.

Use it when you want what ``requests`` brings: proxies (also from ``HTTPS_PROXY`` and
friends), TLS client certificates and CA bundles, a session you already configured::

    from lmstrix import Client
    from lmstrix.requests_transport import RequestsTransport

    client = Client("https://lmstudio.internal:1234",
                    transport=RequestsTransport(verify="/etc/ssl/corp-ca.pem"))

Needs the ``[requests]`` extra (``pip install lmstrix[requests]``). Every ``requests``
and ``urllib3`` exception becomes an :class:`~lmstrix.errors.APIConnectionError` or
:class:`~lmstrix.errors.APITimeoutError` here, as with the stdlib transport. Headers are
never logged (they carry the API token). See ``docs/user-guide/transports.md``.
"""

from __future__ import annotations

import collections
import socket
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ..errors import APIConnectionError
from ._stdlib import _legacy_request, connection_error

if TYPE_CHECKING:
    import requests

    from ..config import Timeout
    from ._request import Request
    from ._stdlib import Response

__all__ = ["RequestsTransport"]

_READ_SIZE = 65536


class RequestsTransport:
    """A :class:`~lmstrix.transport.Transport` on a ``requests.Session`` (connection pooling).

    Args:
        session: a session to use (your adapters, auth, proxies...); by default a new one
            with a pool of ``pool_maxsize`` connections per host and no retries of its
            own (the client decides what is retried). A session you pass is not closed
            by :meth:`close`.
        verify: ``False``, or the path of a CA bundle, to change certificate checking.
        cert: a client certificate: a path, or ``(cert, key)`` paths.
        proxies: ``{"http": URL, "https": URL}``; by default the ``*_PROXY`` environment
            variables apply, as everywhere in ``requests``.
        pool_maxsize: connections kept per host (new sessions only).

    Raises:
        ImportError: ``requests`` is not installed.
    """

    def __init__(
        self,
        session: Optional[requests.Session] = None,
        *,
        verify: Union[bool, str] = True,
        cert: Union[str, Tuple[str, str], None] = None,
        proxies: Optional[Mapping[str, str]] = None,
        pool_maxsize: int = 16,
    ) -> None:
        try:
            import requests
            from requests.adapters import HTTPAdapter
        except ImportError as exc:  # pragma: no cover - the tests need requests
            raise ImportError(
                "RequestsTransport needs the requests package: pip install 'lmstrix[requests]'"
            ) from exc
        self._owned = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        # Settings go on the session, so a session passed in keeps its own unless told.
        if self._owned or verify is not True:
            session.verify = verify
        if cert is not None:
            session.cert = cert
        if proxies is not None:
            session.proxies.update(proxies)
        self.session = session

    def __repr__(self) -> str:
        return f"RequestsTransport(verify={self.session.verify!r})"

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
        """Send one request over the session's pool (see :class:`~lmstrix.transport.Transport`)."""
        url = request.url
        try:
            resp = self.session.request(
                request.method,
                url,
                headers=dict(request.headers),
                data=request.body,
                timeout=(request.timeout.connect_s, request.read_timeout_s),
                stream=True,  # the body is read below, so its errors are mapped in one place
                allow_redirects=False,
                # requests lets REQUESTS_CA_BUNDLE and *_PROXY override a session's own
                # verify and proxies (requests#3829); passed per request, they win.
                verify=self.session.verify,
                cert=self.session.cert,
                proxies=dict(self.session.proxies),
            )
        except Exception as exc:  # requests, urllib3, socket and ssl errors alike
            raise _translate(exc, url, streaming=False) from exc
        response = _RequestsResponse(resp, url)
        if not request.stream:
            response.read()  # closes the response, or releases its connection at the end
        return response

    def close(self) -> None:
        """Close the session's pooled connections (only a session this transport made)."""
        if self._owned:
            self.session.close()


class _RequestsResponse:
    """A :class:`~lmstrix.transport.Response` over ``requests.Response``."""

    def __init__(self, resp: requests.Response, url: str) -> None:
        self.status_code: int = resp.status_code
        self.headers: Dict[str, str] = {k.lower(): v for k, v in resp.headers.items()}
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
        try:
            for piece in self._pieces():
                if piece:
                    yield piece
        except Exception as exc:  # cut, timed out or garbled mid-body
            self._resp.close()
            raise _translate(exc, self._url, streaming=True) from exc
        self._body = b""  # read to the end: a second pass yields nothing
        self._resp.close()  # after a full read this returns the connection to the pool

    def _pieces(self) -> Iterator[bytes]:
        raw: Any = self._resp.raw
        delimited = getattr(raw, "chunked", False) or "content-length" in self.headers
        if not delimited and hasattr(raw, "read1"):
            # A body that ends when the connection does: read what has arrived, or a
            # stream would wait for its end (urllib3 >= 2 has read1).
            while True:
                piece = raw.read1(_READ_SIZE)
                if not piece:
                    return
                yield piece
        yield from self._resp.iter_content(chunk_size=None)

    def close(self) -> None:
        # An unread body closes the connection rather than returning it to the pool.
        self._resp.close()


def _chain(exc: BaseException) -> List[BaseException]:
    """``exc`` and the errors inside it (causes, contexts, urllib3 reasons), outermost first."""
    found: List[BaseException] = []
    todo = collections.deque([exc])
    while todo and len(found) < 20:
        err = todo.popleft()
        if any(err is e for e in found):
            continue
        found.append(err)
        inner = [err.__cause__, err.__context__, getattr(err, "reason", None), *err.args]
        todo.extend(e for e in inner if isinstance(e, BaseException))
    return found


def _translate(exc: BaseException, url: str, *, streaming: bool) -> APIConnectionError:
    """Map a ``requests``/``urllib3`` exception to lmstrix's (see the module docstring)."""
    import requests

    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    if isinstance(exc, requests.exceptions.SSLError) or any(
        type(e).__module__ == "ssl" for e in chain
    ):
        return APIConnectionError(
            f"TLS/SSL error talking to {url}: {_innermost(chain)}; check the server "
            "certificate and the CA bundle (RequestsTransport(verify=PATH)), or the "
            "URL's scheme (http:// or https://)",
            url=url,
            sent=streaming,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return connection_error(socket.timeout("connect timed out"), url, sent=False)
    if isinstance(exc, requests.exceptions.Timeout) or names & _TIMEOUT_NAMES:
        return connection_error(socket.timeout("read timed out"), url, sent=True)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return connection_error(ConnectionRefusedError(), url, sent=False)
    if not streaming and (
        isinstance(exc, requests.exceptions.ProxyError) or "NewConnectionError" in names
    ):
        # No connection was made (name resolution, unreachable host, proxy refused).
        return connection_error(_innermost(chain), url, sent=False)
    return connection_error(_innermost(chain), url, sent=True)


_TIMEOUT_NAMES = frozenset({"ReadTimeoutError", "TimeoutError", "timeout"})
_PLAIN_MODULES = ("builtins", "ssl", "http.client", "socket")


def _innermost(chain: List[BaseException]) -> BaseException:
    """The most specific error of a chain: the deepest plain OS-level one, else the first."""
    for err in reversed(chain):
        if isinstance(err, OSError) and str(err) and type(err).__module__ in _PLAIN_MODULES:
            return err
    return chain[0]
