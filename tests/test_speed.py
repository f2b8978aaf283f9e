"""The speed profile: from the probes a search sends anyway, server figures when present."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lmstrix import SpeedPoint
from lmstrix.client import Client
from lmstrix.context import find_context_limit
from lmstrix.registry import Registry
from lmstrix.registry._speed import SpeedLog, shared_prefix, speed_point, speed_summary
from lmstrix.testing import FakeLMStudio, SimModel
from lmstrix.types import Completion, Stats, Usage

MODEL = SimModel(
    "acme/speedy-4b",
    32768,
    24_000,
    14_000,
    prefill_s_per_1k_tokens=0.5,
    decode_s_per_token=0.025,
)


def test_the_search_keeps_a_speed_profile_without_extra_requests(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.json")
    with FakeLMStudio(models=[MODEL]) as sim, Client(sim.base_url, max_retries=0) as client:
        report = find_context_limit(client, MODEL.key, registry=registry, seed=4)
        counters = sim.counters
        record = registry.get(MODEL.key, server=sim.base_url)
    answered = [p for p in report.probes if p.kind == "prompt" and p.prompt_tokens]
    prompts = [p for p in report.probes if p.kind == "prompt"]
    # Every chat request the server saw is a probe of the search: no request for speed.
    assert counters.requests.get("/v1/chat/completions") == len(prompts)
    assert counters.total_requests == report.requests + 1  # + the model list at the start
    assert len(report.speed) == len(answered) > 3
    assert [p.prompt_tokens for p in report.speed] == [p.prompt_tokens for p in answered]
    assert record is not None and record.speed == report.speed
    for point in report.speed:
        assert 1 <= point.new_tokens <= point.prompt_tokens
        assert point.prefill_tps is not None and point.prefill_tps > 0
        # LM Studio's /v1 replies carry an empty `stats`: timed by the client, no decode rate.
        assert point.source == "client" and point.decode_tps is None
    # The cache estimate agrees with what the simulator really processed after reuse.
    new_total = sum(p.new_tokens for p in report.speed)
    assert abs(new_total - counters.processed_tokens) <= 0.05 * counters.processed_tokens
    assert new_total < sum(p.prompt_tokens for p in report.speed)  # the prefix was reused
    assert report.to_dict()["speed"][0] == report.speed[0].to_dict()


def test_client_timed_prefill_never_beats_the_simulated_rate() -> None:
    """With real sleeps, the clock-based rate is a lower bound of the modelled one.

    The simulator sleeps ``time_scale`` times each modelled cost, and a request takes at
    least that long, so ``new_tokens / elapsed`` cannot exceed the modelled prefill rate
    (a one-sided bound: a slow machine only lowers the figure).
    """
    scale = 0.002
    model = SimModel("acme/slow-1b", 16384, 16384, 9_000, prefill_s_per_1k_tokens=0.5)
    with FakeLMStudio(models=[model], time_scale=scale) as sim, Client(sim.base_url) as client:
        report = find_context_limit(client, model.key, seed=2, trials=1)
    modelled = 1000 / 0.5 / scale  # tokens per real second while the simulator sleeps
    assert report.speed
    for point in report.speed:
        assert point.prefill_tps is not None and 0 < point.prefill_tps <= 1.1 * modelled


def test_server_stats_give_prefill_and_decode_rates() -> None:
    """LM Studio's native reply (``/api/v0``): time to first token and tokens per second."""
    with FakeLMStudio(models=[MODEL]) as sim, Client(sim.base_url) as client:
        sim.preload(MODEL.key, 8192)
        body = {"model": MODEL.key, "messages": [{"role": "user", "content": "word " * 2000}]}
        answer = client._complete_once("/api/v0/chat/completions", body, MODEL.key, "chat")
        processed = sim.counters.processed_tokens
    assert answer.stats.source == "server"
    tokens = answer.usage.prompt_tokens
    assert tokens is not None and tokens == processed  # nothing was cached
    point = speed_point(answer, tokens, tokens, elapsed=123.0)
    assert point.source == "server"
    assert point.prefill_tps is not None and abs(point.prefill_tps - 2000.0) < 2  # 0.5 s / 1k
    assert point.decode_tps == 40.0  # 0.025 s per token


