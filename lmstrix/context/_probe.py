"""The needle probe: the documented prompt the context search sends and the simulator answers.

A probe is one user message::

    The secret number is 482913.
    <filler prose, no digits, up to the target size>
    What is the secret number? Reply with the number only.

The filler for a given seed is one endless, deterministic stream of English-like
sentences; a probe of ``n`` characters uses the stream's first ``n``-ish characters (cut at
a word boundary). Two probes with the same secret and seed therefore share their whole
text up to the shorter one's cut point, so a server's prompt cache can reuse the prefix
when the search grows or shrinks the probe.
"""

from __future__ import annotations

import random
import re
import threading
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

__all__ = [
    "QUESTION",
    "Calibration",
    "answer_is_correct",
    "build_probe",
    "filler",
    "header",
    "make_secret",
    "min_probe_chars",
    "parse_probe",
    "was_cut",
]

QUESTION = "What is the secret number? Reply with the number only."
"""The probe's last line."""

_HEADER_FORMAT = "The secret number is {}."
_HEADER_RE = re.compile(r"^The secret number is ([0-9]{6})\.$")
# Digit groups written as "482 913" or "482,913" still count as the number.
_DIGIT_GROUP_SEP_RE = re.compile(r"(?<=[0-9])[ ,._'](?=[0-9])")
_DIGIT_RUN_RE = re.compile(r"[0-9]+")

# No digits anywhere in here: the filler must never contain a competing number.
_DETERMINERS = ("the", "a", "this", "that", "every", "some", "each", "another")
_ADJECTIVES = (
    "old",
    "new",
    "quiet",
    "bright",
    "distant",
    "gentle",
    "heavy",
    "small",
    "large",
    "early",
    "late",
    "green",
    "golden",
    "silver",
    "northern",
    "southern",
    "ancient",
    "modern",
    "simple",
    "narrow",
    "warm",
    "cold",
    "patient",
    "careful",
)
_NOUNS = (
    "river",
    "mountain",
    "valley",
    "forest",
    "garden",
    "village",
    "harbour",
    "market",
    "library",
    "window",
    "bridge",
    "road",
    "field",
    "meadow",
    "lantern",
    "engine",
    "letter",
    "story",
    "picture",
    "journey",
    "morning",
    "evening",
    "season",
    "traveller",
    "teacher",
    "farmer",
    "sailor",
    "painter",
    "writer",
    "child",
    "neighbour",
    "visitor",
)
_VERBS = (
    "walks",
    "carries",
    "finds",
    "watches",
    "follows",
    "remembers",
    "describes",
    "builds",
    "opens",
    "crosses",
    "reaches",
    "gathers",
    "notices",
    "shares",
    "keeps",
    "leaves",
    "passes",
    "brings",
    "holds",
    "turns",
)
_ADVERBS = (
    "slowly",
    "quietly",
    "carefully",
    "often",
    "always",
    "rarely",
    "gladly",
    "suddenly",
    "again",
)
_PREPOSITIONS = (
    "near",
    "beyond",
    "across",
    "under",
    "over",
    "through",
    "along",
    "beside",
    "behind",
    "toward",
)
_CONJUNCTIONS = ("and", "but", "while", "because", "although", "before", "after", "when", "where")

_POOL_SIZE = 512  # distinct sentences per seed; the stream picks among them
_BLOCK_SENTENCES = 2048  # sentences appended per growth step (about 140k characters)
_MAX_CACHED_SEEDS = 16


class _FillerStream:
    """The growing filler text of one seed (append-only, so prefixes never change)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"lmstrix-probe-filler:{seed}")
        self._pool = [self._sentence() for _ in range(_POOL_SIZE)]
        self._parts: List[str] = []
        self.text = ""

    def _phrase(self) -> str:
        rng = self._rng
        words = [rng.choice(_DETERMINERS)]
        if rng.random() < 0.6:
            words.append(rng.choice(_ADJECTIVES))
        words.append(rng.choice(_NOUNS))
        return " ".join(words)

    def _sentence(self) -> str:
        rng = self._rng
        words = [self._phrase(), rng.choice(_VERBS), self._phrase()]
        if rng.random() < 0.5:
            words.append(rng.choice(_ADVERBS))
        if rng.random() < 0.6:
            words += [rng.choice(_PREPOSITIONS), self._phrase()]
        if rng.random() < 0.3:
            words += [rng.choice(_CONJUNCTIONS), self._phrase(), rng.choice(_VERBS)]
        text = " ".join(words)
        return text[0].upper() + text[1:] + "."

    def ensure(self, length: int) -> str:
        """Grow the stream to at least ``length + 1`` characters and return it."""
        while len(self.text) <= length:
            picks = self._rng.choices(self._pool, k=_BLOCK_SENTENCES)
            block = " ".join(picks)
            self.text = f"{self.text} {block}" if self.text else block
        return self.text


_streams: OrderedDict[int, _FillerStream] = OrderedDict()
_streams_lock = threading.Lock()


def filler(length: int, *, seed: int = 0) -> str:
    """Return the first ``length`` characters of the seed's filler (one fewer when that
    would end on a space).

    The cut may fall inside a word: that keeps probe sizes exact to a character, which
    the search needs to fill an instance to its last tokens. The result never ends with
    a space and never contains a digit.
    """
    if length <= 0:
        return ""
    with _streams_lock:
        stream = _streams.get(seed)
        if stream is None:
            stream = _FillerStream(seed)
            _streams[seed] = stream
            while len(_streams) > _MAX_CACHED_SEEDS:
                _streams.popitem(last=False)
        else:
            _streams.move_to_end(seed)
        text = stream.ensure(length)
    return text[:length].rstrip(" ")


def make_secret(rng: random.Random) -> str:
    """Return a random six-digit secret whose first digit is not zero."""
    return str(rng.randint(100000, 999999))


def header(secret: str) -> str:
    """Return the probe's first line for ``secret``."""
    return _HEADER_FORMAT.format(secret)


