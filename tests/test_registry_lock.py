"""The registry's file lock is fair: waiters are served in the order they came."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import pytest

from lmstrix.errors import RegistryError
from lmstrix.registry import Registry
from lmstrix.registry._filelock import FileLock

WORKER = str(Path(__file__).with_name("_registry_worker.py"))
SERVER = "http://worker.test:1234"


def _queued(lock: FileLock) -> List[str]:
    """The ticket files in the lock's queue, in number order."""
    names = [p.name for p in lock.queue_dir.iterdir() if p.name.isdigit()]
    return sorted(names, key=int)


def test_waiters_get_the_lock_in_the_order_they_came(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = FileLock(path, timeout_s=10)
    holder.acquire()
    order: List[int] = []
    threads = []
    for n in range(5):
        # Each thread takes its ticket before the next one starts: the queue file of
        # the n-th waiter is there (holder's ticket is 0).
        lock = FileLock(path, timeout_s=30)

        def wait_then_record(lock: FileLock = lock, n: int = n) -> None:
            with lock:
                order.append(n)

        thread = threading.Thread(target=wait_then_record)
        thread.start()
        threads.append(thread)
        while len(_queued(holder)) < n + 2:
            assert thread.is_alive()
            threading.Event().wait(0.001)
    holder.release()
    for thread in threads:
        thread.join(30)
    assert order == [0, 1, 2, 3, 4]
    assert _queued(holder) == []  # every ticket file was removed on release
    assert (holder.queue_dir / "next").read_text() == "6\n"


def test_a_dead_waiter_does_not_block_the_queue(tmp_path: Path) -> None:
    # A waiter killed in the queue leaves its ticket file behind, unlocked.
    lock = FileLock(tmp_path / "x.lock", timeout_s=0.5)
    lock.queue_dir.mkdir()
    (lock.queue_dir / "next").write_text("3\n")
    for stale in ("1", "2"):
        (lock.queue_dir / stale).write_text("")
    with lock:
        assert lock.held
        assert _queued(lock) == ["3"]  # the dead tickets were cleared away
    assert _queued(lock) == []


def test_a_dead_waiter_behind_a_live_holder_still_waits_for_the_holder(
    tmp_path: Path,
) -> None:
    holder = FileLock(tmp_path / "x.lock", timeout_s=1)
    holder.acquire()  # ticket 0
    (holder.queue_dir / "1").write_text("")  # ticket 1: a waiter that died
    (holder.queue_dir / "next").write_text("2\n")
    with pytest.raises(RegistryError, match="timed out"):
        FileLock(holder.path, timeout_s=0.05).acquire()  # ticket 2 reaches ticket 0
    assert _queued(holder) == ["0"]  # 1 cleared; 2 left the queue when it gave up
    holder.release()
    with FileLock(holder.path, timeout_s=1) as lock:
        assert lock.held


def test_a_waiter_that_times_out_leaves_the_queue(tmp_path: Path) -> None:
    holder = FileLock(tmp_path / "x.lock", timeout_s=1)
    with holder:
        for _ in range(3):
            with pytest.raises(RegistryError, match=r"timed out after 0\.01 s"):
                FileLock(holder.path, timeout_s=0.01).acquire()
        assert _queued(holder) == ["0"]
    with FileLock(holder.path, timeout_s=1):
        assert _queued(holder) == ["4"]


def test_a_reset_counter_skips_numbers_still_in_use(tmp_path: Path) -> None:
    holder = FileLock(tmp_path / "x.lock", timeout_s=1)
    holder.acquire()  # ticket 0, still held
    (holder.queue_dir / "next").write_text("garbage")
    with pytest.raises(RegistryError, match="timed out"):
        FileLock(holder.path, timeout_s=0.05).acquire()  # gets 1, waits for 0
    assert (holder.queue_dir / "next").read_text() == "2\n"
    holder.release()


def test_a_queue_that_cannot_be_used_is_a_registry_error(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "x.lock", timeout_s=0.05)
    (lock.queue_dir / "next").mkdir(parents=True)
    with pytest.raises(RegistryError, match="cannot open the lock queue"):
        lock.acquire()
    lock = FileLock(tmp_path / "y.lock", timeout_s=0.05)
    (lock.queue_dir / "0").mkdir(parents=True)  # the first ticket file cannot be opened
    with pytest.raises(RegistryError, match="cannot take a ticket"):
        lock.acquire()
    assert not lock.held


@pytest.mark.slow
def test_eight_processes_upserting_are_served_fairly(tmp_path: Path) -> None:
    # 8 processes x 200 upserts of their own records. With the bare lock a process
    # writing in a loop took it back before the others woke up (waits up to 20 s);
    # queued, each call waits about seven writes at most. Waits are printed, not
    # asserted (no wall-clock assertions): no call may time out, every upsert must land.
    path = tmp_path / "registry.json"
    workers, count = 8, 200
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "upserts", str(path), str(i), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(workers)
    ]
    longest: List[float] = []
    failures = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            failures.append(err.decode("utf-8", "replace"))
        else:
            longest.append(float(out))
    assert failures == []
    print(f"longest upsert call per process (s): {', '.join(f'{s:.2f}' for s in longest)}")
    records = Registry(path, server=SERVER).records()
    assert sorted(r.key for r in records) == sorted(
        f"w{i}-{n}" for i in range(workers) for n in range(count)
    )
    assert all(r.working_context == int(r.key.split("-")[1]) for r in records)
