"""Streaming: print an answer live as the model writes it, then what it cost.

Also shows how to stop a stream early (leaving the ``with`` block releases the
connection) and what a failed stream gives you (the text received so far).

Run: ``python examples/streaming_chat.py`` (the simulator, in slow motion so the
stream is visible) or ``python examples/streaming_chat.py --server URL [--model KEY]``.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import _common

import lmstrix
from lmstrix.testing import demo_fleet

PROMPT = "Tell me a short story about a lighthouse keeper and a lost ship."


def stream_answer(client: lmstrix.Client, model: str, prompt: str) -> lmstrix.Completion:
    """Print the answer to ``prompt`` chunk by chunk as it arrives; return the whole answer.

    Raises:
        lmstrix.StreamError: the stream broke; ``exc.text`` holds what arrived before.
    """
    with client.stream_chat(model, prompt, temperature=0.7, max_tokens=200) as stream:
        for chunk in stream:
            print(chunk.text, end="", flush=True)
        print()
        return stream.completion  # usage (if the server sent it) and timings


def first_words(client: lmstrix.Client, model: str, prompt: str, chunks: int) -> str:
    """Read only the first ``chunks`` pieces of an answer, then stop the stream."""
    pieces: List[str] = []
    with client.stream_chat(model, prompt, max_tokens=400) as stream:
        for chunk in stream:
            pieces.append(chunk.text)
            if len(pieces) == chunks:
                break  # leaving the `with` block closes the stream and frees the connection
    return "".join(pieces)


def main(argv: Optional[List[str]] = None) -> int:
    """Stream one answer live, print its figures, then stop a second stream early."""
    args = _common.parser("Stream a model's answer live.").parse_args(argv)
    # On the simulator: one model already loaded, and real time at 1:1 so that each
    # word takes its simulated 20 ms and the stream is visible.
    demo = "lmstrix-demo/solid-3b"
    try:
        with _common.connect(args, demo_fleet(), preload=[demo], time_scale=1.0) as client:
            model = _common.pick_model(client, args.model)
            print(f"model: {model}\nprompt: {PROMPT}\n")
            try:
                completion = stream_answer(client, model, PROMPT)
            except lmstrix.StreamError as exc:
                print(f"\nthe stream failed ({exc.kind}) after {len(exc.text)} characters: {exc}")
                return 1
            stats = completion.stats
            ttft = stats.time_to_first_token_s
            print(f"\nfirst token after: {'?' if ttft is None else format(ttft, '.3f')} s")
            print(f"streamed: {_common.figures(completion)}")

            print("\nstopping a stream after 5 chunks:")
            print(f"  {first_words(client, model, PROMPT, 5)!r}")
            print("stream closed early: yes")
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
