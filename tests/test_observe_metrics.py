"""``lmstrix.observe.Metrics``: counts match the simulator's own counters; percentiles
from fixed buckets; the Prometheus text format; thread safety."""

from __future__ import annotations

import re
import threading
from typing import Any, Dict

import pytest

import lmstrix
from lmstrix.client._calls import CallEvent
from lmstrix.observe import Metrics
from lmstrix.observe._metrics import Histogram
from lmstrix.testing import FakeLMStudio
from lmstrix.types import Usage

CHAT = "lmstrix-demo/tiny-chat-1b"
EMBED = "lmstrix-demo/nomic-embed-text"


def _series(snapshot: Dict[str, Any], model: str, operation: str) -> Dict[str, Any]:
    found = [s for s in snapshot["series"] if s["model"] == model and s["operation"] == operation]
    assert len(found) == 1, snapshot
    return found[0]


def test_metrics_match_the_simulator_counters(fake: FakeLMStudio) -> None:
    metrics = Metrics()
    with lmstrix.Client(fake.base_url, observers=[metrics]) as client:
        for i in range(3):
            client.chat(CHAT, f"question {i}", temperature=0)
        client.stream_chat(CHAT, "Tell me a story").text()
        client.complete(CHAT, "Once upon a time")
        generated = fake.counters  # embeddings report no usage to the client: counted apart
        client.embed(EMBED, ["a", "b"])
        with pytest.raises(lmstrix.ModelNotFoundError):
            client.chat("no/such-model", "hi")
    counters = fake.counters
    snapshot = metrics.snapshot()
    chat = _series(snapshot, CHAT, "chat")
    completion = _series(snapshot, CHAT, "completion")
    # Every chat request the server saw (the failed one included) is a counted call.
    chat_calls = sum(s["calls"] for s in snapshot["series"] if s["operation"] == "chat")
    assert chat_calls == counters.requests["/v1/chat/completions"] == 5
    assert completion["calls"] == counters.requests["/v1/completions"] == 1
    assert _series(snapshot, EMBED, "embedding")["calls"] == counters.requests["/v1/embeddings"]
    # Prompt and generated tokens of the generating calls add up to the simulator's.
    assert chat["input_tokens"] + completion["input_tokens"] == generated.prompt_tokens
    assert chat["output_tokens"] + completion["output_tokens"] == counters.generated_tokens
    assert _series(snapshot, EMBED, "embedding")["input_tokens"] == 0
    assert chat["outcomes"] == {"ok": 4}
    failed = _series(snapshot, "no/such-model", "chat")
    assert failed["errors"] == {"ModelNotFoundError": 1}
    assert failed["outcomes"] == {"error": 1}
    assert chat["latency_s"]["count"] == 4
    assert chat["time_to_first_token_s"]["count"] >= 1  # the stream's, measured client-side
    assert chat["decode_tokens_per_s"]["count"] >= 1
    assert snapshot["totals"]["calls"] == 7
    assert snapshot["totals"]["errors"] == 1
    assert snapshot["totals"]["input_tokens"] == generated.prompt_tokens > 0


def test_a_closed_stream_and_a_load_are_counted(fake: FakeLMStudio) -> None:
    metrics = Metrics()
    with lmstrix.Client(fake.base_url, observers=[metrics]) as client:
        instance = client.load(CHAT, context_length=4096)
        with client.stream_chat(CHAT, "Tell me a story") as stream:
            next(stream)
        client.unload(instance.id)
    snapshot = metrics.snapshot()
    assert _series(snapshot, CHAT, "load")["calls"] == fake.counters.loads == 1
    assert _series(snapshot, CHAT, "chat")["outcomes"] == {"closed": 1}
    assert _series(snapshot, CHAT, "chat")["errors"] == {}
    assert _series(snapshot, instance.id, "unload")["calls"] == 1
    metrics.reset()
    assert metrics.snapshot()["series"] == []


def _event(**fields: Any) -> CallEvent:
    base: Dict[str, Any] = {"server": "http://h:1", "operation": "chat", "model": "m"}
    base.update(fields)
    return CallEvent(**base)


def test_histogram_percentiles_from_fixed_buckets() -> None:
    histogram = Histogram((1.0, 2.0, 5.0, 10.0))
    assert histogram.percentile(50) is None
    assert histogram.summary()["min"] is None
    for value in range(1, 101):  # 1..100: most land above the last bound
        histogram.add(value / 10.0)
    summary = histogram.summary()
    assert summary["count"] == 100
    assert summary["min"] == 0.1 and summary["max"] == 10.0
    assert summary["p50"] == pytest.approx(5.0)  # the 50th value ends the (2, 5] bucket
    assert 9.0 <= summary["p90"] <= 10.0
    assert summary["p50"] <= summary["p90"] <= summary["p95"] <= summary["p99"] <= 10.0
    histogram.add(1000.0)  # above every bound: the max caps the estimate
    assert histogram.percentile(100) == 1000.0


def test_prometheus_text_format() -> None:
    metrics = Metrics()
    metrics(_event(model='odd"name\\x', usage=Usage(10, 5, 15), total_s=0.2))
    metrics(_event(outcome="error", error=lmstrix.APITimeoutError("slow"), total_s=3.0))
    metrics(_event(operation="embedding", total_s=0.01, decode_tokens_per_s=float("nan")))
    text = metrics.prometheus()
    assert text.endswith("\n")
    for name, kind in (
        ("lmstrix_calls_total", "counter"),
        ("lmstrix_errors_total", "counter"),
        ("lmstrix_input_tokens_total", "counter"),
        ("lmstrix_output_tokens_total", "counter"),
        ("lmstrix_call_duration_seconds", "histogram"),
        ("lmstrix_time_to_first_token_seconds", "histogram"),
        ("lmstrix_prefill_tokens_per_second", "histogram"),
        ("lmstrix_decode_tokens_per_second", "histogram"),
    ):
        assert f"# TYPE {name} {kind}\n" in text
        assert f"# HELP {name} " in text
    assert 'lmstrix_calls_total{server="http://h:1",model="m",operation="chat"} 1\n' in text
    assert 'model="odd\\"name\\\\x"' in text  # quotes and backslashes escaped
    assert 'lmstrix_input_tokens_total{server="http://h:1",model="odd\\"name\\\\x",' in text
    assert ',kind="APITimeoutError"} 1\n' in text
    line = re.compile(
        r'^lmstrix_call_duration_seconds_bucket\{.*model="m",operation="chat",le="(.+)"\} (\d+)$'
    )
    buckets = [(m.group(1), int(m.group(2))) for m in map(line.match, text.splitlines()) if m]
    assert buckets[-1] == ("+Inf", 1)
    assert dict(buckets)["2.5"] == 0 and dict(buckets)["5.0"] == 1  # cumulative
    assert (
        'lmstrix_call_duration_seconds_sum{server="http://h:1",model="m",operation="chat"} 3.0'
        in text
    )
    assert "nan" not in text.lower()  # a NaN rate is not counted
    assert repr(metrics) == "Metrics(series=3, calls=3)"


def test_many_threads_lose_no_count() -> None:
    metrics = Metrics()

    def work() -> None:
        for _ in range(500):
            metrics(_event(usage=Usage(2, 1, 3), total_s=0.05))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    series = metrics.snapshot()["series"][0]
    assert series["calls"] == 4000
    assert series["input_tokens"] == 8000 and series["output_tokens"] == 4000
    assert series["latency_s"]["count"] == 4000
