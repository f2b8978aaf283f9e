"""An incremental Server-Sent-Events decoder: bytes in, events out.

A pure state machine with no I/O, following the WHATWG event-stream rules: lines end
in CR, LF or CRLF (a CRLF split across two reads counts once); text is decoded as
UTF-8 only once a whole line is assembled, so a character split across reads
survives; several ``data:`` lines join with newlines; lines starting with ``:`` are
comments. Feed it whatever the socket gives and collect the events it returns.

>>> dec = SSEDecoder()
>>> dec.feed(b'event: note\\ndata: hel')
[]
>>> dec.feed(b'lo\\ndata: world\\n\\n')
[ServerSentEvent(event='note', data='hello\\nworld', id=None, retry=None)]
"""

from __future__ import annotations

import re
from typing import List, NamedTuple, Optional

from ..errors import StreamError

__all__ = ["DEFAULT_MAX_LINE_BYTES", "SSEDecoder", "ServerSentEvent"]

_LINE_END = re.compile(rb"\r\n|\r|\n")
_RETRY = re.compile(r"[0-9]{1,18}")  # ASCII digits only; 18 digits is ~30 million years in ms

DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024
"""The longest event-stream line :class:`SSEDecoder` accepts by default (32 MiB)."""


class ServerSentEvent(NamedTuple):
    """One event: its ``event`` type (``None`` for the default), ``data``, ``id``, ``retry``."""

    event: Optional[str]
    data: str
    id: Optional[str] = None
    retry: Optional[int] = None


class SSEDecoder:
    """Turns a byte stream into :class:`ServerSentEvent` objects, piece by piece.

    Work is linear in the bytes fed, however a long line is split across reads: the
    pieces of an unterminated line are kept apart and joined once, when its line end
    arrives. A line longer than ``max_line_bytes`` (without its line end) raises
    :class:`~lmstrix.errors.StreamError` with ``kind="line_too_long"`` as soon as the
    limit is passed, so a server that never ends a line cannot fill the memory.
    """

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, not {max_line_bytes}")
        self.max_line_bytes = max_line_bytes
        self._parts: List[bytes] = []  # pieces of a line not yet terminated
        self._pending = 0  # their total length
        self._joined = 0  # bytes copied to join pieces: tests check that it stays linear
        self._skip_lf = False  # the last piece ended in CR: a leading LF belongs to it
        self._event: Optional[str] = None
        self._data: List[str] = []
        self._id: Optional[str] = None
        self._retry: Optional[int] = None
        self.comments = 0

    def feed(self, chunk: bytes) -> List[ServerSentEvent]:
        """Add bytes; return the events completed by them (possibly none).

        Raises:
            StreamError: a line passed ``max_line_bytes`` (``kind="line_too_long"``).
        """
        if not chunk:
            return []  # an empty read changes nothing, not even a pending CR's LF
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return []
        events: List[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(chunk):
            event = self._line(self._take(chunk[start : match.start()]))
            if event is not None:
                events.append(event)
            start = match.end()
        if start < len(chunk):
            rest = chunk[start:] if start else chunk
            self._parts.append(rest)
            self._pending += len(rest)
            self._check(self._pending)
        elif chunk[-1:] == b"\r":
            self._skip_lf = True
        return events

    def flush(self) -> List[ServerSentEvent]:
        """Finish at end of stream: an unterminated last line and event still count.

        The specification drops an event that was not followed by a blank line; servers
        that close right after ``data: [DONE]`` exist, so lmstrix keeps it.
        """
        events: List[ServerSentEvent] = []
        self._skip_lf = False
        if self._parts:
            event = self._line(self._take(b""))
            if event is not None:  # pragma: no cover - a blank pending line is never kept
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _take(self, tail: bytes) -> bytes:
        """The pending pieces plus ``tail``: one whole line, its pieces cleared."""
        if not self._parts:
            self._check(len(tail))
            return tail
        self._parts.append(tail)
        line = b"".join(self._parts)
        self._joined += len(line)
        self._parts = []
        self._pending = 0
        self._check(len(line))
        return line

    def _check(self, length: int) -> None:
        if length > self.max_line_bytes:
            self._parts = []
            self._pending = 0
            raise StreamError(
                f"an event-stream line passed {self.max_line_bytes} bytes without a line "
                "end; the server is not sending server-sent events, or the limit "
                "(SSEDecoder max_line_bytes) is too low for it",
                kind="line_too_long",
            )

    def _line(self, raw: bytes) -> Optional[ServerSentEvent]:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", errors="replace")
        if line[0] == ":":
            self.comments += 1
            return None
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and _RETRY.fullmatch(value):
            # Only ASCII digits count (not "+5", " 5", "5_0" or other scripts' digits);
            # a value of more than 18 digits is ignored rather than parsed.
            self._retry = int(value)
        return None  # other field names are ignored, as the specification says

    def _dispatch(self) -> Optional[ServerSentEvent]:
        if not self._data:
            self._event = None
            return None
        event = ServerSentEvent(self._event, "\n".join(self._data), self._id, self._retry)
        self._event = None
        self._data = []
        self._retry = None
        return event
