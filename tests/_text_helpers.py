"""What the summarize/ask tests share: an embedding model whose hashed words do not collide.

The simulator's embeddings are a hashed bag of words in 256 slots (``testing/_embedding``),
and :func:`lmstrix.testing.long_document` repeats a small vocabulary many times: when a
word of the question falls in the slot of a frequent filler word, every chunk looks like
the question. The tests pick an embedding model key for which the question's and the
needles' words share no slot with the filler, so only the needle paragraphs resemble
the question, as they would with a real embedding model.
"""

from __future__ import annotations

from typing import Iterable

from lmstrix.testing._documents import _VOCABULARY
from lmstrix.testing._embedding import DIMS, _slot

ASKED = ("what", "is", "the", "vault", "code", "amber", "birch", "cedar", "4711", "2290")


def clean_embedder_key(words: Iterable[str] = ASKED, prefix: str = "sim/embedder") -> str:
    """The first key ``{prefix}-N`` whose slots for ``words`` and the filler are apart."""
    asked = list(words)
    for n in range(1000):
        key = f"{prefix}-{n}"
        filler = {_slot(key, w) % DIMS for w in _VOCABULARY}
        if not filler & {_slot(key, w) % DIMS for w in asked}:
            return key
    raise AssertionError("no embedding model key keeps the question apart from the filler")
