"""Dynamic context adjustment (``fit_context=True``) on the simulator: a model loaded too
small for the prompt is reloaded once at the smallest tested size that holds it, and a
prompt no tested size holds is refused before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from lmstrix import Client, ContextOverflowError, FallbackError, Pool
from lmstrix.client._fitcontext import proven_sizes
from lmstrix.registry import ModelRecord, ProbeRecord, Registry
from lmstrix.testing import FakeLMStudio, SimModel

MODEL = "sim/doc-16k"
SMALL = "sim/small-4k"
SIM = [
    SimModel(MODEL, 16384, 16384, 16384, chars_per_token=4.0, tokenizer="chars"),
    SimModel(SMALL, 16384, 4096, 4096, chars_per_token=4.0, tokenizer="chars", auto_fit=True),
]
DOC = "Long documents need room in the context window. " * 400  # 20,000 characters


def probes() -> tuple:  # type: ignore[type-arg]
    return (
        ProbeRecord("load", 4096, ok=True, applied_context=4096),
        ProbeRecord("load", 32768, ok=False, failure="load_failed"),
        ProbeRecord("prompt", 3000, ok=True, applied_context=6144),
        ProbeRecord("prompt", 2000, ok=True),  # no context read back: says no size
        ProbeRecord("load", 8192, ok=True, applied_context=8192),
        ProbeRecord("prompt", 9000, ok=False, failure="wrong_answer", applied_context=12288),
        ProbeRecord("load", 12288, ok=None),  # attempted, no result: not tested
    )


def record(server: str, key: str = MODEL, **fields: object) -> ModelRecord:
    values = {
        "declared_context": 16384,
        "loadable_context": 16384,
        "working_context": 15000,
        "chars_per_token": 4.0,
        "probes": probes(),
    }
    values.update(fields)
    return ModelRecord(key=key, server=server, status="done", **values)  # type: ignore[arg-type]


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(SIM) as server:
        yield server


@pytest.fixture
def registry(tmp_path: Path, sim: FakeLMStudio) -> Registry:
    reg = Registry(tmp_path / "registry.json")
    reg.upsert(record(sim.base_url))
    return reg


def test_proven_sizes_come_from_passed_probes_and_the_loadable_context() -> None:
    assert proven_sizes(record("http://x")) == [4096, 6144, 8192, 16384]
    assert proven_sizes(record("http://x", loadable_context=8000)) == [4096, 6144, 8000]
    assert proven_sizes(record("http://x", probes=(), loadable_context=None)) == []


def test_a_small_instance_is_reloaded_once_at_the_smallest_size_that_holds(
    sim: FakeLMStudio, registry: Registry
) -> None:
    client = Client(sim.base_url, registry=registry)
    client.load(MODEL, context_length=4096)
    with pytest.raises(ContextOverflowError):  # what happens without the option
        client.chat(MODEL, DOC, max_tokens=100)
    sim.reset_counters()

    done = client.chat(MODEL, DOC, max_tokens=100, fit_context=True)
    assert done.text
    counters = sim.counters
    assert counters.loads == 1 and counters.unloads == 1 and counters.load_failures == 0
    (instance,) = client.loaded_instances()
    assert instance.context_length == 6144  # about 5,600 needed: the smallest tested size
    assert done.usage is not None and done.usage.prompt_tokens is not None
    assert done.usage.prompt_tokens + 100 <= 6144

    again = client.chat(MODEL, DOC, max_tokens=100, fit_context=True)
    assert again.text
    assert sim.counters.loads == 1  # it holds now: no second reload


def test_a_model_not_loaded_is_loaded_at_the_tested_size(
    sim: FakeLMStudio, registry: Registry
) -> None:
    client = Client(sim.base_url, registry=registry)
    assert client.fit_context(MODEL, "short question", max_tokens=50) is not None
    (instance,) = client.loaded_instances()
    assert instance.context_length == 4096
    assert client.fit_context(MODEL, "short question", max_tokens=50) is None
    assert sim.counters.loads == 1 and sim.counters.unloads == 0


def test_no_tested_size_holds_it_refused_before_sending(
    sim: FakeLMStudio, registry: Registry
) -> None:
    client = Client(sim.base_url, registry=registry)
    client.load(MODEL, context_length=4096)
    sim.reset_counters()
    with pytest.raises(ContextOverflowError, match="exceed the tested working context") as info:
        client.chat(MODEL, DOC * 4, fit_context=True)
    assert "split_text" in str(info.value)
    counters = sim.counters
    assert counters.loads == 0 and counters.unloads == 0 and counters.prompt_tokens == 0
    assert not any("chat" in path for path in counters.requests)


def test_without_a_record_only_a_loaded_instance_that_holds_will_do(sim: FakeLMStudio) -> None:
    client = Client(sim.base_url)
    with pytest.raises(ContextOverflowError, match="lmstrix test sim/doc-16k"):
        client.chat(MODEL, DOC, fit_context=True)
    client.load(MODEL, context_length=16384)
    assert client.chat(MODEL, DOC, max_tokens=10, fit_context=True).text


def test_no_size_between_the_probes_and_the_prompt(sim: FakeLMStudio, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "r.json")
    reg.upsert(record(sim.base_url, loadable_context=None, working_context=12000))
    client = Client(sim.base_url, registry=reg)
    with pytest.raises(ContextOverflowError, match="no tested context size"):
        client.chat(MODEL, DOC * 2, max_tokens=10, fit_context=True)  # about 11,000


def test_a_server_that_applies_less_is_an_overflow(sim: FakeLMStudio, tmp_path: Path) -> None:
    """The record says 8,192 loads as asked; the server now auto-fits it to 4,096."""
    reg = Registry(tmp_path / "r.json")
    reg.upsert(record(sim.base_url, key=SMALL, loadable_context=8192, working_context=8000))
    client = Client(sim.base_url, registry=reg)
    with pytest.raises(ContextOverflowError, match="server applied"):
        client.chat(SMALL, DOC, max_tokens=10, fit_context=True)


def test_a_server_that_cannot_load_is_told(tmp_path: Path) -> None:
    with FakeLMStudio(SIM, api="v0") as old:
        reg = Registry(tmp_path / "r.json")
        reg.upsert(record(old.base_url))
        client = Client(old.base_url, registry=reg)
        with pytest.raises(ContextOverflowError, match="cannot load models over HTTP"):
            client.chat(MODEL, DOC, fit_context=True)


def test_each_model_of_a_fallback_chain_is_fitted(sim: FakeLMStudio, registry: Registry) -> None:
    registry.upsert(record(sim.base_url, key=SMALL, loadable_context=4096, working_context=4000))
    client = Client(sim.base_url, registry=registry)
    done = client.chat([SMALL, MODEL], DOC, max_tokens=100, fit_context=True)
    assert done.text and done.model == MODEL  # the small one was skipped by the fit check
    assert [i.context_length for i in client.loaded_instances()] == [6144]
    with pytest.raises(FallbackError):
        client.chat([SMALL, MODEL], DOC * 4, fit_context=True)


def test_a_pool_passes_the_option_to_its_server(sim: FakeLMStudio, registry: Registry) -> None:
    with Pool([sim.base_url], registry=registry) as pool:
        pool.load(MODEL, context_length=4096)
        sim.reset_counters()
        done = pool.chat(MODEL, DOC, max_tokens=100, fit_context=True)
        assert done.text
        assert sim.counters.loads == 1 and sim.counters.unloads == 1
