"""Summarize a document that may not fit the model: check, split, summarize, combine.

The model's *working* context (the longest prompt it still answers correctly, measured
by ``lmstrix test`` / :func:`lmstrix.find_context_limit` and kept in the registry) sets
the budget of one request, after room for the answer and the instructions. Tokens are
estimated with the characters-per-token figure the search calibrated for this model
(4.0 when unknown). A document over budget is split at paragraph, then sentence, then
word boundaries into chunks that fit; each chunk is summarized, then the summaries
are summarized together (again in several rounds if they still do not fit).

Run: ``python examples/summarize_document.py`` (the simulator: the model's context is
searched first, into a temporary registry) or ``python examples/summarize_document.py
--server URL [--model KEY] [--file PATH] [--test]``. On a real server the registry's
record of the model is used (``lmstrix test MODEL`` fills it; ``--test`` runs the
search here); an untested model falls back to its loaded context.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
from typing import List, Optional, Tuple

import _common

import lmstrix
from lmstrix.testing import SimModel

ANSWER_TOKENS = 256  # room left in the context for each summary
TEMPLATE_TOKENS = 32  # the chat template's own tokens, roughly
SAFETY = 0.9  # token estimates are estimates: use 90% of the budget
UNTESTED_CONTEXT = 2048  # assumed when nothing is known: small, so it fits most servers

PART = (
    "Summarize part {index} of {total} of a longer document in at most three sentences. "
    "Keep names and facts.\n\n"
)
COMBINE = (
    "These are summaries of consecutive parts of one document. Write one summary of the "
    "whole document in at most five sentences.\n\n"
)

# A model whose working context is far below what it declares, so the sample document
# has to be split.
FLEET = [
    SimModel(
        "example/reader-3b",
        16384,
        12_000,
        5_000,
        params_string="3B",
        description="Declares 16k, loads 12k, answers right up to 5k tokens.",
    )
]


def estimate_tokens(text: str, chars_per_token: float) -> int:
    """Tokens ``text`` will take, from a characters-per-token figure (rounded up)."""
    return math.ceil(len(text) / chars_per_token)


def split_into_chunks(text: str, max_chars: int) -> List[str]:
    """Split ``text`` into chunks of at most ``max_chars`` characters, in order.

    Splits at paragraph breaks where possible, else at sentence ends, else between
    words; only a single word longer than ``max_chars`` is cut. Neighbouring pieces are
    packed together up to the limit, so there are as few chunks as this allows.

    >>> split_into_chunks("One. Two.\\n\\nThree.", 10)
    ['One. Two.', 'Three.']
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    text = text.strip()
    return _pack(text, max_chars, 0) if text else []


_SPLITS: Tuple[Tuple[str, str], ...] = (
    (r"\n\s*\n", "\n\n"),  # paragraphs
    (r"(?<=[.!?])\s+", " "),  # sentences
    (r"\s+", " "),  # words
)


def _pack(text: str, max_chars: int, level: int) -> List[str]:
    if len(text) <= max_chars:
        return [text]
    if level == len(_SPLITS):  # one enormous word: cut it
        return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    pattern, joiner = _SPLITS[level]
    chunks: List[str] = []
    current = ""
    for piece in re.split(pattern, text):
        part = piece.strip()
        if not part:
            continue
        if len(part) > max_chars:
            if current:
                chunks.append(current)
                current = ""
            chunks.extend(_pack(part, max_chars, level + 1))
        elif not current:
            current = part
        elif len(current) + len(joiner) + len(part) <= max_chars:
            current += joiner + part
        else:
            chunks.append(current)
            current = part
    if current:
        chunks.append(current)
    return chunks


def chunk_budget(prompt_tokens: int, chars_per_token: float, instructions: str) -> int:
    """Characters of document that fit in one request of ``prompt_tokens`` tokens."""
    room = prompt_tokens - estimate_tokens(instructions, chars_per_token) - TEMPLATE_TOKENS
    return max(1, int(room * SAFETY * chars_per_token))


def sample_document() -> str:
    """A long made-up report (no digits, so the simulator reads it as plain prose)."""
    places = ["the northern harbour", "the old quay", "the river mouth", "the signal station"]
    people = ["Mara Lind", "Tomas Vale", "Ines Okoro", "the harbour master", "the night crew"]
    acts = [
        "inspected the lamps and logged every fault it found",
        "reported fog thick enough to hide the breakwater",
        "asked for a new bell because the old one had cracked",
        "repaired the winch that raises the storm flags",
        "counted the fishing boats that came back before dark",
    ]
    paragraphs = []
    for n in range(64):
        sentences = []
        for k in range(5):
            who = people[(n + k) % len(people)]
            what = acts[(n * 3 + k) % len(acts)]
            where = places[(n + 2 * k) % len(places)]
            sentences.append(f"At {where}, {who} {what}.")
        sentences.append("The season went on with the usual mix of wind, work and waiting.")
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def working_limits(
    client: lmstrix.Client, registry: lmstrix.Registry, model: str, *, search: bool
) -> Tuple[Optional[int], Optional[int], float]:
    """(working, loadable, chars per token) from the registry, searching first if asked."""
    record = registry.get(model)
    if (record is None or record.working_context is None) and search:
        print("no tested context on record: searching it now (trials=1)...")
        report = lmstrix.find_context_limit(client, model, registry=registry, trials=1)
        print(f"search: {report.status}, {report.loads} loads, {report.requests} requests")
        record = registry.get(model)
    if record is None:
        return None, None, 4.0
    return record.working_context, record.loadable_context, record.chars_per_token or 4.0


