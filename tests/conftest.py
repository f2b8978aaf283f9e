"""Shared fixtures: a simulated LM Studio on loopback, and a clean environment."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from _sim_http import Http

from lmstrix.registry import Registry
from lmstrix.testing import FakeLMStudio

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
_LMSTRIX_VARS = (
    "LMSTRIX_SERVER",
    "LMSTRIX_REGISTRY",
    "LMSTRIX_HOME",
    "LM_API_TOKEN",
    "LMSTUDIO_API_TOKEN",
    "LMS_API_SERVER_INFO_PATH",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No proxy or lmstrix setting from the developer's shell leaks into a test."""
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    for name in _LMSTRIX_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LMSTRIX_HOME", str(tmp_path_factory.mktemp("lmstrix-home")))
    # No LM Studio of the developer's machine is found by server discovery.
    monkeypatch.setenv("LMSTUDIO_HOME", str(tmp_path_factory.mktemp("lmstudio-home")))


@pytest.fixture
def fake() -> Iterator[FakeLMStudio]:
    """A simulated LM Studio 0.4 (v1 API) with the demo fleet."""
    with FakeLMStudio() as server:
        yield server


@pytest.fixture
def web(fake: FakeLMStudio) -> Iterator[Http]:
    """A plain ``http.client`` JSON client on the test's simulator (``fake``)."""
    client = Http(fake)
    yield client
    client.close()


@pytest.fixture
def reg_path(tmp_path: Path) -> Path:
    """Where a test's registry file goes (its folder does not exist yet)."""
    return tmp_path / "data" / "registry.json"


@pytest.fixture
def reg(reg_path: Path) -> Registry:
    """A registry at ``reg_path`` (the default server, ``$LMSTRIX_SERVER`` being unset)."""
    return Registry(reg_path)
