"""Summarize a document that may not fit the model, with ``lmstrix.text.summarize``.

The model's *working* context (the longest prompt it still answers correctly, measured
by ``lmstrix test`` / :func:`lmstrix.find_context_limit` and kept in the registry) sets
the budget of one request. :func:`lmstrix.fit` says whether the whole document fits
one request; :func:`lmstrix.text.summarize` splits it into chunks that fit (paragraphs,
then sentences, then words), summarizes each chunk on the batch runner, then combines
the partial summaries in groups that fit until one is left. With ``--state PATH`` a run
that is stopped continues from that file the next time, without asking again.

Run: ``python examples/summarize_document.py`` (the simulator: the model's context is
searched first, into a temporary registry) or ``python examples/summarize_document.py
--server URL [--model KEY] [--file PATH] [--test] [--state PATH]``. On a real server the
registry's record of the model is used (``lmstrix test MODEL`` fills it; ``--test`` runs
the search here); an untested model is given a working context of 2,048 tokens.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import List, Optional

import _common

import lmstrix
from lmstrix.testing import SimModel
from lmstrix.text import MapReduceProgress, summarize

ANSWER_TOKENS = 256  # the longest partial summary
UNTESTED_CONTEXT = 2048  # assumed when nothing is known: small, so it fits most servers

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


def working_context(
    client: lmstrix.Client, registry: lmstrix.Registry, model: str, *, search: bool
) -> Optional[int]:
    """The registry's tested working context of ``model``, searching first if asked."""
    record = registry.get(model)
    if (record is None or record.working_context is None) and search:
        print("no tested context on record: searching it now (trials=1)...")
        report = lmstrix.find_context_limit(client, model, registry=registry, trials=1)
        print(f"search: {report.status}, {report.loads} loads, {report.requests} requests")
        record = registry.get(model)
    return record.working_context if record is not None else None


def show(step: MapReduceProgress) -> None:
    """Progress on stderr, one line per answer."""
    total = (step.total or 0) + step.skipped
    print(f"  {step.stage} {step.level}: {step.done + step.skipped}/{total}", file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    """Find the budget, then summarize the document (in chunks when it does not fit)."""
    parser = _common.parser("Summarize a document within the model's tested context.")
    parser.add_argument("--file", help="the document (UTF-8 text; default: a sample report)")
    parser.add_argument("--registry", metavar="PATH", help="registry file (default: lmstrix's)")
    parser.add_argument("--test", action="store_true", help="search an untested model's context")
    parser.add_argument("--state", metavar="PATH", help="keep the answers here, to resume")
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
    working = working_context(client, registry, model, search=search)
    if working is None:
        print(
            f"working context: not tested, assuming {UNTESTED_CONTEXT:,} tokens "
            f"(run `lmstrix test {model}` or pass --test)"
        )
    else:
        print(f"working context: {working:,} tokens (tested)")
    before = {inst.id for inst in client.loaded_instances()}
    # The same server, with the registry: summarize reads the working context from it.
    with lmstrix.Client(client.base_url, api_token=args.token, registry=registry) as reader:
        fits = lmstrix.fit(reader, model, document, max_tokens=ANSWER_TOKENS)
        print(f"document: {len(document):,} characters, about {fits.estimated_tokens:,} tokens")
        print(f"fits in one request: {'yes' if fits.fits else 'no'}")
        try:
            result = summarize(
                reader,
                model,
                document,
                max_tokens=ANSWER_TOKENS,
                working_context=None if working else UNTESTED_CONTEXT,
                state=args.state,
                on_progress=show,
            )
        finally:
            for inst in reader.loaded_instances():  # what summarize loaded, unload
                if inst.id not in before and client.supports_load:
                    reader.unload(inst.id)
    if len(result.chunks) > 1:
        levels = " -> ".join(str(len(level)) for level in result.levels)
        print(f"chunks: {len(result.chunks)}; texts per level: {levels}")
        for chunk, partial in zip(result.chunks, result.levels[0]):
            shown = " ".join(partial.split())  # on one line, shortened
            shown = shown if len(shown) <= 100 else shown[:97] + "..."
            print(f"  part {chunk.index + 1} ({len(chunk.text):,} characters): {shown}")
    print(f"requests: {result.requests}")
    print(f"\nfinal summary:\n{result.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
