"""``run_batch`` when worker threads end before their first line (``tests/_threads.py``):
they are replaced and nothing is lost; when they keep ending, the batch stops and says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from _threads import threading_losing

from lmstrix import Client
from lmstrix.batch import _runner, _workers, run_batch
from lmstrix.testing import FakeLMStudio, SimModel

MODEL = "acme/chat-7b"


@pytest.fixture
def client() -> Iterator[Client]:
    with FakeLMStudio(models=[SimModel(key=MODEL, declared_context=8192, parallel=2)]) as sim:
        sim.preload(MODEL)
        with Client(sim.base_url) as c:
            yield c


def items(n: int) -> list:  # type: ignore[type-arg]
    return [{"id": f"q{i}", "prompt": f"What is {i}+1?"} for i in range(n)]


def test_workers_that_never_ran_are_replaced_and_every_item_is_done(
    tmp_path: Path,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    losing = threading_losing(2)  # both first workers: no worker at all until replaced
    monkeypatch.setattr(_workers, "threading", losing)
    monkeypatch.setattr(_runner, "_POLL_S", 0.01)
    out = tmp_path / "out.jsonl"
    summary = run_batch(items(6), client, MODEL, output=out, workers=2)
    assert losing.lost == ["lmstrix-batch-0", "lmstrix-batch-1"]
    assert (summary.done, summary.failed) == (6, 0)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == [f"q{i}" for i in range(6)]
    assert "worker 0 ended unexpectedly" in caplog.text


def test_when_workers_keep_ending_the_batch_stops_and_says_how_to_go_on(
    tmp_path: Path, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    losing = threading_losing(10**6)
    monkeypatch.setattr(_workers, "threading", losing)
    monkeypatch.setattr(_runner, "_POLL_S", 0.01)
    out = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError, match=r"keep ending before they start \(6 lost\)") as info:
        run_batch(items(3), client, MODEL, output=out, workers=2)
    assert str(out) in str(info.value) and "run the batch again" in str(info.value)
    assert len(losing.lost) == 2 + 6  # the first two, then _MAX_LOST per worker
