"""The HTTP side of the simulator: a threaded loopback server, request handling, streaming.

HTTP/1.1 with keep-alive: every plain reply carries ``Content-Length`` and every stream
is sent with ``Transfer-Encoding: chunked``, so one connection serves many requests.
Client disconnects are expected here and never print tracebacks.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import io
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, NamedTuple, Optional, Sequence, Set
from urllib.parse import urlsplit

from . import _shapes as shapes
from ._engine import Engine, SimError
from ._faults import Fault, FaultBook
from ._routes import Settings, StreamSink, route

__all__ = ["ReceivedRequest", "Recorder", "SimServer"]

_CUTTING_KINDS = frozenset(
    {"drop_mid_stream", "truncate_stream", "error_event", "event_error_line"}
)
_QUIET_ERRORS = (ConnectionError, socket.timeout, OSError)
_HTML_500 = (
    b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    b"<body><h1>Internal Server Error</h1><p>Simulated failure.</p></body></html>"
)


class ReceivedRequest(NamedTuple):
    """One request as the simulator received it (``Authorization`` removed from headers)."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Any


class Recorder:
    """The most recent requests received, bounded; thread-safe."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._items: Deque[ReceivedRequest] = collections.deque(maxlen=max(0, limit))

    def add(self, item: ReceivedRequest) -> None:
        """Record ``item`` (dropping the oldest one beyond the limit)."""
        with self._lock:
            self._items.append(item)

    def items(self) -> List[ReceivedRequest]:
        """A copy of the recorded requests, oldest first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._items.clear()


class SimServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` on 127.0.0.1 that carries the simulator's state."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        port: int,
        *,
        engine: Engine,
        settings: Settings,
        faults: FaultBook,
        recorder: Recorder,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.faults = faults
        self.recorder = recorder
        self._conns: Set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients vanishing mid-request are part of what is simulated."""

    def track(self, conn: socket.socket, *, add: bool) -> None:
        """Remember (or forget) an open client connection."""
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close_connections(self) -> None:
        """Shut down every open keep-alive connection (used by ``stop``)."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _StreamWriter:
    """Writes SSE events as HTTP chunks and applies a stream fault when one is armed."""

    def __init__(self, handler: _Handler, fault: Optional[Fault]) -> None:
        self._handler = handler
        self._fault = fault
        self._sent = 0
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _ping(self) -> None:
        if self._fault is not None and self._fault.kind == "ping_comments":
            self._write(": ping\n\n")

    def _cutting(self) -> Optional[Fault]:
        fault = self._fault
        return fault if fault is not None and fault.kind in _CUTTING_KINDS else None

    def content(self, event: Dict[str, Any], name: Optional[str] = None) -> bool:
        """Send one content event (named ``name``: an ``event:`` line first); False when
        a fault has just ended the stream."""
        fault = self._cutting()
        if fault is not None and self._sent >= fault.after_chunks:
            self._cut(fault)
            return False
        self._ping()
        named = "" if name is None else f"event: {name}\n"
        self._write(f"{named}data: {json.dumps(event)}\n\n")
        self._sent += 1
        return True

    def finish(self, tail: Sequence[Dict[str, Any]], *, done: bool) -> None:
        """Send the closing events and ``[DONE]``, then end the chunked body."""
        fault = self._cutting()
        if fault is not None:
            self._cut(fault)
            return
        for event in tail:
            self._ping()
            self._write(f"data: {json.dumps(event)}\n\n")
        if done:
            self._write("data: [DONE]\n\n")
        self._end()

    def _end(self) -> None:
        self._handler.wfile.write(b"0\r\n\r\n")

    def _cut(self, fault: Fault) -> None:
        self._fault = None
        if fault.kind == "drop_mid_stream":
            self._handler.drop_connection(reset=False)
            return
        if fault.kind != "truncate_stream":
            error = {"error": {"message": fault.error_message, "type": "server_error"}}
            prefix = "event: error\n" if fault.kind == "event_error_line" else ""
            self._write(f"{prefix}data: {json.dumps(error)}\n\n")
        self._end()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: SimServer

    _stream_fault: Optional[Fault] = None

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet (the default writes every request to stderr)."""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)
        self.server.engine.count_connection()

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, add=False)

    @property
    def engine(self) -> Engine:
        return self.server.engine

    @property
    def settings(self) -> Settings:
        return self.server.settings

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    # -- replies ------------------------------------------------------------------------

    def send_json(self, status: int, obj: Any, headers: Optional[Dict[str, str]] = None) -> None:
        data = json.dumps(obj).encode("utf-8")
        self._send_bytes(status, data, "application/json; charset=utf-8", headers)

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, headers: Optional[Dict[str, str]] = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def open_stream(self) -> StreamSink:
        fault, self._stream_fault = self._stream_fault, None
        return _StreamWriter(self, fault)

    def take_answer_fault(self, kind: str) -> bool:
        fault = self._stream_fault
        if fault is None or fault.kind != kind:
            return False
        self._stream_fault = None
        return True

    def drop_connection(self, *, reset: bool) -> None:
        """Close the connection with no further bytes (a TCP reset when ``reset``)."""
        self.close_connection = True
        try:
            if reset:
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.connection.close()  # the real close (RST) happens when the files close
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:  # pragma: no cover - the client already went away
            pass

    # -- request handling ---------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: List[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _authorized(self) -> bool:
        token = self.settings.api_token
        if token is None:
            return True
        sent = self.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode("utf-8"), f"Bearer {token}".encode())

    def _dispatch(self) -> None:
        try:
            self._serve()
        except _QUIET_ERRORS:
            self.close_connection = True
        except Exception as exc:  # pragma: no cover - a simulator bug: say so, don't hang
            self.close_connection = True
            error = {"error": {"message": f"simulator error: {exc!r}", "type": "internal_error"}}
            with contextlib.suppress(OSError):
                self.send_json(500, error)

    def _serve(self) -> None:
        path = urlsplit(self.path).path
        raw = self._read_body()
        self.engine.count_request(path)
        self.engine.expire_idle()  # TTLs run out between requests, on the simulated clock
        body: Any = None
        bad_json = False
        if raw.strip():
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body, bad_json = raw.decode("utf-8", "replace"), True
        headers = {
            k.lower(): v
            for k, v in self.headers.items()
            if k.lower() not in ("authorization", "x-api-key")
        }
        self.server.recorder.add(ReceivedRequest(self.command, path, headers, body))
        family = "v1" if path.startswith("/api/v1/") else "openai"
        if path != "/lmstudio-greeting" and not self._authorized():
            err = SimError(
                401,
                "An LM Studio API token is required to make requests to this server, but none "
                "was provided or it is invalid. Send it in the header "
                "'Authorization: Bearer $LM_API_TOKEN' (create tokens in Developer > Server "
                "Settings > Manage Tokens).",
                code="invalid_api_key",
            )
            self.send_json(401, shapes.error_body(err, family="v1"))
            return
        streaming = isinstance(body, dict) and body.get("stream") is True
        fault = self.server.faults.take(path, streaming=streaming)
        self._stream_fault = None
        if fault is not None and self._apply_fault(fault):
            return
        if fault is None or fault.kind != "reset_after":
            self._route(path, body, bad_json=bad_json, family=family)
            return
        wfile, self.wfile = self.wfile, io.BytesIO()  # do the work, lose the reply
        try:
            self._route(path, body, bad_json=bad_json, family=family)
        finally:
            self.wfile = wfile
        self.drop_connection(reset=True)

    def _route(self, path: str, body: Any, *, bad_json: bool, family: str) -> None:
        endpoint = route(self.settings.api, self.command, path)
        if endpoint is None:
            self._unknown(path)
            return
        try:
            if bad_json:
                raise SimError(400, f"Received request for {path} with invalid JSON")
            endpoint(self, body)
        except SimError as err:
            self.send_json(err.status, shapes.error_body(err, family=family))

    def _apply_fault(self, fault: Fault) -> bool:
        """Apply a fault before routing; True when the request is fully answered."""
        if fault.kind == "delay":
            time.sleep(fault.delay_s)
            return False
        if fault.kind == "status":
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            body = {"error": {"message": fault.error_message, "type": "server_error"}}
            self.send_json(fault.status, body, headers)
            return True
        if fault.kind == "html_500":
            self._send_bytes(500, _HTML_500, "text/html; charset=utf-8")
            return True
        if fault.kind == "text_502":
            text = fault.message or "502 Bad Gateway"
            self._send_bytes(502, text.encode("utf-8"), "text/plain; charset=utf-8")
            return True
        if fault.kind == "reset":
            self.drop_connection(reset=True)
            return True
        if fault.kind != "reset_after":
            self._stream_fault = fault
        return False

    def _unknown(self, path: str) -> None:
        status = self.settings.unknown_path_status
        if self.settings.api == "openai":
            body: Dict[str, Any] = {
                "error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}
            }
            self.send_json(status or 404, body)
            return
        self.send_json(status or 200, shapes.unexpected_endpoint(self.command, path))
