"""The simulated tokenizers: ``"words"`` (realistic, the default) and ``"chars"`` (exact).

``"words"`` counts the way a BPE tokenizer roughly does on English: a word with its
leading space is one token when short and a few pieces when long, each group of up to
three digits is a token, each punctuation mark and each newline is a token, and a run of
spaces costs a token per two spaces. Two texts of the same length therefore get different
counts when their words differ, and the count of a prefix never exceeds the count of the
whole text. The piece length is calibrated so that the probe's filler prose averages
``chars_per_token`` characters per token (reachable from about 1.2 to 6; outside that
range the nearest end is used).

It runs in linear time with no Python loop over the text: the text is encoded to UTF-8,
mapped to five byte classes with ``bytes.translate`` and counted with ``bytes.count``.
Non-ASCII bytes count as letters, so a non-Latin script costs more tokens per character.
"""

from __future__ import annotations

import functools
import math
import re
from typing import List, NamedTuple, Tuple

from .. import _probe

__all__ = ["TOKENIZERS", "count_chars", "count_tokens", "count_words"]

TOKENIZERS = ("words", "chars")
"""The tokenizer names :class:`~lmstrix.testing.SimModel` accepts."""

_MAX_PIECE = 16
_REFERENCE_SEEDS = (0, 1, 2, 3)
_REFERENCE_CHARS = 25_000
_DIGIT_GROUP_RE = re.compile(rb"0{1,3}")
# Letter pairs that cost one more token each, as pairs a BPE vocabulary merges late would:
# the count then depends on which words a text uses, not only on their lengths.
_COSTLY_PAIRS = (b"ou", b"ea", b"ll", b"ee", b"gh", b"wh", b"ck", b"rb", b"ey", b"ft")


def _class_table() -> bytes:
    table = bytearray(b"." * 256)  # punctuation and symbols: one token each
    for byte in range(256):
        char = chr(byte)
        if byte >= 0x80 or char.isalpha():
            table[byte] = ord("a")
        elif char in "0123456789":
            table[byte] = ord("0")
        elif char in " \t\r\f\v":
            table[byte] = ord(" ")
        elif char == "\n":
            table[byte] = ord("\n")
    return bytes(table)


_CLASSES = _class_table()


def _encode(text: str) -> Tuple[bytes, bytes]:
    """Return the UTF-8 bytes of ``text`` and their classes."""
    raw = text.encode("utf-8", "surrogatepass")
    return raw, raw.translate(_CLASSES)


def _costly_pairs(raw: bytes) -> int:
    return sum(raw.count(pair) for pair in _COSTLY_PAIRS)


def _base_tokens(cls: bytes) -> int:
    """One token per word and digit group, punctuation mark and newline, and per two
    spaces in a row (long words' extra pieces and costly letter pairs are counted apart)."""
    words = (
        cls.count(b" a") + cls.count(b".a") + cls.count(b"0a") + cls.count(b"\na")
    ) + cls.startswith(b"a")
    digit_groups = len(_DIGIT_GROUP_RE.findall(cls))
    return words + digit_groups + cls.count(b".") + cls.count(b"\n") + cls.count(b"  ")


def _extra_pieces(cls: bytes, piece: int) -> int:
    """Extra tokens of long words: a word of ``w`` letters costs ``1 + w // piece``."""
    return cls.count(b"a" * piece)


class _Plan(NamedTuple):
    piece: int  # words are cut in pieces of ``piece`` letters...
    longer: float  # ...blended with pieces one letter longer, with this weight
    pair_cost: float  # tokens per costly letter pair


@functools.lru_cache(maxsize=64)
def _plan(chars_per_token: float) -> _Plan:
    """Calibrate on the reference prose so it averages ``chars_per_token`` chars per token."""
    encoded = [_encode(_probe.filler(_REFERENCE_CHARS, seed=s)) for s in _REFERENCE_SEEDS]
    chars = sum(len(raw) for raw, _ in encoded)
    base = sum(_base_tokens(cls) for _, cls in encoded)
    pairs = sum(_costly_pairs(raw) for raw, _ in encoded)
    totals: List[int] = [
        base + pairs + sum(_extra_pieces(cls, piece) for _, cls in encoded)
        for piece in range(1, _MAX_PIECE + 2)
    ]
    target = chars / chars_per_token
    if target >= totals[0]:
        return _Plan(1, 0.0, 1.0)
    for index in range(_MAX_PIECE):
        high, low = totals[index], totals[index + 1]
        if low <= target <= high and high > low:
            return _Plan(index + 1, (high - target) / (high - low), 1.0)
    # Sparser than whole words: make the costly pairs cheaper (free at the far end).
    rest = totals[_MAX_PIECE] - pairs
    return _Plan(_MAX_PIECE + 1, 0.0, max(0.0, (target - rest) / pairs) if pairs else 0.0)


def count_words(text: str, chars_per_token: float = 4.0) -> int:
    """The realistic count (see the module docstring); 0 only for the empty string."""
    if not text:
        return 0
    plan = _plan(float(chars_per_token))
    raw, cls = _encode(text)
    total = _base_tokens(cls) + plan.pair_cost * _costly_pairs(raw)
    total += (1.0 - plan.longer) * _extra_pieces(cls, plan.piece)
    if plan.longer:
        total += plan.longer * _extra_pieces(cls, plan.piece + 1)
    return max(1, round(total))


def count_chars(text: str, chars_per_token: float = 4.0) -> int:
    """The exact count: ``ceil(len(text) / chars_per_token)``."""
    return math.ceil(len(text) / chars_per_token)


def count_tokens(text: str, chars_per_token: float = 4.0, tokenizer: str = "words") -> int:
    """Count ``text`` with the named simulated tokenizer.

    Raises:
        ValueError: ``tokenizer`` is not one of :data:`TOKENIZERS`.
    """
    if tokenizer == "words":
        return count_words(text, chars_per_token)
    if tokenizer == "chars":
        return count_chars(text, chars_per_token)
    raise ValueError(f"unknown tokenizer {tokenizer!r}; use one of {list(TOKENIZERS)}")
