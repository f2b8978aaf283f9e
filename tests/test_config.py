"""Settings resolution: argument > environment > default; URL normalisation."""

from __future__ import annotations

import doctest

import pytest

import lmstrix.config as config
from lmstrix import ConfigError, Timeout
from lmstrix.config import normalize_base_url, resolve_base_url, resolve_token


def test_doctests() -> None:
    assert doctest.testmod(config).failed == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("localhost:1234", "http://localhost:1234"),
        ("http://127.0.0.1:1234/", "http://127.0.0.1:1234"),
        ("http://127.0.0.1:1234/api/v1/", "http://127.0.0.1:1234"),
        ("https://Host.Example", "https://host.example"),
        ("http://[::1]:1234/v1", "http://[::1]:1234"),
    ],
)
def test_normalize(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["", "   ", "ftp://x:1", "http://", "http://host:99999"])
def test_normalize_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        normalize_base_url(bad)


def test_resolve_base_url_order() -> None:
    env = {"LMSTRIX_SERVER": "http://env:1"}
    assert resolve_base_url("http://arg:2", env) == "http://arg:2"
    assert resolve_base_url(None, env) == "http://env:1"
    assert resolve_base_url(None, {}) == "http://localhost:1234"


def test_resolve_token_order() -> None:
    env = {"LM_API_TOKEN": "a", "LMSTUDIO_API_TOKEN": "b"}
    assert resolve_token("x", env) == "x"
    assert resolve_token(None, env) == "a"
    assert resolve_token(None, {"LMSTUDIO_API_TOKEN": "b"}) == "b"
    assert resolve_token(None, {}) is None


def test_timeout_coerce() -> None:
    assert Timeout.coerce(None) == Timeout()
    t = Timeout(1, 2, 3)
    assert Timeout.coerce(t) is t
    assert Timeout.coerce(30).read_s == 30.0
    assert Timeout.coerce(2).connect_s == 2.0
    with pytest.raises(ConfigError):
        Timeout.coerce("soon")
    with pytest.raises(ConfigError):
        Timeout(connect_s=0)
    with pytest.raises(ConfigError):
        Timeout(read_s=True)
    for bad in (float("nan"), float("inf")):  # a socket cannot wait for either
        with pytest.raises(ConfigError, match="finite"):
            Timeout.coerce(bad)


def test_lmstrix_server_may_list_several_servers() -> None:
    from lmstrix.config import resolve_base_url, servers_from_env

    env = {"LMSTRIX_SERVER": "http://a:1234, http://b:1235/,"}
    assert servers_from_env(env) == ["http://a:1234", "http://b:1235"]
    assert resolve_base_url(None, env) == "http://a:1234"  # a single client: the first
    assert servers_from_env({}) == ["http://localhost:1234"]
    with pytest.raises(ConfigError, match="http://"):
        servers_from_env({"LMSTRIX_SERVER": "http://a:1, ftp://b"})
