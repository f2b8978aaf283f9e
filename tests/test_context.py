"""`find_context_limit` against the simulator on loopback, with and without a registry."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import pytest

import lmstrix
from lmstrix.client import Client
from lmstrix.context import ContextReport, SearchProgress, find_context_limit
from lmstrix.context._runner import ANSWER_TOKENS
from lmstrix.errors import ContextSearchError, ModelNotFoundError
from lmstrix.registry import Registry
from lmstrix.testing import FakeLMStudio, Fault, SimModel, test_fleet

FLEET = test_fleet()
CHAT = [m for m in FLEET if m.type != "embedding"]
BY_KEY = {m.key: m for m in FLEET}
MIN_CONTEXT = 2048
RESOLUTION = 1024
NO_WAIT = (0.0, 0.0, 0.0)  # retry delays for transient failures: none in tests


class Interrupt(BaseException):
    """Stands in for Ctrl-C or a crash of the process in the middle of a search."""


@pytest.fixture(scope="module")
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=FLEET) as server:
        yield server


@pytest.fixture
def client(sim: FakeLMStudio) -> Iterator[Client]:
    with Client(sim.base_url, max_retries=0) as c:
        yield c


@pytest.fixture
def registry(tmp_path: Path, sim: FakeLMStudio) -> Registry:
    return Registry(tmp_path / "registry.json", server=sim.base_url)


def load_budget(model: SimModel, resolution: int = RESOLUTION) -> int:
    span = max(1.0, (model.declared_context - MIN_CONTEXT) / resolution)
    return math.ceil(math.log2(span)) + 3


def stop_after(steps: int) -> Callable[[SearchProgress], None]:
    seen: List[SearchProgress] = []

    def on_progress(event: SearchProgress) -> None:
        seen.append(event)
        if len(seen) >= steps:
            raise Interrupt

    return on_progress


def assert_every_needle_passed(report: ContextReport, trials: int = 3) -> None:
    """Every needle passed at the working size: the probe records show a pass of each
    at no fewer than ``RESOLUTION // 64`` tokens below it (needles of one length count
    a little differently, and the search nudges each to the first one's count)."""
    working = report.working_context
    assert working is not None
    near = [
        p
        for p in report.probes
        if p.kind == "prompt" and p.ok and p.prompt_tokens is not None
        if working - RESOLUTION // 64 <= p.prompt_tokens <= working + RESOLUTION
    ]
    assert {p.trial for p in near} >= set(range(trials)), (working, near)


def assert_true_limits(report: ContextReport, model: SimModel) -> bool:
    """The report against the model's truth: limits within ``RESOLUTION``, never above.
    Returns False where less is promised (broken, noisy, working below the floor)."""
    if model.broken:
        assert report.status == "failed"
        assert "smallest probe" in report.reason
        assert report.working_context is None
        return False
    assert report.status == "done", report.reason
    truth_l, truth_w = model.loadable_context, model.working_context
    assert report.loadable_context is not None
    assert report.working_context is not None
    assert truth_l - RESOLUTION <= report.loadable_context <= truth_l
    assert report.working_context <= min(truth_w, truth_l)
    assert_every_needle_passed(report)
    if model.noise > 0:
        return False  # noisy: never above the truth is all that is promised
    if truth_w < MIN_CONTEXT:
        # below the smallest load: still found by prompt length, never above the truth
        assert report.working_context >= truth_w - RESOLUTION
        return False
    assert_working_within_resolution(report, model)
    return True


FILL_SLACK = 8  # a probe ends on a whole word: filling an instance can fall this short


def assert_working_within_resolution(report: ContextReport, model: SimModel) -> None:
    """The working limit is within ``RESOLUTION`` of the truth: the model's, or, where
    the model answers up to its whole context, what the instance at the loadable limit
    holds (its size minus the answer's room; filled to within ``FILL_SLACK`` tokens, so
    with a loadable limit found the most it can lie below the truth, 1,023, the sum may
    exceed ``RESOLUTION`` by those few tokens)."""
    working, loadable = report.working_context, report.loadable_context
    assert working is not None
    assert loadable is not None
    effective = min(model.working_context, model.loadable_context - ANSWER_TOKENS)
    assert working <= effective
    if model.working_context < loadable - ANSWER_TOKENS:
        assert effective - RESOLUTION <= working
    else:
        assert loadable - ANSWER_TOKENS - FILL_SLACK <= working


