"""The interactive chat: ``lmstrix chat [MODEL]`` with no prompt, on a terminal.

A prompt line, answers streamed as they come, and the whole conversation sent each
turn. Lines starting with ``/`` are commands (:data:`HELP`). Ctrl-C during an answer
closes the stream and returns to the prompt (the part shown stays in the history,
marked as cut off); Ctrl-C at the prompt leaves with exit code 130, Ctrl-D or
``/exit`` with 0. Input is read with :func:`input` (line editing and history through
:mod:`readline` where Python has it; it is never required).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from ._cmd_chat import stats_line
from ._output import EXIT_INTERRUPTED, EXIT_OK
from ._overflow import OverflowCheck
from ._session import Session

if TYPE_CHECKING:
    from ..types import Completion

__all__ = ["BLOCK", "HELP", "ChatRepl", "run_interactive"]

#: A line holding only this starts a multi-line message; the next such line ends it.
BLOCK = '"""'

HELP = f"""commands:
  /help          this help
  /reset         forget the conversation (the system message stays)
  /save FILE     save the conversation: Markdown if FILE ends in .md, else JSON
  /model [NAME]  switch to model NAME (without NAME: show the model)
  /system [TEXT] set the system message (without TEXT: remove it)
  /stats         time to first token, tokens/s and tokens of the last answer
  /exit          leave (Ctrl-D too)
multi-line message: a line with only {BLOCK} starts it, the next line with only {BLOCK} sends it.
a message starting with / is written //...
Ctrl-C stops an answer (the part shown is kept, marked as cut off); at the prompt it leaves."""

Reader = Callable[[str], str]


def _reader(session: Session) -> Reader:
    """:func:`input` on the process's terminal; else lines of ``session.stdin``."""
    if session.stdin is sys.stdin and session.stdout is sys.stdout:
        with contextlib.suppress(ImportError):  # line editing and history, where available
            import readline  # noqa: F401
        return input

    def read(prompt: str) -> str:
        session.write(prompt)
        line = session.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\r\n")

    return read


