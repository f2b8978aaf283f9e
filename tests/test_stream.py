"""``ChatStream`` on bytes in memory: how events become chunks, and how a stream ends.

The network paths are in ``test_client.py`` and ``test_stream_contract.py``; here a
``BufferedResponse`` stands in for the server so each byte sequence is exact.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, List, Optional

import pytest

from lmstrix import CallEvent, Chunk, StreamError
from lmstrix.client._calls import CallScope
from lmstrix.stream import ChatStream
from lmstrix.transport import BufferedResponse


def event(text: Optional[str] = None, finish: Optional[str] = None, **extra: Any) -> bytes:
    delta = {} if text is None else {"content": text}
    payload = {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    payload.update(extra)
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


class Pieces(BufferedResponse):
    """A response whose body arrives in the given pieces; records ``close()``."""

    def __init__(self, *pieces: bytes) -> None:
        super().__init__(200, {"content-type": "text/event-stream"}, b"".join(pieces))
        self.pieces = pieces
        self.closed = 0

    def iter_bytes(self) -> Iterator[bytes]:
        yield from self.pieces

    def close(self) -> None:
        self.closed += 1


def stream_of(*pieces: bytes, events: Optional[List[CallEvent]] = None) -> ChatStream:
    scope = None
    if events is not None:
        scope = CallScope([events.append], "http://s", "chat", "m", {}, stream=True)
    return ChatStream(
        Pieces(*pieces), url="http://s/v1/chat/completions", model="m", started=0.0, scope=scope
    )


def test_chunks_and_the_completion() -> None:
    events: List[CallEvent] = []
    stream = stream_of(
        event("Hel"), event("lo"), event(None, "stop"), b"data: [DONE]\n\n", events=events
    )
    assert "open" in repr(stream)
    assert [c.text for c in stream] == ["Hel", "lo", ""]
    assert stream.text() == "Hello"
    assert "done" in repr(stream)
    assert [(e.outcome, e.served_model) for e in events] == [("ok", "m")]


def test_a_stream_without_done_or_final_blank_line_is_read_to_its_end() -> None:
    tail = event(None, "stop").rstrip(b"\n")  # the server closed right after the data line
    stream = stream_of(event("a"), tail)
    assert stream.text() == "a"
    assert stream.completion.finish_reason == "stop"


def test_a_large_first_read_gives_every_chunk_in_order() -> None:
    words = [f"w{i} " for i in range(300)]
    body = b"".join(event(w) for w in words) + event(None, "stop") + b"data: [DONE]\n\n"
    assert len(body) > 8 * 2048
    stream = stream_of(body)
    assert stream.text() == "".join(words)


def test_closing_inside_the_loop_stops_at_once() -> None:
    events: List[CallEvent] = []
    stream = stream_of(event("a") + event("b") + event("c") + event(None, "stop"), events=events)
    seen = []
    for chunk in stream:
        seen.append(chunk.text)
        stream.close()
    assert seen == ["a"]
    assert "closed" in repr(stream)
    with pytest.raises(StopIteration):
        next(stream)
    assert [e.outcome for e in events] == ["closed"]


def test_events_that_are_not_chunks_are_skipped() -> None:
    usage = {"usage": {"prompt_tokens": 3, "completion_tokens": 2}, "choices": []}
    stream = stream_of(
        b"data: [1, 2]\n\n",  # JSON, but not an object
        b"event: ping\ndata: {}\n\n",  # another event type, no error in it
        b"data: " + json.dumps(usage).encode() + b"\n\n",
        event("x"),
        event(None, "stop"),
    )
    assert stream.text() == "x"
    assert stream.completion.usage.prompt_tokens == 3


@pytest.mark.parametrize(
    ("pieces", "kind"),
    [
        ((event("a"), b"data: {not json\n\n"), "bad_event"),
        ((event(None, "stop"), b"data: [DONE]\n\n"), "empty"),
        ((event("a"), b"data: [DONE]\n\n"), "truncated"),
        ((event("a"), b'event: error\ndata: {"message": "boom"}\n\n'), "error_event"),
    ],
)
def test_how_a_stream_fails(pieces: Any, kind: str) -> None:
    events: List[CallEvent] = []
    with pytest.raises(StreamError) as info:
        stream_of(*pieces, events=events).text()
    assert info.value.kind == kind
    assert [e.outcome for e in events] == ["error"] and events[0].error is info.value


def test_chunk_from_wire_reads_both_endpoints() -> None:
    chat = {"choices": [{"delta": {"content": "a", "reasoning_content": "r"}}]}
    plain = {"choices": [{"text": "b", "finish_reason": "length"}]}
    assert Chunk.from_wire(chat, chat=True) == Chunk("a", None, "r")
    assert Chunk.from_wire(plain, chat=False) == Chunk("b", "length", "")
    assert Chunk.from_wire({"choices": []}, chat=True) == Chunk()
    assert Chunk.from_wire({"choices": [{"text": 5}]}, chat=False).text == "5"


def test_scope_reports_once_and_survives_a_broken_observer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: List[CallEvent] = []

    def broken(event: CallEvent) -> None:
        raise RuntimeError("observer bug")

    scope = CallScope([broken, seen.append], "http://s", "load", "m", {"context_length": 1})
    scope.finish()
    scope.finish(error=ValueError("late"))
    assert [(e.operation, e.ok, e.parameters) for e in seen] == [
        ("load", True, {"context_length": 1})
    ]
    assert "observer bug" in caplog.text
