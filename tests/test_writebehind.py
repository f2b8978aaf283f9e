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
from _threads import threading_losing, threading_refusing

from lmstrix import _threads
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


def test_when_no_thread_can_start_submit_queues_and_flush_writes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_threads, "threading", threading_refusing())
    done: List[int] = []
    writer = WriteBehind(done.extend, name="test-writer", linger_s=0.0)
    for n in range(3):
        writer.submit(n)  # the caller's call is not failed by a cache store
    assert done == []
    writer.flush()
    assert done == [0, 1, 2] and writer._thread is None
    assert "no writer thread (can't create new thread" in caplog.text


_WRITER = textwrap.dedent(
    """
    import sys, threading
    from lmstrix.cache._writebehind import WriteBehind
    path, deaths, end, linger = sys.argv[1], [int(sys.argv[2])], sys.argv[3], float(sys.argv[4])

    def hook(event, args):  # what a tracer + audit hook race does on CPython <= 3.11
        if event == "sys.settrace" and deaths[0] > 0:
            if threading.current_thread() is not threading.main_thread():
                deaths[0] -= 1
                raise RuntimeError("this thread dies before its first line")

    if deaths[0]:
        sys.addaudithook(hook)
        sys.unraisablehook = lambda unraisable: None
        threading.settrace(lambda *args: None)

    def write(batch):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(batch))

    writer = WriteBehind(write, name="script-writer", linger_s=linger)
    for n in range(10):
        writer.submit(f"{n}\\n")
    if end == "flush":
        writer.flush()
    # else the interpreter's exit writes the queue
    """
)


def run_writer(folder: Path, deaths: int, end: str, linger_s: float) -> List[str]:
    """What a new interpreter writes with ``deaths`` writer threads dying at start."""
    out = folder / "out.txt"
    command = [sys.executable, "-c", _WRITER, str(out), str(deaths), end, str(linger_s)]
    subprocess.run(command, check=True, timeout=60)
    return out.read_text(encoding="utf-8").split()


def test_the_queue_is_written_when_the_interpreter_exits(tmp_path: Path) -> None:
    # no flush, and a linger far longer than the run: the exit writes the queue
    assert run_writer(tmp_path, 0, "exit", 60.0) == [str(n) for n in range(10)]


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


def test_a_writer_thread_that_never_ran_is_replaced_by_submit_and_flush(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    losing = threading_losing(2)
    monkeypatch.setattr(_threads, "threading", losing)
    monkeypatch.setattr(_writebehind, "_CHECK_S", 0.01)
    done: List[int] = []
    writer = WriteBehind(done.extend, name="test-writer", linger_s=0.0)
    writer.submit(1)  # its writer never runs
    thread = writer._thread
    assert thread is not None
    thread.join(10)
    writer.submit(2)  # sees the writer gone: starts another, which never runs either
    writer.flush()  # starts a third, which writes both
    assert done == [1, 2] and len(losing.lost) == 2
    assert "writer thread ended unexpectedly" in caplog.text


def test_when_writer_threads_never_run_flush_writes_the_queue_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    losing = threading_losing(10**6)
    monkeypatch.setattr(_threads, "threading", losing)
    monkeypatch.setattr(_writebehind, "_CHECK_S", 0.01)
    done: List[int] = []
    writer = WriteBehind(done.extend, name="test-writer", linger_s=0.0)
    for n in range(3):
        writer.submit(n)
    writer.flush()  # no hang: after _MAX_LOST lost writers it writes in this thread
    assert done == [0, 1, 2]
    # One writer per submit at most (a submit starts one where the last is gone), then
    # the flush's own: it gives up on threads after _MAX_LOST of them.
    assert _writebehind._MAX_LOST <= len(losing.lost) <= 3 + _writebehind._MAX_LOST


@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="before 3.11 a failing sys.settrace in a new thread is reported and the thread runs",
)
@pytest.mark.parametrize(("deaths", "end"), [(1, "flush"), (100, "flush"), (100, "exit")])
def test_writer_threads_that_die_before_their_first_line_lose_nothing(
    tmp_path: Path, deaths: int, end: str
) -> None:
    assert run_writer(tmp_path, deaths, end, 0.0) == [str(n) for n in range(10)]