class ChatRepl:
    """One interactive conversation with ``keys`` (a model, or a fallback chain).

    ``params`` (``temperature``, ``max_tokens``) go with every turn; ``show_stats``
    prints the stats line after each answer. ``read`` reads one line after showing its
    prompt (raising ``EOFError`` at the end of input).
    """

    def __init__(
        self,
        session: Session,
        keys: List[str],
        *,
        system: Optional[str] = None,
        params: Optional[Dict[str, Any]] = None,
        show_stats: bool = False,
        read: Optional[Reader] = None,
    ) -> None:
        self.session = session
        self.keys = list(keys)
        self.system = system or None
        self.params = dict(params or {})
        self.show_stats = show_stats
        self.read = read or _reader(session)
        self.history: List[Dict[str, Any]] = []
        self.last: Optional[Completion] = None
        self.overflow = OverflowCheck(session)
        from ._chains import Answers, chain_client

        self.client = chain_client(session, self.keys, Answers())

    @property
    def model(self) -> str:
        """The model (or ``A -> B`` chain) this conversation talks to."""
        return " -> ".join(self.keys)

    def messages(self) -> List[Dict[str, str]]:
        """What the next turn sends: the system message and the whole history."""
        sent = [{"role": "system", "content": self.system}] if self.system else []
        return sent + [{"role": t["role"], "content": t["content"]} for t in self.history]

    def run(self) -> int:
        """Read and answer until ``/exit``, Ctrl-D (exit 0) or Ctrl-C at the prompt (130)."""
        self.session.note(
            f"chat with {self.model} on {', '.join(self.session.servers)}; "
            "/help lists the commands, Ctrl-D leaves"
        )
        while True:
            try:
                text = self._read_message()
            except EOFError:
                self.session.write("\n")
                return EXIT_OK
            except KeyboardInterrupt:
                self.session.write("\n")
                return EXIT_INTERRUPTED
            if text is None:
                continue
            if text.startswith("/") and not text.startswith("//"):
                if not self.command(text):
                    return EXIT_OK
                continue
            self.turn(text[1:] if text.startswith("//") else text)

    def _read_message(self) -> Optional[str]:
        """One message or command (``None``: nothing to do); a block spans several lines."""
        line = self.read("> ")
        if line.strip() != BLOCK:
            return line.strip() or None
        lines: List[str] = []
        try:
            while True:
                more = self.read("... ")
                if more.strip() == BLOCK:
                    break
                lines.append(more)
        except KeyboardInterrupt:  # Ctrl-C inside a block drops the block only
            self.session.write("\n")
            self.session.note("(message dropped)")
            return None
        text = "\n".join(lines)
        return text if text.strip() else None

    # -- commands --------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run the command ``line``; False when the session should end."""
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/exit", "/quit"):
            return False
        handlers: Dict[str, Callable[[str], None]] = {
            "/help": lambda _: self.session.echo(HELP),
            "/reset": self._reset,
            "/save": self._save,
            "/model": self._model,
            "/system": self._system,
            "/stats": self._stats,
        }
        handler = handlers.get(name)
        if handler is None:
            self.session.error(f"unknown command {name}; /help lists the commands")
        else:
            handler(rest)
        return True

    def _reset(self, _: str) -> None:
        turns = len(self.history)
        self.history.clear()
        self.last = None
        self.session.note(f"history forgotten ({turns} messages)")

    def _system(self, text: str) -> None:
        self.system = text or None
        self.session.note("system message set" if text else "system message removed")

    def _stats(self, _: str) -> None:
        if self.last is None:
            self.session.note("no finished answer yet (or it was stopped): no stats")
        else:
            self.session.echo(stats_line(self.last))

    def _model(self, name: str) -> None:
        if not name:
            self.session.echo(self.model)
            return
        from ..errors import LMStrixError

        try:
            models = self.client.list_models()
        except LMStrixError as exc:
            self.session.error(f"cannot list the server's models: {exc}")
            return
        known = {m.key for m in models} | {i.id for m in models for i in m.loaded_instances}
        if name not in known:
            self.session.error(self._unknown(name))
            return
        self.keys = [name]
        self.last = None
        self.session.note(f"now chatting with {name} (the history is kept)")

    def _unknown(self, key: str, cause: Optional[Exception] = None) -> str:
        """The message for an unknown model, with close matches when the server answers."""
        from ..errors import LMStrixError

        try:
            return str(self.session.unknown_model(key, cause))
        except LMStrixError as exc:  # the server went away meanwhile: say what is known
            return str(cause or exc)

    def _save(self, path: str) -> None:
        if not path:
            self.session.error("/save needs a file name: /save chat.json (or chat.md)")
            return
        markdown = path.lower().endswith((".md", ".markdown"))
        text = self._markdown() if markdown else self._json()
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            self.session.error(f"cannot write {path}: {exc.strerror or exc}")
            return
        self.session.note(f"saved {len(self.history)} messages to {path}")

    def _json(self) -> str:
        doc = {
            "model": self.keys[0] if len(self.keys) == 1 else self.keys,
            "server": self.session.base_url,
            "system": self.system,
            "messages": self.history,
        }
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

    def _markdown(self) -> str:
        parts = [f"# Chat with {self.model}\n"]
        if self.system:
            parts.append(f"**system:** {self.system}\n")
        for turn in self.history:
            who = f" ({turn['model']})" if turn.get("model") else ""
            parts.append(f"## {turn['role']}{who}\n\n{turn['content']}\n")
            if turn.get("cut"):
                parts.append("*(answer cut off)*\n")
        return "\n".join(parts)

    # -- one turn --------------------------------------------------------------------

    def turn(self, text: str) -> None:
        """Send ``text`` with the history; stream the answer; keep both in the history."""
        self.history.append({"role": "user", "content": text})
        messages = self.messages()
        if len(self.keys) == 1:
            self.overflow.warn(
                self.keys[0], messages, self.params.get("max_tokens"), "/reset forgets it"
            )
        self.last = None
        answer, completion, error = self._stream(messages)
        if completion is not None or answer:
            kept: Dict[str, Any] = {"role": "assistant", "content": answer, "model": self.model}
            if completion is None:
                kept["cut"] = True
                self.session.note("(answer stopped; the part shown is kept, marked as cut off)")
            self.history.append(kept)
        else:
            self.history.pop()  # nothing answered: the question is not kept either
            if error is None:
                self.session.note("(stopped before the answer began; the message is dropped)")
        if error is not None:
            self.session.error(error)
        self.last = completion
        if completion is not None and self.show_stats:
            self.session._err(stats_line(completion))

    def _stream(self, messages: List[Dict[str, str]]) -> Tuple[str, Optional[Completion], Any]:
        """Stream one answer: the text shown, the completion (None if cut), an error."""
        from ..errors import LMStrixError, ModelNotFoundError
        from ._chains import choice
        from ._session import _message

        parts: List[str] = []
        completion: Optional[Completion] = None
        error: Optional[str] = None
        try:
            with self.client.stream_chat(choice(self.keys), messages, **self.params) as stream:
                for chunk in stream:
                    parts.append(chunk.text)  # first: Ctrl-C comes just after it shows
                    self.session.write(chunk.text)
                completion = stream.completion
        except KeyboardInterrupt:
            pass
        except ModelNotFoundError as exc:
            error = self._unknown(self.keys[0], exc)
        except LMStrixError as exc:
            error = _message(exc, ("_cmd_chat", "cmd_chat"))
        text = completion.text if completion is not None else "".join(parts)
        if parts and not "".join(parts).endswith("\n"):
            self.session.write("\n")
        return text, completion, error


def run_interactive(
    session: Session,
    keys: List[str],
    *,
    system: Optional[str] = None,
    params: Optional[Dict[str, Any]] = None,
    show_stats: bool = False,
) -> int:
    """Run an interactive chat with ``keys`` on the session's terminal; the exit code."""
    return ChatRepl(session, keys, system=system, params=params, show_stats=show_stats).run()
