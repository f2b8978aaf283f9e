"""The simulated tokenizers: ``"words"`` (realistic, the default) and ``"chars"`` (exact).

``"words"`` counts the way a BPE tokenizer roughly does on English: a word with its
leading space is one token when short and a few pieces when long, each group of up to
three digits is a token, each punctuation mark and each newline is a token, and a run of
spaces costs a token per two spaces. The rarer letters cost a token more each, as rare
merges do, so two texts of the same length get different counts when their words differ.
The count of a prefix never exceeds the count of the whole text. The piece length is
calibrated so that the probe's filler prose averages ``chars_per_token`` characters per
token (reachable from about 1.0 to 6.0; beyond, the nearest end is used).

It runs in linear time with no Python loop over the text: the text is encoded to UTF-8,
mapped to byte classes with ``bytes.translate`` and counted with ``bytes.count``.
Non-ASCII bytes count as letters, so a non-Latin script costs more tokens per character.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, List, NamedTuple

from ..context import _probe

__all__ = ["TOKENIZERS", "count_chars", "count_tokens", "count_words"]

TOKENIZERS = ("words", "chars")
"""The tokenizer names :class:`~lmstrix.testing.SimModel` accepts."""

_MAX_PIECE = 16
_REFERENCE_SEEDS = (0, 1, 2, 3)
_REFERENCE_CHARS = 25_000
# Letters that cost one more token each, as the rarer merges of a BPE vocabulary do: the
# count then depends on which words a text uses, not only on how long they are.
_COSTLY_LETTERS = "gjkqvwxyzGJKQVWXYZ"


def _table(classify: Callable[[str], str]) -> bytes:
    return bytes(ord(classify(chr(byte))) for byte in range(256))


def _class_of(char: str) -> str:
    if ord(char) >= 0x80 or char.isalpha():
        return "a"
    if char in "0123456789":
        return "0"
    if char in " \t\r\f\v":
        return " "
    return char if char == "\n" else "."  # punctuation and symbols: one token each


_CLASSES = _table(_class_of)
_LETTERS = _table(lambda c: "a" if _class_of(c) == "a" else " ")
_DIGITS = _table(lambda c: "0" if _class_of(c) == "0" else " ")
_NOT_COSTLY = bytes(b for b in range(256) if chr(b) not in _COSTLY_LETTERS)


class _Text(NamedTuple):
    raw: bytes  # UTF-8
    classes: bytes  # "a" letter, "0" digit, " " space, "\n" newline, "." anything else
    letters: bytes  # "a" letter, " " anything else


def _encode(text: str) -> _Text:
    raw = text.encode("utf-8", "surrogatepass")
    return _Text(raw, raw.translate(_CLASSES), raw.translate(_LETTERS))


def _digit_groups(text: _Text) -> int:
    """Groups of up to three digits: a run of ``w`` digits costs ``ceil(w / 3)``."""
    if b"0" not in text.classes:
        return 0
    # Two more digits at the start of each run make a plain count of "000" round up.
    digits = b" " + text.raw.translate(_DIGITS)
    return digits.replace(b" 0", b" 000").count(b"000")


def _base_tokens(text: _Text) -> int:
    """One token per word, digit group, punctuation mark, newline and costly letter, and
    per two spaces in a row (the extra pieces of long words are counted apart)."""
    cls = text.classes
    words = text.letters.count(b" a") + text.letters.startswith(b"a")
    marks = cls.count(b".") + cls.count(b"\n") + cls.count(b"  ")
    return words + _digit_groups(text) + marks


def _costly(text: _Text) -> int:
    return len(text.raw.translate(None, _NOT_COSTLY))


def _extra_pieces(text: _Text, piece: int) -> int:
    """Extra tokens of long words: a word of ``w`` letters costs ``1 + w // piece``."""
    return text.letters.count(b"a" * piece)


class _Plan(NamedTuple):
    piece: int  # words are cut in pieces of ``piece`` letters...
    longer: float  # ...blended with pieces one letter longer, with this weight
    costly: float  # tokens per costly letter


@functools.lru_cache(maxsize=64)
def _plan(chars_per_token: float) -> _Plan:
    """Calibrate on the reference prose so it averages ``chars_per_token`` chars per token."""
    texts = [_encode(_probe.filler(_REFERENCE_CHARS, seed=s)) for s in _REFERENCE_SEEDS]
    chars = sum(len(text.raw) for text in texts)
    base = sum(_base_tokens(text) for text in texts)
    costly = sum(_costly(text) for text in texts)
    totals: List[int] = [
        base + costly + sum(_extra_pieces(text, piece) for text in texts)
        for piece in range(1, _MAX_PIECE + 2)
    ]
    target = chars / chars_per_token
    if target >= totals[0]:
        return _Plan(1, 0.0, 1.0)
    for index in range(_MAX_PIECE):
        high, low = totals[index], totals[index + 1]
        if low <= target <= high and high > low:
            return _Plan(index + 1, (high - target) / (high - low), 1.0)
    # Sparser than whole words: make the costly letters cheaper (free at the far end).
    rest = totals[_MAX_PIECE] - costly
    return _Plan(_MAX_PIECE + 1, 0.0, max(0.0, (target - rest) / costly) if costly else 0.0)


def count_words(text: str, chars_per_token: float = 4.0) -> int:
    """The realistic count (see the module docstring); 0 only for the empty string."""
    if not text:
        return 0
    plan = _plan(float(chars_per_token))
    encoded = _encode(text)
    total = _base_tokens(encoded) + plan.costly * _costly(encoded)
    total += (1.0 - plan.longer) * _extra_pieces(encoded, plan.piece)
    if plan.longer:
        total += plan.longer * _extra_pieces(encoded, plan.piece + 1)
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