def summarize(
    client: lmstrix.Client, model: str, text: str, budget_tokens: int, cpt: float, depth: int = 0
) -> str:
    """Summarize ``text``: in one request if it fits, else by chunks, then their summaries."""
    if estimate_tokens(COMBINE + text, cpt) + TEMPLATE_TOKENS <= budget_tokens * SAFETY:
        return ask(client, model, COMBINE + text)
    if depth > 3:
        raise lmstrix.ContextSearchError("the summaries do not shrink; the context is too small")
    chunks = split_into_chunks(text, chunk_budget(budget_tokens, cpt, PART))
    indent = "  " * depth
    print(f"{indent}chunks: {len(chunks)}")
    summaries = []
    for index, chunk in enumerate(chunks, 1):
        prompt = PART.format(index=index, total=len(chunks)) + chunk
        summary = ask(client, model, prompt)
        summaries.append(summary)
        shown = " ".join(summary.split())  # progress: on one line, shortened
        shown = shown if len(shown) <= 100 else shown[:97] + "..."
        print(f"{indent}  part {index} of {len(chunks)} ({len(chunk):,} characters): {shown}")
    return summarize(client, model, "\n\n".join(summaries), budget_tokens, cpt, depth + 1)


def ask(client: lmstrix.Client, model: str, prompt: str) -> str:
    """One summary request."""
    answer = client.chat(model, prompt, temperature=0.2, max_tokens=ANSWER_TOKENS)
    return answer.text.strip()


def main(argv: Optional[List[str]] = None) -> int:
    """Find the budget, then summarize the document (in chunks when it does not fit)."""
    parser = _common.parser("Summarize a document within the model's tested context.")
    parser.add_argument("--file", help="the document (UTF-8 text; default: a sample report)")
    parser.add_argument("--registry", metavar="PATH", help="registry file (default: lmstrix's)")
    parser.add_argument("--test", action="store_true", help="search an untested model's context")
    args = parser.parse_args(argv)
    if args.file:
        with open(args.file, encoding="utf-8") as handle:
            document = handle.read()
    else:
        document = sample_document()
    with tempfile.TemporaryDirectory() as scratch:
        # The simulator's results go to a throw-away registry, never to the user's.
        path = args.registry or (None if args.server else os.path.join(scratch, "registry.json"))
        try:
            with _common.connect(args, FLEET) as client:
                return run(client, args, document, path, search=args.test or not args.server)
        except lmstrix.LMStrixError as exc:
            return _common.fail(exc)


def run(
    client: lmstrix.Client,
    args: argparse.Namespace,
    document: str,
    registry_path: Optional[str],
    *,
    search: bool,
) -> int:
    """The example proper, on a connected client."""
    model = _common.pick_model(client, args.model)
    print(f"model: {model}")
    registry = lmstrix.Registry(registry_path, server=client.base_url)
    working, loadable, cpt = working_limits(client, registry, model, search=search)

    # The instance that will answer: one already loaded, else one we load (and unload).
    loaded = [i for i in client.loaded_instances() if model in (i.model_key, i.id)]
    instance = loaded[0] if loaded else None
    mine = False
    if instance is None and client.supports_load and (working or loadable):
        size = (working or loadable or UNTESTED_CONTEXT) + ANSWER_TOKENS
        instance = client.load(model, context_length=min(size, loadable or size))
        mine = True
        print(f"loaded {instance.id} at {instance.context_length:,} tokens of context")
    try:
        context = instance.context_length if instance is not None else None
        if working is None:
            working = context or UNTESTED_CONTEXT
            print(
                f"working context: not tested, assuming {working:,} tokens "
                f"(run `lmstrix test {model}` or pass --test)"
            )
        else:
            print(f"working context: {working:,} tokens (tested), {cpt:.2f} characters per token")
        # The loaded context must hold the prompt and the answer; when it is unknown,
        # take the answer's room out of the working context too.
        budget = min(working, (context or working) - ANSWER_TOKENS)
        print(f"prompt budget: {budget:,} tokens per request")
        tokens = estimate_tokens(document, cpt)
        print(f"document: {len(document):,} characters, about {tokens:,} tokens")
        fits = estimate_tokens(COMBINE + document, cpt) + TEMPLATE_TOKENS <= budget * SAFETY
        print(f"fits in one request: {'yes' if fits else 'no'}")
        name = instance.id if instance is not None else model
        try:
            summary = summarize(client, name, document, budget, cpt)
        except lmstrix.ContextOverflowError as exc:
            print(f"error: a prompt did not fit: {exc}", file=sys.stderr)
            print(
                f"measure the model's context with `lmstrix test {model}` or --test",
                file=sys.stderr,
            )
            return 1
        print(f"\nfinal summary:\n{summary}")
    finally:
        if mine and instance is not None:
            client.unload(instance.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
