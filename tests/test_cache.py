"""The response cache: deterministic requests are answered from SQLite, others never are."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

import lmstrix
from lmstrix.cache import ResponseCache, is_deterministic
from lmstrix.testing import FakeLMStudio, Fault
from lmstrix.transport import BufferedResponse

MODEL = "lmstrix-demo/tiny-chat-1b"
EMBED = "lmstrix-demo/nomic-embed-text"
WORKER = str(Path(__file__).with_name("_governance_worker.py"))


@pytest.fixture
def cache(tmp_path: Path) -> ResponseCache:
    return ResponseCache(tmp_path / "cache.sqlite")


def completions(server: FakeLMStudio) -> int:
    return server.counters.requests.get("/v1/chat/completions", 0)


def test_a_repeated_temperature_0_chat_is_served_without_a_server_request(
    fake: FakeLMStudio, cache: ResponseCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lmstrix")
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        first = client.chat(MODEL, "What is 2+3?", temperature=0)
        assert completions(fake) == 1
        second = client.chat(MODEL, "What is 2+3?", temperature=0)
        assert completions(fake) == 1  # the simulator saw no second request
        assert second.text == first.text and second.usage == first.usage
        client.chat(MODEL, "What is 2+4?", temperature=0)  # another prompt: a miss
        assert completions(fake) == 2
    sent = [r for r in caplog.records if r.getMessage().endswith("/v1/chat/completions")]
    assert len(sent) == 2  # the debug log names the requests sent, not the hit
    cache.flush()  # answers are written by a background thread
    assert (cache.stats.hits, cache.stats.misses, cache.stats.stores) == (1, 2, 2)
    assert len(cache) == 2


def test_a_temperature_0_7_chat_is_never_served_from_the_cache(
    fake: FakeLMStudio, cache: ResponseCache
) -> None:
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        for _ in range(3):
            client.chat(MODEL, "Tell me a story", temperature=0.7)
        client.chat(MODEL, "Tell me a story")  # the server's default temperature
    assert completions(fake) == 4
    assert cache.stats.hits == 0 and cache.stats.skipped == 4 and len(cache) == 0


def test_a_fixed_seed_and_embeddings_are_deterministic() -> None:
    assert is_deterministic({"seed": 7, "temperature": 0.9}, "chat")
    assert not is_deterministic({"seed": -1, "temperature": 0.9}, "chat")
    assert not is_deterministic({"temperature": False}, "chat")
    assert is_deterministic({"input": ["a"]}, "embedding")


def test_streams_are_stored_raw_and_replayed_through_the_stream_code(
    fake: FakeLMStudio, cache: ResponseCache
) -> None:
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        live = client.stream_chat(MODEL, "Tell me a story", temperature=0)
        live_chunks = [c.text for c in live]
        assert completions(fake) == 1
        replay = client.stream_chat(MODEL, "Tell me a story", temperature=0)
        replay_chunks = [c.text for c in replay]
        assert completions(fake) == 1
        assert replay_chunks == live_chunks and len(live_chunks) > 1
        assert replay.completion.usage == live.completion.usage
        assert replay.completion.finish_reason == live.completion.finish_reason
        # A plain chat of the same prompt is another key: the stream does not answer it.
        client.chat(MODEL, "Tell me a story", temperature=0)
        assert completions(fake) == 2


def test_a_stream_closed_early_or_broken_is_not_stored(
    fake: FakeLMStudio, cache: ResponseCache
) -> None:
    with lmstrix.Client(fake.base_url, middleware=[cache], max_retries=0) as client:
        with client.stream_chat(MODEL, "Tell me a story", temperature=0) as stream:
            next(stream)
        fake.inject(Fault(kind="error_event", after_chunks=2))
        with pytest.raises(lmstrix.StreamError):
            client.stream_chat(MODEL, "Tell me a story", temperature=0).text()
    assert len(cache) == 0 and cache.stats.stores == 0


def test_error_answers_are_not_stored(fake: FakeLMStudio, cache: ResponseCache) -> None:
    with lmstrix.Client(fake.base_url, middleware=[cache], max_retries=0) as client:
        for _ in range(2):
            with pytest.raises(lmstrix.ModelNotFoundError):
                client.chat("no/such-model", "hi", temperature=0)
    assert len(cache) == 0 and cache.stats.misses == 2


def test_embeddings_are_cached(fake: FakeLMStudio, cache: ResponseCache) -> None:
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        first = client.embed(EMBED, ["one", "two"])
        assert client.embed(EMBED, ["one", "two"]) == first
    assert fake.counters.requests.get("/v1/embeddings") == 1


def test_the_loaded_context_is_part_of_the_key(fake: FakeLMStudio, cache: ResponseCache) -> None:
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        instance = client.load(MODEL, context_length=4096)
        client.chat(MODEL, "hi", temperature=0)
        client.chat(MODEL, "hi", temperature=0)
        assert completions(fake) == 1
        client.unload(instance.id)
        client.load(MODEL, context_length=8192)
        client.chat(MODEL, "hi", temperature=0)  # another context: another key
        assert completions(fake) == 2


def test_expired_answers_are_fetched_again(fake: FakeLMStudio, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with lmstrix.Client(fake.base_url, middleware=[ResponseCache(path)]) as client:
        client.chat(MODEL, "hi", temperature=0)
    with sqlite3.connect(str(path)) as db:  # age the entry by a day
        db.execute("UPDATE responses SET created = created - 86400")
    cache = ResponseCache(path, ttl_s=3600)
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        client.chat(MODEL, "hi", temperature=0)
    assert completions(fake) == 2 and cache.stats.hits == 0 and len(cache) == 1


def test_the_size_limit_evicts_the_oldest(fake: FakeLMStudio, tmp_path: Path) -> None:
    probe = ResponseCache(tmp_path / "probe.sqlite")
    with lmstrix.Client(fake.base_url, middleware=[probe]) as client:
        client.chat(MODEL, "prompt 0", temperature=0)
    one = probe.size_bytes()
    cache = ResponseCache(tmp_path / "cache.sqlite", max_bytes=int(one * 2.5))
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        for n in range(4):
            client.chat(MODEL, f"prompt {n}", temperature=0)
        assert len(cache) == 2 and cache.size_bytes() <= one * 2.5
        fake.reset_counters()
        client.chat(MODEL, "prompt 3", temperature=0)  # the newest stayed
        assert completions(fake) == 0
        client.chat(MODEL, "prompt 0", temperature=0)  # the oldest went
        assert completions(fake) == 1
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        ResponseCache(tmp_path / "x.sqlite", max_bytes=0)
    with pytest.raises(ValueError):
        ResponseCache(tmp_path / "x.sqlite", ttl_s=0)


def test_the_token_never_reaches_the_cache_file(tmp_path: Path) -> None:
    token = "sk-very-secret-token-123"
    path = tmp_path / "cache.sqlite"
    with FakeLMStudio(api_token=token) as server:
        cache = ResponseCache(path)
        with lmstrix.Client(server.base_url, api_token=token, middleware=[cache]) as client:
            client.chat(MODEL, "hi", temperature=0)
            client.stream_chat(MODEL, "hi", temperature=0).text()
        cache.close()
    assert len(ResponseCache(path)) == 2
    for file in tmp_path.iterdir():
        assert token.encode() not in file.read_bytes()


def test_an_unusable_file_lets_requests_through(fake: FakeLMStudio, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = ResponseCache(path)
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        client.chat(MODEL, "hi", temperature=0)
        cache.flush()  # the write failed: the answer is not kept in memory either
        client.chat(MODEL, "hi", temperature=0)
    assert completions(fake) == 2 and cache.stats.hits == 0 and cache.stats.stores == 0
    with pytest.raises(lmstrix.LMStrixError, match="could not be read"):
        len(cache)
    blocked = ResponseCache(path / "under-a-file" / "cache.sqlite")  # no such folder can be made
    with lmstrix.Client(fake.base_url, middleware=[blocked]) as client:
        client.chat(MODEL, "hi", temperature=0)
    assert completions(fake) == 3


def test_non_json_bodies_and_other_operations_pass_through(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    sent: List[lmstrix.Request] = []

    def answer(request: lmstrix.Request) -> BufferedResponse:
        sent.append(request)
        return BufferedResponse(200, {"content-type": "application/json"}, b"[1]")

    for body in (b"not json", b"[1, 2]"):
        request = lmstrix.Request("POST", "http://x/v1/chat/completions", body=body)
        request = request.replace(extensions={"operation": "chat"})
        assert cache(request, answer).read() == b"[1]"
    assert cache.key_of(lmstrix.Request("GET", "http://x/v1/models")) is None
    assert len(sent) == 2 and len(cache) == 0


def test_four_processes_sharing_one_cache_file_lose_nothing(
    fake: FakeLMStudio, tmp_path: Path
) -> None:
    path = tmp_path / "shared.sqlite"
    count = 15
    workers = [
        subprocess.Popen(
            [sys.executable, WORKER, "cache", fake.base_url, str(path), str(i), str(count)]
        )
        for i in range(4)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    cache = ResponseCache(path)
    assert len(cache) == count * 5  # 15 shared prompts and 15 of each worker's own
    fake.reset_counters()
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        for n in range(count):
            client.chat(MODEL, f"shared {n}", temperature=0)
            for i in range(4):
                client.chat(MODEL, f"w{i} {n}", temperature=0)
    assert completions(fake) == 0 and cache.stats.hits == count * 5
    assert str(path) in repr(cache)
