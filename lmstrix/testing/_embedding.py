"""The simulator's embeddings: bag-of-words hashing, so texts sharing words are close.

Each word (lower-cased, letters and digits) is hashed with the model key to one of
:data:`DIMS` dimensions; a text's vector counts its words there, scaled to unit length.
Two sentences about one topic share words and point the same way; two about different
topics are near orthogonal (only hash collisions bring them closer); no two texts point
away from each other; the same text always gives the same vector.
A text with no words gets a vector from the hash of the whole text (still deterministic).
Nothing here is a real embedding model: it is enough to test code that compares
embeddings (semantic splitting, ranking by similarity) offline.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import List

__all__ = ["DIMS", "embedding_vector"]

DIMS = 256
"""The length of every simulated embedding."""
_WORD = re.compile(r"[^\W_]+")


def _slot(model_key: str, token: str) -> int:
    digest = hashlib.sha256(f"{model_key}\x1f{token}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def embedding_vector(model_key: str, text: str, *, dims: int = DIMS) -> List[float]:
    """A deterministic unit-length vector for ``text``: the hashed bag of its words."""
    raw = [0.0] * dims
    words = _WORD.findall(text.lower()) or [f"\x00{text}"]
    for word in words:
        raw[_slot(model_key, word) % dims] += 1.0
    norm = math.sqrt(sum(v * v for v in raw))
    return [round(v / norm, 6) for v in raw]
