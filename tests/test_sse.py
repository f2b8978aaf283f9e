"""The SSE decoder, fed hand-made and random byte pieces (no network)."""

from __future__ import annotations

from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st

from lmstrix.sse import ServerSentEvent, SSEDecoder


def decode(pieces: List[bytes]) -> List[ServerSentEvent]:
    dec = SSEDecoder()
    out: List[ServerSentEvent] = []
    for piece in pieces:
        out.extend(dec.feed(piece))
    out.extend(dec.flush())
    return out


def split_at(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for p in points:
        pieces.append(data[start:p])
        start = p
    pieces.append(data[start:])
    return pieces


def test_single_event() -> None:
    assert decode([b"data: hello\n\n"]) == [ServerSentEvent(None, "hello")]


def test_multi_line_data_joins_with_newline() -> None:
    assert decode([b"data: a\ndata: b\ndata:c\n\n"]) == [ServerSentEvent(None, "a\nb\nc")]


def test_event_type_and_id_and_retry() -> None:
    events = decode([b"event: error\nid: 7\nretry: 300\ndata: {}\n\n"])
    assert events == [ServerSentEvent("error", "{}", "7", 300)]


def test_comments_are_ignored_and_counted() -> None:
    dec = SSEDecoder()
    assert dec.feed(b": ping\n\n: ping\ndata: x\n\n") == [ServerSentEvent(None, "x")]
    assert dec.comments == 2


def test_crlf_split_across_reads_counts_once() -> None:
    # If the LF after a CR were a second line end, the blank line would dispatch early.
    events = decode([b"data: a\r", b"\ndata: b\r\n\r\n"])
    assert events == [ServerSentEvent(None, "a\nb")]


def test_cr_only_line_endings() -> None:
    assert decode([b"data: a\r\rdata: b\r\r"]) == [
        ServerSentEvent(None, "a"),
        ServerSentEvent(None, "b"),
    ]


def test_multibyte_character_split_across_reads() -> None:
    raw = "data: héllo – 世界 🙂\n\n".encode()
    cut = raw.index("🙂".encode()) + 2  # in the middle of the emoji's four bytes
    assert decode([raw[:cut], raw[cut:]]) == [ServerSentEvent(None, "héllo – 世界 🙂")]


def test_field_without_colon_and_unknown_fields() -> None:
    assert decode([b"data\n\n", b"foo: bar\ndata: x\n\n"]) == [
        ServerSentEvent(None, ""),
        ServerSentEvent(None, "x"),
    ]


def test_event_without_data_is_not_dispatched() -> None:
    assert decode([b"event: ping\n\ndata: y\n\n"]) == [ServerSentEvent(None, "y")]


def test_id_with_nul_is_ignored() -> None:
    assert decode([b"id: a\x00b\ndata: z\n\n"]) == [ServerSentEvent(None, "z", None)]


def test_retry_must_be_digits() -> None:
    assert decode([b"retry: soon\ndata: z\n\n"]) == [ServerSentEvent(None, "z")]


def test_flush_keeps_an_unterminated_last_event() -> None:
    assert decode([b"data: 1\n\ndata: [DONE]"]) == [
        ServerSentEvent(None, "1"),
        ServerSentEvent(None, "[DONE]"),
    ]


def test_empty_feed() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"") == []
    assert dec.flush() == []


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode([b"data: \xff\xfe\n\n"]) == [ServerSentEvent(None, "\ufffd\ufffd")]


# -- property-based: any chunking and any line-ending style give the same events --

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=40,
)
_event = st.tuples(
    st.one_of(st.none(), st.sampled_from(["message", "error", "chat.end"])),
    st.lists(_text, min_size=1, max_size=4),
)


def _encode(events: List[tuple], newline: bytes, comments: bool) -> bytes:  # type: ignore[type-arg]
    out = []
    for etype, lines in events:
        if comments:
            out.append(b": ping" + newline)
        if etype is not None:
            out.append(b"event: " + etype.encode() + newline)
        for line in lines:
            out.append(b"data: " + line.encode("utf-8") + newline)
        out.append(newline)
    return b"".join(out)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(_event, max_size=6),
    newline=st.sampled_from([b"\n", b"\r", b"\r\n"]),
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_chunking_and_line_ending_decodes_the_same(
    events: List[tuple],  # type: ignore[type-arg]
    newline: bytes,
    comments: bool,
    cuts: List[int],
) -> None:
    raw = _encode(events, newline, comments)
    expected = [ServerSentEvent(etype, "\n".join(lines)) for etype, lines in events]
    assert decode(split_at(raw, cuts)) == expected
    assert decode([raw[i : i + 1] for i in range(len(raw))]) == expected  # byte by byte


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_random_bytes_never_raise_and_chunking_does_not_matter(
    data: bytes, cuts: List[int]
) -> None:
    assert decode(split_at(data, cuts)) == decode([data])
