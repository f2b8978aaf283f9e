"""The context search under transient faults (issue 12): one fault at each request.

Every request position of a clean search gets, in turn, an HTML 500, a proxy's
text/plain 502 and a connection reset (before and after the server did the work), on
four models, and a timeout on two of them (a timeout costs real waiting). No run may
end ``done`` with a limit outside the truth. A run that stops (``ContextSearchError``)
leaves a ``testing`` record with ordered bounds that agree with the truth, and resumes
to the truth with no more loads than a fresh search (fewer, once it had learned
something from a load). Faults that persist through every retry are exercised too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from test_context import ANSWER_TOKENS, NO_WAIT, RESOLUTION

import lmstrix
from lmstrix.client import Client
from lmstrix.context import ContextReport, find_context_limit
from lmstrix.context._transient import load_failure_is_measurement, overflow_tokens
from lmstrix.errors import APIError, ContextOverflowError, ContextSearchError, ModelLoadError
from lmstrix.registry import Registry
from lmstrix.testing import FakeLMStudio, Fault, SimModel

MODELS = [
    SimModel("faults/refuse-12k", 16384, 12_000, 9_000),
    SimModel("faults/crash-10k", 16384, 10_000, 10_000, crash_on_overload=True),
    SimModel("faults/autofit-6k", 16384, 6_000, 5_000, auto_fit=True),
    SimModel("faults/full-8k", 8192),
]
KINDS = ("html_500", "text_502", "reset", "reset_after")
TIMED = {m.key for m in MODELS[:2]}  # the models that also get a timeout at each position
DELAY_S = 0.25  # past the client's timeouts below: a timeout
# Short, to keep the file fast; a normal request that a busy machine delays past it is
# one more transient failure, retried like the others.
TIMEOUT = lmstrix.Timeout(2.0, 0.15, 0.15)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=MODELS, time_scale=0.0) as server:
        yield server


@pytest.fixture(scope="module")
def client(fake: FakeLMStudio) -> Iterator[Client]:
    with Client(fake.base_url, max_retries=0, timeout=TIMEOUT) as c:
        _ = c.server_api  # API detection happens once, before any fault is counted
        yield c


def search(client: Client, model: SimModel, registry: Optional[Registry]) -> ContextReport:
    return find_context_limit(client, model.key, registry=registry, seed=3, retry_delays=NO_WAIT)


def settle(fake: FakeLMStudio, client: Client, kind: str) -> None:
    """Let a delayed request finish, then leave the simulator clean for the next run."""
    if kind == "delay":
        time.sleep(DELAY_S)
    fake.clear_faults()
    for inst in fake.loaded():
        client.unload(inst.id)


def truth(model: SimModel) -> Tuple[int, int]:
    loadable = model.loadable_context
    return loadable, min(model.working_context, loadable - ANSWER_TOKENS)


def assert_limits_hold(report: ContextReport, model: SimModel) -> None:
    assert report.status == "done", report.reason
    true_l, true_w = truth(model)
    assert report.loadable_context is not None
    assert report.working_context is not None
    assert true_l - RESOLUTION <= report.loadable_context <= true_l
    assert report.working_context <= true_w
    # an instance-bound limit is filled to within a few tokens of the instance found
    floor = min(true_w, report.loadable_context - ANSWER_TOKENS - 8)
    assert floor - RESOLUTION <= report.working_context


def assert_resumable(registry: Registry, model: SimModel) -> None:
    """A stopped search's record: still testing, bounds ordered and true."""
    record = registry.get(model.key)
    assert record is not None
    assert record.status == "testing"
    true_l = model.loadable_context
    if record.load_good is not None:
        assert record.load_good <= true_l
    if record.load_bad is not None:
        assert record.load_bad > true_l or model.auto_fit
    if record.load_good is not None and record.load_bad is not None:
        assert record.load_good < record.load_bad
    if record.work_good is not None:
        assert record.work_good <= model.working_context
    if record.work_good is not None and record.work_bad is not None:
        assert record.work_good < record.work_bad
    assert not record.pending_probes  # no "attempting N" left to count as a crash


def clean_run(fake: FakeLMStudio, client: Client, model: SimModel) -> Tuple[int, int]:
    """(requests, loads) of a fault-free search of ``model``."""
    fake.reset_counters()
    report = search(client, model, None)
    assert_limits_hold(report, model)
    return fake.counters.total_requests, report.loads


def run_with(
    fake: FakeLMStudio, client: Client, model: SimModel, fault: Fault, path: Path, fresh: int
) -> Optional[str]:
    """One search with ``fault`` armed; returns how it ended ("done" or "stopped")."""
    registry = Registry(path, server=fake.base_url)
    fake.inject(fault)
    try:
        report = search(client, model, registry)
    except ContextSearchError:
        ended = "stopped"
    except APIError:  # the model lookup itself kept failing: nothing started
        assert registry.get(model.key) is None
        ended = "not started"
    else:
        ended = "done"
        assert_limits_hold(report, model)
    finally:
        fired = not fake.faults_pending()
        settle(fake, client, fault.kind)
    assert fired or fault.times > 1  # a persistent fault may outlast a short run
    if ended != "done":
        record = registry.get(model.key)
        if record is not None:
            assert_resumable(registry, model)
        learned = record is not None and (record.load_good or record.load_bad) is not None
        resumed = search(client, model, registry)
        assert_limits_hold(resumed, model)
        assert resumed.loads <= fresh
        if learned and fresh > 1:
            assert resumed.loads < fresh
        settle(fake, client, fault.kind)
    return ended


