"""Structured output: a JSON answer that follows a schema, validated, with one retry.

Asks for a small bookshelf as JSON (a schema with a nested object, an enum and an
array), prints the parsed value, then shows what happens with an answer too short to
be JSON: the model is asked again once, then ``SchemaValidationError`` says what was wrong.

Run: ``python examples/structured_output.py`` (the simulator, which answers with JSON
made from the schema) or ``python examples/structured_output.py --server URL [--model KEY]``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import _common

import lmstrix

BOOKSHELF: Dict[str, Any] = {
    "type": "object",
    "properties": {
        "owner": {"type": "string"},
        "books": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "year": {"type": "integer", "minimum": 1450},
                    "genre": {"enum": ["fiction", "science", "history"]},
                },
                "required": ["title", "year", "genre"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["owner", "books"],
}
PROMPT = "Invent a small bookshelf: its owner and two books with title, year and genre."


def main(argv: Optional[List[str]] = None) -> int:
    """Ask for a bookshelf as JSON, print it; then show a validation failure."""
    args = _common.parser("Ask a model for JSON that follows a schema.").parse_args(argv)
    try:
        with _common.connect(args) as client:
            model = _common.pick_model(client, args.model)
            print(f"model: {model} (server API: {client.server_api})")
            done = client.chat(model, PROMPT, schema=BOOKSHELF, temperature=0)
            shelf = done.parsed  # validated against BOOKSHELF
            print(json.dumps(shelf, indent=2))
            print(f"books: {len(shelf['books'])}, first year: {shelf['books'][0]['year']}")
            try:  # 4 tokens cannot hold the JSON: asked again once, then an error
                client.chat(model, PROMPT, schema=BOOKSHELF, max_tokens=4)
            except lmstrix.SchemaValidationError as exc:
                print(f"too short an answer, {exc.tries} tries: {exc.errors[0]}")
    except lmstrix.LMStrixError as exc:
        return _common.fail(exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
