"""Stream continuation: ``stream_chat(..., continue_on_cut=True)`` after a cut stream."""

from __future__ import annotations

import socket
from typing import Any, Dict, Iterator, List

import pytest

import lmstrix
from lmstrix import Client, ConfigError, StreamError
from lmstrix.client._continue import (
    CONTINUE_PROMPT,
    ContinuedStream,
    continuation_messages,
)
from lmstrix.testing import FakeLMStudio, Fault, SimModel
from lmstrix.testing._continue import answer_pieces, continued_from

MODEL = "acme/chat-7b"
CHAT = "/v1/chat/completions"
QUESTION = "Tell me about the quick brown fox and the lazy dog please"


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=[SimModel(key=MODEL, declared_context=8192)]) as server:
        server.preload(MODEL)
        yield server


@pytest.fixture
def client(sim: FakeLMStudio) -> Iterator[Client]:
    with Client(sim.base_url, retry_backoff_s=0.001) as c:
        yield c


def chat_bodies(sim: FakeLMStudio) -> List[Dict[str, Any]]:
    return [r[3] for r in sim.received if r[1] == CHAT]


def test_a_cut_stream_is_continued_to_the_whole_answer(sim: FakeLMStudio, client: Client) -> None:
    uncut = client.stream_chat(MODEL, QUESTION).completion
    assert uncut.continued == 0 and len(uncut.text.split()) > 6
    sim.inject(Fault.drop_stream_after_chunks(3))
    stream = client.stream_chat(MODEL, QUESTION, continue_on_cut=True)
    assert isinstance(stream, ContinuedStream)
    pieces = [chunk.text for chunk in stream]
    done = stream.completion
    assert "".join(pieces) == done.text == uncut.text
    assert done.continued == 1 == stream.continued
    assert done.finish_reason == "stop" and done.to_dict()["continued"] == 1
    assert done.stats.time_to_first_token_s is not None
    assert "continued=1" in repr(stream) and "done" in repr(stream)
    # The continuation request carried the partial answer and the ask to continue.
    last = chat_bodies(sim)[-1]["messages"]
    assert last[-2] == {"role": "assistant", "content": " ".join(uncut.text.split()[:3])}
    assert last[-1] == {"role": "user", "content": CONTINUE_PROMPT}


def test_continuation_is_repeated_up_to_the_limit_then_the_original_error_is_raised(
    sim: FakeLMStudio, client: Client
) -> None:
    uncut = client.chat(MODEL, QUESTION).text
    sim.inject(Fault.drop_stream_after_chunks(2, times=2))
    done = client.stream_chat(MODEL, QUESTION, continue_on_cut=2).completion
    assert (done.text, done.continued) == (uncut, 2)
    sim.inject(Fault.drop_stream_after_chunks(1, times=3))
    stream = client.stream_chat(MODEL, QUESTION, continue_on_cut=2)
    with pytest.raises(StreamError) as caught:
        stream.text()
    err = caught.value
    assert err.kind == "disconnected" and "continued 2 time(s)" in str(err)
    assert err.text == " ".join(uncut.split()[:3])  # one word per cut stream, all kept
    assert uncut.startswith(err.text)


def test_when_the_continuation_request_fails_the_original_error_carries_the_text(
    sim: FakeLMStudio,
) -> None:
    with Client(sim.base_url, max_retries=0) as client:
        uncut = client.chat(MODEL, QUESTION).text
        sim.inject(Fault.drop_stream_after_chunks(4))
        sim.inject(Fault(kind="status", status=500, message="engine restarting"))
        stream = client.stream_chat(MODEL, QUESTION, continue_on_cut=True)
        with pytest.raises(StreamError) as caught:
            for _ in stream:
                pass
    err = caught.value
    assert err.kind == "disconnected"
    assert err.text == " ".join(uncut.split()[:4])
    assert "engine restarting" in str(err) and err.__cause__ is not None


