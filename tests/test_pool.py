"""`Pool`: routing by loaded models and free slots, failover, cooldown, fallback chains.

Three simulated servers with different fleets, on loopback; their own counters say
where each request went.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import lmstrix
import lmstrix.batch
from lmstrix.errors import FallbackError, ModelNotFoundError
from lmstrix.pool import Pool
from lmstrix.registry import ModelRecord
from lmstrix.testing import FakeLMStudio, SimModel

CHAT = "/v1/chat/completions"


def models(*keys: str, parallel: int = 2, working: int = 0) -> List[SimModel]:
    return [
        SimModel(k, declared_context=8192, parallel=parallel, working_context=working) for k in keys
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def servers() -> Iterator[List[FakeLMStudio]]:
    a = FakeLMStudio(models("alpha", "beta"), port=free_port(), time_scale=0.02).start()
    b = FakeLMStudio(models("alpha", "gamma"), port=free_port(), time_scale=0.02).start()
    c = FakeLMStudio(models("alpha", "beta"), port=free_port(), time_scale=0.02).start()
    a.preload("alpha")
    b.preload("alpha")
    b.preload("gamma")
    c.preload("beta")
    try:
        yield [a, b, c]
    finally:
        for s in (a, b, c):
            s.stop()


def pool_of(servers: List[FakeLMStudio], **options: object) -> Pool:
    options.setdefault("max_retries", 0)
    return Pool([s.base_url for s in servers], **options)  # type: ignore[arg-type]


def chats(fake: FakeLMStudio) -> int:
    return fake.counters.requests.get(CHAT, 0)


def test_a_model_loaded_on_one_server_goes_there(servers: List[FakeLMStudio]) -> None:
    a, b, c = servers
    with pool_of(servers) as pool:
        for _ in range(6):
            assert pool.chat("beta", "What is 2+3?", max_tokens=8).text
    assert chats(c) == 6  # beta is loaded on c only; a offers it too, but would JIT-load
    assert chats(a) == chats(b) == 0
    assert a.counters.loads == 0


def test_calls_spread_over_loaded_servers_within_their_slots(
    servers: List[FakeLMStudio],
) -> None:
    a, b, c = servers
    with pool_of(servers) as pool:
        errors: List[BaseException] = []

        def work() -> None:
            try:
                for _ in range(4):
                    pool.chat("alpha", "Say a long hello " * 20, max_tokens=16)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert all(m.in_flight() == 0 for m in pool.members)
    assert chats(a) > 0 and chats(b) > 0
    assert chats(a) + chats(b) == 32
    assert chats(c) == 0 and c.counters.loads == 0  # alpha is not loaded there
    for fake in (a, b):
        assert max(fake.counters.max_in_flight.values()) <= 2  # parallel = 2


def test_a_dead_server_is_failed_over_cooled_down_and_used_again(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    a = FakeLMStudio(models("alpha"), port=port_a).start()
    b = FakeLMStudio(models("alpha"), port=port_b).start()
    a.preload("alpha")
    b.preload("alpha")
    pool = Pool([a.base_url, b.base_url], max_retries=0, cooldown_s=1.0, allowed_fails=3)
    try:
        pool.chat("alpha", "What is 1+1?", max_tokens=4)  # both known now
        a.stop()
        for _ in range(6):
            assert pool.chat("alpha", "What is 1+1?", max_tokens=4).text
        first = pool.members[0]
        assert first.last_error  # the failures were seen
        assert not first.healthy()  # three in a row: cooling down
        assert chats(b) >= 6  # every call since was answered by b
        before_b = chats(b)
        a2 = FakeLMStudio(models("alpha"), port=port_a).start()
        a2.preload("alpha")
        try:
            time.sleep(1.1)  # the cooldown ends (a wait, not an assertion on time)
            for _ in range(8):
                pool.chat("alpha", "What is 1+1?", max_tokens=4)
            assert chats(a2) > 0  # back in use after its cooldown
            assert chats(b) > before_b
        finally:
            a2.stop()
    finally:
        pool.close()
        b.stop()


def test_a_chain_skips_a_model_whose_working_context_cannot_hold_the_prompt(
    servers: List[FakeLMStudio], tmp_path: Path
) -> None:
    a, b, c = servers
    registry = lmstrix.Registry(tmp_path / "registry.json")
    for fake in (a, b, c):  # a server without a record would get the benefit of the doubt
        registry.upsert(
            ModelRecord(
                key="alpha",
                server=fake.base_url,
                working_context=1000,
                chars_per_token=4.0,
                status="done",
            )
        )
    long_prompt = "A line of a long document. " * 400  # ~10,800 characters
    with pool_of(servers, registry=registry) as pool:
        answer = pool.chat(["alpha", "gamma"], long_prompt + "What is 2+2?", max_tokens=8)
        assert answer.text
    assert chats(a) == 0 and chats(c) == 0  # alpha was never asked
    assert chats(b) == 1  # gamma answered, on b
    with pool_of(servers, registry=registry) as pool:
        short = pool.chat(["alpha", "gamma"], "What is 2+2?", max_tokens=8)
        assert short.text
    assert chats(a) + chats(b) == 2  # the short prompt fits alpha: it went there


def test_a_chain_falls_back_on_overflow_and_names_every_failure(
    servers: List[FakeLMStudio],
) -> None:
    b = servers[1]
    small = FakeLMStudio([SimModel("tiny", declared_context=512)]).start()
    small.preload("tiny")
    try:
        pool = Pool([small.base_url, b.base_url], max_retries=0)
        with pool:
            prompt = "words and more words " * 300  # over tiny's 512 tokens
            answer = pool.chat(["tiny", "gamma"], prompt + "What is 3+3?", max_tokens=8)
            assert answer.text
            assert chats(small) == 1  # tried, overflowed
            with pytest.raises(FallbackError) as caught:
                pool.chat(["tiny", "nowhere"], prompt, max_tokens=8)
        failures = dict(caught.value.failures)
        assert set(failures) == {"tiny", "nowhere"}
        assert "ContextOverflowError" in failures["tiny"]
        assert "ModelNotFoundError" in failures["nowhere"]
        assert "tiny" in str(caught.value) and "nowhere" in str(caught.value)
    finally:
        small.stop()


def test_streams_free_their_slot_when_read_or_closed(servers: List[FakeLMStudio]) -> None:
    with pool_of(servers) as pool:
        stream = pool.stream_chat("gamma", "Tell me a story", max_tokens=16)
        assert stream.text()
        member = pool.members[1]
        assert member.in_flight() == 0
        with pool.stream_chat("gamma", "Tell me a story", max_tokens=16) as stream:
            next(iter(stream))
            assert member.in_flight() == 1
        assert member.in_flight() == 0


def test_unknown_model_and_bad_arguments(servers: List[FakeLMStudio]) -> None:
    with pytest.raises(ValueError, match="list"):
        Pool("http://127.0.0.1:1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        Pool([servers[0].base_url, servers[0].base_url])
    with pool_of(servers) as pool:
        with pytest.raises(ModelNotFoundError, match="no server of the pool"):
            pool.chat("nowhere", "Hi")
        with pytest.raises(ValueError, match="fallback chain"):
            pool.chat([], "Hi")


def test_models_and_instances_across_servers(servers: List[FakeLMStudio]) -> None:
    with pool_of(servers) as pool:
        keys = [m.key for m in pool.list_models()]
        assert keys == ["alpha", "beta", "gamma"]
        alpha = pool.get_model("alpha")
        assert len(alpha.loaded_instances) == 2  # on a and on b
        assert set(pool.models_by_server()) == set(pool.servers)
        assert pool.free_slots("alpha") == 4
        instance = pool.load("beta", context_length=2048)
        assert instance.context_length == 2048
        pool.unload(instance.id)
        status = pool.status()
        assert [s["server"] for s in status] == pool.servers
        assert all(s["healthy"] for s in status)


def test_a_batch_over_the_pool_survives_a_server_killed_mid_run(tmp_path: Path) -> None:
    from lmstrix.batch import read_items, run_batch

    fleets = [  # three machines, three fleets: alpha everywhere, with other slots and limits
        [SimModel("alpha", 8192, parallel=4), SimModel("beta", 4096)],
        [SimModel("alpha", 16384, 12_000, parallel=2), SimModel("gamma", 8192)],
        [SimModel("alpha", 32768, 20_000, 9_000, parallel=6)],
    ]
    fakes = [FakeLMStudio(fleet, time_scale=0.01).start() for fleet in fleets]
    for fake in fakes:
        fake.preload("alpha")
    items = [{"id": f"q{i}", "prompt": f"What is {i}+{i}?"} for i in range(300)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    done = []

    def progress(p: object) -> None:
        done.append(p)
        if len(done) == 100:
            fakes[0].stop()  # one server goes away mid-run

    try:
        with Pool([f.base_url for f in fakes], max_retries=0) as pool:
            assert lmstrix.batch.default_workers(pool, "alpha") == 12  # 4 + 2 + 6 slots
            summary = run_batch(
                read_items(source),
                pool,
                "alpha",
                output=output,
                params={"temperature": 0, "max_tokens": 8},
                on_progress=progress,
            )
    finally:
        for fake in fakes:
            fake.stop()
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    ids = [row["id"] for row in rows]
    assert sorted(ids) == sorted(item["id"] for item in items)  # each exactly once
    for row in rows:
        number = int(row["id"][1:])
        assert row.get("error") is None, row
        assert str(2 * number) in row["output"], row
    assert summary.failed == 0
    assert all(fake.counters.requests.get(CHAT, 0) > 0 for fake in fakes)  # all took load
    for fake, fleet in zip(fakes, fleets):  # no instance served more at once than its slots
        assert max(fake.counters.max_in_flight.values()) <= fleet[0].parallel


def test_ensemble_asks_every_model_and_votes(servers: List[FakeLMStudio]) -> None:
    from lmstrix.pool import ensemble

    with pool_of(servers) as pool:
        result = ensemble(pool, ["alpha", "beta", "gamma", "nowhere"], "What is 4+5?")
    assert [a.model for a in result.answers] == ["alpha", "beta", "gamma", "nowhere"]
    assert [a.ok for a in result.answers] == [True, True, True, False]
    assert isinstance(result.answers[3].error, ModelNotFoundError)
    assert result.vote is not None and "9" in result.vote
    assert result.votes == 3
    assert all(a.seconds >= 0 for a in result.answers)
    with pytest.raises(ValueError, match="at least one"):
        ensemble(pool, [], "Hi")


def test_a_batch_runs_its_calls_on_an_executor(servers: List[FakeLMStudio], tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from lmstrix.batch import run_batch

    items = [{"id": i, "prompt": f"What is {i}+2?"} for i in range(40)]
    output = tmp_path / "out.jsonl"
    with pool_of(servers) as pool, ThreadPoolExecutor(max_workers=3) as executor:
        summary = run_batch(items, pool, "alpha", output=output, workers=6, executor=executor)
    assert summary.done == 40 and summary.failed == 0
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert {row["id"] for row in rows} == set(range(40))
    assert all(str(row["id"] + 2) in row["output"] for row in rows)


def test_a_pool_is_a_chat_client_and_its_streams_are_chat_streams(
    servers: List[FakeLMStudio],
) -> None:
    with pool_of(servers) as pool:
        assert isinstance(pool, lmstrix.ChatClient)
        stream = pool.stream_chat("gamma", "Hi", max_tokens=4)
        assert isinstance(stream, lmstrix.ChatStream)
        released: List[str] = []
        stream.on_release(lambda: released.append("a"))
        assert stream.text()
        stream.on_release(lambda: released.append("b"))  # already released: at once
        assert released == ["a", "b"]


def test_a_client_takes_a_fallback_chain_too(servers: List[FakeLMStudio], tmp_path: Path) -> None:
    b = servers[1]
    registry = lmstrix.Registry(tmp_path / "registry.json")
    registry.upsert(
        ModelRecord(key="alpha", server=b.base_url, working_context=500, chars_per_token=4.0)
    )
    with lmstrix.Client(b.base_url, registry=registry) as client:
        long_prompt = "Words of a long text. " * 200 + "What is 5+5?"
        answer = client.chat(["alpha", "gamma"], long_prompt, max_tokens=8)
        assert "10" in answer.text
        assert chats(b) == 1  # alpha was skipped before any request
        stream = client.stream_chat(["alpha", "gamma"], long_prompt, max_tokens=8)
        assert stream.text()
        with pytest.raises(FallbackError, match="skipped"):
            client.complete(["alpha", "nowhere"], long_prompt, max_tokens=8)


def test_routing_by_capability_and_by_measured_speed(tmp_path: Path) -> None:
    from lmstrix import SpeedPoint

    seeing = SimModel("m/vision", 8192, vision=True, trained_for_tool_use=True)
    plain = SimModel("m/plain", 8192)
    fast = FakeLMStudio([plain, seeing]).start()
    slow = FakeLMStudio([plain]).start()
    try:
        for fake in (fast, slow):
            fake.preload("m/plain")
        registry = lmstrix.Registry(tmp_path / "registry.json")
        for fake, tps in ((slow, 20.0), (fast, 80.0)):
            registry.upsert(
                ModelRecord(
                    key="m/plain",
                    server=fake.base_url,
                    speed=(SpeedPoint(1000, 1000, 900.0, tps), SpeedPoint(4000, 3000, 700.0, tps)),
                )
            )
        with Pool([slow.base_url, fast.base_url], registry=registry, max_retries=0) as pool:
            assert "vision" in pool.get_model("m/vision").capabilities
            looking = pool.routed(requires=["vision"])
            answer = looking.chat(["m/plain", "m/vision"], "What is in the picture?")
            assert answer.model == "m/vision"  # m/plain lists no vision: skipped
            with pytest.raises(ModelNotFoundError, match="vision"):
                looking.chat("m/plain", "Hi")
            assert chats(slow) == 0  # nothing was sent to a model without vision
            quick = pool.routed(prefer="speed")
            for _ in range(6):
                quick.chat("m/plain", "What is 1+2?")
            assert chats(fast) == 1 + 6 and chats(slow) == 0  # the faster machine, always
            for _ in range(6):
                pool.chat("m/plain", "What is 1+2?")  # by slots: both get some
            assert chats(slow) > 0
            with pytest.raises(ValueError, match="prefer"):
                pool.routed(prefer="cheapest")
    finally:
        fast.stop()
        slow.stop()


def test_a_chain_falls_back_when_a_model_fails_to_load(tmp_path: Path) -> None:
    # 'big' is not loaded and its just-in-time load (4096 tokens) is over what loads (2048).
    models = [SimModel("big", 32768, loadable_context=2048, default_context=4096)]
    with FakeLMStudio([*models, SimModel("ok", 8192)]) as fake:
        with Pool([fake.base_url], max_retries=0) as pool:
            answer = pool.chat(["big", "ok"], "What is 1+1?", max_tokens=4)
            assert answer.model == "ok"
            assert fake.counters.load_failures == 1  # big was tried: its load failed
            with pytest.raises(FallbackError) as caught:
                pool.chat(["big"], "What is 1+1?")
        assert "ModelLoadError" in dict(caught.value.failures)["big"]
