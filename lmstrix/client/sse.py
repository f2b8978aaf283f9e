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

__all__ = ["SSEDecoder", "ServerSentEvent"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


class ServerSentEvent(NamedTuple):
    """One event: its ``event`` type (``None`` for the default), ``data``, ``id``, ``retry``."""

    event: Optional[str]
    data: str
    id: Optional[str] = None
    retry: Optional[int] = None


class SSEDecoder:
    """Turns a byte stream into :class:`ServerSentEvent` objects, piece by piece."""

    def __init__(self) -> None:
        self._pending = b""  # bytes of a line not yet terminated
        self._skip_lf = False  # the last piece ended in CR: a leading LF belongs to it
        self._event: Optional[str] = None
        self._data: List[str] = []
        self._id: Optional[str] = None
        self._retry: Optional[int] = None
        self.comments = 0

    def feed(self, chunk: bytes) -> List[ServerSentEvent]:
        """Add bytes; return the events completed by them (possibly none)."""
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not chunk:
            return []
        buf = self._pending + chunk if self._pending else chunk
        events: List[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(buf):
            event = self._line(buf[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._pending = buf[start:]
        if buf[-1:] == b"\r":
            self._skip_lf = True
        return events

    def flush(self) -> List[ServerSentEvent]:
        """Finish at end of stream: an unterminated last line and event still count.

        The specification drops an event that was not followed by a blank line; servers
        that close right after ``data: [DONE]`` exist, so lmstrix keeps it.
        """
        events: List[ServerSentEvent] = []
        if self._pending:
            line, self._pending = self._pending, b""
            event = self._line(line)
            if event is not None:  # pragma: no cover - a blank pending line is never kept
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

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
        elif name == "retry" and value.isdigit():
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
