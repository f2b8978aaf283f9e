"""Finding the local LM Studio from the port file it writes, when no server is given."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict

import pytest
from _cli_helpers import Entry, front_ends, run_cli

from lmstrix import Client
from lmstrix._discovery import discover_server, lmstudio_home, server_files
from lmstrix.config import resolve_base_url, servers_from_env
from lmstrix.testing import FakeLMStudio


def _write(path: Path, content: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _home_env(home: Path) -> Dict[str, str]:
    return {"LMSTUDIO_HOME": str(home)}


def test_port_file_gives_the_server(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    info = _write(tmp_path / ".internal" / "http-server.json", {"port": 41343, "pid": 7})
    with caplog.at_level(logging.INFO, logger="lmstrix"):
        assert resolve_base_url(None, _home_env(tmp_path)) == "http://localhost:41343"
    assert f"using the LM Studio server found in {info}: http://localhost:41343" in caplog.text


def test_what_is_configured_wins(tmp_path: Path) -> None:
    _write(tmp_path / ".internal" / "http-server.json", {"port": 41343})
    env = {**_home_env(tmp_path), "LMSTRIX_SERVER": "http://gpu:1234"}
    assert resolve_base_url(None, env) == "http://gpu:1234"
    assert resolve_base_url("http://arg:9", env) == "http://arg:9"
    assert servers_from_env(env) == ["http://gpu:1234"]


def test_no_file_means_the_default(tmp_path: Path) -> None:
    assert resolve_base_url(None, _home_env(tmp_path)) == "http://localhost:1234"
    assert discover_server({}) is None  # no home at all: nothing is read
    assert server_files({}) == []


def test_the_config_file_is_the_second_choice(tmp_path: Path) -> None:
    _write(tmp_path / ".internal" / "http-server-config.json", {"port": 4321, "cors": False})
    found = discover_server(_home_env(tmp_path))
    assert found is not None and found.url == "http://localhost:4321"
    assert found.path.endswith("http-server-config.json")


@pytest.mark.parametrize(
    "content",
    ["{not json", [1234], {"port": "1234"}, {"port": 0}, {"port": 70000}, {"port": True}, {}],
)
def test_a_malformed_file_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: Any
) -> None:
    bad = _write(tmp_path / ".internal" / "http-server.json", content)
    _write(tmp_path / ".internal" / "http-server-config.json", {"port": 5555})
    with caplog.at_level(logging.WARNING, logger="lmstrix"):
        assert resolve_base_url(None, _home_env(tmp_path)) == "http://localhost:5555"
    assert f"ignoring {bad}" in caplog.text


def test_an_unreadable_file_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / ".internal" / "http-server.json").mkdir(parents=True)  # a folder, not a file
    with caplog.at_level(logging.WARNING, logger="lmstrix"):
        assert discover_server(_home_env(tmp_path)) is None
    assert "cannot be read" in caplog.text


def test_the_home_is_found_the_way_lm_studio_finds_it(tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    env = {"HOME": str(user)}
    assert lmstudio_home(env) == str(user / ".lmstudio")
    (user / ".cache" / "lm-studio").mkdir(parents=True)
    assert lmstudio_home(env) == str(user / ".cache" / "lm-studio")
    elsewhere = tmp_path / "big-disk" / "lmstudio"
    _write(user / ".lmstudio-home-pointer", f"{elsewhere}\n")
    assert lmstudio_home(env) == str(elsewhere)
    _write(elsewhere / ".internal" / "http-server.json", {"port": 1235})
    assert resolve_base_url(None, env) == "http://localhost:1235"
    assert lmstudio_home({"USERPROFILE": str(user), "LMSTUDIO_HOME": "rel"}).endswith("rel")


def test_the_lms_override_file_comes_first(tmp_path: Path) -> None:
    pinned = _write(tmp_path / "pinned.json", {"port": 2222})
    _write(tmp_path / "home" / ".internal" / "http-server.json", {"port": 3333})
    env = {**_home_env(tmp_path / "home"), "LMS_API_SERVER_INFO_PATH": str(pinned)}
    assert server_files(env)[0] == str(pinned)
    assert resolve_base_url(None, env) == "http://localhost:2222"


def test_a_client_with_no_server_uses_the_found_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeLMStudio
) -> None:
    _write(tmp_path / ".internal" / "http-server.json", {"port": fake.port})
    monkeypatch.setenv("LMSTUDIO_HOME", str(tmp_path))
    with Client() as client:
        assert client.base_url == f"http://localhost:{fake.port}"
        assert client.list_models()


@pytest.mark.parametrize(("name", "entry"), front_ends())
def test_the_cli_says_which_server_it_found(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fake: FakeLMStudio,
    name: str,
    entry: Entry,
) -> None:
    info = _write(tmp_path / ".internal" / "http-server.json", {"port": fake.port})
    monkeypatch.setenv("LMSTUDIO_HOME", str(tmp_path))
    url = f"http://localhost:{fake.port}"
    code, out, err = run_cli(capsys, entry, "ps", "--json")
    assert code == 0, err
    assert json.loads(out)["server"] == url
    assert err.count(f"using the LM Studio server found in {info}: {url}") == 1
    code, out, err = run_cli(capsys, entry, "-q", "ps")
    assert code == 0 and "using the LM Studio server" not in err
    code, out, err = run_cli(capsys, entry, "--server", fake.base_url, "ps")
    assert code == 0 and "using the LM Studio server" not in err
