"""Fingerprints and the drift check (`recheck_limits`) against the simulator on loopback."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Optional, Sequence

import pytest

import lmstrix
from lmstrix import _fingerprint
from lmstrix._fingerprint import (
    Fingerprint,
    current_fingerprint,
    fingerprint_changes,
    mark_stale,
    server_version_of,
)
from lmstrix._recheck import RECHECK_DETAIL, RecheckResult, recheck_limits
from lmstrix._records import RECHECK_OUTCOMES, ModelRecord, ProbeRecord
from lmstrix.client import Client
from lmstrix.context import find_context_limit
from lmstrix.errors import ContextSearchError
from lmstrix.registry import Registry
from lmstrix.testing import FakeLMStudio, Fault, SimModel
from lmstrix.types import Completion

MODEL = SimModel(
    "acme/drifty-8b", 32768, 20_000, 12_000, parallel=2, quantization="Q4_K_M", size_bytes=4_000
)
OTHER = SimModel("acme/neighbour-1b", 8192)


def _client(sim: FakeLMStudio) -> Client:
    return Client(sim.base_url, max_retries=0)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry.json")


def searched(
    registry: Registry, models: Sequence[SimModel] = (MODEL, OTHER), **sim_options: object
) -> int:
    """Run a search of MODEL on a fresh simulator; return its port (for a later one)."""
    with FakeLMStudio(models=models, **sim_options) as sim, _client(sim) as client:  # type: ignore[arg-type]
        report = find_context_limit(client, MODEL.key, registry=registry, seed=7)
        assert report.status == "done"
        return sim.port


def counts(sim: FakeLMStudio) -> tuple:  # type: ignore[type-arg]
    c = sim.counters
    return c.loads, c.requests.get("/v1/chat/completions", 0), c.total_requests


# --------------------------------------------------------------------- fingerprints


def test_the_search_records_the_fingerprint(registry: Registry) -> None:
    with FakeLMStudio(models=[MODEL, OTHER]) as sim, _client(sim) as client:
        report = find_context_limit(client, MODEL.key, registry=registry, seed=1)
        server = sim.base_url
    record = registry.get(MODEL.key, server=server)
    assert record is not None and record.fingerprint is not None
    expected = Fingerprint(
        api="v1", format="gguf", quantization="Q4_K_M", size_bytes=4_000, parallel=2
    )
    assert record.fingerprint == expected
    assert report.fingerprint == expected
    assert report.warnings == ()
    assert report.to_dict()["fingerprint"]["parallel"] == 2
    # It survives the file: a fresh reader sees the same.
    again = Registry(registry.path).get(MODEL.key, server=server)
    assert again is not None and again.fingerprint == expected


def test_a_loaded_neighbour_is_recorded_and_warned_about(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeLMStudio(models=[MODEL, OTHER]) as sim, _client(sim) as client:
        sim.preload(OTHER.key, 4096)
        with caplog.at_level(logging.WARNING, logger="lmstrix"):
            report = find_context_limit(client, MODEL.key, registry=registry, seed=1)
        record = registry.get(MODEL.key, server=sim.base_url)
    assert report.fingerprint is not None
    assert report.fingerprint.neighbours == (f"{OTHER.key}@4096",)
    assert len(report.warnings) == 1 and OTHER.key in report.warnings[0]
    assert any(OTHER.key in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert record is not None and record.fingerprint == report.fingerprint
    assert report.to_dict()["warnings"] == list(report.warnings)


def test_fingerprint_changes_compare_only_what_both_sides_know() -> None:
    old = Fingerprint("v1", "rt 1.0", "gguf", "Q4_K_M", 100, 4, ("x@8",))
    assert fingerprint_changes(old, old) == []
    assert fingerprint_changes(None, old) == []
    unknown = Fingerprint("v1", None, "gguf", "Q4_K_M", 100, None, ())
    assert fingerprint_changes(old, unknown) == []  # not loaded now: slots unknown, no change
    new = Fingerprint("v0", "rt 2.0", "gguf", "Q8_0", 200, 1, ())
    assert fingerprint_changes(old, new) == [
        "api: v1 -> v0",
        "server_version: rt 1.0 -> rt 2.0",
        "quantization: Q4_K_M -> Q8_0",
        "size_bytes: 100 -> 200",
        "parallel: 4 -> 1",
    ]


def test_fingerprint_round_trip_and_tolerant_reading() -> None:
    fp = Fingerprint("v1", "llama.cpp 1.50.0", "mlx", "4bit", 5, 4, ("a@1", "b@2"))
    assert Fingerprint.from_dict(fp.to_dict()) == fp
    bad = Fingerprint.from_dict({"api": 3, "size_bytes": "big", "neighbours": "a", "parallel": 2})
    assert bad == Fingerprint(parallel=2)
    record = ModelRecord("k", fingerprint=fp, stale=True, stale_reason="why", recheck="drifted")
    record = dataclasses.replace(record, rechecked_at=12.5)
    assert ModelRecord.from_dict(record.to_dict()) == record
    assert ModelRecord.from_dict({"key": "k", "fingerprint": "x", "stale": "yes"}) == ModelRecord(
        "k"
    )
    assert "drifted" in RECHECK_OUTCOMES


def _answer(raw: dict) -> Completion:  # type: ignore[type-arg]
    return Completion(text="", model="acme/m", raw=raw)


def test_server_version_from_replies() -> None:
    runtime = {"runtime": {"name": "llama.cpp-linux", "version": "1.50.0"}}
    assert server_version_of(_answer(runtime)) == "llama.cpp-linux 1.50.0"
    assert server_version_of(_answer({"runtime": {"version": "2"}})) == "2"
    assert server_version_of(_answer({"system_fingerprint": "b4567-1a2b3c"})) == "b4567-1a2b3c"
    # LM Studio puts the model id there: not a version.
    assert server_version_of(_answer({"system_fingerprint": "acme/m"})) is None
    assert server_version_of(_answer({"system_fingerprint": "acme/m:2", "model": "x"})) is None
    assert server_version_of(_answer({})) is None


def test_mark_stale_flags_a_changed_quantization(registry: Registry) -> None:
    port = searched(registry)
    requantized = dataclasses.replace(MODEL, quantization="Q8_0", size_bytes=8_000)
    with FakeLMStudio(models=[requantized, OTHER], port=port) as sim, _client(sim) as client:
        before = sim.counters.total_requests
        found = mark_stale(client, registry)
        assert sim.counters.total_requests - before == 1  # one model list
        again = mark_stale(client, registry)  # already stale: nothing new, no second write
        record = registry.get(MODEL.key, server=sim.base_url)
    assert found == {MODEL.key: ["quantization: Q4_K_M -> Q8_0", "size_bytes: 4000 -> 8000"]}
    assert again == {}
    assert record is not None and record.stale and record.status == "done"
    assert "quantization: Q4_K_M -> Q8_0" in record.stale_reason
    assert record.to_dict()["stale"] is True


def test_mark_stale_leaves_unchanged_and_unknown_records(registry: Registry) -> None:
    port = searched(registry)
    with FakeLMStudio(models=[MODEL, OTHER], port=port) as sim, _client(sim) as client:
        registry.upsert(ModelRecord("acme/gone", server=sim.base_url, status="done"))
        registry.upsert(ModelRecord(OTHER.key, server=sim.base_url))  # no fingerprint
        assert mark_stale(client, registry) == {}
        record = registry.get(MODEL.key, server=sim.base_url)
        info = client.get_model(MODEL.key)
        assert record is not None and record.fingerprint is not None
        now = current_fingerprint(client, info)
    assert not record.stale
    assert fingerprint_changes(record.fingerprint, now) == []


def test_a_new_search_clears_stale(registry: Registry) -> None:
    port = searched(registry)
    with FakeLMStudio(models=[MODEL, OTHER], port=port) as sim, _client(sim) as client:
        registry.update(
            MODEL.key,
            lambda r: dataclasses.replace(r, stale=True, stale_reason="x") if r else None,
            server=sim.base_url,
        )
        find_context_limit(client, MODEL.key, registry=registry, reset=True, seed=3)
        record = registry.get(MODEL.key, server=sim.base_url)
    assert record is not None and not record.stale and record.stale_reason == ""


# --------------------------------------------------------------------- recheck


def recheck(
    registry: Registry,
    models: Sequence[SimModel],
    port: int,
    *,
    trials: int = 3,
    preload: Optional[str] = None,
    faults: Sequence[Fault] = (),
) -> tuple:  # type: ignore[type-arg]
    with FakeLMStudio(models=models, port=port) as sim, _client(sim) as client:
        if preload:
            sim.preload(preload, 2048)
        for fault in faults:
            sim.inject(fault)
        result = recheck_limits(client, MODEL.key, registry=registry, trials=trials, seed=5)
        record = registry.get(MODEL.key, server=sim.base_url)
        return result, record, counts(sim), sim.loaded()


def test_recheck_confirms_an_unchanged_model_with_one_load_and_trials_probes(
    registry: Registry,
) -> None:
    port = searched(registry)
    for trials in (1, 3):
        result, record, (loads, chats, total), loaded = recheck(
            registry, [MODEL, OTHER], port, trials=trials
        )
        assert isinstance(result, RecheckResult) and result.confirmed and not result.drifted
        assert (loads, chats) == (1, trials)
        assert result.loads == 1 and result.requests == total == trials + 4
        assert loaded == []  # unloaded again
        assert len(result.prompt_tokens) == trials
        assert record.working_context is not None
        assert all(t <= record.working_context for t in result.prompt_tokens)
        assert min(result.prompt_tokens) >= 0.95 * record.working_context
        assert result.applied_context == record.loadable_context
        assert record.recheck == "confirmed" and not record.stale
        assert record.rechecked_at is not None
        assert result.changes == () and result.fingerprint == record.fingerprint
        assert result.to_dict()["outcome"] == "confirmed"
        assert all(p.detail.startswith(RECHECK_DETAIL) for p in result.probes)
        assert not record.pending_probes


def test_recheck_flags_drift_when_the_model_loads_less(registry: Registry) -> None:
    port = searched(registry)
    smaller = dataclasses.replace(MODEL, loadable_context=16_000, working_context=9_000)
    result, record, (loads, chats, _), _ = recheck(registry, [smaller, OTHER], port)
    assert result.drifted and result.stale
    assert (loads, chats) == (1, 0)  # no probe after the failed load
    assert "load at" in result.reason
    assert record.status == "done" and record.stale and record.recheck == "drifted"
    assert record.stale_reason == result.reason
    assert record.loadable_context == result.loadable_context  # the limits are kept


def test_recheck_flags_drift_when_the_model_works_at_less(registry: Registry) -> None:
    port = searched(registry)
    worse = dataclasses.replace(MODEL, working_context=6_000)
    result, record, (loads, chats, _), _ = recheck(registry, [worse, OTHER], port)
    assert result.drifted and loads == 1 and chats == 2  # one failure could be noise
    assert "needles 1 and 2" in result.reason
    assert record.stale and record.recheck == "drifted"


def test_recheck_confirming_a_changed_fingerprint_clears_stale(registry: Registry) -> None:
    port = searched(registry)
    newer = dataclasses.replace(MODEL, parallel=8)
    with FakeLMStudio(models=[newer, OTHER], port=port) as sim, _client(sim) as client:
        sim.preload(newer.key, 4096)  # loaded: its slots show, and they changed
        assert mark_stale(client, registry) == {MODEL.key: ["parallel: 2 -> 8"]}
        result = recheck_limits(client, MODEL.key, registry=registry, trials=1, keep_loaded=True)
        record = registry.get(MODEL.key, server=sim.base_url)
        assert len(sim.loaded()) == 2  # kept loaded, beside the preloaded one
    assert result.confirmed and result.changes == ("parallel: 2 -> 8",)
    assert record is not None and not record.stale and record.fingerprint is not None
    assert record.fingerprint.parallel == 8
    assert result.warnings and newer.key in result.warnings[0]  # its own other instance


def test_recheck_with_a_changed_fingerprint_and_no_verdict_is_stale(registry: Registry) -> None:
    port = searched(registry)
    other_quant = dataclasses.replace(MODEL, quantization="Q5_K_M")
    fault = Fault(path="/api/v1/models/load", kind="reset", times=1)
    result, record, (_, chats, _), _ = recheck(registry, [other_quant, OTHER], port, faults=[fault])
    assert result.outcome == "inconclusive" and result.stale
    assert chats == 0
    assert "quantization: Q4_K_M -> Q5_K_M" in record.stale_reason


def test_an_inconclusive_recheck_leaves_the_record_as_it_was(registry: Registry) -> None:
    port = searched(registry)
    fault = Fault(path="/v1/chat/completions", kind="status", status=500, times=1)
    result, record, _, loaded = recheck(registry, [MODEL, OTHER], port, faults=[fault])
    assert result.outcome == "inconclusive" and not result.stale
    assert "server_error" in result.reason
    assert record.recheck == "inconclusive" and not record.stale
    assert loaded == []


def test_a_recheck_that_crashed_during_its_load_counts_as_drift(registry: Registry) -> None:
    port = searched(registry)
    with FakeLMStudio(models=[MODEL, OTHER], port=port) as sim:
        record = registry.get(MODEL.key, server=sim.base_url)
        assert record is not None and record.loadable_context is not None
        # What a recheck leaves behind when the host dies during its load.
        pending = ProbeRecord("load", record.loadable_context, detail=RECHECK_DETAIL)
        registry.append_probe(MODEL.key, pending, server=sim.base_url)
        with _client(sim) as client:
            result = recheck_limits(client, MODEL.key, registry=registry)
        after = registry.get(MODEL.key, server=sim.base_url)
        assert sim.counters.loads == 0  # not tried again blindly
    assert result.drifted and "never finished" in result.reason
    assert after is not None and after.stale and not after.pending_probes
    assert after.probes[-1].failure == "crashed"


def test_recheck_needs_a_finished_test(registry: Registry) -> None:
    with FakeLMStudio(models=[MODEL]) as sim, _client(sim) as client:
        with pytest.raises(ContextSearchError, match="no finished context test"):
            recheck_limits(client, MODEL.key, registry=registry)
        registry.upsert(ModelRecord(MODEL.key, server=sim.base_url, status="testing"))
        with pytest.raises(ContextSearchError):
            recheck_limits(client, MODEL.key, registry=registry)
        with pytest.raises(ContextSearchError, match="trials"):
            recheck_limits(client, MODEL.key, registry=registry, trials=0)
        assert sim.counters.loads == 0


def test_recheck_on_a_server_without_a_load_endpoint(registry: Registry) -> None:
    port = searched(registry, api="openai")
    with FakeLMStudio(models=[MODEL, OTHER], api="openai", port=port) as sim:
        with _client(sim) as client:
            result = recheck_limits(client, MODEL.key, registry=registry, trials=2)
        assert sim.counters.requests.get("/v1/chat/completions") == 2
    assert result.confirmed and result.loads == 0


def test_public_names() -> None:
    assert lmstrix.recheck_limits is recheck_limits
    assert lmstrix.RecheckResult is RecheckResult
    assert lmstrix.Fingerprint is Fingerprint
    assert set(_fingerprint.__all__) <= set(dir(_fingerprint))


def test_recheck_flags_an_auto_fitted_load_as_drift(registry: Registry) -> None:
    fitting = dataclasses.replace(MODEL, auto_fit=True)
    port = searched(registry, models=[fitting])
    tighter = dataclasses.replace(fitting, loadable_context=12_500)
    result, record, (loads, chats, _), loaded = recheck(registry, [tighter], port)
    assert result.drifted and (loads, chats) == (1, 0)
    assert "auto_fit" in result.reason
    assert result.applied_context is not None and result.applied_context < 20_000
    assert loaded == []  # the auto-fitted instance is unloaded too
    assert record.probes[-1].failure == "auto_fit"


def test_recheck_flags_an_overflow_when_the_tokenizer_changed(registry: Registry) -> None:
    tight = dataclasses.replace(MODEL, working_context=20_000)  # works up to what it loads
    port = searched(registry, models=[tight])
    denser = dataclasses.replace(tight, chars_per_token=3.0)  # the same text, more tokens
    result, record, (loads, chats, _), _ = recheck(registry, [denser], port)
    assert result.drifted and (loads, chats) == (1, 1)
    assert "overflow_error" in result.reason
    assert record.stale


def test_a_dropped_connection_during_a_needle_is_no_verdict(registry: Registry) -> None:
    port = searched(registry)
    fault = Fault(path="/v1/chat/completions", kind="reset", times=1)
    result, record, (loads, chats, _), loaded = recheck(
        registry, [MODEL, OTHER], port, faults=[fault]
    )
    assert result.outcome == "inconclusive" and "disconnected" in result.reason
    assert (loads, chats) == (1, 1)  # no further needle after a failure that says nothing
    assert not record.stale and loaded == []


def test_one_wrong_answer_near_the_limit_is_noise_not_drift(registry: Registry) -> None:
    """Real models are noisy near their limit: drift needs a second failed needle."""
    port = searched(registry)
    noisy = dataclasses.replace(MODEL, noise=0.3, noise_band=0.5)
    single = 0
    with FakeLMStudio(models=[noisy, OTHER], port=port) as sim, _client(sim) as client:
        for seed in range(30):
            before = sim.counters.requests.get("/v1/chat/completions", 0)
            result = recheck_limits(client, MODEL.key, registry=registry, seed=seed)
            chats = sim.counters.requests.get("/v1/chat/completions", 0) - before
            failed = [p for p in result.probes if p.kind == "prompt" and not p.ok]
            assert chats == len([p for p in result.probes if p.kind == "prompt"])
            if len(failed) == 1:
                single += 1
                assert result.confirmed and chats == 6  # a second set of 3 decided
                assert "noise, not drift" in result.reason
            elif failed:
                assert result.drifted and len(failed) == 2 and result.stale
            else:
                assert result.confirmed and chats == 3 and result.reason == ""
    assert single > 0
