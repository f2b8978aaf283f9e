"""Stream continuation: a long answer whose stream is cut is continued, not left short.

``stream_chat(..., continue_on_cut=True)``: when the connection drops mid-answer, lmstrix
sends the partial answer back with a request to continue where it stopped, and the
chunks go on in the same loop. ``completion.continued`` says how many continuations the
answer needed (0: it came in one piece).

Run: ``python examples/stream_continuation.py`` (the simulator, which cuts the first
stream after 6 chunks) or ``python examples/stream_continuation.py --server URL
[--model KEY]`` (a real server: continued only if its stream is really cut).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator, List, Optional

import _common

import lmstrix
from lmstrix.testing import FakeLMStudio, Fault, demo_fleet

PROMPT = "Tell me a long story about a lighthouse keeper and a lost ship."
DEMO = "lmstrix-demo/solid-3b"


@contextlib.contextmanager
def server_with_a_cut(args: argparse.Namespace) -> Iterator[lmstrix.Client]:
    """``--server``'s client, else a simulator that drops the next stream after 6 chunks."""
    if args.server:
        with _common.connect(args) as client:
            yield client
        return
    with FakeLMStudio(demo_fleet()) as fake:
        fake.preload(DEMO)
        fake.inject(Fault.drop_stream_after_chunks(6))
        print(f"(no --server given: using the simulator at {fake.base_url})", file=sys.stderr)
        with lmstrix.Client(fake.base_url) as client:
            yield client


def main(argv: Optional[List[str]] = None) -> int:
    """Stream one answer with continuation on; say whether it was continued."""
    args = _common.parser("Stream an answer that survives a cut connection.").parse_args(argv)
    try:
        with server_with_a_cut(args) as client:
            model = _common.pick_model(client, args.model)
            print(f"model: {model}\nprompt: {PROMPT}\n")
            try:
                stream = client.stream_chat(model, PROMPT, max_tokens=300, continue_on_cut=True)
                for chunk in stream:
                    print(chunk.text, end="", flush=True)
                print()
                done = stream.completion
            except lmstrix.StreamError as exc:  # continuing failed too: all text so far
                print(f"\nthe stream failed ({exc.kind}) after {len(exc.text)} characters")
                return 1
            print(f"\ncontinued: {done.continued} time(s); {len(done.text)} characters")
            print(f"finish_reason: {done.finish_reason}")
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
