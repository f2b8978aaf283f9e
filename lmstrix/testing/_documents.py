"""Long made-up documents with planted markers and needles, for map-reduce tests and demos.

:func:`long_document` writes paragraphs of harbour prose from a small vocabulary (seeded,
so the same arguments give the same text), a unique marker ``[[m00000]]`` in every
``marker_every``-th paragraph, and one needle sentence per entry of ``needles``
("The amber vault code is [[AMBER-4711]].") spread evenly through the text. With a
:class:`~lmstrix.testing.SimModel` whose ``echo_pattern`` is :data:`MARKER_PATTERN`, a
summary keeps every marker it was shown, and a question naming a needle ("What is the
birch vault code?") is answered with that needle alone.
"""

from __future__ import annotations

import random
from typing import List, Mapping, Optional

__all__ = ["MARKER_PATTERN", "long_document"]

MARKER_PATTERN = r"\[\[[^\]]+\]\]"
"""The ``echo_pattern`` that matches the markers and needles of :func:`long_document`."""

# No word here is in a needle sentence or a question about one ("the", "vault", "code",
# "is", "what"), so only a needle's own paragraph shares words with such a question.
_VOCABULARY = [
    "harbour",
    "lamp",
    "fog",
    "quay",
    "bell",
    "winch",
    "storm",
    "flag",
    "boat",
    "crew",
    "night",
    "river",
    "mouth",
    "signal",
    "station",
    "tide",
    "rope",
    "anchor",
    "mast",
    "sail",
    "deck",
    "keel",
    "gull",
    "net",
    "salt",
    "pier",
    "buoy",
    "wave",
    "lantern",
]


def long_document(
    paragraphs: int,
    *,
    marker_every: int = 5,
    needles: Optional[Mapping[str, str]] = None,
    seed: int = 0,
) -> str:
    """A document of ``paragraphs`` paragraphs (about 110 simulated tokens each).

    Args:
        paragraphs: how many paragraphs (separated by blank lines).
        marker_every: paragraph ``n`` holds the marker ``[[m{n:05d}]]`` when ``n`` is a
            multiple of this (0: no markers).
        needles: name -> code; each becomes the sentence "The {name} vault code is
            [[{NAME}-{code}]]." in its own paragraph, spread evenly (names: one word).
        seed: the random seed of the prose.
    """
    rnd = random.Random(seed)
    planted = list((needles or {}).items())
    where = {(i + 1) * paragraphs // (len(planted) + 1): item for i, item in enumerate(planted)}
    out: List[str] = []
    for n in range(paragraphs):
        sentences = []
        for _ in range(6):
            words = [rnd.choice(_VOCABULARY) for _ in range(rnd.randint(8, 14))]
            sentences.append(" ".join(words).capitalize() + ".")
        if marker_every and n % marker_every == 0:
            sentences.insert(3, f"[[m{n:05d}]]")
        if n in where:
            name, code = where[n]
            sentences.insert(2, f"The {name} vault code is [[{name.upper()}-{code}]].")
        out.append(" ".join(sentences))
    return "\n\n".join(out)
