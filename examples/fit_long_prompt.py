"""Will a long prompt fit? Check it, load a context that holds it, or split it to fit.

The model's tested working context (``lmstrix test MODEL``, kept in the registry) says
how long a prompt may be. ``lmstrix.fit`` estimates a prompt against it before sending;
``fit_context=True`` reloads the model at the smallest tested size that holds the
prompt when the loaded instance is too small; ``lmstrix.text.split_text`` cuts a
document that no size holds into chunks that each fit.

Run: ``python examples/fit_long_prompt.py`` (the simulator: the model's context is
searched first, into a temporary registry) or ``python examples/fit_long_prompt.py
--server URL --model KEY`` (the model's record in your registry is used; test it first).
"""

from __future__ import annotations

import os
import sys
import tempfile

import _common

import lmstrix
from lmstrix.text import split_text, token_counter

MODEL = "lmstrix-demo/tiny-chat-1b"  # on the simulator: declares 32k, works up to ~19k
ANSWER = 300  # tokens kept for each answer
INSTRUCTIONS = "Summarize this part of a report in two sentences:\n\n"


def report_text(paragraphs: int) -> str:
    """A made-up report of ``paragraphs`` paragraphs (no digits: plain prose)."""
    line = "The harbour crew inspected the lamps and logged every fault they found. "
    return "\n\n".join(f"Part {chr(65 + n % 26)}. " + line * 12 for n in range(paragraphs))


def main() -> int:
    args = _common.parser(__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as folder, _common.connect(args) as plain:
        simulated = not args.server
        path = os.path.join(folder, "registry.json") if simulated else None
        registry = lmstrix.Registry(path, server=plain.base_url)
        client = lmstrix.Client(plain.base_url, api_token=args.token, registry=registry)
        model = args.model or MODEL
        if simulated:
            found = lmstrix.find_context_limit(client, model, registry=registry, trials=1, seed=1)
            print(f"search: working context {found.working_context:,} tokens")

        medium = INSTRUCTIONS + report_text(30)
        report = lmstrix.fit(client, model, medium, max_tokens=ANSWER)
        print(f"medium prompt: about {report.estimated_tokens:,} tokens, fits: {report.fits}")
        if report.fits is None:
            print(f"  {report.reason}")
            return 0
        if simulated:
            client.load(model, context_length=4096)  # loaded too small, as JIT loads often are
        answer = client.chat(model, medium, max_tokens=ANSWER, fit_context=True)
        sizes = [i.context_length for i in client.loaded_instances() if i.model_key == model]
        print(f"loaded at {sizes} tokens; answer: {answer.text[:60]}")
        confirmed = report.confirm(answer)
        print(f"server counted {confirmed.actual_tokens:,}; estimate held: {confirmed.held}")

        long = report_text(120)
        print(f"long document fits: {lmstrix.fit(client, model, long, max_tokens=ANSWER).fits}")
        working = report.working_context or 0
        budget = working - ANSWER - 64  # the instructions and the chat template
        chunks = split_text(long, max_tokens=budget, count_tokens=token_counter(client, model))
        print(f"split into {len(chunks)} chunks")
        for chunk in chunks:
            prompt = INSTRUCTIONS + chunk.text
            ok = lmstrix.fit(client, model, prompt, max_tokens=ANSWER).fits
            done = client.chat(model, prompt, max_tokens=ANSWER, fit_context=True)
            print(
                f"  chunk {chunk.index} [{chunk.start:,}:{chunk.end:,}] fits {ok}: {done.text[:40]}"
            )
        return 0


if __name__ == "__main__":
    sys.exit(main())
