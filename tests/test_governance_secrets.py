"""The API token never reaches a log, a span, a metric or a file: every observer and
governance middleware on at once, content capture on, debug logging on, against a
server that wants the token."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import lmstrix
from lmstrix.cache import ResponseCache
from lmstrix.limits import Budget, Policy, RateLimit, UsageLog
from lmstrix.observe import AuditLog, Metrics
from lmstrix.testing import FakeLMStudio

try:  # the spans and metric points too, with the [otel] extra
    from _otel import Recorded
except ImportError:
    Recorded = None  # type: ignore[assignment,misc]

CHAT = "lmstrix-demo/tiny-chat-1b"
EMBED = "lmstrix-demo/nomic-embed-text"
TOKEN = "sk-lm-EVERYWHERE-secret-0123456789"


@pytest.fixture
def secured() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(api_token=TOKEN) as server:
        yield server


def test_the_token_is_in_no_log_span_metric_or_file(
    secured: FakeLMStudio, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    otel = None if Recorded is None else Recorded(capture_content=True)
    observers: List[Any] = [metrics, AuditLog(tmp_path / "audit.jsonl", content=True)]
    observers += [] if otel is None else [otel.observer]
    quota = tmp_path / "quota.sqlite"
    cache = ResponseCache(tmp_path / "cache.sqlite")
    middleware = [
        Policy({"alice": {"admin": True}}),
        cache,
        Budget(quota, tokens_per_day=10**9),
        RateLimit(10**6, 10**9, path=quota),
        UsageLog(tmp_path / "usage.jsonl"),
    ]
    with caplog.at_level(logging.DEBUG, logger="lmstrix"):
        with lmstrix.Client(
            secured.base_url,
            api_token=TOKEN,
            label="alice",
            observers=observers,
            middleware=middleware,
            max_retries=0,
        ) as client:
            client.load(CHAT, context_length=4096)
            for _ in range(2):  # a miss, then a hit
                client.chat(CHAT, "What is 2+3?", temperature=0, max_tokens=8)
            client.stream_chat(CHAT, "Tell me a story", temperature=0, max_tokens=16).text()
            client.embed(EMBED, ["one", "two"])
            with pytest.raises(lmstrix.ModelNotFoundError) as missing:
                client.chat("no/such-model", "hi")
        with lmstrix.Client(secured.base_url, api_token="sk-wrong-" + TOKEN) as wrong:
            with pytest.raises(lmstrix.AuthenticationError) as refused:
                wrong.list_models()

    assert cache.stats.hits == 1 and metrics.snapshot()["totals"]["calls"] == 6  # all exercised
    written = sorted(p.name for p in tmp_path.iterdir() if p.stat().st_size)
    assert {"audit.jsonl", "usage.jsonl", "cache.sqlite", "quota.sqlite"} <= set(written)
    assert "What is 2+3?" in (tmp_path / "audit.jsonl").read_text()  # content was captured
    texts = {name: (tmp_path / name).read_bytes() for name in written}
    texts["metrics"] = (json.dumps(metrics.snapshot()) + metrics.prometheus()).encode()
    texts["log"] = caplog.text.encode()
    texts["errors"] = (
        f"{missing.value!r} {missing.value} {refused.value!r} {refused.value}".encode()
    )
    if otel is not None:
        texts["otel"] = otel.text().encode()
    assert caplog.records and (otel is None or b"gen_ai" in texts["otel"])
    leaked = [name for name, text in texts.items() if TOKEN.encode() in text]
    assert leaked == []
