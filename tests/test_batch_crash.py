"""Exactly-once output under SIGKILL: kill a batch at random moments, resume, check every id."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from lmstrix.testing import FakeLMStudio, SimModel

WORKER = str(Path(__file__).with_name("_batch_worker.py"))
MODEL = "crash/fixed-30ms"
ITEMS = 500
KILLS = 24
# Every answer is one token (the prompts are sums), so each request costs a fixed
# decode_s_per_token of simulated time, slept for real with time_scale=1. With 4 slots
# at most ~130 items/s go through, and a kill comes 0-0.2 s after a run reports its first
# item: even on a fast machine 24 kills cannot get through 500 items.
SLOW = SimModel(
    key=MODEL,
    declared_context=4096,
    parallel=4,
    prefill_s_per_1k_tokens=0.0,
    decode_s_per_token=0.03,
)


def _split(path: Path) -> Tuple[List[dict], bytes]:
    """The complete records, and the torn tail (bytes after the last newline)."""
    raw = path.read_bytes() if path.exists() else b""
    head, _, tail = raw.rpartition(b"\n")
    records = [json.loads(line) for line in head.split(b"\n") if line] if head else []
    return records, tail


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX-only")
@pytest.mark.slow
def test_sigkill_at_random_moments_gives_every_id_exactly_once(tmp_path: Path) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with source.open("w", encoding="utf-8") as f:
        for i in range(ITEMS):
            f.write(json.dumps({"id": f"item-{i}", "prompt": f"What is {i}+1?"}) + "\n")
    seed = int(os.environ.get("LMSTRIX_CRASH_SEED", "20240611"))
    rng = random.Random(seed)
    kills = 0
    finished = False
    with FakeLMStudio(models=[SLOW], time_scale=1.0) as sim:
        sim.preload(MODEL)
        command = [sys.executable, WORKER, sim.base_url, MODEL, str(source), str(output), "4"]
        while not finished:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE)
            assert proc.stdout is not None
            try:
                if kills < KILLS:
                    line = proc.stdout.readline()  # "started": the run is under way
                    assert line.startswith((b"started", b"finished")), (seed, line)
                    time.sleep(rng.uniform(0.0, 0.2))
                    os.kill(proc.pid, signal.SIGKILL)
                    kills += 1
                proc.wait(timeout=60)
                finished = proc.returncode == 0
                if not finished:
                    assert proc.returncode == -signal.SIGKILL, (seed, proc.returncode)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            records, _ = _split(output)  # a torn last line is allowed here
            got = [r["id"] for r in records]
            assert len(got) == len(set(got)), f"duplicate ids after kill {kills} (seed {seed})"
            assert all(r["error"] is None for r in records), seed
    assert kills >= 20, f"the batch finished after {kills} kills: make it longer (seed {seed})"
    records, tail = _split(output)
    assert tail == b"", "torn last line after the final run"
    got = sorted(r["id"] for r in records)
    assert got == sorted(f"item-{i}" for i in range(ITEMS)), seed
