"""The SSE decoder, fed hand-made and random byte pieces (no network)."""

from __future__ import annotations

from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmstrix.client import sse
from lmstrix.errors import StreamError
from lmstrix.sse import DEFAULT_MAX_LINE_BYTES, ServerSentEvent, SSEDecoder


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


@pytest.mark.parametrize(
    "value",
    ["١٢", "+5", "  5", "5 ", "5_0", "-5", "²", "５", "5.0", "0x10", "1" * 19, "1" * 5000],
)
def test_retry_takes_ascii_digits_only_and_never_raises(value: str) -> None:
    # int() accepts several of these (other scripts' digits, signs, spaces, "_"; "  5"
    # keeps one space, as only the first after the colon is dropped), and "²".isdigit()
    # is true though int() refuses it: none of them is a retry value.
    raw = b"retry:" + value.encode("utf-8") + b"\ndata: z\n\n"
    assert decode([raw]) == [ServerSentEvent(None, "z")]


def test_retry_keeps_leading_zeros_and_eighteen_digits() -> None:
    assert decode([b"retry: 0042\ndata: z\n\n"]) == [ServerSentEvent(None, "z", None, 42)]
    big = b"9" * 18
    assert decode([b"retry:" + big + b"\ndata: z\n\n"])[0].retry == int(big)


def test_empty_feed_between_cr_and_lf_changes_nothing() -> None:
    # The LF after a CR still belongs to that CR when an empty read comes between them.
    assert decode([b"data: a\r", b"", b"\ndata: b\r\n\r\n"]) == [ServerSentEvent(None, "a\nb")]
    assert decode([b"data: a\r", b"", b"", b"\n", b"", b"\r\n"]) == [ServerSentEvent(None, "a")]


def test_lone_lf_after_cr_in_its_own_read() -> None:
    assert decode([b"data: a\r", b"\n", b"\r", b"\n"]) == [ServerSentEvent(None, "a")]


class _CountingScanner:
    """Stands in for the decoder's line-end regex and counts the bytes it scans."""

    def __init__(self, pattern: Any) -> None:
        self.pattern = pattern
        self.scanned = 0

    def finditer(self, data: bytes) -> Any:
        self.scanned += len(data)
        return self.pattern.finditer(data)


def test_long_line_in_small_reads_is_scanned_and_joined_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 16 MiB line fed in 64 KiB reads: each byte is scanned for line ends once and
    # copied into the line once. The old decoder prepended the pending bytes to every
    # read and scanned the whole buffer again: 256 reads of a growing buffer, about
    # 2 GiB scanned and copied (13 s), where 16 MiB is enough.
    size, step = 16 * 1024 * 1024, 64 * 1024
    raw = b"data: " + b"x" * (size - 6) + b"\n\n"
    scanner = _CountingScanner(sse._LINE_END)
    monkeypatch.setattr(sse, "_LINE_END", scanner)
    dec = SSEDecoder()
    events: List[ServerSentEvent] = []
    for i in range(0, len(raw), step):
        events.extend(dec.feed(raw[i : i + step]))
    assert len(events) == 1 and len(events[0].data) == size - 6
    assert scanner.scanned == len(raw)  # every byte once, none again
    assert dec._joined == size  # the line's pieces joined once


def test_long_line_split_everywhere_decodes_the_same() -> None:
    raw = b"data: " + bytes(range(32, 127)) * 50 + b"\r\nid: 9\r\n\r\n"
    expected = decode([raw])
    for step in (1, 7, 64, 4096):
        assert decode([raw[i : i + step] for i in range(0, len(raw), step)]) == expected


def test_line_longer_than_the_cap_raises_a_stream_error() -> None:
    dec = SSEDecoder(max_line_bytes=10)
    assert dec.feed(b"data: 1234\n\n") == [ServerSentEvent(None, "1234")]  # 10 bytes fit
    with pytest.raises(StreamError) as info:
        dec.feed(b"data: 12345\n\n")  # 11 bytes in one read
    assert info.value.kind == "line_too_long"
    assert "10 bytes" in str(info.value)
    dec = SSEDecoder(max_line_bytes=10)
    dec.feed(b"data: 12")
    with pytest.raises(StreamError, match="without a line end") as info:
        dec.feed(b"345")  # raised before the line ends: memory stays bounded
    assert info.value.kind == "line_too_long"
    dec = SSEDecoder(max_line_bytes=10)
    dec.feed(b"data: 1")
    with pytest.raises(StreamError):
        dec.feed(b"2345\n")  # the pieces fit, the joined line does not


def test_the_cap_has_a_sane_default_and_refuses_nonsense() -> None:
    assert SSEDecoder().max_line_bytes == DEFAULT_MAX_LINE_BYTES == 32 * 1024 * 1024
    with pytest.raises(ValueError):
        SSEDecoder(max_line_bytes=0)


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


def _with_empty_reads(pieces: List[bytes]) -> List[bytes]:
    out: List[bytes] = []
    for piece in pieces:
        out.extend([b"", piece, b""])
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=300).map(lambda b: b.replace(b"x", b"\r")),
    st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_empty_reads_anywhere_change_nothing(data: bytes, cuts: List[int]) -> None:
    assert decode(_with_empty_reads(split_at(data, cuts))) == decode([data])


_retry_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_retry_value)
def test_retry_is_set_exactly_for_ascii_digits(value: str) -> None:
    events = decode([b"retry:" + value.encode("utf-8") + b"\ndata: z\n\n"])
    kept = value[1:] if value[:1] == " " else value
    ascii_digits = 0 < len(kept) <= 18 and all("0" <= c <= "9" for c in kept)
    assert events[0].retry == (int(kept) if ascii_digits else None)


@settings(max_examples=100, deadline=None)
@given(
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=40),
    st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_the_cap_raises_only_for_a_line_over_it(data: bytes, cap: int, cuts: List[int]) -> None:
    longest = max(
        len(line) for line in data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    )
    dec = SSEDecoder(max_line_bytes=cap)
    kind = None
    try:
        for piece in split_at(data, cuts):
            dec.feed(piece)
        dec.flush()
    except StreamError as exc:
        kind = exc.kind
    assert kind == ("line_too_long" if longest > cap else None)
