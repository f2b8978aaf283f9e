"""Governance middleware: budgets and rate limits refuse before sending, a policy keeps
labels in their lanes, usage records match the simulator, and the SLA watch fires."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest

import lmstrix
from lmstrix.limits import (
    Budget,
    Policy,
    RateLimit,
    Rule,
    SLAEvent,
    SLAWatch,
    UsageLog,
    UsageRecord,
    estimate_tokens,
)
from lmstrix.testing import FakeLMStudio, Fault

MODEL = "lmstrix-demo/tiny-chat-1b"
EMBED = "lmstrix-demo/nomic-embed-text"
WORKER = str(Path(__file__).with_name("_governance_worker.py"))


def sent(server: FakeLMStudio) -> int:
    return server.counters.requests.get("/v1/chat/completions", 0)


def server_tokens(server: FakeLMStudio) -> int:
    counters = server.counters
    return counters.prompt_tokens + counters.generated_tokens


# ---------------------------------------------------------------------- Budget


def test_a_call_over_budget_is_refused_before_anything_is_sent(fake: FakeLMStudio) -> None:
    budget = Budget(tokens_per_day=200)
    with lmstrix.Client(fake.base_url, label="alice", middleware=[budget]) as client:
        answered = 0
        body = {"messages": [{"role": "user", "content": "question 10"}], "max_tokens": 8}
        while budget.remaining("alice") >= estimate_tokens(body, "chat"):  # the next one fits
            client.chat(MODEL, f"question {answered + 10}", max_tokens=8)
            answered += 1
        with pytest.raises(lmstrix.QuotaExceededError) as caught:
            client.chat(MODEL, "question 99", max_tokens=8)
    assert answered > 0 and sent(fake) == answered  # the refused call never left
    error = caught.value
    assert error.label == "alice" and error.limit == 200 and error.used + error.requested > 200
    assert 0 < (error.retry_after_s or 0) <= 86400
    assert budget.used("alice") == server_tokens(fake)  # reconciled with the real usage
    assert budget.remaining("alice") == 200 - server_tokens(fake)
    assert budget.remaining("bob") == 200 and "200" in repr(budget)


def test_budgets_per_label_and_unlimited_labels(fake: FakeLMStudio) -> None:
    budget = Budget(labels={"alice": 10})  # others: no budget
    with lmstrix.Client(fake.base_url, label="alice", middleware=[budget]) as alice:
        with pytest.raises(lmstrix.QuotaExceededError):
            alice.chat(MODEL, "hi", max_tokens=8)
        alice.list_models()  # listing uses no tokens: never refused
    with lmstrix.Client(fake.base_url, label="bob", middleware=[budget]) as bob:
        bob.chat(MODEL, "hi")
    assert sent(fake) == 1 and budget.remaining("bob") is None and budget.used("alice") == 0


def test_refused_calls_count_nothing_and_streams_are_reconciled(fake: FakeLMStudio) -> None:
    budget = Budget(tokens_per_day=10_000)
    with lmstrix.Client(fake.base_url, middleware=[budget], max_retries=0) as client:
        with pytest.raises(lmstrix.ModelNotFoundError):
            client.chat("no/such-model", "hi", max_tokens=8)
        assert budget.used() == 0
        client.stream_chat(MODEL, "Tell me a story", max_tokens=16).text()
        assert budget.used() == server_tokens(fake)
        client.embed(EMBED, ["one", "two"])
        assert budget.used() == server_tokens(fake)
        before = budget.used()
        with client.stream_chat(MODEL, "Tell me a story", max_tokens=16) as stream:
            next(stream)  # closed early: the usage never came, the estimate stays
        body = {"messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 16}
        assert budget.used() == before + estimate_tokens(body, "chat")


def test_four_processes_sharing_one_quota_file_never_exceed_it(
    fake: FakeLMStudio, tmp_path: Path
) -> None:
    path, limit, count = tmp_path / "quota.sqlite", 1500, 25
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                WORKER,
                "budget",
                fake.base_url,
                str(path),
                str(i),
                str(count),
                str(limit),
            ],
            stdout=subprocess.PIPE,
        )
        for i in range(4)
    ]
    results = [json.loads(w.communicate(timeout=120)[0]) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0]
    spent = sum(r["tokens"] for r in results)
    assert sum(r["sent"] for r in results) == sent(fake)  # each answered call was counted
    assert sum(r["refused"] for r in results) > 0  # the quota was reached...
    assert spent == server_tokens(fake) <= limit  # ...and never passed
    assert Budget(path, tokens_per_day=limit).used("team") == spent  # nothing lost


# ---------------------------------------------------------------------- RateLimit


def test_requests_per_minute_wait_then_refuse(fake: FakeLMStudio) -> None:
    waits: List[float] = []
    limit = RateLimit(requests_per_minute=3, max_wait_s=0.0, sleep=waits.append)
    with lmstrix.Client(fake.base_url, middleware=[limit], label="a") as client:
        for _ in range(3):
            client.chat(MODEL, "hi")
        with pytest.raises(lmstrix.QuotaExceededError) as caught:
            client.chat(MODEL, "hi")
    assert sent(fake) == 3 and waits == []
    assert caught.value.limit == 3 and 0 < (caught.value.retry_after_s or 0) <= 20


def test_a_rate_limit_waits_for_its_bucket(fake: FakeLMStudio) -> None:
    now = [1000.0]
    waits: List[float] = []

    def sleep(seconds: float) -> None:  # a clock that moves only when the limit waits
        waits.append(seconds)
        now[0] += seconds

    limit = RateLimit(requests_per_minute=6, sleep=sleep, clock=lambda: now[0])
    with lmstrix.Client(fake.base_url, middleware=[limit]) as client:
        for _ in range(8):
            client.chat(MODEL, "hi")
    assert sent(fake) == 8 and waits == [pytest.approx(10.0)] * 2  # one request per 10 s
    with lmstrix.Client(fake.base_url, middleware=[limit]) as client:
        limit.max_wait_s = 6.0
        sleep(5.0)  # half a request refilled: the next waits 5 s
        client.chat(MODEL, "hi")
        with pytest.raises(lmstrix.QuotaExceededError) as caught:
            client.chat(MODEL, "hi")  # it would wait 10 s: over max_wait_s, refused at once
    assert waits[-1] == pytest.approx(5.0) and len(waits) == 4 and sent(fake) == 9
    assert caught.value.retry_after_s == pytest.approx(10.0)


def test_tokens_per_minute_reconcile_with_the_real_usage(
    fake: FakeLMStudio, tmp_path: Path
) -> None:
    path = tmp_path / "rate.sqlite"
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    estimate = estimate_tokens(body, "chat")
    per_minute = estimate * 2 + 5
    first = RateLimit(tokens_per_minute=per_minute, path=path, max_wait_s=0, per_label=True)
    second = RateLimit(tokens_per_minute=per_minute, path=path, max_wait_s=0, per_label=True)
    with lmstrix.Client(fake.base_url, middleware=[first], label="x") as one, lmstrix.Client(
        fake.base_url, middleware=[second], label="x"
    ) as two:
        one.chat(MODEL, "hi", max_tokens=8)
        two.chat(MODEL, "hi", max_tokens=8)  # the file is shared: both spent real usage
        one.chat(MODEL, "hi", max_tokens=8)  # fits only because usage < estimate
        with pytest.raises(lmstrix.QuotaExceededError):
            two.chat(MODEL, "hi", max_tokens=8)
    with lmstrix.Client(fake.base_url, middleware=[second], label="y") as other:
        other.chat(MODEL, "hi", max_tokens=8)  # per label: y has its own bucket
    assert sent(fake) == 4 and "tokens_per_minute" in repr(first)
    with pytest.raises(ValueError):
        RateLimit(requests_per_minute=0)


# ---------------------------------------------------------------------- Policy


def test_a_policy_refuses_before_sending(fake: FakeLMStudio) -> None:
    policy = Policy(
        {
            "alice": {"models": "lmstrix-demo/tiny-*"},
            "ops": Rule(admin=True),
            "embedder": {"models": [EMBED], "operations": ["embedding"]},
        }
    )
    with lmstrix.Client(fake.base_url, label="alice", middleware=[policy]) as alice:
        alice.chat(MODEL, "hi")
        alice.list_models()
        with pytest.raises(lmstrix.PermissionDeniedError) as caught:
            alice.chat("lmstrix-demo/solid-3b", "hi")
        with pytest.raises(PermissionError):  # also the built-in
            alice.load(MODEL)
    assert caught.value.label == "alice" and caught.value.model == "lmstrix-demo/solid-3b"
    with lmstrix.Client(fake.base_url, label="ops", middleware=[policy]) as ops:
        instance = ops.load(MODEL, context_length=4096)
        ops.unload(instance.id)
    with lmstrix.Client(fake.base_url, label="embedder", middleware=[policy]) as embedder:
        embedder.embed(EMBED, "x")
        with pytest.raises(lmstrix.PermissionDeniedError):
            embedder.chat(EMBED, "hi")
    with lmstrix.Client(fake.base_url, middleware=[policy]) as nobody:
        with pytest.raises(lmstrix.PermissionDeniedError):
            nobody.chat(MODEL, "hi")
    assert sent(fake) == 1 and fake.counters.requests.get("/api/v1/models/load") == 1
    assert policy.allows(None, MODEL, "chat") is False and "alice" in repr(policy)


def test_policy_rules_and_defaults() -> None:
    policy = Policy({}, default={"operations": "*"})
    assert policy.allows("anyone", "m", "chat") and not policy.allows("anyone", "m", "load")
    assert Rule(operations=frozenset({"*"}), admin=True).allows("m", "unload")
    with pytest.raises(ValueError):
        Rule.coerce({"model": "x"})


# ---------------------------------------------------------------------- usage records


def test_usage_records_match_the_simulator(fake: FakeLMStudio, tmp_path: Path) -> None:
    records: List[Any] = []
    path = tmp_path / "usage.jsonl"
    token = "sk-secret-usage"
    with FakeLMStudio(api_token=token) as server:
        middleware = [UsageLog(records.append), UsageLog(path)]
        with lmstrix.Client(
            server.base_url, api_token=token, label="alice", middleware=middleware, max_retries=0
        ) as client:
            client.chat(MODEL, "What is 2+3?", max_tokens=8)
            client.stream_chat(MODEL, "Tell me a story", max_tokens=16).text()
            client.embed(EMBED, ["one"])
            with pytest.raises(lmstrix.ModelNotFoundError):
                client.chat("no/such-model", "hi")
            client.list_models()  # no record: no model call
        tokens, url = server_tokens(server), server.base_url
    assert [r.operation for r in records] == ["chat", "chat", "embedding", "chat"]
    assert [r.stream for r in records] == [False, True, False, False]
    assert sum(r.total_tokens or 0 for r in records) == tokens
    assert records[-1].status == 404 and records[-1].total_tokens is None
    assert {r.label for r in records} == {"alice"} and records[0].model == MODEL
    assert all(r.seconds >= 0 and r.server == url for r in records)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    drop = lambda row: {k: v for k, v in row.items() if k != "seconds"}  # noqa: E731
    assert [drop(line) for line in lines] == [
        drop(r.to_dict()) for r in records
    ]  # nested: times differ
    assert token not in path.read_text() and "2+3" not in path.read_text()


def test_a_failing_usage_callback_never_breaks_a_call(fake: FakeLMStudio) -> None:
    def broken(record: UsageRecord) -> None:
        raise RuntimeError("billing is down")

    with lmstrix.Client(fake.base_url, middleware=[UsageLog(broken)]) as client:
        assert client.chat(MODEL, "hi").text


# ---------------------------------------------------------------------- SLA watch


def event(ttft: float = 0.1, outcome: str = "ok", operation: str = "chat") -> lmstrix.CallEvent:
    return lmstrix.CallEvent(
        server="http://s",
        operation=operation,
        model="m",
        outcome=outcome,
        time_to_first_token_s=ttft,
    )


def test_the_sla_watch_fires_on_p95_ttft_and_error_rate_and_on_recovery() -> None:
    seen: List[SLAEvent] = []
    watch = SLAWatch(seen.append, ttft_p95_s=1.0, error_rate=0.25, window=10, min_calls=10)
    for _ in range(9):
        watch(event(0.2))
    watch(event(5.0))  # 10 calls; p95 is the slowest
    assert [(e.kind, e.breached, e.value) for e in seen] == [("ttft_p95", True, 5.0)]
    for _ in range(10):
        watch(event(0.2))
    assert seen[-1].kind == "ttft_p95" and not seen[-1].breached
    for _ in range(3):
        watch(event(outcome="error"))
    assert (seen[-1].kind, seen[-1].breached, seen[-1].calls) == ("error_rate", True, 10)
    watch(event(operation="load"))  # loads are not watched
    watch(event(outcome="closed"))  # a closed stream is no failure
    assert len(seen) == 3 and "error_rate" in repr(watch)
    with pytest.raises(ValueError):
        SLAWatch(seen.append, window=0)


def test_the_sla_watch_on_a_client_and_a_failing_handler(fake: FakeLMStudio) -> None:
    seen: List[SLAEvent] = []

    def handler(sla_event: SLAEvent) -> None:
        seen.append(sla_event)
        raise RuntimeError("pager is down")

    watch = SLAWatch(handler, ttft_p95_s=0.0, error_rate=0.4, min_calls=2)
    fake.inject(Fault(status=500, times=2, skip=1))
    with lmstrix.Client(fake.base_url, observers=[watch], max_retries=0) as client:
        client.stream_chat(MODEL, "hi").text()
        for _ in range(2):
            with pytest.raises(lmstrix.APIStatusError):
                client.chat(MODEL, "hi")
        client.stream_chat(MODEL, "hi").text()
    kinds = [(e.kind, e.breached) for e in seen]
    assert ("error_rate", True) in kinds and ("ttft_p95", True) in kinds


# ---------------------------------------------------------------------- edges


def test_threads_sharing_a_quota_file_never_exceed_it(fake: FakeLMStudio, tmp_path: Path) -> None:
    import threading

    path, limit = tmp_path / "quota.sqlite", 500
    refused: List[int] = []
    failed: List[BaseException] = []

    def work(n: int) -> None:
        budget = Budget(path, tokens_per_day=limit)  # one object per thread: the file is shared
        try:
            with lmstrix.Client(fake.base_url, label="t", middleware=[budget]) as client:
                for i in range(8):
                    try:
                        client.chat(MODEL, f"thread {n} call {i}", max_tokens=8)
                    except lmstrix.QuotaExceededError:
                        refused.append(n)
        except BaseException as exc:  # anything else fails the test, not just the thread
            failed.append(exc)
        budget.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert refused and Budget(path, tokens_per_day=limit).used("t") == server_tokens(fake) <= limit


def test_an_unusable_quota_file_is_reported(fake: FakeLMStudio, tmp_path: Path) -> None:
    path = tmp_path / "quota.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with lmstrix.Client(fake.base_url, middleware=[Budget(path, tokens_per_day=10)]) as client:
        with pytest.raises(lmstrix.LMStrixError, match="quota file"):
            client.chat(MODEL, "hi")
    with pytest.raises(lmstrix.LMStrixError, match="quota file"):
        Budget(path).used()
    limit = RateLimit(requests_per_minute=5, path=path)
    with lmstrix.Client(fake.base_url, middleware=[limit]) as client:
        with pytest.raises(lmstrix.LMStrixError, match="quota file"):
            client.chat(MODEL, "hi")
    assert sent(fake) == 0


def test_unsent_and_broken_calls(tmp_path: Path) -> None:
    budget = Budget(tokens_per_day=10_000)
    records: List[Any] = []
    middleware = [budget, UsageLog(records.append)]
    with FakeLMStudio() as server:
        url = server.base_url
        server.inject(Fault(kind="drop_mid_stream", after_chunks=1))
        with lmstrix.Client(url, middleware=middleware, max_retries=0) as client:
            with pytest.raises(lmstrix.StreamError):
                client.stream_chat(MODEL, "Tell me a story", max_tokens=16).text()
            kept = budget.used()
            assert kept > 0  # a broken stream keeps its estimate
    with lmstrix.Client(url, middleware=middleware, max_retries=0) as client:
        with pytest.raises(lmstrix.APIConnectionError):
            client.chat(MODEL, "hi")  # the server is gone: refused, nothing counted
    assert budget.used() == kept and records[-1].status == 0


def test_token_estimates() -> None:
    chat = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    assert estimate_tokens(chat, "chat", completion_tokens=100) > 100
    assert estimate_tokens({"prompt": "abcdef", "max_tokens": 5}, "completion") == 2 + 8 + 5
    assert estimate_tokens({"input": ["abc", {"x": 1}]}, "embedding") == 1 + 8 + 3 + 8
    assert estimate_tokens({}, "completion", completion_tokens=7) == 7


def test_requests_that_are_no_json_pass_the_limits(tmp_path: Path) -> None:
    from lmstrix.limits._facts import facts_of, usage_of_sse
    from lmstrix.transport import BufferedResponse

    request = lmstrix.Request("POST", "http://x/v1/chat/completions", body=b"not json")
    request = request.replace(extensions={"operation": "chat", "label": "a"})
    facts = facts_of(request)
    assert facts.model is None and facts.label == "a" and facts.estimate == 512 + 32
    assert facts_of(request.replace(body=b"[1]")).model is None
    answer = BufferedResponse(200, {}, b"{}")
    assert Budget(tokens_per_day=1000)(request, lambda r: answer).read() == b"{}"
    assert usage_of_sse(b'data: {"usage": 3}\ndata: [DONE]\n') is None
    assert usage_of_sse(b'data: {"usage": {"total_tokens": 4}}\n').total_tokens == 4  # type: ignore[union-attr]


def test_the_label_rides_in_every_request(fake: FakeLMStudio) -> None:
    seen: List[object] = []

    def spy(request: lmstrix.Request, call_next):  # type: ignore[no-untyped-def]
        seen.append(request.extensions.get("label", "unset"))
        return call_next(request)

    with lmstrix.Client(fake.base_url, label="alice", middleware=[spy]) as client:
        assert client.label == "alice"
        instance = client.load(MODEL)
        client.chat(MODEL, "hi")
        client.unload(instance.id)
    with lmstrix.Client(fake.base_url, middleware=[spy]) as client:
        client.chat(MODEL, "hi")
    assert seen[:-1] == ["alice"] * (len(seen) - 1) and len(seen) >= 4 and seen[-1] == "unset"


def test_native_chat_is_counted_and_policed_like_chat(tmp_path: Path) -> None:
    from lmstrix.limits import Budget, Policy, UsageLog

    records: List[Any] = []
    budget = Budget(tmp_path / "quota.sqlite", tokens_per_day=10_000)
    middleware = [Policy({"ann": {"models": ["lmstrix-demo/*"]}}), budget, UsageLog(records.append)]
    with FakeLMStudio() as fake, lmstrix.Client(
        fake.base_url, label="ann", middleware=middleware
    ) as client:
        answer = client.respond("lmstrix-demo/solid-3b", "What is 2+3?", max_output_tokens=20)
        with client.stream_respond("lmstrix-demo/solid-3b", "Tell me a story") as stream:
            stream.text()
    assert [r.operation for r in records] == ["respond", "respond"]
    assert records[0].total_tokens == answer.usage.total_tokens
    assert (records[1].total_tokens or 0) > 0  # from the stats of the stream's chat.end
    assert budget.used("ann") == sum(r.total_tokens or 0 for r in records)