# --------------------------------------------------------------------- the fleet table


@pytest.mark.parametrize("model", CHAT, ids=[m.key for m in CHAT])
def test_fleet_limits(sim: FakeLMStudio, client: Client, model: SimModel) -> None:
    before = sim.counters.loads_by_model.get(model.key, 0)
    report = find_context_limit(client, model.key, seed=7)
    assert report.loads == sim.counters.loads_by_model.get(model.key, 0) - before
    assert report.loads <= load_budget(model)
    assert report.declared_context == model.declared_context
    assert report.can_load
    assert not report.resumed
    if not assert_true_limits(report, model):
        return
    assert report.chars_per_token is not None
    assert abs(report.chars_per_token - model.chars_per_token) < 0.5
    # nothing is left loaded
    assert not [i for i in sim.loaded() if i.key == model.key]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("key", ["sim/noisy-half", "sim/noisy-wide-band", "sim/noisy-light"])
def test_noisy_models_never_overstate(client: Client, key: str, seed: int) -> None:
    model = BY_KEY[key]
    report = find_context_limit(client, key, seed=seed)
    assert report.working_context is None or report.working_context <= model.working_context
    assert report.loadable_context is not None
    assert report.loadable_context <= model.loadable_context
    if report.status == "done":
        assert_every_needle_passed(report)


def test_resolution_and_trials_are_honoured(client: Client) -> None:
    model = BY_KEY["sim/nonround-37k"]
    report = find_context_limit(client, model.key, resolution=256, trials=1, seed=3)
    assert report.loadable_context is not None
    assert report.working_context is not None
    assert model.loadable_context - 256 <= report.loadable_context <= model.loadable_context
    assert model.working_context - 256 <= report.working_context <= model.working_context
    assert {p.trial for p in report.probes if p.kind == "prompt"} == {0}
    assert report.loads <= load_budget(model, 256)


def test_max_context_caps_the_loads(client: Client) -> None:
    report = find_context_limit(client, "sim/big-128k", max_context=16384, seed=1)
    assert report.loadable_context == 16384
    assert all(p.size <= 16384 for p in report.probes if p.kind == "load")
    assert report.working_context is not None
    assert report.working_context <= 16384


def test_refusals_and_crashes_steer_the_load_search() -> None:
    """A guardrail refusal (HTTP 400) is cheap, so the next split leans high; a crash
    (HTTP 500) cost a whole load, so it leans low. Both find the limit."""
    refusing = SimModel("sim/refusing", 65536, 37_311, 20_005)
    crashing = SimModel("sim/crashing", 65536, 37_311, 20_005, crash_on_overload=True)
    with FakeLMStudio(models=[refusing, crashing], time_scale=0.0) as server:
        with Client(server.base_url, max_retries=0) as c:
            reports = [find_context_limit(c, m.key, trials=1, seed=1) for m in (refusing, crashing)]
    high, low = ([p.size for p in r.probes if p.kind == "load"] for r in reports)
    assert high[0] == low[0] == 65536
    assert high[1] > low[1]
    for report in reports:
        assert report.loadable_context is not None
        assert 37_311 - RESOLUTION <= report.loadable_context <= 37_311
        assert report.loads <= load_budget(refusing)


def test_keep_loaded_leaves_the_instance(sim: FakeLMStudio, client: Client) -> None:
    report = find_context_limit(client, "sim/serial", keep_loaded=True, seed=1)
    try:
        loaded = [i for i in sim.loaded() if i.key == "sim/serial"]
        assert [i.context_length for i in loaded] == [report.loadable_context]
    finally:
        for inst in sim.loaded():
            if inst.key == "sim/serial":
                client.unload(inst.id)


def test_report_to_dict(client: Client) -> None:
    report = find_context_limit(client, "sim/plain-8k", seed=1)
    data = report.to_dict()
    for key in ("key", "declared_context", "loadable_context", "working_context", "status"):
        assert key in data
    assert data["key"] == "sim/plain-8k"
    assert data["loads"] == report.loads
    assert len(data["probes"]) == len(report.probes)
    assert data["probes"][0]["kind"] == "load"


# ------------------------------------------------------------------------- progress


