"""Long documents: cut a text to fit a model, by structure or by meaning.

:func:`split_text` cuts at paragraphs, then sentences, then words (then characters),
with overlap and exact character offsets, budgeted in the target model's tokens
(:func:`token_counter` counts them from the registry's calibration).
:func:`semantic_split` cuts where consecutive sentences' embeddings drift apart.
:func:`fit` (also ``lmstrix.fit``) says whether a prompt fits a model's tested
working context, and refines the calibration from the server's count.
"""

from __future__ import annotations

from ._counter import token_counter
from ._fit import FitReport, fit
from ._semantic import semantic_split
from ._split import Chunk, TokenCounter, split_text

__all__ = [
    "Chunk",
    "FitReport",
    "TokenCounter",
    "fit",
    "semantic_split",
    "split_text",
    "token_counter",
]
