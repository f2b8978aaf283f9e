"""Fault injection, parallel slots and client disconnects in the simulator."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from lmstrix.testing import FAULT_KINDS, FakeLMStudio, Fault, SimModel, test_fleet

STORY = {
    "model": "sim/plain-8k",
    "messages": [{"role": "user", "content": "Tell me a story about a lighthouse keeper"}],
}


@pytest.fixture
def fake() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(test_fleet()) as server:
        server.preload("sim/plain-8k")
        yield server


def connect(fake: FakeLMStudio) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)


def post(
    conn: http.client.HTTPConnection, body: Any, path: str = "/v1/chat/completions"
) -> http.client.HTTPResponse:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return conn.getresponse()


def stream_text(conn: http.client.HTTPConnection, body: Dict[str, Any]) -> Tuple[int, str]:
    resp = post(conn, dict(body, stream=True))
    return resp.status, resp.read().decode()


def data_items(text: str) -> List[Any]:
    out: List[Any] = []
    for line in text.split("\n"):
        if line.startswith("data: "):
            payload = line[6:]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def deltas(items: List[Any]) -> str:
    return "".join(
        i["choices"][0]["delta"].get("content", "")
        for i in items
        if isinstance(i, dict) and i.get("choices")
    )


def test_status_fault_with_retry_after(fake: FakeLMStudio) -> None:
    fake.inject(Fault(kind="status", status=503, retry_after=2, times=2))
    fake.inject(Fault(path="/v1/models", kind="status", status=429, message="slow down"))
    conn = connect(fake)
    for _ in range(2):
        resp = post(conn, STORY)
        assert resp.status == 503
        assert resp.getheader("Retry-After") == "2"
        assert json.loads(resp.read())["error"]["message"].startswith("Simulated fault")
    assert fake.faults_pending() == [
        Fault(path="/v1/models", kind="status", status=429, message="slow down")
    ]
    assert post(conn, STORY).read()
    assert fake.faults_pending()[0].path == "/v1/models"
    conn.request("GET", "/v1/models")
    resp = conn.getresponse()
    assert resp.status == 429
    assert resp.getheader("Retry-After") is None
    assert json.loads(resp.read()) == {"error": {"message": "slow down", "type": "server_error"}}
    assert fake.faults_pending() == []
    assert fake.counters.requests["/v1/chat/completions"] == 3


def test_html_500(fake: FakeLMStudio) -> None:
    fake.inject(Fault(path="*", kind="html_500"))
    conn = connect(fake)
    conn.request("GET", "/api/v1/models")
    resp = conn.getresponse()
    assert resp.status == 500
    assert resp.getheader("Content-Type", "").startswith("text/html")
    assert resp.read().startswith(b"<!DOCTYPE html>")
    conn.request("GET", "/api/v1/models")
    assert conn.getresponse().status == 200


def test_reset_closes_without_a_response(fake: FakeLMStudio) -> None:
    fake.inject(Fault(kind="reset"))
    conn = connect(fake)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        post(conn, STORY).read()
    conn.close()
    assert post(connect(fake), STORY).status == 200


def test_delay_then_normal_answer(fake: FakeLMStudio) -> None:
    fake.inject(Fault(kind="delay", delay_s=0.05))
    resp = post(connect(fake), STORY)
    assert resp.status == 200
    assert json.loads(resp.read())["choices"]
    assert fake.faults_pending() == []


def test_stream_faults_skip_plain_requests(fake: FakeLMStudio) -> None:
    fake.inject(Fault(kind="drop_mid_stream"))
    conn = connect(fake)
    assert post(conn, STORY).status == 200
    assert len(fake.faults_pending()) == 1


def test_drop_mid_stream(fake: FakeLMStudio) -> None:
    fake.inject(Fault(kind="drop_mid_stream", after_chunks=3))
    conn = connect(fake)
    resp = post(conn, dict(STORY, stream=True))
    assert resp.status == 200
    received = bytearray()
    error = None
    try:
        while True:
            piece = resp.read1(65536)
            if not piece:
                break
            received += piece
    except http.client.IncompleteRead as exc:  # the chunked body was cut short
        error = exc
        received += exc.partial
    assert error is not None
    text = received.decode()
    items = data_items(text)
    assert len(items) == 3
    assert deltas(items) == "Simulated answer from"
    assert "[DONE]" not in text
    conn.close()
    assert post(connect(fake), STORY).status == 200


def test_truncate_stream_ends_cleanly_without_finish(fake: FakeLMStudio) -> None:
    fake.inject(Fault(kind="truncate_stream", after_chunks=2))
    conn = connect(fake)
    sock = None
    status, text = stream_text(conn, STORY)
    sock = conn.sock
    items = data_items(text)
    assert status == 200
    assert deltas(items) == "Simulated answer"
    assert "[DONE]" not in items
    assert all(i["choices"][0]["finish_reason"] is None for i in items)
    # the connection survives a cleanly ended body
    assert post(conn, STORY).status == 200
    assert conn.sock is sock


@pytest.mark.parametrize("kind", ["error_event", "event_error_line"])
def test_error_events(fake: FakeLMStudio, kind: str) -> None:
    fake.inject(Fault(kind=kind, after_chunks=1, message="engine fell over"))
    status, text = stream_text(connect(fake), STORY)
    assert status == 200
    items = data_items(text)
    assert deltas(items) == "Simulated"
    assert items[-1] == {"error": {"message": "engine fell over", "type": "server_error"}}
    assert ("event: error\n" in text) is (kind == "event_error_line")


def test_fault_after_all_content(fake: FakeLMStudio) -> None:
    fake.inject(Fault(kind="error_event", after_chunks=100))
    _status, text = stream_text(connect(fake), STORY)
    items = data_items(text)
    assert "error" in items[-1]
    assert deltas(items).endswith("lighthouse keeper")


def test_ping_comments(fake: FakeLMStudio) -> None:
    fake.inject(Fault(kind="ping_comments"))
    _status, text = stream_text(connect(fake), dict(STORY, stream_options={"include_usage": True}))
    assert text.count(": ping\n\n") >= 5
    items = data_items(text)
    assert items[-1] == "[DONE]"
    assert items[-2]["usage"]["completion_tokens"] > 0


def test_fault_validation_and_clear(fake: FakeLMStudio) -> None:
    assert "reset" in FAULT_KINDS
    assert "ping_comments" in FAULT_KINDS
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="explode")
    with pytest.raises(ValueError, match="times"):
        Fault(times=0)
    fake.inject(Fault(times=3))
    assert fake.faults_pending()[0].times == 3
    fake.clear_faults()
    assert fake.faults_pending() == []


def test_faults_apply_to_load_endpoint(fake: FakeLMStudio) -> None:
    fake.inject(Fault(path="/api/v1/models/load", kind="status", status=500))
    conn = connect(fake)
    resp = post(conn, {"model": "sim/big-128k"}, "/api/v1/models/load")
    assert resp.status == 500
    assert resp.read()
    assert fake.counters.loads == 0


def test_parallel_slots_limit_in_flight_requests() -> None:
    model = SimModel("sim/two-slots", 8192, parallel=2, decode_s_per_token=1.0)
    with FakeLMStudio([model], time_scale=0.01) as fake:
        fake.preload(model.key)
        errors: List[BaseException] = []

        def worker() -> None:
            try:
                conn = connect(fake)
                resp = post(
                    conn, {"model": model.key, "messages": [{"role": "user", "content": "Tell me"}]}
                )
                assert resp.status == 200
                assert resp.read()
                conn.close()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not errors
        counters = fake.counters
        assert counters.max_in_flight[model.key] == 2
        assert counters.generated_tokens == 6 * 7
        assert fake.loaded()[0].parallel == 2


def test_client_disconnect_mid_stream_is_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    model = SimModel("sim/slow", 8192, decode_s_per_token=1.0)
    with FakeLMStudio([model], time_scale=0.01) as fake:
        fake.preload(model.key)
        sock = socket.create_connection(("127.0.0.1", fake.port), timeout=10)
        body = json.dumps(
            {
                "model": model.key,
                "stream": True,
                "messages": [{"role": "user", "content": "Tell me a long story"}],
            }
        ).encode()
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body)
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        sock.close()
        # the server keeps serving
        conn = connect(fake)
        resp = post(conn, {"model": model.key, "messages": [{"role": "user", "content": "2+2"}]})
        assert json.loads(resp.read())["choices"][0]["message"]["content"] == "4"
        conn.close()
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_text_502_is_a_proxys_plain_text_page(fake: FakeLMStudio) -> None:
    fake.inject(Fault(path="*", kind="text_502"))
    fake.inject(Fault(path="*", kind="text_502", message="upstream went away", skip=1))
    conn = connect(fake)
    for body in (b"502 Bad Gateway", b"upstream went away"):
        conn.request("GET", "/api/v1/models")
        resp = conn.getresponse()
        assert resp.status == 502
        assert resp.getheader("Content-Type", "").startswith("text/plain")
        assert resp.read() == body
    conn.request("GET", "/api/v1/models")
    assert conn.getresponse().status == 200


def test_skip_lets_matching_requests_through_first(fake: FakeLMStudio) -> None:
    fake.inject(Fault(path="/v1/chat/completions", kind="html_500", skip=2))
    conn = connect(fake)
    conn.request("GET", "/api/v1/models")  # another path: not counted
    conn.getresponse().read()
    assert fake.faults_pending()[0].skip == 2
    statuses = []
    for _ in range(4):
        resp = post(conn, STORY)
        resp.read()
        statuses.append(resp.status)
    assert statuses == [200, 200, 500, 200]
    assert fake.faults_pending() == []


def test_fault_at_counts_every_request_whichever_fault_fires(fake: FakeLMStudio) -> None:
    assert Fault.at(3, "reset") == Fault(path="*", kind="reset", skip=3)
    fake.inject(Fault(path="/v1/models", kind="status", status=503))
    fake.inject(Fault.at(2, "html_500", times=2))
    conn = connect(fake)
    statuses = []
    for _ in range(5):
        conn.request("GET", "/v1/models")
        resp = conn.getresponse()
        resp.read()
        statuses.append(resp.status)
    # position 0 met the 503 (and still counted for the second fault), 2 and 3 the 500s
    assert statuses == [503, 200, 500, 500, 200]
    with pytest.raises(ValueError, match="skip"):
        Fault(skip=-1)


def test_reset_after_does_the_load_and_loses_the_reply(fake: FakeLMStudio) -> None:
    fake.inject(Fault(path="/api/v1/models/load", kind="reset_after"))
    fake.inject(Fault(kind="reset_after"))
    conn = connect(fake)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        post(conn, {"model": "sim/big-128k", "context_length": 9000}, "/api/v1/models/load")
    conn.close()
    assert fake.counters.loads == 1
    assert [(i.key, i.context_length) for i in fake.loaded()][-1] == ("sim/big-128k", 9000)
    conn = connect(fake)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        stream_text(conn, STORY)  # a stream's reply is lost too, after the work
    conn.close()
    assert fake.counters.generated_tokens > 0
    assert fake.faults_pending() == []
