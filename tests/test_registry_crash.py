"""Crash safety and concurrency of the registry: real processes, real locks, SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import pytest

from lmstrix.registry import ModelRecord, Registry, _atomic

WORKER = str(Path(__file__).with_name("_registry_worker.py"))
SERVER = "http://worker.test:1234"
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX-only")


def _spawn(*args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    command = [sys.executable, WORKER, *args]
    return subprocess.Popen(command, **kwargs)  # type: ignore[call-overload, no-any-return]


# -- the atomic-write helpers ----------------------------------------------------------


def test_atomic_write_failure_keeps_old_file_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.json"
    _atomic.atomic_write(path, b"old")

    def fail(src: str, dst: str) -> None:
        raise OSError("replace failed")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="replace failed"):
        _atomic.atomic_write(path, b"new")
    with pytest.raises(OSError, match="replace failed"):
        _atomic.keep_backup(path, tmp_path / "f.json.bak")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_backup_falls_back_to_a_copy_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b"good")

    def no_links(src: str, dst: str) -> None:
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    _atomic.keep_backup(path, tmp_path / "f.json.bak")
    assert (tmp_path / "f.json.bak").read_bytes() == b"good"
    path.write_bytes(b"changed in place")
    assert (tmp_path / "f.json.bak").read_bytes() == b"good"


def test_backup_already_linked_to_the_file_is_left_alone(tmp_path: Path) -> None:
    # The state a writer killed between its backup and its rename leaves behind.
    path, backup = tmp_path / "f.json", tmp_path / "f.json.bak"
    path.write_bytes(b"state 7")
    os.link(str(path), str(backup))
    _atomic.keep_backup(path, backup)
    assert backup.read_bytes() == b"state 7"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json", "f.json.bak"]


def test_stale_temp_files_are_removed(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry.json")
    reg.upsert(ModelRecord("m"))
    stale = tmp_path / ".registry.json.abc123.tmp"
    stale.write_bytes(b"half a write")
    unrelated = tmp_path / ".other.json.abc.tmp"
    unrelated.write_bytes(b"")
    reg.upsert(ModelRecord("n"))
    assert not stale.exists()
    assert unrelated.exists()


# -- many processes --------------------------------------------------------------------


def test_eight_processes_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    workers, rounds = 8, 100
    procs = [
        _spawn("hammer", str(path), str(i), str(rounds), stderr=subprocess.PIPE)
        for i in range(workers)
    ]
    failures = []
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            failures.append(err.decode("utf-8", "replace"))
    assert failures == []
    reg = Registry(path, server=SERVER)
    shared = reg.get("shared")
    assert shared is not None
    shared_rounds = range(0, rounds, 2)
    assert shared.working_context == workers * len(shared_rounds)
    assert sorted((p.trial, p.size) for p in shared.probes) == [
        (w, r) for w in range(workers) for r in shared_rounds
    ]
    own_rounds = range(1, rounds, 2)
    for worker in range(workers):
        own = reg.get(f"own-{worker}")
        assert own is not None
        assert own.working_context == len(own_rounds)
        assert [(p.trial, p.size) for p in own.probes] == [(worker, r) for r in own_rounds]
    # 800 updates in all; the backup is the state one update back.
    backup = json.loads(reg.backup_path.read_text("utf-8"))
    models = backup["servers"][SERVER]["models"]
    total = sum(m["working_context"] for m in models.values())
    assert total == workers * rounds - 1


@POSIX_ONLY
def test_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    holder = _spawn("hold-lock", str(path), "600", stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(Exception, match="timed out"):
            Registry(path, lock_timeout_s=0.05).upsert(ModelRecord("m"))
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:  # pragma: no cover - only when an assert failed
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    Registry(path, lock_timeout_s=30).upsert(ModelRecord("m"))


# -- SIGKILL at random moments ---------------------------------------------------------


def _committed(log: Path) -> Optional[int]:
    """The last commit number the worker logged (complete lines only)."""
    text = log.read_text("ascii")
    lines = text.split("\n")[:-1]  # the part after the last newline may be cut
    numbers = [int(line) for line in lines if line.isdigit()]
    return numbers[-1] if numbers else None


def _wait_ready(log: Path, readies: int, proc: subprocess.Popen[bytes]) -> None:
    while log.read_text("ascii").count("ready\n") < readies:
        assert proc.poll() is None, "worker died before it was ready"
        time.sleep(0.002)


def _state(path: Path) -> int:
    """Parse the file independently of lmstrix, check it is consistent, return its number."""
    data = json.loads(path.read_text("utf-8"))
    record = data["servers"][SERVER]["models"]["counter"]
    number = record["working_context"]
    assert [p["size"] for p in record["probes"]] == list(range(1, number + 1))
    return int(number)


@POSIX_ONLY
@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_a_commit(tmp_path: Path) -> None:
    path, log = tmp_path / "registry.json", tmp_path / "commits.log"
    log.write_text("", "ascii")
    rng = random.Random(8)
    kills, last_logged, last = 80, 0, 0
    for round_no in range(1, kills + 1):
        proc = _spawn("crash", str(path), str(log))
        try:
            _wait_ready(log, round_no, proc)
            time.sleep(rng.uniform(0.0, 0.04))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        logged = _committed(log) or 0
        assert logged >= last_logged
        last_logged = logged
        if not path.exists():
            assert logged == 0
            continue
        number = _state(path)
        # Everything logged or seen before is in the file, plus at most the one commit
        # the kill interrupted before it could be logged.
        base = max(logged, last)
        assert base <= number <= base + 1
        # Lmstrix itself reads it back the same way.
        record = Registry(path, server=SERVER).get("counter")
        assert record is not None
        assert record.working_context == number
        if path.with_name("registry.json.bak").exists():
            assert _state(path.with_name("registry.json.bak")) in (number - 1, number)
        last = number
    assert last > 0
    # Temp files a killed writer left behind go at the next write.
    Registry(path, server=SERVER).upsert(ModelRecord("after"))
    leftovers: List[str] = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
