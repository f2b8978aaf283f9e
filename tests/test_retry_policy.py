"""``RetryPolicy`` (a frozen value) and the one retry middleware, without a server."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, List, Optional, Union

import pytest
from test_client import MODELS, new_transport

from lmstrix import Client, Request, RetryPolicy
from lmstrix.errors import APIConnectionError, APIStatusError, APITimeoutError
from lmstrix.middleware import RetryMiddleware, build_chain
from lmstrix.testing import FakeLMStudio, Fault
from lmstrix.transport import BufferedResponse, Response

Outcome = Union[int, APIConnectionError]

CHAT = Request("POST", "http://127.0.0.1:1/v1/chat/completions", body=b"{}")
LOAD = Request(
    "POST", "http://127.0.0.1:1/api/v1/models/load", body=b"{}", extensions={"retry_if_sent": False}
)


def refused() -> APIConnectionError:
    return APIConnectionError("refused", sent=False)


def reset() -> APIConnectionError:
    return APIConnectionError("reset", sent=True)


class Script:
    """A fake next step: answers each call with the next outcome; records the sleeps."""

    def __init__(self, *outcomes: Outcome, retry_after: Optional[str] = None) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.sleeps: List[float] = []
        self.retry_after = retry_after

    def __call__(self, request: Request) -> Response:
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if isinstance(outcome, APIConnectionError):
            raise outcome
        headers = {} if self.retry_after is None else {"retry-after": self.retry_after}
        return BufferedResponse(outcome, headers, b"")

    def run(self, policy: RetryPolicy, request: Request = CHAT) -> Response:
        middleware = RetryMiddleware(policy, sleep=self.sleeps.append)
        return build_chain([middleware], self)(request)


def test_policy_is_a_frozen_value_and_increment_makes_a_new_one() -> None:
    policy = RetryPolicy(total=2, connect=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.total = 5  # type: ignore[misc]
    after = policy.increment("connect")
    assert (policy.total, policy.connect, policy.retries_done) == (2, 1, 0)
    assert (after.total, after.connect, after.retries_done) == (1, 0, 1)
    assert not after.exhausted and after.increment("connect").exhausted
    assert after.increment("read") == dataclasses.replace(after, total=0, retries_done=2)
    assert RetryPolicy(total=0).increment("status").exhausted


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(backoff_factor_s=1.0, backoff_max_s=5.0, jitter=0.5)
    for done, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (9, 5.0)]:
        delays = [dataclasses.replace(policy, retries_done=done).backoff_s() for _ in range(50)]
        assert all(base * 0.5 <= d <= base for d in delays)
        assert len(set(delays)) > 1  # jitter spreads retrying clients apart
    exact = RetryPolicy(backoff_factor_s=1.0, jitter=0.0)
    assert exact.backoff_s() == 1.0


@pytest.mark.parametrize(
    ("header", "expected"), [("0", 0.0), ("2.5", 2.5), ("3600", 60.0), ("soon", None)]
)
def test_retry_after_is_honoured_up_to_its_cap(header: str, expected: Optional[float]) -> None:
    policy = RetryPolicy(backoff_factor_s=0.25, jitter=0.0)
    assert policy.backoff_s(header) == (0.25 if expected is None else expected)


def test_client_options_make_the_default_policy() -> None:
    with Client("http://127.0.0.1:1", max_retries=3, retry_backoff_s=0.1, retry_max_s=2) as c:
        assert c.retry_policy == RetryPolicy(
            total=3, backoff_factor_s=0.1, backoff_max_s=2, retry_after_max_s=60.0
        )
        assert (c.max_retries, c.retry_backoff_s, c.retry_max_s) == (3, 0.1, 2)
    custom = RetryPolicy(total=1, statuses=frozenset({502}))
    with Client("http://127.0.0.1:1", retry=custom, max_retries=9) as c:
        assert c.retry_policy is custom and c.max_retries == 1


def test_statuses_are_retried_until_total_runs_out() -> None:
    script = Script(503, 429, 503, 200, retry_after="0")
    assert script.run(RetryPolicy(total=2)).status_code == 503
    assert script.calls == 3 and script.sleeps == [0.0, 0.0]
    assert Script(503, 200).run(RetryPolicy(total=2)).status_code == 200
    assert Script(500, 200).run(RetryPolicy(total=2)).status_code == 500  # not in statuses
    limited = Script(503, 503, 200, retry_after="0")
    assert limited.run(RetryPolicy(total=5, status=1)).status_code == 503
    assert limited.calls == 2


def test_connection_errors_by_kind() -> None:
    script = Script(refused(), reset(), 200)
    assert script.run(RetryPolicy(total=2)).status_code == 200
    assert len(script.sleeps) == 2
    # a request marked not to be repeated (a model load) is retried only when unsent
    script = Script(refused(), reset(), 200)
    with pytest.raises(APIConnectionError, match="reset"):
        script.run(RetryPolicy(total=5), LOAD)
    assert script.calls == 2
    # a timeout after sending is never retried: the model may still be working on it
    script = Script(APITimeoutError("slow", sent=True), 200)
    with pytest.raises(APITimeoutError):
        script.run(RetryPolicy(total=5))
    assert script.calls == 1
    # per-kind counts
    script = Script(refused(), refused(), 200)
    with pytest.raises(APIConnectionError):
        script.run(RetryPolicy(total=5, connect=1))
    script = Script(reset(), reset(), 200)
    with pytest.raises(APIConnectionError):
        script.run(RetryPolicy(total=5, read=1))
    assert script.calls == 2


@pytest.fixture(params=["stdlib", "requests"])
def sim_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    with FakeLMStudio(models=MODELS) as sim:

        def make(**kwargs: Any) -> Client:
            return Client(sim.base_url, transport=new_transport(str(request.param)), **kwargs)

        make.sim = sim  # type: ignore[attr-defined]
        yield make


def test_retry_policy_drives_the_client(sim_client: Callable[..., Client]) -> None:
    sim: FakeLMStudio = sim_client.sim  # type: ignore[attr-defined]
    sim.inject(Fault(path="/v1/chat/completions", kind="status", status=502, times=2))
    policy = RetryPolicy(total=3, statuses=frozenset({502}), backoff_factor_s=0.001)
    with sim_client(retry=policy) as client:
        assert client.chat("acme/chat-7b", "What is 2+3?").text
    assert sim.counters.requests["/v1/chat/completions"] == 3
    sim.inject(Fault(path="/v1/chat/completions", kind="status", status=503, times=5))
    with sim_client(max_retries=0) as client:
        with pytest.raises(APIStatusError) as info:
            client.chat("acme/chat-7b", "What is 2+3?")
    # with no retries the 503 is the answer (an error), after one request only
    assert info.value.status_code == 503
    assert sim.counters.requests["/v1/chat/completions"] == 4