@pytest.mark.parametrize("model", MODELS, ids=[m.key for m in MODELS])
def test_one_fault_at_each_request(
    fake: FakeLMStudio, client: Client, model: SimModel, tmp_path: Path
) -> None:
    requests, loads = clean_run(fake, client, model)
    endings: List[Optional[str]] = []
    kinds = KINDS + (("delay",) if model.key in TIMED else ())
    for position in range(requests):
        for kind in kinds:
            extra = {"delay_s": DELAY_S} if kind == "delay" else {}
            fault = Fault.at(position, kind, **extra)
            path = tmp_path / f"{position}-{kind}.json"
            endings.append(run_with(fake, client, model, fault, path, loads))
    # One fault is retried away: every run found the truth, none had to stop.
    assert endings == ["done"] * len(endings)


@pytest.mark.parametrize("model", MODELS[:2], ids=[m.key for m in MODELS[:2]])
def test_a_persistent_fault_stops_and_resumes(
    fake: FakeLMStudio, client: Client, model: SimModel, tmp_path: Path
) -> None:
    """The same error on every retry (4 in a row) stops the search at any position."""
    requests, loads = clean_run(fake, client, model)
    endings = set()
    for position in range(requests):
        for kind in ("html_500", "text_502"):
            fault = Fault.at(position, kind, times=len(NO_WAIT) + 1)
            path = tmp_path / f"{position}-{kind}.json"
            endings.add(run_with(fake, client, model, fault, path, loads))
    assert "stopped" in endings


def test_a_server_that_dies_during_a_load_counts_as_a_crash(
    fake: FakeLMStudio, client: Client, tmp_path: Path
) -> None:
    """A load whose connection resets, after which the server does not answer: the
    load took it down. The "attempting N" mark stays; a resumed search counts it as a
    crash at N and never loads that size again."""
    model = MODELS[0]
    registry = Registry(tmp_path / "registry.json", server=fake.base_url)
    position = 1  # after the model lookup: the first load
    fake.inject(Fault.at(position, "reset", times=2))  # the load, then the check after it
    with pytest.raises(ContextSearchError, match="went away"):
        search(client, model, registry)
    settle(fake, client, "reset")
    record = registry.get(model.key)
    assert record is not None
    assert [(p.kind, p.size) for p in record.pending_probes] == [("load", 16384)]
    resumed = search(client, model, registry)
    assert resumed.resumed
    assert all(p.size < 16384 for p in resumed.probes if p.kind == "load")
    assert_limits_hold(resumed, model)


@pytest.mark.parametrize(
    ("status", "body", "measurement", "refused"),
    [
        (400, {"error": "Failed to load model. insufficient system resources"}, True, True),
        (500, {"error": {"message": "The model has crashed (Exit code: 6)"}}, True, False),
        (500, "<!DOCTYPE html><html>Internal Server Error</html>", False, False),
        (502, "502 Bad Gateway", False, False),
        (503, {"error": {"message": "Simulated fault (status)"}}, False, False),
    ],
)
def test_which_load_failures_are_measurements(
    status: int, body: object, measurement: bool, refused: bool
) -> None:
    exc = ModelLoadError("x", url="http://h/api/v1/models/load", status_code=status, body=body)
    assert load_failure_is_measurement(exc) == (measurement, refused)


def test_an_overflow_names_the_prompt_size() -> None:
    text = "greater than the context length (n_keep: 13055>= n_ctx: 4096)"
    exc = ContextOverflowError("x", url="u", status_code=400, body={"error": text})
    assert overflow_tokens(exc) == 13055
    assert overflow_tokens(ContextOverflowError("x", url="u", status_code=400, body="")) is None


def test_a_probe_that_times_out_every_time_is_a_timeout_at_that_size(
    fake: FakeLMStudio, client: Client
) -> None:
    """A genuine long-prefill timeout repeats on every retry: the model's failure there."""
    model = MODELS[3]
    fake.clear_received()  # find where a clean search sends its second probe
    search(client, model, None)
    settle(fake, client, "")
    chats = [i for i, r in enumerate(fake.received) if r.path == "/v1/chat/completions"]
    fake.inject(Fault.at(chats[1], "delay", delay_s=DELAY_S, times=len(NO_WAIT) + 1))
    try:
        report = search(client, model, None)
    finally:
        settle(fake, client, "delay")
    timeouts = [(p.size, p.trial) for p in report.probes if p.failure == "timeout"]
    step = max(set(timeouts), key=timeouts.count)
    assert timeouts.count(step) == len(NO_WAIT) + 1  # the same step, every try
    assert report.status == "done"
    assert report.working_context is not None
    assert report.working_context < step[0]


def test_min_above_max_is_refused(client: Client) -> None:
    with pytest.raises(ContextSearchError, match="min_context"):
        find_context_limit(client, MODELS[0].key, min_context=8192, max_context=4096)