def test_progress_events(client: Client) -> None:
    events: List[SearchProgress] = []
    report = find_context_limit(client, "sim/nonround-37k", on_progress=events.append, seed=2)
    assert len(events) == len(report.probes)
    requests = [e.requests for e in events]
    assert requests == sorted(requests)
    assert len(set(requests)) == len(requests)
    assert requests[-1] <= report.requests
    assert [e.kind for e in events] == [p.kind for p in report.probes]
    assert events[0].kind == "load"
    assert events[0].loads == 1
    assert events[-1].loads == report.loads
    assert all(e.model == "sim/nonround-37k" and e.message for e in events)
    assert any(e.ok is False and e.failure for e in events)


# ------------------------------------------------------------------------- registry


def test_registry_records_every_step(client: Client, registry: Registry) -> None:
    model = BY_KEY["sim/autofit-32k"]
    report = find_context_limit(client, model.key, registry=registry, seed=4)
    record = registry.get(model.key)
    assert record is not None
    assert record.status == "done"
    assert record.failure_reason == ""
    assert record.loadable_context == report.loadable_context
    assert record.working_context == report.working_context
    assert record.declared_context == model.declared_context
    assert record.tested_at is not None
    assert record.chars_per_token
    assert not record.pending_probes
    assert [(p.kind, p.size, p.ok, p.trial) for p in record.probes] == [
        (p.kind, p.size, p.ok, p.trial) for p in report.probes
    ]
    assert "auto_fit" in {p.failure for p in record.probes}
    assert record.load_good == report.loadable_context
    assert record.load_bad is not None
    assert record.load_bad > record.load_good


def test_registry_records_a_failure(client: Client, registry: Registry) -> None:
    report = find_context_limit(client, "sim/broken-16k", registry=registry, seed=1)
    record = registry.get("sim/broken-16k")
    assert record is not None
    assert report.status == "failed"
    assert record.status == "failed"
    assert "smallest probe" in record.failure_reason
    assert record.working_context is None
    assert record.probes[-1].failure == "wrong_answer"


def test_resume_after_an_interruption(client: Client, registry: Registry) -> None:
    model = BY_KEY["sim/nonround-37k"]
    fresh = find_context_limit(client, model.key, seed=5)
    with pytest.raises(Interrupt):
        find_context_limit(client, model.key, registry=registry, on_progress=stop_after(4), seed=5)
    record = registry.get(model.key)
    assert record is not None
    assert record.status == "testing"
    assert len(record.probes) == 4
    assert not record.pending_probes
    resumed = find_context_limit(client, model.key, registry=registry, seed=5)
    assert resumed.resumed
    assert resumed.loads < fresh.loads
    assert resumed.status == fresh.status == "done"
    for report in (fresh, resumed):
        assert report.loadable_context is not None
        assert report.working_context is not None
        assert model.loadable_context - RESOLUTION <= report.loadable_context
        assert report.loadable_context <= model.loadable_context
        assert model.working_context - RESOLUTION <= report.working_context
        assert report.working_context <= model.working_context
    final = registry.get(model.key)
    assert final is not None
    assert final.status == "done"
    assert len(final.probes) == 4 + len(resumed.probes)


def test_resume_after_the_loads_finish_completes_the_working_search(
    client: Client, registry: Registry
) -> None:
    fresh = find_context_limit(client, "sim/plain-8k", seed=5)
    with pytest.raises(Interrupt):
        find_context_limit(client, "sim/plain-8k", registry=registry, on_progress=stop_after(3))
    resumed = find_context_limit(client, "sim/plain-8k", registry=registry, seed=5)
    assert resumed.resumed
    assert resumed.status == "done"
    assert resumed.loads == 1  # one load at the known loadable limit, no bisection
    assert resumed.working_context is not None
    assert fresh.working_context is not None
    assert abs(resumed.working_context - fresh.working_context) <= RESOLUTION
    assert resumed.working_context <= 8192


