"""The example plugin's command: ``lmstrix hello [NAME] [--shout]``."""

from __future__ import annotations

from typing import Any, Optional


def cmd_hello(session: Any, name: Optional[str] = None, shout: bool = False) -> int:
    """Greet ``name``; ``--json`` gives ``{"greeting": ...}``."""
    greeting = f"hello, {name or 'world'}, from the example plugin"
    if shout:
        greeting = greeting.upper()
    if session.as_json:
        session.emit({"greeting": greeting})
    else:
        session.echo(greeting)
    return 0
