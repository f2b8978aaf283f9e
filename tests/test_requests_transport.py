"""RequestsTransport: what the contract suite (test_client.py) cannot show on loopback.

TLS failures, proxies and certificate settings come from ``responses`` (mocked
adapters); session reuse, streaming and the error mapping of real sockets from the
simulator. The whole module skips when ``requests`` is not installed.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Iterator

import pytest

requests = pytest.importorskip("requests")
responses = pytest.importorskip("responses")

import lmstrix  # noqa: E402
from lmstrix import Client, Timeout  # noqa: E402
from lmstrix.requests_transport import RequestsTransport  # noqa: E402
from lmstrix.testing import FakeLMStudio, Fault, SimModel  # noqa: E402

URL = "https://lmstudio.test:1234"
MODELS = [SimModel(key="acme/chat-7b", declared_context=8192)]
T = Timeout(2, 5, 10)


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=MODELS) as server:
        yield server


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _send(transport: RequestsTransport, path: str = "/v1/models", **kwargs: object) -> object:
    return transport.request(
        "GET", URL + path, headers={"Accept": "application/json"}, body=None, timeout=T, **kwargs
    )


def _chat_body(prompt: str) -> bytes:
    body = {
        "model": "acme/chat-7b",
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    return json.dumps(body).encode()


# ------------------------------------------------------------ settings reach requests


def test_verify_cert_and_proxies_are_passed_to_requests(mocked: responses.RequestsMock) -> None:
    mocked.add(responses.GET, URL + "/v1/models", json={"data": []})
    proxies = {"https": "http://proxy.corp:3128"}
    transport = RequestsTransport(verify="/etc/ca.pem", cert=("c.pem", "k.pem"), proxies=proxies)
    response = _send(transport, read_timeout_s=7.5)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.read() == b'{"data": []}'  # type: ignore[attr-defined]
    sent = mocked.calls[0].request.req_kwargs
    assert sent["verify"] == "/etc/ca.pem"
    assert sent["cert"] == ("c.pem", "k.pem")
    assert sent["proxies"]["https"] == "http://proxy.corp:3128"
    assert sent["timeout"] == (2, 7.5)
    assert "verify='/etc/ca.pem'" in repr(transport)


def test_a_session_passed_in_keeps_its_settings_and_stays_open(
    mocked: responses.RequestsMock,
) -> None:
    mocked.add(responses.GET, URL + "/v1/models", json={"data": []})
    session = requests.Session()
    session.verify = False
    session.headers["X-Corp"] = "1"
    transport = RequestsTransport(session)
    assert transport.session is session
    _send(transport)
    call = mocked.calls[0]
    assert call.request.req_kwargs["verify"] is False
    assert call.request.headers["X-Corp"] == "1"
    assert call.request.headers["Accept"] == "application/json"
    transport.close()  # not ours to close: the session still works
    _send(transport)
    assert len(mocked.calls) == 2


def test_headers_are_lower_cased_and_redirects_not_followed(
    mocked: responses.RequestsMock,
) -> None:
    mocked.add(
        responses.GET,
        URL + "/v1/models",
        status=302,
        headers={"Location": URL + "/elsewhere", "Retry-After": "3"},
    )
    response = _send(RequestsTransport())
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert response.headers["retry-after"] == "3"  # type: ignore[attr-defined]
    assert len(mocked.calls) == 1


# ------------------------------------------------------------ errors are lmstrix errors


def test_ssl_error_is_a_clear_connection_error(mocked: responses.RequestsMock) -> None:
    cause = ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
    err = requests.exceptions.SSLError(cause)
    mocked.add(responses.GET, URL + "/v1/models", body=err)
    with pytest.raises(lmstrix.APIConnectionError) as info:
        _send(RequestsTransport())
    message = str(info.value)
    assert "TLS/SSL" in message
    assert URL in message
    assert "self-signed" in message
    assert "verify=" in message
    assert info.value.sent is False  # type: ignore[attr-defined]
    assert not isinstance(info.value, lmstrix.APITimeoutError)


@pytest.mark.parametrize(
    ("error", "timeout", "sent"),
    [
        (requests.exceptions.ConnectTimeout("connect"), True, False),
        (requests.exceptions.ReadTimeout("read"), True, True),
        (requests.exceptions.ProxyError("proxy refused"), False, False),
        (requests.exceptions.ChunkedEncodingError("cut"), False, True),
        (requests.exceptions.InvalidURL("bad url"), False, True),
    ],
)
def test_request_errors_are_mapped(
    mocked: responses.RequestsMock, error: Exception, timeout: bool, sent: bool
) -> None:
    mocked.add(responses.GET, URL + "/v1/models", body=error)
    with pytest.raises(lmstrix.APIConnectionError) as info:
        _send(RequestsTransport())
    assert isinstance(info.value, lmstrix.APITimeoutError) is timeout
    assert info.value.sent is sent  # type: ignore[attr-defined]
    assert URL in str(info.value)
    assert isinstance(info.value.__cause__, requests.exceptions.RequestException)


def test_refused_connection_is_the_friendly_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    transport = RequestsTransport()
    with pytest.raises(lmstrix.APIConnectionError) as info:
        transport.request("GET", url + "/v1/models", headers={}, body=None, timeout=T)
    assert "connection refused" in str(info.value)
    assert "lms server start" in str(info.value)
    assert info.value.sent is False  # type: ignore[attr-defined]
    transport.close()


def test_token_never_reaches_logs_or_errors(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    token = "sk-lm-Zz9:TOPSECRETTOPSECRET"
    mocked.add(responses.GET, URL + "/v1/models", body=requests.exceptions.ConnectionError("x"))
    with Client(URL, api_token=token, transport=RequestsTransport(), max_retries=0) as client:
        with pytest.raises(lmstrix.APIConnectionError) as info:
            client.list_models()
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {token}"
    assert "TOPSECRET" not in caplog.text
    assert "TOPSECRET" not in str(info.value)


# ------------------------------------------------------------ real sockets


def test_session_reuses_one_connection(sim: FakeLMStudio) -> None:
    transport = RequestsTransport(pool_maxsize=4)
    with Client(sim.base_url, transport=transport) as client:
        for _ in range(5):
            client.chat("acme/chat-7b", "What is 2+3?")
        client.stream_chat("acme/chat-7b", "What is 2+3?").text()
        pools = transport.session.get_adapter(sim.base_url).poolmanager.pools
        # RecentlyUsedContainer refuses plain iteration
        assert sum(pools[key].num_connections for key in pools.keys()) == 1  # noqa: SIM118


def test_stream_arrives_in_pieces_and_can_be_read_again(sim: FakeLMStudio) -> None:
    transport = RequestsTransport()
    body = _chat_body("Tell me about rivers and lakes")
    response = transport.request(
        "POST",
        sim.base_url + "/v1/chat/completions",
        headers={"Content-Type": "application/json"},
        body=body,
        timeout=T,
        stream=True,
    )
    pieces = list(response.iter_bytes())
    assert len(pieces) > 1
    assert b"".join(pieces).rstrip().endswith(b"data: [DONE]")
    assert list(response.iter_bytes()) == []  # read to the end: nothing more
    response.close()
    transport.close()


def test_cut_stream_raises_from_iter_bytes(sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="drop_mid_stream", after_chunks=2))
    transport = RequestsTransport()
    response = transport.request(
        "POST",
        sim.base_url + "/v1/chat/completions",
        headers={"Content-Type": "application/json"},
        body=_chat_body("Tell me a long story"),
        timeout=T,
        stream=True,
    )
    pieces = response.iter_bytes()
    assert next(pieces)
    with pytest.raises(lmstrix.APIConnectionError) as info:
        list(pieces)
    assert info.value.sent is True  # type: ignore[attr-defined]
    transport.close()


def test_stream_read_timeout_is_a_timeout(sim: FakeLMStudio) -> None:
    sim.inject(Fault(path="/v1/chat/completions", kind="delay", delay_s=1.0))
    with Client(
        sim.base_url, transport=RequestsTransport(), timeout=Timeout(1, 0.2, 1), max_retries=0
    ) as client:
        with pytest.raises(lmstrix.APITimeoutError):
            client.stream_chat("acme/chat-7b", "hi")