def min_probe_chars(secret: str = "000000") -> int:
    """Return the length of the smallest probe (header and question, no filler)."""
    return len(header(secret)) + 1 + len(QUESTION)


def build_probe(secret: str, target_chars: int, *, seed: int = 0) -> str:
    """Build a probe of about ``target_chars`` characters hiding ``secret``.

    The result is ``target_chars`` long (one shorter when the filler would end on a
    space), or it is the minimal probe when ``target_chars`` is smaller.

    Raises:
        ValueError: ``secret`` is not six digits.
    """
    if not _HEADER_RE.match(header(secret)):
        raise ValueError(f"probe secret must be six digits, got {secret!r}")
    first = header(secret)
    room = target_chars - len(first) - len(QUESTION) - 2
    body = filler(room, seed=seed)
    if not body:
        return f"{first}\n{QUESTION}"
    return f"{first}\n{body}\n{QUESTION}"


def parse_probe(text: str) -> Optional[str]:
    """Return the secret when ``text`` is a probe (its first line is the header), else None."""
    first_line = text.split("\n", 1)[0].strip()
    match = _HEADER_RE.match(first_line)
    return match.group(1) if match else None


def answer_is_correct(reply: str, secret: str) -> bool:
    """Return True when ``reply`` contains ``secret`` as a whole number."""
    joined = _DIGIT_GROUP_SEP_RE.sub("", reply)
    return secret in _DIGIT_RUN_RE.findall(joined)


class Calibration:
    """Characters per token, learned from the server's ``usage.prompt_tokens``.

    Fits ``tokens = characters / chars_per_token + overhead`` from the smallest and the
    largest sample, so the chat template's fixed overhead is told apart from the rate
    once the samples span sizes at least 1.5x apart (``fitted``). Texts of one length
    count differently (each needle has its own filler), so a size asked of a needle
    that was asked for before is reckoned from the nearest size asked of it: the fit
    only bridges the difference, and a nudge of ``n`` tokens after a count moves the
    next count by about ``n``, even when the count was off.
    """

    def __init__(self, chars_per_token: float = 4.0) -> None:
        self.samples: List[Tuple[int, int]] = []  # (characters, tokens) of answered probes
        self.asked: Dict[int, List[Tuple[int, int]]] = {}  # (tokens, characters) per needle
        self.chars_per_token = chars_per_token
        self.overhead = 0.0
        self.fitted = False

    def chars_for(self, tokens: int, needle: Optional[int] = None) -> int:
        """Characters to send when ``tokens`` tokens of ``needle``'s text are asked for
        (and remember them)."""
        asked = self.asked.get(needle, []) if needle is not None else []
        if asked:
            near = min(asked, key=lambda pair: abs(pair[0] - tokens))
            chars = int(near[1] + (tokens - near[0]) * self.chars_per_token)
        else:
            chars = int((tokens - self.overhead) * self.chars_per_token)
        if needle is not None:
            self.asked.setdefault(needle, []).append((tokens, chars))
        return chars

    def tokens_for(self, chars: int) -> int:
        """Tokens a probe of ``chars`` characters should count."""
        return int(chars / self.chars_per_token + self.overhead)

    def measured(self) -> Optional[float]:
        """The ratio learned in this search (None before any sample)."""
        return round(self.chars_per_token, 4) if self.samples else None

    def add(self, chars: int, tokens: int) -> None:
        """Add a sample and refit."""
        self.samples.append((chars, tokens))
        lo = min(self.samples)
        hi = max(self.samples)
        self.fitted = hi[0] >= 1.5 * lo[0] and hi[1] > lo[1]
        if self.fitted:
            self.chars_per_token = (hi[0] - lo[0]) / (hi[1] - lo[1])
            self.overhead = max(0.0, lo[1] - lo[0] / self.chars_per_token)
        else:
            self.chars_per_token = chars / max(1, tokens)
            self.overhead = 0.0


TRUNCATION_RATIO = 0.95
"""A count below this share of the calibrated estimate may mean the server cut the prompt."""
TRUNCATION_NEAR = 0.9
"""Where a cut prompt's count lands: at least this share of the loaded context."""
UNKNOWN_CONTEXT_RATIO = 0.9
"""The stricter share when the loaded context is unknown (an OpenAI-only server)."""


def was_cut(measured: int, expected: int, context: Optional[int]) -> bool:
    """Did the server count fewer prompt tokens than sent because it cut the prompt?

    A server cuts a prompt to fit its context, so a short count far below the loaded
    context is the calibration's error (real tokenizers vary by some percent between
    texts), not a cut: judging it one stopped a search at a few hundred tokens.
    """
    if context is None:
        return measured < UNKNOWN_CONTEXT_RATIO * expected
    return measured < TRUNCATION_RATIO * expected and measured >= TRUNCATION_NEAR * context
