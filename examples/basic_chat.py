"""A basic chat: one question as plain text, then a conversation with a system prompt.

python examples/basic_chat.py                                   # the simulator
python examples/basic_chat.py --server http://localhost:1234 [--model KEY]
"""

from __future__ import annotations

import sys
from typing import Dict, List, Optional

import _common

import lmstrix


def main(argv: Optional[List[str]] = None) -> int:
    """Ask one question, then hold a three-turn conversation; print answers and costs."""
    args = _common.parser("Ask a model a question, then hold a short conversation.").parse_args(
        argv
    )
    try:
        with _common.connect(args) as client:
            model = _common.pick_model(client, args.model)
            print(f"model: {model}")

            # Plain text is sent as one user message.
            question = "What is 6*7? Reply with the number only."
            answer = client.chat(model, question, temperature=0, max_tokens=16)
            print(f"Q: {question}")
            print(f"A: {answer.text.strip()}")
            print(f"   ({_common.figures(answer)})")

            # A conversation is a list of {role, content} messages; each answer goes back
            # into the list so the model sees the whole exchange.
            messages: List[Dict[str, str]] = [
                {"role": "system", "content": "You are a concise assistant. One sentence."},
            ]
            for turn in ("Name a primary colour.", "Name another one.", "Which did you skip?"):
                messages.append({"role": "user", "content": turn})
                reply = client.chat(model, messages, temperature=0.7, max_tokens=64)
                messages.append({"role": "assistant", "content": reply.text})
                print(f"\nuser: {turn}\nassistant: {reply.text.strip()}")
            print(f"\nconversation: {len(messages)} messages")
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
