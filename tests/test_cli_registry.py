"""The CLI over the registry: list offline, stale records, the speed profile, recheck.

Each test runs a simulator, tests a model through the CLI, then starts a changed
simulator on the same port (the registry keeps records per server URL), or none.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import pytest
from _cli_helpers import Entry, front_ends

from lmstrix.testing import FakeLMStudio, SimModel

MODEL = SimModel(
    "acme/drifty-8b", 32768, 20_000, 12_000, parallel=2, quantization="Q4_K_M", size_bytes=4_000
)
OTHER = SimModel("acme/neighbour-1b", 8192)


ENTRIES = front_ends()


class Run:
    """The CLI against one registry file, through one front end."""

    def __init__(self, capsys: pytest.CaptureFixture[str], entry: Entry, registry: Path) -> None:
        self.capsys, self.entry, self.registry = capsys, entry, str(registry)

    def __call__(self, port: int, *args: str) -> Tuple[int, str, str]:
        self.capsys.readouterr()
        server = f"http://127.0.0.1:{port}"
        code = self.entry(["--server", server, "--registry", self.registry, *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, port: int, *args: str) -> Dict[str, Any]:
        code, out, err = self(port, "--json", *args)
        assert code == 0, err
        doc: Dict[str, Any] = json.loads(out)
        return doc


@pytest.fixture(params=ENTRIES, ids=[name for name, _ in ENTRIES])
def run(request: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Run:
    return Run(capsys, request.param[1], tmp_path / "registry.json")


def _tested(run: Run, models: Sequence[SimModel] = (MODEL, OTHER)) -> int:
    """Test MODEL through the CLI on a fresh simulator; return its (now free) port."""
    with FakeLMStudio(models=list(models)) as sim:
        doc = run.json(sim.port, "test", MODEL.key, "--trials", "1")
        assert doc["models"][0]["status"] == "done"
        return sim.port


def test_list_offline_lists_the_registry_and_says_the_server_was_not_reached(run: Run) -> None:
    port = _tested(run)
    doc = run.json(port, "list")  # nothing listens on the port any more
    assert doc["server_reached"] is False and f"127.0.0.1:{port}" in doc["server_error"]
    [row] = doc["models"]
    assert row["key"] == MODEL.key and row["status"] == "done"
    assert row["working_context"] and row["on_server"] is None and row["loaded"] is None
    code, out, err = run(port, "list")
    assert code == 0 and MODEL.key in out and "(gone)" not in out
    assert "not reached" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(port, "-q", "list")
    assert code == 0 and err == "" and MODEL.key in out


def test_list_offline_with_an_empty_registry(run: Run, tmp_path: Path) -> None:
    with FakeLMStudio(models=[OTHER]) as sim:
        port = sim.port
    code, out, err = run(port, "list")
    assert code == 0 and "no records" in out and "not reached" in err


def test_list_online_says_the_server_was_reached(run: Run) -> None:
    port = _tested(run)
    with FakeLMStudio(models=[MODEL, OTHER], port=port):
        doc = run.json(port, "list")
    assert doc["server_reached"] is True and "server_error" not in doc
    assert [r["stale"] for r in doc["models"]] == [False, False]


def test_list_marks_a_record_stale_when_the_model_changed(run: Run) -> None:
    port = _tested(run)
    requantized = dataclasses.replace(MODEL, quantization="Q8_0")
    with FakeLMStudio(models=[requantized, OTHER], port=port):
        doc = run.json(port, "list")
        code, out, err = run(port, "list")
        shown = run.json(port, "show", MODEL.key)
    row = next(r for r in doc["models"] if r["key"] == MODEL.key)
    assert row["stale"] is True and "quantization: Q4_K_M -> Q8_0" in row["stale_reason"]
    assert row["status"] == "done"
    assert code == 0 and "done (stale)" in out and "--recheck" in err
    assert shown["stale"] is True


def test_show_gives_the_speed_profile_and_the_fingerprint(run: Run) -> None:
    port = _tested(run)
    doc = run.json(port, "show", MODEL.key)
    profile = doc["speed_profile"]
    assert profile and all(row["prompt_tokens"] > 0 for row in profile)
    sizes = [row["prompt_tokens"] for row in profile]
    assert sizes == sorted(sizes)
    assert doc["fingerprint"]["quantization"] == "Q4_K_M"
    code, out, _ = run(port, "show", MODEL.key)  # offline: the registry has it all
    assert code == 0
    assert "speed by prompt size" in out and "prefill" in out and "decode" in out
    assert "measured with:" in out and "quantization Q4_K_M" in out


def test_recheck_confirms_an_unchanged_model(run: Run) -> None:
    port = _tested(run)
    with FakeLMStudio(models=[MODEL, OTHER], port=port) as sim:
        doc = run.json(port, "test", "--recheck", MODEL.key, "--trials", "1")
        loads = sim.counters.loads
        code, out, _ = run(port, "test", "--recheck", "--all", "--trials", "1")
    [row] = doc["models"]
    assert row["key"] == MODEL.key and row["outcome"] == "confirmed" and row["loads"] == 1
    assert loads == 1
    assert code == 0 and "confirmed" in out and OTHER.key not in out  # --all: tested ones


def test_recheck_flags_drift_and_list_shows_it_stale(run: Run) -> None:
    port = _tested(run)
    smaller = dataclasses.replace(MODEL, loadable_context=16_000, working_context=9_000)
    with FakeLMStudio(models=[smaller, OTHER], port=port):
        code, out, err = run(port, "--json", "test", "--recheck", MODEL.key)
        doc = run.json(port, "list")
    assert code == 1, err
    assert json.loads(out)["models"][0]["outcome"] == "drifted"
    row = next(r for r in doc["models"] if r["key"] == MODEL.key)
    assert row["stale"] is True and row["stale_reason"]


def test_recheck_of_an_untested_model_says_so(run: Run) -> None:
    with FakeLMStudio(models=[MODEL, OTHER]) as sim:
        code, out, err = run(sim.port, "test", "--recheck", OTHER.key)
    assert code == 1 and "untested" in out and "test" in err


def test_recheck_takes_no_search_options(run: Run) -> None:
    with FakeLMStudio(models=[MODEL]) as sim:
        code, out, err = run(sim.port, "test", "--recheck", MODEL.key, "--reset")
    assert code == 2 and out == "" and "--recheck" in err


def test_test_warns_when_other_models_are_loaded(run: Run) -> None:
    with FakeLMStudio(models=[MODEL, OTHER]) as sim:
        sim.preload(OTHER.key, 4096)
        code, _, err = run(sim.port, "test", MODEL.key, "--trials", "1")
        assert code == 0
    [line] = [x for x in err.splitlines() if "other models" in x]  # said once
    assert line.startswith("warning:") and OTHER.key in line
    with FakeLMStudio(models=[MODEL, OTHER]) as sim:
        code, _, err = run(sim.port, "test", OTHER.key, "--trials", "1")
    assert code == 0 and "other models" not in err


def test_recheck_all_with_nothing_tested_says_so(run: Run) -> None:
    with FakeLMStudio(models=[MODEL, OTHER]) as sim:
        code, out, _ = run(sim.port, "test", "--recheck", "--all")
        doc = run.json(sim.port, "test", "--recheck", "--all")
    assert code == 0 and "no tested model" in out
    assert doc["models"] == []


def test_recheck_warns_when_other_models_are_loaded(run: Run) -> None:
    port = _tested(run)
    with FakeLMStudio(models=[MODEL, OTHER], port=port) as sim:
        sim.preload(OTHER.key, 2048)
        code, _, err = run(port, "test", "--recheck", MODEL.key, "--trials", "1")
    assert code == 0, err
    [line] = [x for x in err.splitlines() if "other models" in x]  # said once
    assert line.startswith("warning:") and OTHER.key in line
