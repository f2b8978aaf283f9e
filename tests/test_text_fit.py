"""lmstrix.fit and lmstrix.text.token_counter: with and without a registry record, on a
client and on a pool; confirm() against the simulator's usage refines the calibration."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import lmstrix
from lmstrix import Client, Pool
from lmstrix.registry import ModelRecord, Registry
from lmstrix.registry._fit import DEFAULT_ANSWER_TOKENS, estimate_tokens, refined_chars_per_token
from lmstrix.testing import FakeLMStudio, SimModel
from lmstrix.text import FitReport, fit, token_counter

MODEL = "sim/doc-16k"
SIM = [SimModel(MODEL, 16384, 16384, 12000, chars_per_token=4.0, tokenizer="chars")]
TEXT = "The quick brown fox jumps over the lazy dog. " * 40  # 1,800 characters


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(SIM) as server:
        yield server


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry.json")


def record(server: str, **fields: object) -> ModelRecord:
    values = {"working_context": 12000, "declared_context": 16384, "chars_per_token": 4.0}
    values.update(fields)
    return ModelRecord(key=MODEL, server=server, status="done", **values)  # type: ignore[arg-type]


def test_fit_is_the_top_level_name() -> None:
    assert lmstrix.fit is fit
    assert "fit" in lmstrix.__all__


def test_with_a_record_the_working_context_decides(sim: FakeLMStudio, registry: Registry) -> None:
    registry.upsert(record(sim.base_url))
    client = Client(sim.base_url, registry=registry)
    messages = [{"role": "user", "content": TEXT}]
    report = fit(client, MODEL, messages, 500)
    expected = estimate_tokens(messages, 4.0)
    assert report.fits is True and bool(report)
    assert report.estimated_tokens == expected
    assert report.working_context == 12000
    assert report.margin == 12000 - expected - 500
    assert report.calibrated and report.chars_per_token == 4.0
    assert report.server == sim.base_url
    assert "fit in the tested working context of 12,000" in report.reason

    big = fit(client, MODEL, TEXT * 30, None)
    assert big.fits is False and not big
    assert big.max_tokens == DEFAULT_ANSWER_TOKENS
    assert big.margin is not None and big.margin < 0
    assert "exceed the tested working context" in big.reason


def test_without_a_registry_fits_is_unknown_and_declared_is_an_upper_bound(
    sim: FakeLMStudio,
) -> None:
    client = Client(sim.base_url)
    report = fit(client, MODEL, TEXT, 100)
    assert report.fits is None and not report
    assert report.working_context is None and report.margin is None
    assert not report.calibrated and report.chars_per_token == 3.0
    assert report.declared_context == 16384
    assert "no tested working context (no registry given)" in report.reason
    assert "declared context (16,384) is an upper bound" in report.reason

    huge = fit(client, MODEL, TEXT * 40, 100)  # 72,000 characters: over any 16k context
    assert huge.fits is False
    assert "exceed the declared context of 16,384" in huge.reason


def test_an_untested_record_is_unknown_but_calibrated(
    sim: FakeLMStudio, registry: Registry
) -> None:
    registry.upsert(record(sim.base_url, working_context=None, chars_per_token=3.5))
    report = fit(Client(sim.base_url, registry=registry), MODEL, TEXT, 100)
    assert report.fits is None
    assert report.calibrated and report.chars_per_token == 3.5
    assert "no tested working context in the registry" in report.reason


def test_an_unknown_model_has_no_declared_context(sim: FakeLMStudio) -> None:
    report = fit(Client(sim.base_url), "no/such-model", "hi", 10)
    assert report.fits is None and report.declared_context is None


def test_a_stale_record_says_so(sim: FakeLMStudio, registry: Registry) -> None:
    registry.upsert(record(sim.base_url, stale=True, stale_reason="fingerprint changed"))
    report = fit(Client(sim.base_url, registry=registry), MODEL, "hi", 10)
    assert report.fits is True
    assert "may be out of date: fingerprint changed" in report.reason


def test_confirm_checks_the_estimate_and_refines_the_calibration(
    sim: FakeLMStudio, registry: Registry
) -> None:
    registry.upsert(record(sim.base_url, chars_per_token=3.0))
    client = Client(sim.base_url, registry=registry)
    messages = [{"role": "user", "content": TEXT}]
    report = fit(client, MODEL, messages, 20)
    done = client.chat(MODEL, messages, max_tokens=20)
    assert done.usage is not None and done.usage.prompt_tokens is not None
    confirmed = report.confirm(done)
    assert confirmed.actual_tokens == done.usage.prompt_tokens
    assert confirmed.held is True  # 3 chars a token with a margin overestimates 4
    stored = registry.get(MODEL, server=sim.base_url)
    assert stored is not None and stored.chars_per_token is not None
    assert 3.0 < stored.chars_per_token < 4.0  # eased towards what the server counted
    assert confirmed.chars_per_token == stored.chars_per_token
    assert report.held is None  # the report itself is unchanged


def test_an_estimate_that_was_low_is_corrected_at_once(
    sim: FakeLMStudio, registry: Registry
) -> None:
    registry.upsert(record(sim.base_url, chars_per_token=9.0))
    client = Client(sim.base_url, registry=registry)
    report = fit(client, MODEL, TEXT, 20)
    confirmed = report.confirm(client.complete(MODEL, TEXT, max_tokens=20))
    assert confirmed.held is False
    stored = registry.get(MODEL, server=sim.base_url)
    assert stored is not None and stored.chars_per_token is not None
    assert stored.chars_per_token < 4.5  # the server's count, believed at once
    assert fit(client, MODEL, TEXT, 20).estimated_tokens >= confirmed.actual_tokens  # type: ignore[operator]


def test_confirm_without_a_record_starts_one(sim: FakeLMStudio, registry: Registry) -> None:
    report = fit(Client(sim.base_url, registry=registry), MODEL, TEXT, 20)
    confirmed = report.confirm(500)
    assert confirmed.actual_tokens == 500 and confirmed.calibrated
    stored = registry.get(MODEL, server=sim.base_url)
    assert stored is not None and stored.chars_per_token == round(1800 / (500 - 8), 4)


def test_confirm_learns_nothing_from_short_prompts_or_without_usage(
    sim: FakeLMStudio, registry: Registry
) -> None:
    registry.upsert(record(sim.base_url))
    report = fit(Client(sim.base_url, registry=registry), MODEL, "short", 20)
    assert report.confirm(20).actual_tokens == 20
    assert registry.get(MODEL, server=sim.base_url).chars_per_token == 4.0  # type: ignore[union-attr]
    no_usage = lmstrix.Completion(text="x", model=MODEL)
    assert report.confirm(no_usage) is report
    unregistered = fit(Client(sim.base_url), MODEL, TEXT, 20)
    assert unregistered.confirm(400).actual_tokens == 400


def test_refinement_rule() -> None:
    assert refined_chars_per_token(None, 1000, 1, 258) == 4.0
    assert refined_chars_per_token(5.0, 1000, 1, 258) == 4.0  # low estimate: at once
    assert refined_chars_per_token(3.0, 1000, 1, 258) == 3.25  # a quarter of the way
    assert refined_chars_per_token(3.0, 100, 1, 30) is None  # too short to learn from
    assert refined_chars_per_token(3.0, 1000, 2, 10) is None  # the template's tokens only


def test_a_pool_reports_the_server_where_it_fits(registry: Registry) -> None:
    with FakeLMStudio(SIM) as one, FakeLMStudio(SIM) as two:
        registry.upsert(record(one.base_url, working_context=1000))
        registry.upsert(record(two.base_url, working_context=9000, chars_per_token=3.2))
        with Pool([one.base_url, two.base_url], registry=registry) as pool:
            report = fit(pool, MODEL, TEXT, 100)
            assert report.fits is True and report.server == two.base_url
            assert report.working_context == 9000
            counter = token_counter(pool, MODEL)
            assert counter("x" * 320) == 110  # the lower calibration of the two: 3.2
            nothing = fit(pool, "no/such-model", TEXT, 100)
            assert nothing.fits is None and nothing.server == one.base_url


def test_token_counter_uses_the_calibration(sim: FakeLMStudio, registry: Registry) -> None:
    registry.upsert(record(sim.base_url, chars_per_token=5.0))
    counted = token_counter(Client(sim.base_url, registry=registry), MODEL)
    assert counted("x" * 500) == 110  # 500 / 5 with the 10 % margin
    default = token_counter(Client(sim.base_url), MODEL)
    assert default("x" * 300) == 110  # 3 characters a token without a calibration
    assert token_counter(Client(sim.base_url, registry=registry), [MODEL, "other"])("x" * 5) == 2


def test_fit_report_is_frozen() -> None:
    report = FitReport("m", None, 1, 1, None, None, False, 3.0)
    with pytest.raises(AttributeError):
        report.fits = True  # type: ignore[misc]
