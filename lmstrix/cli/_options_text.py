"""The option table's entries for long documents: ``summarize`` and ``ask``.

Part of the one table of :mod:`lmstrix.cli._options` (which takes these in), kept apart
to keep modules short; implemented in :mod:`lmstrix.cli._cmd_text` on
:mod:`lmstrix.text`.
"""

from __future__ import annotations

from typing import Tuple

from ._params import Argument, Command, FromLibrary, Option

__all__ = ["TEXT_COMMANDS"]

_FILE = Argument("file", "FILE", help="the document (UTF-8 text; - = stdin)")
_COMMON: Tuple[Option, ...] = (
    Option("model", ("-m", "--model"), "the model", metavar="M", required=True),
    Option(
        "state",
        ("--state",),
        "keep every answer in this JSONL file: a run that stops part-way continues from "
        "it when the same command runs again",
        metavar="PATH",
    ),
    Option(
        "workers",
        ("--workers",),
        "requests at once (default: the model's slots)",
        type=int,
        metavar="N",
    ),
    Option(
        "instructions",
        ("--instructions",),
        "added to every prompt (e.g. 'Answer in French.')",
        metavar="TEXT",
    ),
    Option(
        "working_context",
        ("--working-context",),
        "tokens one request may use, for a model the registry has no tested record of "
        "(default: the registry's working context)",
        type=int,
        metavar="N",
    ),
)


def _max_tokens(function: str) -> Option:
    """``--max-tokens``, whose default is that of ``lmstrix.text.<function>``."""
    return Option(
        "max_tokens",
        ("--max-tokens",),
        "longest answer of one request (default {default})",
        type=int,
        default=FromLibrary("text", function, "max_tokens"),
        metavar="N",
    )


TEXT_COMMANDS: Tuple[Command, ...] = (
    Command(
        "summarize",
        "summarize a document of any length within the model's tested context (map-reduce)",
        "_cmd_text",
        "cmd_summarize",
        (_FILE,),
        (
            *_COMMON,
            _max_tokens("summarize"),
        ),
    ),
    Command(
        "ask",
        "answer a question about a document of any length (map-reduce, or --extractive)",
        "_cmd_text",
        "cmd_ask",
        (_FILE, Argument("question", "QUESTION")),
        (
            *_COMMON,
            _max_tokens("ask"),
            Option(
                "extractive",
                ("--extractive",),
                "send only the passages closest to the question (by embedding) in one request",
                kind="flag",
            ),
            Option(
                "embedding_model",
                ("--embedding-model",),
                "the server's embedding model, for --extractive",
                metavar="E",
            ),
        ),
    ),
)
