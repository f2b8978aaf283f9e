"""``lmstrix.cache._writebehind.WriteBehind``: batches written by a background thread,
``flush`` waits, failures are logged, the thread ends when idle, a fork starts afresh."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import List

import pytest

from lmstrix.cache import _writebehind
from lmstrix.cache._writebehind import WriteBehind


def test_items_are_written_in_batches_and_flush_waits() -> None:
    batches: List[List[int]] = []
    gate = threading.Event()

    def write(batch: List[int]) -> None:
        gate.wait(10)
        batches.append(batch)

    writer = WriteBehind(write, name="test-writer", linger_s=10.0)
    for n in range(5):
        writer.submit(n)
    gate.set()
    writer.flush()  # does not wait out the linger: it asks for the write now
    assert [n for batch in batches for n in batch] == [0, 1, 2, 3, 4]
    writer.submit(5)
    writer.flush()
    assert batches[-1] == [5]
    writer.flush()  # nothing queued: returns at once


def test_a_failing_write_is_logged_and_the_writer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: List[List[str]] = []

    def write(batch: List[str]) -> None:
        if "bad" in batch:
            raise OSError("disk full")
        seen.append(batch)

    writer = WriteBehind(write, name="test-writer", linger_s=0.0)
    writer.submit("bad")
    writer.flush()
    writer.submit("good")
    writer.flush()
    assert "could not be written" in caplog.text and seen == [["good"]]


def test_the_thread_ends_when_idle_and_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_writebehind, "_IDLE_S", 0.01)
    done: List[int] = []
    writer = WriteBehind(done.extend, name="test-writer", linger_s=0.0)
    writer.submit(1)
    writer.flush()
    thread = writer._thread
    if thread is not None:
        thread.join(10)  # it ends by itself after the idle time
    assert writer._thread is None
    writer.submit(2)  # a new thread
    writer.flush()
    assert done == [1, 2]


_AT_EXIT = textwrap.dedent(
    """
    import sys
    from lmstrix.cache._writebehind import WriteBehind
    path = sys.argv[1]
    def write(batch):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(batch))
    writer = WriteBehind(write, name="exit-writer", linger_s=60.0)
    for n in range(10):
        writer.submit(f"{n}\\n")
    # no flush: the interpreter's exit writes the queue
    """
)


def test_the_queue_is_written_when_the_interpreter_exits(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    subprocess.run([sys.executable, "-c", _AT_EXIT, str(out)], check=True, timeout=60)
    assert out.read_text(encoding="utf-8").split() == [str(n) for n in range(10)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
# The fork happens on purpose while the writer thread runs: that is the case under test
# (Python 3.12+ warns about any fork of a process with threads).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_with_an_empty_queue(tmp_path: Path) -> None:
    written: List[List[str]] = []
    gate = threading.Event()

    def write(batch: List[str]) -> None:
        gate.wait(10)
        written.append(batch)

    writer = WriteBehind(write, name="test-writer", linger_s=0.0)
    writer.submit("parent")
    pid = os.fork()
    if pid == 0:  # the child: its own queue and thread; the parent's item is not its own
        code = 0
        try:
            writer.flush()  # nothing of the child's: returns at once
            gate.set()
            writer.submit("child")
            writer.flush()
            code = 0 if written == [["child"]] else 1
        finally:
            os._exit(code)
    gate.set()
    _, status = os.waitpid(pid, 0)
    writer.flush()
    assert os.WEXITSTATUS(status) == 0
    assert written == [["parent"]]