def test_llama_cpp_timings_win() -> None:
    raw = {"timings": {"prompt_n": 900, "prompt_per_second": 1234.56, "predicted_per_second": 33.3}}
    answer = Completion(text="1", raw=raw, stats=Stats(time_to_first_token_s=9.0))
    assert speed_point(answer, 1000, 950, 2.0) == SpeedPoint(1000, 900, 1234.6, 33.3, "server")
    only_decode = Completion(text="1", raw={"timings": {"predicted_per_second": 20}})
    assert speed_point(only_decode, 1000, 950, 2.0) == SpeedPoint(1000, 950, None, 20.0, "server")
    # A timings block without rates falls through to the client's clock.
    empty = Completion(text="1", raw={"timings": {}}, stats=Stats(source="client"))
    assert speed_point(empty, 1000, 500, 2.0) == SpeedPoint(1000, 500, 250.0, None, "client")


def test_client_timing_is_a_lower_bound_without_decode() -> None:
    answer = Completion(
        text="1", usage=Usage(800, 4), stats=Stats(total_time_s=2.0, source="client")
    )
    assert speed_point(answer, 800, 400, 2.0) == SpeedPoint(800, 400, 200.0, None, "client")
    assert speed_point(answer, 800, 5000, 0.0).prefill_tps is None  # no time: no rate
    assert speed_point(answer, 800, 0, 1.0).new_tokens == 1


def test_speed_log_estimates_the_cached_prefix_per_instance() -> None:
    log = SpeedLog()
    answer = Completion(text="1", stats=Stats(source="client"))
    first = "a" * 4000
    log.note("inst", first, answer, 1000, 1.0, 4.0)
    log.note("inst", first + "b" * 4000, answer, 2000, 1.0, 4.0)  # extends the prefix
    log.note("other", first, answer, 1000, 1.0, 4.0)  # another instance: nothing cached
    log.note("inst", "x", answer, None, 1.0, 4.0)  # no count: no point
    assert [p.new_tokens for p in log.points] == [1000, 1000, 1000]
    runtime = Completion(text="1", raw={"runtime": {"name": "rt", "version": "3"}})
    log.note("inst", "y", runtime, 10, 1.0, 4.0)
    assert log.server_version == "rt 3"


def _naive(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@given(
    st.integers(0, 9000),
    st.text(alphabet="ab", max_size=50),
    st.text(alphabet="ab", max_size=50),
)
def test_shared_prefix_matches_a_plain_scan(prefix: int, a: str, b: str) -> None:
    head = "xy" * (prefix // 2)
    assert shared_prefix(head + a, head + b) == _naive(head + a, head + b)


def test_shared_prefix_across_blocks() -> None:
    base = "x" * 10_000
    assert shared_prefix(base, base) == 10_000
    assert shared_prefix(base, base[:5000] + "y" + base[5001:]) == 5000
    assert shared_prefix(base, base + "tail") == 10_000
    assert shared_prefix("", base) == 0


def test_speed_summary_shows_how_the_model_slows() -> None:
    points = [
        SpeedPoint(n, n, 4000.0 - n / 10, 50.0 - n / 1000, "server")
        for n in range(1000, 21000, 1000)
    ]
    points.append(SpeedPoint(1000, 10, 1.0, 1.0, "server"))  # a slower repeat: the best is kept
    table = speed_summary(points, rows=5)
    assert [row["prompt_tokens"] for row in table] == [1000, 6000, 11000, 15000, 20000]
    assert table[0]["prefill_tps"] == 3900.0
    assert table[-1]["prefill_ratio"] == round(2000.0 / 3900.0, 3)
    assert table[-1]["decode_ratio"] == round(30.0 / 49.0, 3)
    assert "prefill_ratio" not in table[0]
    assert speed_summary([]) == []
    one = speed_summary([SpeedPoint(10, 10, None, None, "client")])
    assert one == [
        {"prompt_tokens": 10, "prefill_tps": None, "decode_tps": None, "source": "client"}
    ]
    two = speed_summary([SpeedPoint(10, 10, None, 5.0), SpeedPoint(20, 20, 3.0, 4.0)])
    assert two[-1]["prefill_ratio"] is None and two[-1]["decode_ratio"] == 0.8


def test_speed_point_round_trip() -> None:
    point = SpeedPoint(4096, 1024, 2500.5, 41.2, "server")
    assert SpeedPoint.from_dict(point.to_dict()) == point
    assert SpeedPoint.from_dict({"prompt_tokens": "x", "prefill_tps": "fast"}) == SpeedPoint(0, 0)