def test_a_server_error_event_is_not_continued(sim: FakeLMStudio, client: Client) -> None:
    sim.inject(Fault(kind="error_event", after_chunks=2, message="model crashed"))
    stream = client.stream_chat(MODEL, QUESTION, continue_on_cut=True)
    with pytest.raises(StreamError) as caught:
        stream.text()
    assert caught.value.kind == "error_event" and caught.value.text
    assert len(chat_bodies(sim)) == 1  # no continuation request


def test_off_by_default_and_when_false(sim: FakeLMStudio, client: Client) -> None:
    sim.inject(Fault.drop_stream_after_chunks(2))
    with pytest.raises(StreamError):
        client.stream_chat(MODEL, QUESTION).text()
    stream = client.stream_chat(MODEL, QUESTION, continue_on_cut=False)
    assert not isinstance(stream, ContinuedStream)
    assert "continue_on_cut" not in chat_bodies(sim)[-1]
    assert stream.text()
    with pytest.raises(ConfigError, match="continue_on_cut"):
        client.stream_chat(MODEL, QUESTION, continue_on_cut="yes")


def test_a_truncated_stream_and_a_cut_before_any_text_are_continued(
    sim: FakeLMStudio, client: Client
) -> None:
    uncut = client.chat(MODEL, QUESTION).text
    sim.inject(Fault(kind="truncate_stream", after_chunks=5))
    assert client.stream_chat(MODEL, QUESTION, continue_on_cut=1).text() == uncut
    sim.inject(Fault.drop_stream_after_chunks(0))
    done = client.stream_chat(MODEL, QUESTION, continue_on_cut=True).completion
    assert (done.text, done.continued) == (uncut, 1)
    assert chat_bodies(sim)[-1]["messages"] == [{"role": "user", "content": QUESTION}]


def test_a_cut_right_at_the_end_joins_to_the_whole_answer(
    sim: FakeLMStudio, client: Client
) -> None:
    uncut = client.chat(MODEL, QUESTION).text
    sim.inject(Fault.drop_stream_after_chunks(len(uncut.split())))
    done = client.stream_chat(MODEL, QUESTION, continue_on_cut=True).completion
    assert (done.text, done.continued, done.finish_reason) == (uncut, 1, "stop")


def test_closing_a_continued_stream_releases_it(sim: FakeLMStudio, client: Client) -> None:
    released: List[bool] = []
    with client.stream_chat(MODEL, QUESTION, continue_on_cut=True) as stream:
        stream.on_release(lambda: released.append(True))
        assert next(stream).text
    assert released == [True]
    assert list(stream) == []
    assert "closed" in repr(stream)
    stream.on_release(lambda: released.append(True))
    assert released == [True, True]


def test_connection_errors_at_the_call_are_raised_at_the_call() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", max_retries=0) as client:
        with pytest.raises(Exception) as caught:
            client.stream_chat(MODEL, QUESTION, continue_on_cut=True)
    assert not isinstance(caught.value, StreamError)


def test_simulator_helpers() -> None:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    request = continuation_messages(messages, "partial")
    assert continued_from(request) == ("Q", "partial")
    assert continuation_messages(messages, "") == messages
    assert continued_from(messages) is None
    assert continued_from("not a list") is None
    assert continued_from([*messages[:1], *request[-2:]]) is None  # no question before it
    other = [*messages, {"role": "user", "content": "x"}, {"role": "user", "content": "y"}]
    assert continued_from([*other[:2], other[2], request[-1]]) is None  # no assistant part
    odd = [{"role": "user", "content": 5}, *request[-2:]]
    assert continued_from(odd) is None
    assert answer_pieces(("a", "b", "c")) == ["a", " b", " c"]
    assert answer_pieces(("a", "b", "c"), "a b") == [" c"]
    assert answer_pieces(("a", "b"), "x") == ["a", " b"]


def test_closing_inside_the_loop_ends_it_without_a_completion(
    sim: FakeLMStudio, client: Client
) -> None:
    stream = client.stream_chat(MODEL, QUESTION, continue_on_cut=True)
    seen = []
    for chunk in stream:
        seen.append(chunk.text)
        stream.close()
    assert len(seen) == 1
    with pytest.raises(lmstrix.LMStrixError, match="closed before its end"):
        stream.text()