def test_a_pending_load_counts_as_a_crash(
    client: Client, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load that never came back (the server or host died) is a failure at its size."""
    model = BY_KEY["sim/nonround-37k"]
    fresh = find_context_limit(client, model.key, seed=6)
    real_load = client.load
    calls: List[int] = []

    def dying_load(key: str, **kwargs: Any) -> Any:
        calls.append(kwargs["context_length"])
        if len(calls) == 3:
            raise Interrupt  # the process dies during the third load
        return real_load(key, **kwargs)

    monkeypatch.setattr(client, "load", dying_load)
    with pytest.raises(Interrupt):
        find_context_limit(client, model.key, registry=registry, seed=6)
    monkeypatch.setattr(client, "load", real_load)
    crashed_at = calls[-1]
    record = registry.get(model.key)
    assert record is not None
    assert [(p.kind, p.size) for p in record.pending_probes] == [("load", crashed_at)]

    resumed = find_context_limit(client, model.key, registry=registry, seed=6)
    assert resumed.resumed
    assert resumed.loads < fresh.loads
    assert all(p.size < crashed_at for p in resumed.probes if p.kind == "load")
    assert resumed.loadable_context is not None
    assert resumed.loadable_context < crashed_at
    assert resumed.working_context is not None
    assert resumed.working_context <= model.working_context
    record = registry.get(model.key)
    assert record is not None
    assert not record.pending_probes
    crashed = [p for p in record.probes if p.failure == "crashed"]
    assert [(p.kind, p.size, p.ok) for p in crashed] == [("load", crashed_at, False)]
    assert record.status == "done"


def test_reset_starts_over(client: Client, registry: Registry) -> None:
    first = find_context_limit(client, "sim/crash-24k", registry=registry, seed=8)
    again = find_context_limit(client, "sim/crash-24k", registry=registry, seed=8)
    # A finished search re-run resumes: at most one load, to re-check the working limit.
    assert again.resumed
    assert again.loads <= 1
    assert again.loadable_context == first.loadable_context
    reset = find_context_limit(client, "sim/crash-24k", registry=registry, seed=8, reset=True)
    assert not reset.resumed
    assert reset.loads == first.loads
    assert reset.loadable_context == first.loadable_context
    assert reset.working_context == first.working_context
    record = registry.get("sim/crash-24k")
    assert record is not None
    assert record.status == "done"
    history = len(first.probes) + len(again.probes) + len(reset.probes)
    assert len(record.probes) == history  # history is kept, bounds are not


# ------------------------------------------------------------------- other servers


def test_openai_only_server() -> None:
    models = [BY_KEY["sim/big-128k"], BY_KEY["sim/plain-8k"], BY_KEY["sim/working-below-2k"]]
    with FakeLMStudio(models=models, api="openai") as fake, Client(fake.base_url) as client:
        n_ctx = {i.key: i.context_length for i in fake.loaded()}
        for model in models:
            report = find_context_limit(client, model.key, seed=1)
            assert not report.can_load
            assert report.loadable_context is None
            assert report.loads == 0
            assert "cannot load models over HTTP" in report.reason
            assert report.working_context is not None
            truth = min(n_ctx[model.key], model.working_context)
            assert truth - RESOLUTION - ANSWER_TOKENS <= report.working_context <= truth
        assert fake.counters.loads == 0


def test_v0_server_without_load_endpoint() -> None:
    with FakeLMStudio(models=[BY_KEY["sim/plain-8k"]], api="v0") as fake:
        fake.preload("sim/plain-8k", 4096)
        with Client(fake.base_url) as client:
            report = find_context_limit(client, "sim/plain-8k", seed=1)
    assert not report.can_load
    assert report.loadable_context is None
    assert report.working_context is not None
    assert report.working_context <= 4096


# ------------------------------------------------------------------ failure kinds


def test_probe_failure_kinds(sim: FakeLMStudio, client: Client) -> None:
    truncating = find_context_limit(client, "sim/truncating-20k", seed=1)
    kinds = {p.failure for p in truncating.probes if p.failure}
    assert kinds <= {"load_failed", "truncated", "wrong_answer"}
    assert "load_failed" in kinds


def test_transport_failures_are_classified(sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="reset", times=1))
    sim.inject(Fault(path="/api/v1/models/load", kind="reset", times=1))
    try:
        with Client(sim.base_url, max_retries=0) as client:
            report = find_context_limit(
                client, "sim/loadable-eq-declared", seed=1, retry_delays=NO_WAIT
            )
    finally:
        sim.clear_faults()
    failures = [(p.kind, p.failure) for p in report.probes if p.failure]
    assert ("load", "disconnected") in failures
    assert report.loadable_context is not None
    assert report.loadable_context <= BY_KEY["sim/loadable-eq-declared"].loadable_context


def test_timeouts_are_classified(sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/api/v1/models/load", kind="delay", delay_s=0.5, times=1))
    timeout = lmstrix.Timeout(2, 0.2, 0.2)
    try:
        with Client(sim.base_url, max_retries=0, timeout=timeout) as client:
            report = find_context_limit(client, "sim/plain-8k", seed=1, retry_delays=NO_WAIT)
    finally:
        sim.clear_faults()
    assert report.probes[0].failure == "timeout"
    # A slow load says nothing about the size: the same load is tried again, and works.
    assert [(p.kind, p.size) for p in report.probes[:2]] == [("load", 8192)] * 2
    assert report.loadable_context == 8192


def test_probe_timeouts_are_classified(sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="delay", delay_s=0.5, times=1))
    timeout = lmstrix.Timeout(2, 0.2, 5)
    try:
        with Client(sim.base_url, max_retries=0, timeout=timeout) as client:
            report = find_context_limit(client, "sim/plain-8k", seed=1, retry_delays=NO_WAIT)
    finally:
        sim.clear_faults()
    first_probe = next(p for p in report.probes if p.kind == "prompt")
    assert first_probe.failure == "timeout"
    # One slow answer is not a broken model: the next needle passes and the search goes on.
    assert report.status == "done"
    assert report.working_context is not None
    assert report.working_context <= 8192


def test_server_errors_during_probes(sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="status", status=500, times=1))
    try:
        with Client(sim.base_url, max_retries=0) as client:
            report = find_context_limit(client, "sim/plain-8k", seed=1, retry_delays=NO_WAIT)
    finally:
        sim.clear_faults()
    first_probe = next(p for p in report.probes if p.kind == "prompt")
    assert first_probe.ok is False
    assert first_probe.failure == "server_error"
    assert report.status == "done"  # a transient error does not condemn the model
    assert report.working_context is not None


def test_empty_replies_and_overflow(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    real_chat = client.chat
    calls: List[int] = []

    def chat(model: str, text: Any, **params: Any) -> Any:
        calls.append(1)
        answer = real_chat(model, text, **params)
        if len(calls) == 3:
            return dataclasses.replace(answer, text="  ")
        return answer

    monkeypatch.setattr(client, "chat", chat)
    report = find_context_limit(client, "sim/plain-8k", seed=1)
    assert [p.failure for p in report.probes if p.kind == "prompt"][2] == "empty"
    assert report.working_context is not None
    assert report.working_context <= 8192


@pytest.mark.parametrize(("truncates", "kind"), [(False, "overflow_error"), (True, "truncated")])
def test_overflow_and_truncation_are_classified(truncates: bool, kind: str) -> None:
    """An instance started at 3,000 tokens: the growth from 2,048 to 4,096 overflows it."""
    model = SimModel("sim/over", 32768, truncates=truncates, default_context=3000)
    with FakeLMStudio(models=[model], api="openai") as fake, Client(fake.base_url) as client:
        report = find_context_limit(client, "sim/over", seed=1)
    assert kind in {p.failure for p in report.probes}
    assert report.status == "done"
    assert report.working_context is not None
    assert 3000 - ANSWER_TOKENS - RESOLUTION <= report.working_context <= 3000


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resolution": 0},
        {"trials": 0},
        {"min_context": 0},
        {"max_context": 0},
        {"max_context": -5},
    ],
)
def test_bad_arguments(client: Client, kwargs: Any) -> None:
    with pytest.raises(ContextSearchError):
        find_context_limit(client, "sim/plain-8k", **kwargs)


def test_embedding_model_is_refused(client: Client) -> None:
    with pytest.raises(ContextSearchError, match="embedding"):
        find_context_limit(client, "sim/embed-768")


def test_unknown_model(client: Client) -> None:
    with pytest.raises(ModelNotFoundError):
        find_context_limit(client, "sim/no-such-model")


def test_report_type(client: Client) -> None:
    report: Optional[ContextReport] = find_context_limit(client, "sim/tiny-declared-1k", seed=1)
    assert isinstance(report, ContextReport)
    assert report.loadable_context == 1024
    assert report.working_context is not None
    assert report.working_context <= 1024
