"""One transient fault at each request position of a client session, through lmstrix.Client.

The session makes one request per step (listing, load, chat, streamed chat, unload);
``Fault.at(i, kind)`` fails exactly the request at position ``i``. Each kind must hit the
step it was aimed at and nothing else, and the server must serve what follows normally.
"""

from __future__ import annotations

import time
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

import lmstrix
from lmstrix.testing import FakeLMStudio, Fault, InstanceInfo, SimModel

KEY = "acme/chat-7b"
MODEL = SimModel(KEY, 32768, 20_000, 12_000, default_context=2048)
STEPS = ("list", "load", "chat", "stream", "unload")
PATHS = (
    "/api/v1/models",
    "/api/v1/models/load",
    "/v1/chat/completions",
    "/v1/chat/completions",
    "/api/v1/models/unload",
)
TIMEOUT = lmstrix.Timeout(connect_s=2.0, read_s=1.0, load_s=1.0)  # a busy machine stays under it
POSITIONS = range(len(STEPS))


class Session:
    """The steps' outcomes (None = success) and the instances loaded right after the load."""

    def __init__(self) -> None:
        self.errors: Dict[str, Optional[lmstrix.APIError]] = {}
        self.after_load: List[InstanceInfo] = []

    def failed(self) -> List[str]:
        return [step for step, err in self.errors.items() if err is not None]


def run_session(fake: FakeLMStudio, fault: Optional[Fault]) -> Session:
    session = Session()
    with lmstrix.Client(fake.base_url, timeout=TIMEOUT, retry_backoff_s=0.001) as client:
        client.list_models()  # API detection happens here, before any fault is armed
        fake.clear_received()
        if fault is not None:
            fake.inject(fault)
        instance: List[lmstrix.LoadedInstance] = []

        def load() -> None:
            instance.append(client.load(KEY, context_length=4096))

        def stream() -> None:
            with client.stream_chat(KEY, "What is 3+4?") as chunks:
                assert chunks.text() == "7"

        actions = {
            "list": lambda: [m.key for m in client.list_models()] == [KEY],
            "load": load,
            "chat": lambda: client.chat(KEY, "What is 2+3?").text == "5",
            "stream": stream,
            "unload": lambda: client.unload(instance[0].id if instance else KEY),
        }
        for step in STEPS:
            try:
                actions[step]()
            except lmstrix.APIError as exc:
                session.errors[step] = exc
            else:
                session.errors[step] = None
            if step == "load":
                session.after_load = fake.loaded()
    return session


def fire(fake: FakeLMStudio, position: int, kind: str, **fields: float) -> Tuple[Session, str]:
    """Run the session with one ``kind`` fault at ``position``; return it and the step hit."""
    session = run_session(fake, Fault.at(position, kind, **fields))
    assert fake.faults_pending() == []  # the fault did fire
    return session, STEPS[position]


@pytest.fixture
def fake() -> Iterator[FakeLMStudio]:
    with FakeLMStudio([MODEL]) as server:
        yield server


def test_a_clean_session_makes_one_request_per_step(fake: FakeLMStudio) -> None:
    session = run_session(fake, None)
    assert session.failed() == []
    assert tuple(r.path for r in fake.received) == PATHS
    assert fake.loaded() == []


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize(("kind", "status"), [("html_500", 500), ("text_502", 502)])
def test_a_5xx_fails_exactly_the_step_at_its_position(
    fake: FakeLMStudio, kind: str, status: int, position: int
) -> None:
    session, step = fire(fake, position, kind)
    assert session.failed() == [step]
    err = session.errors[step]
    assert isinstance(err, lmstrix.APIStatusError)
    assert err.status_code == status
    if kind == "text_502":
        assert "502 Bad Gateway" in str(err)
    if step == "load":
        assert isinstance(err, lmstrix.ModelLoadError)
        assert session.after_load == []  # the load never ran
    assert tuple(r.path for r in fake.received) == PATHS  # 5xx are not retried
    assert [i.key for i in fake.loaded()] == ([KEY] if step == "unload" else [])


@pytest.mark.parametrize("position", POSITIONS)
def test_a_reset_before_the_work_fails_only_a_load(fake: FakeLMStudio, position: int) -> None:
    session, step = fire(fake, position, "reset")
    if step == "load":
        assert session.failed() == ["load"]
        err = session.errors["load"]
        assert isinstance(err, lmstrix.APIConnectionError)
        assert not isinstance(err, lmstrix.APITimeoutError)
        assert session.after_load == []  # nothing was loaded: the chat then JIT-loads
        assert fake.counters.loads_by_model == {KEY: 1}
    else:
        assert session.failed() == []  # the client sent it again on a new connection
        paths = [r.path for r in fake.received]
        assert paths.count(PATHS[position]) == PATHS.count(PATHS[position]) + 1
    assert fake.loaded() == []


@pytest.mark.parametrize("position", POSITIONS)
def test_a_reset_after_the_work_loses_only_the_reply(fake: FakeLMStudio, position: int) -> None:
    session, step = fire(fake, position, "reset_after")
    if step == "load":
        assert session.failed() == ["load"]
        assert isinstance(session.errors["load"], lmstrix.APIConnectionError)
        # the server did load it: the reply was lost, not the load
        assert [(i.key, i.context_length) for i in session.after_load] == [(KEY, 4096)]
    elif step == "unload":
        # the unload was done; the client's second try may find nothing left to unload
        err = session.errors["unload"]
        assert err is None or isinstance(err, lmstrix.ModelNotFoundError)
    else:
        assert session.failed() == []
    assert fake.counters.loads == 1
    assert fake.loaded() == []


@pytest.mark.parametrize("position", POSITIONS)
def test_a_timeout_fails_its_step_and_the_server_goes_on(fake: FakeLMStudio, position: int) -> None:
    session, step = fire(fake, position, "delay", delay_s=TIMEOUT.read_s * 2.5)
    assert session.failed() == [step]
    assert isinstance(session.errors[step], lmstrix.APITimeoutError)
    assert [r.path for r in fake.received] == list(PATHS)  # a timeout is not retried
    if step == "load":
        # the server still does the load once the delay is over (the chat JIT-loaded
        # its own instance meanwhile, and the session unloaded that one)
        assert session.after_load == []
        deadline = time.monotonic() + 10.0
        while not fake.loaded() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(i.key, i.context_length) for i in fake.loaded()] == [(KEY, 4096)]
