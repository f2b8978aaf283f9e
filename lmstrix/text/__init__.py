"""Long documents: cut a text to fit a model, by structure or by meaning; summarize it, ask it.

:func:`split_text` cuts at paragraphs, then sentences, then words (then characters),
with overlap and exact character offsets, budgeted in the target model's tokens
(:func:`token_counter` counts them from the registry's calibration).
:func:`semantic_split` cuts where consecutive sentences' embeddings drift apart.
:func:`fit` (also ``lmstrix.fit``) says whether a prompt fits a model's tested
working context, and refines the calibration from the server's count.
:func:`summarize` and :func:`ask` work on documents of any length with map-reduce on
the batch runner (resumable), every request within the tested working context.
"""

from __future__ import annotations

from ._ask import AskResult, ask
from ._counter import token_counter
from ._fit import FitReport, fit
from ._mapreduce import MapReduceProgress
from ._semantic import semantic_split
from ._split import Chunk, TokenCounter, split_text
from ._summarize import SummaryResult, summarize

__all__ = [
    "AskResult",
    "Chunk",
    "FitReport",
    "MapReduceProgress",
    "SummaryResult",
    "TokenCounter",
    "ask",
    "fit",
    "semantic_split",
    "split_text",
    "summarize",
    "token_counter",
]
