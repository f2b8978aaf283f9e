"""Compare models: the same prompt to several models, answers and timings side by side.

Each model is asked in turn (never at the same time, so the timings are comparable),
with a streamed request so the time to the first token is measured too. A model that
fails gets its error in the table and the others still run.

Run: ``python examples/compare_models.py`` (the simulator: three models of different
speeds, already loaded) or ``python examples/compare_models.py --server URL
[--model KEY --model KEY ...] [--prompt TEXT]`` (default: every loaded chat model;
on an OpenAI-compatible server such as llama.cpp's, every model it lists).
"""

from __future__ import annotations

import sys
from typing import List, Optional, Sequence

import _common

import lmstrix
from lmstrix.testing import SimModel

PROMPT = "In two sentences: why is the sky blue?"
HEADERS = ("model", "seconds", "first token s", "tokens", "tokens/s", "answer")

# Three simulated models that differ in speed (simulated seconds per generated token).
FLEET = [
    SimModel("example/fast-1b", 8192, params_string="1B", decode_s_per_token=0.005),
    SimModel("example/medium-4b", 32768, params_string="4B", decode_s_per_token=0.015),
    SimModel("example/slow-8b", 32768, params_string="8B", decode_s_per_token=0.04),
]


def ask(client: lmstrix.Client, model: str, prompt: str) -> List[str]:
    """One table row: the model's timings and the start of its answer (or its error)."""
    try:
        with client.stream_chat(model, prompt, temperature=0, max_tokens=200) as stream:
            completion = stream.completion  # reads the whole stream
    except lmstrix.LMStrixError as exc:
        return [model, "-", "-", "-", "-", f"error: {exc}"[:60]]
    stats, usage = completion.stats, completion.usage
    answer = " ".join(completion.text.split())
    return [
        model,
        _number(stats.total_time_s, ".3f"),
        _number(stats.time_to_first_token_s, ".3f"),
        _number(usage.completion_tokens, "d"),
        _number(stats.tokens_per_second, ".1f"),
        answer if len(answer) <= 60 else answer[:57] + "...",
    ]


def _number(value: Optional[float], fmt: str) -> str:
    return "?" if value is None else format(value, fmt)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: a header, a rule, one line per row; numbers right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    numeric = [i not in (0, len(headers) - 1) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        out = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric)
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def default_models(client: lmstrix.Client) -> List[str]:
    """The loaded chat models; on an OpenAI-only server (llama.cpp...) every model listed."""
    models = _common.chat_models(client)
    if client.server_api == "openai":  # it serves what it lists, and says nothing of loading
        return [m.key for m in models]
    return [m.key for m in models if m.is_loaded]


def main(argv: Optional[List[str]] = None) -> int:
    """Ask every model the same prompt and print the comparison table."""
    parser = _common.parser("Compare several models on the same prompt.", several_models=True)
    parser.add_argument("--prompt", default=PROMPT, help="the prompt (default: %(default)r)")
    args = parser.parse_args(argv)
    keys = [m.key for m in FLEET]
    try:
        with _common.connect(args, FLEET, preload=keys, time_scale=0.5) as client:
            models = args.models or default_models(client)
            if not models:
                print("no chat model is loaded: name some with --model KEY", file=sys.stderr)
                return 2
            print(f"prompt: {args.prompt}\n")
            rows = [ask(client, model, args.prompt) for model in models]
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    print(format_table(HEADERS, rows))
    fastest = min(
        (row for row in rows if row[1] not in ("-", "?")),
        key=lambda row: float(row[1]),
        default=None,
    )
    if fastest is not None:
        print(f"\nfastest: {fastest[0]} ({fastest[1]} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
