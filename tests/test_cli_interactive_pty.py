"""The interactive chat on a real pseudo-terminal: ``lmstrix chat`` as a person uses it.

Each test starts the CLI (both front ends) in a child process whose stdin, stdout and
stderr are the slave side of a pty (the child makes it its controlling terminal, so
writing ``\\x03`` sends it SIGINT and ``\\x04`` ends its input, as a keyboard does),
types lines into the master side and reads the screen back, against a FakeLMStudio on
loopback started by the test. POSIX only (``pty``, ``termios``). Nothing here measures
time: reads wait for text with generous timeouts.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from lmstrix.testing import FakeLMStudio, SimModel

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="pseudo-terminals (pty, termios) are POSIX only"
)

WAIT_S = 60.0  # generous: the machine may be busy; a passing run never waits this long

# The child: take the pty as controlling terminal, then run one front end.
CHILD = """
import fcntl, os, signal, sys, termios
# A terminal's Ctrl-C must reach Python even when the test runner was started with SIGINT
# ignored (a background job of a non-interactive shell), which its children inherit.
signal.signal(signal.SIGINT, signal.default_int_handler)
os.setsid()
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
if sys.argv[1] == "click":
    from lmstrix.cli.click_app import main
else:
    from lmstrix.cli import main
sys.exit(main(sys.argv[2:]))
"""

_INSTANT = {"load_base_s": 0.0, "load_s_per_1k_ctx": 0.0, "prefill_s_per_1k_tokens": 0.0}
FLEET = [
    SimModel("acme/fast", 8192, decode_s_per_token=0.0, **_INSTANT),
    # real seconds per token at time_scale 1: an answer is still streaming when Ctrl-C comes
    SimModel("acme/slow", 8192, decode_s_per_token=1.0, **_INSTANT),
]


def _front_ends() -> List[str]:
    try:
        import click  # noqa: F401
    except ImportError:  # pragma: no cover - the [cli] extra is in the dev install
        return ["lite"]
    return ["lite", "click"]


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=FLEET, time_scale=1.0) as server:
        yield server


class Terminal:
    """A child CLI on a pty: :meth:`send` types, :meth:`expect` waits for screen text."""

    def __init__(self, front_end: str, args: List[str], env: Dict[str, str], cwd: Path) -> None:
        import pty

        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, front_end, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=str(cwd),
            close_fds=True,
        )
        os.close(slave)
        self.screen = b""
        self.seen = 0  # what expect() has matched so far

    def _read(self, wait_s: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait_s)
        if not ready:
            return False
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        self.screen += data
        return bool(data)

    def expect(self, text: str) -> str:
        """Wait until ``text`` appears after the last match; the screen up to it."""
        wanted = text.encode()
        for _ in range(int(WAIT_S * 10)):
            found = self.screen.find(wanted, self.seen)
            if found >= 0:
                start, self.seen = self.seen, found + len(wanted)
                return self.screen[start : self.seen].decode("utf-8", "replace")
            if not self._read(0.1) and self.proc.poll() is not None:
                break
        raise AssertionError(f"{text!r} not on the screen:\n{self.screen.decode(errors='replace')}")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def line(self, text: str) -> None:
        self.send(text.encode() + b"\r")

    def ask(self, text: str) -> str:
        """Type ``text`` at the prompt; the screen after its echo, up to the next prompt."""
        self.line(text)
        self.expect(text + "\r\n")
        return self.expect("\n> ")

    def interrupt_until_exit(self, tries: int = 10) -> None:
        """Ctrl-C, again while the child runs (a few seconds apart).

        CPython's readline loop checks for signals only when its ``select`` is cut
        short: a SIGINT landing between the prompt being drawn and ``select`` starting
        is noticed at the next key or signal (a person never types that fast; a test
        can). Pressing Ctrl-C again is what a person would do.
        """
        for _ in range(tries):
            with contextlib.suppress(OSError):  # the terminal is gone: the child ended
                self.send(b"\x03")
            for _ in range(20):
                if self.proc.poll() is not None:
                    return
                self._read(0.1)

    def exit_code(self) -> int:
        """Wait for the child to end (reading what it still writes); its exit code."""
        for _ in range(int(WAIT_S * 10)):
            if self.proc.poll() is not None:
                break
            self._read(0.1)
        while self._read(0):
            pass
        return self.proc.wait(timeout=1)

    def close(self) -> None:
        if self.proc.poll() is None:  # pragma: no cover - only when a test failed
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terminal(
    sim: FakeLMStudio, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Terminal]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LMSTRIX_HOME": str(tmp_path / "home"),
        "LMSTRIX_NO_PLUGINS": "1",
        "TERM": "dumb",
        "LC_ALL": "C.UTF-8",
    }
    front_end, *args = request.param
    term = Terminal(front_end, ["--server", sim.base_url, "chat", *args], env, tmp_path)
    yield term
    term.close()


def _params(*args: str) -> List[List[str]]:
    return [[front_end, *args] for front_end in _front_ends()]


@pytest.mark.parametrize("terminal", _params("acme/fast"), indirect=True)
def test_a_conversation_on_a_terminal(
    terminal: Terminal, sim: FakeLMStudio, tmp_path: Path
) -> None:
    # Each step waits for the next prompt before typing, as a person does.
    terminal.expect("Ctrl-D leaves")
    terminal.expect("> ")
    assert "4" in terminal.ask("What is 2+2?")
    terminal.line('"""')
    for text in ("alpha", "beta", '"""'):
        terminal.expect("... ")
        terminal.line(text)
    assert "acme/fast to: alpha beta" in terminal.expect("\n> ")
    assert "stats: time to first token" in terminal.ask("/stats")
    sent = sim.received[-1].body
    assert isinstance(sent, dict)
    assert [m["content"] for m in sent["messages"]] == ["What is 2+2?", "4", "alpha\nbeta"]

    # Ctrl-C while the slow model is still answering: back to the prompt, part kept
    assert "now chatting with acme/slow" in terminal.ask("/model acme/slow")
    terminal.line("tell me a story")
    terminal.expect("Simulated")
    terminal.send(b"\x03")
    assert "answer stopped" in terminal.expect("\n> ")
    assert "now chatting with acme/fast" in terminal.ask("/model acme/fast")
    assert "saved 6 messages" in terminal.ask("/save chat.json")  # the child runs in tmp_path
    doc = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    cut = doc["messages"][-1]
    assert cut["role"] == "assistant" and cut["cut"] is True
    assert cut["content"].startswith("Simulated")
    assert "tell me a story" not in cut["content"]  # the whole answer never came
    assert doc["messages"][-2] == {"role": "user", "content": "tell me a story"}

    assert "history forgotten (6 messages)" in terminal.ask("/reset")
    assert "6" in terminal.ask("What is 3+3?")
    sent = sim.received[-1].body
    assert isinstance(sent, dict)
    assert sent["messages"] == [{"role": "user", "content": "What is 3+3?"}]
    terminal.send(b"\x04")  # Ctrl-D at the prompt
    assert terminal.exit_code() == 0


@pytest.mark.parametrize("terminal", _params("acme/fast"), indirect=True)
def test_ctrl_c_at_the_prompt_leaves_with_130(terminal: Terminal) -> None:
    terminal.expect("> ")
    assert "/save FILE" in terminal.ask("/help")
    terminal.interrupt_until_exit()
    assert terminal.exit_code() == 130
