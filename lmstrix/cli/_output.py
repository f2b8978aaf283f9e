"""Output rules of every command: results on stdout, progress and logs on stderr.

:class:`Output` is what a command writes through. It looks the streams up when it
writes (so a test's captured ``sys.stdout`` is honoured), prints one JSON document in
``--json`` mode and nothing else on stdout, keeps progress off stdout, and blanks out
every secret (the API token) before anything is written.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any, List, Mapping, Optional, Sequence, TextIO

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

REDACTED = "***"


class StdoutClosed(Exception):
    """stdout was closed by its reader (``lmstrix list | head -1``): stop quietly."""


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as a plain aligned text table."""
    cells: List[List[str]] = [[str(h) for h in headers]]
    cells += [
        ["-" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def limits_table(reports: Sequence[Mapping[str, Any]], *, server: bool = False) -> str:
    """The declared / loadable / working table of context-search reports (``to_dict()``);
    with ``server``, a first column names each report's server."""
    first = ["server"] if server else []
    return table(
        [*first, "model", "declared", "loadable", "working", "status", "loads"],
        [
            [
                *([r["server"]] if server else []),
                r["key"],
                r["declared_context"],
                r["loadable_context"],
                r["working_context"],
                r["status"] + (" (skipped)" if r.get("skipped") else ""),
                r["loads"],
            ]
            for r in reports
        ],
    )


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or fake streams
        return False


class Output:
    """Where a command writes: stdout for results, stderr for people.

    ``as_json`` makes :meth:`emit` the only writer of stdout; ``verbosity`` is -1
    (``-q``: no progress, no warnings), 0, or more (``-v``). ``secrets`` are replaced by
    ``***`` in everything written. Streams default to the ``sys`` ones *at write time*.
    """

    def __init__(
        self,
        *,
        as_json: bool = False,
        verbosity: int = 0,
        stdout: Optional[TextIO] = None,
        stderr: Optional[TextIO] = None,
        stdin: Optional[IO[str]] = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.as_json = as_json
        self.verbosity = verbosity
        self._stdout = stdout
        self._stderr = stderr
        self._stdin = stdin
        self._secrets = [s for s in secrets if s]
        self._progress_open = False

    @property
    def stdout(self) -> TextIO:
        """The result stream."""
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        """The stream for progress, warnings and errors."""
        return self._stderr or sys.stderr

    @property
    def stdin(self) -> IO[str]:
        """The input stream (prompts piped to ``chat``)."""
        return self._stdin or sys.stdin

    @property
    def quiet(self) -> bool:
        """True with ``-q``: only results and errors are printed."""
        return self.verbosity < 0

    def add_secret(self, secret: Optional[str]) -> None:
        """Blank ``secret`` out of everything written from now on."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def is_tty(self, stream: Any) -> bool:
        """True when ``stream`` is an interactive terminal."""
        return _isatty(stream)

    # -- stdout ----------------------------------------------------------------------

    def emit(self, document: Any) -> None:
        """Print the command's one JSON document on stdout."""
        self._end_progress()
        text = json.dumps(document, indent=2, sort_keys=True)
        self._out(self.redact(text) + "\n")

    def echo(self, text: str = "") -> None:
        """Print a line of human output on stdout (never in ``--json`` mode)."""
        if self.as_json:
            return
        self._end_progress()
        self._out(self.redact(text) + "\n")

    def write(self, text: str) -> None:
        """Write raw text on stdout at once (streamed answers); no newline added."""
        if self.as_json:
            return
        self._out(self.redact(text))

    def _out(self, text: str) -> None:
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except BrokenPipeError:
            raise StdoutClosed from None

    # -- stderr ----------------------------------------------------------------------

    def note(self, message: str) -> None:
        """A progress or log line on stderr (silenced by ``-q``)."""
        if not self.quiet:
            self._err(message)

    def error(self, message: str) -> None:
        """An error on stderr (always shown)."""
        self._err(f"error: {message}")

    def progress(self, message: str) -> None:
        """A progress step: rewrites one line on a terminal, else prints a line."""
        if self.quiet:
            return
        err = self.stderr
        if not _isatty(err):
            self._err(message)
            return
        columns = 100
        try:
            import shutil

            columns = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
        except (OSError, ValueError):  # pragma: no cover - no terminal after all
            pass
        text = self.redact(message)[:columns]
        err.write("\r" + text.ljust(columns))
        err.flush()
        self._progress_open = True

    def _err(self, message: str) -> None:
        self._end_progress()
        self.stderr.write(self.redact(message) + "\n")
        self.stderr.flush()

    def _end_progress(self) -> None:
        if self._progress_open:
            self._progress_open = False
            self.stderr.write("\n")
            self.stderr.flush()
