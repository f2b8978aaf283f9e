"""LM Studio 0.4's native chat: load and prompt progress, typed output, a stored conversation.

Streams one answer with the progress of the model load and of the prompt processing
(events only the native endpoint sends), prints the server's figures, then holds a
short conversation that the server keeps (each turn sends only its new text).

Run: ``python examples/native_chat.py`` (the simulator, with a reasoning model) or
``python examples/native_chat.py --server URL [--model KEY]`` (LM Studio 0.4 or newer;
older servers get an error that says so).
"""

from __future__ import annotations

import sys
from typing import List, Optional

import _common

import lmstrix
from lmstrix.testing import SimModel, demo_fleet

FLEET = [SimModel("example/thinker-4b", 32768, reasoning=True), *demo_fleet()]


def stream_with_progress(client: lmstrix.Client, model: str, prompt: str) -> None:
    """Print progress on stderr and the answer on stdout as they come; then the figures."""

    def progress(kind: str, fraction: float) -> None:
        print(f"  {kind.replace('_', ' ')}: {fraction:.0%}", file=sys.stderr)

    with client.stream_respond(model, prompt, on_progress=progress) as stream:
        for event in stream:
            if event.type == "reasoning.start":
                print("(thinking...)")
            elif event.type == "message.delta":
                print(event.content, end="", flush=True)
        print()
        result = stream.result
    print(f"items: {', '.join(item.type for item in result.output)}")
    stats = result.stats
    print(
        f"input tokens: {stats.input_tokens}, output tokens: {stats.total_output_tokens} "
        f"({stats.reasoning_output_tokens} reasoning), first token after "
        f"{stats.time_to_first_token_seconds} s"
    )
    if stats.model_load_time_seconds is not None:
        print(f"this request loaded the model in {stats.model_load_time_seconds:.2f} s")


def converse(client: lmstrix.Client, model: str, turns: List[str]) -> None:
    """A conversation stored on the server: the prompt grows, the request does not."""
    chat = client.conversation(model, system_prompt="You are brief.")
    for text in turns:
        result = chat.say(text)
        print(f"> {text}\n{result.text}  [{result.stats.input_tokens} input tokens]")
    print(f"conversation: {chat.turns} turns, last response {chat.response_id}")


def main(argv: Optional[List[str]] = None) -> int:
    """Stream one answer with progress, then hold a three-turn stored conversation."""
    args = _common.parser("Native chat: progress, typed output, a stored conversation.").parse_args(
        argv
    )
    try:
        with _common.connect(args, FLEET) as client:
            model = args.model or ("example/thinker-4b" if not args.server else None)
            model = _common.pick_model(client, model)
            print(f"model: {model}")
            stream_with_progress(client, model, "Explain in one sentence what a KV cache is.")
            converse(client, model, ["My name is Ada.", "What is 6*7?", "And my name?"])
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
