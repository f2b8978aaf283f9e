"""User settings: ``UserSettings`` and ``lmstrix config set|get|unset|list`` on both front ends,
and ``lmstrix chat`` with no model using ``default-model``."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path
from typing import Iterator, List

import pytest
from _cli_helpers import Entry, front_ends, run_cli

from lmstrix.errors import ConfigError
from lmstrix.registry import UserSettings
from lmstrix.testing import FakeLMStudio, SimModel

FRONT_ENDS = front_ends()


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=[SimModel("acme/small-8k", 8192)]) as server:
        yield server


# -- the library --------------------------------------------------------------------


def test_settings_live_beside_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSTRIX_HOME", str(tmp_path / "home"))
    assert UserSettings().path == tmp_path / "home" / "settings.json"
    monkeypatch.setenv("LMSTRIX_REGISTRY", str(tmp_path / "elsewhere" / "reg.json"))
    assert UserSettings().path == tmp_path / "elsewhere" / "settings.json"
    given = UserSettings.beside(tmp_path / "x" / "registry.json")
    assert given.path == tmp_path / "x" / "settings.json"
    assert UserSettings.beside(None).path == UserSettings().path
    assert "settings.json" in repr(given)


def test_set_get_unset_values(tmp_path: Path) -> None:
    settings = UserSettings(tmp_path / "deep" / "settings.json")
    assert settings.get("default-model") is None and settings.values() == {}
    assert not settings.path.exists()  # nothing written by reading
    settings.set("default-model", "  acme/small-8k ")
    assert settings.get("default-model") == "acme/small-8k"
    doc = json.loads(settings.path.read_text(encoding="utf-8"))
    assert doc == {"default-model": "acme/small-8k"}
    assert UserSettings(settings.path).values() == {"default-model": "acme/small-8k"}
    assert settings.unset("default-model") is True
    assert settings.unset("default-model") is False
    assert settings.get("default-model") is None


def test_unknown_names_and_empty_values_are_refused(tmp_path: Path) -> None:
    settings = UserSettings(tmp_path / "settings.json")
    with pytest.raises(ConfigError, match="default-model"):
        settings.get("default_model")
    with pytest.raises(ConfigError, match="the settings are: default-model"):
        settings.set("colour", "blue")
    with pytest.raises(ConfigError, match="needs a value"):
        settings.set("default-model", " ")


def test_settings_of_a_newer_version_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"future-thing": [1, 2], "default-model": "a"}), encoding="utf-8")
    settings = UserSettings(path)
    assert settings.values() == {"default-model": "a"}
    settings.set("default-model", "b")
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "default-model": "b",
        "future-thing": [1, 2],
    }


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_damaged_file_is_reported_not_overwritten(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    settings = UserSettings(path)
    with pytest.raises(ConfigError, match="fix it or delete it"):
        settings.get("default-model")
    with pytest.raises(ConfigError):
        settings.set("default-model", "x")
    assert path.read_bytes() == content


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="needs POSIX permissions")
def test_an_unwritable_folder_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot write"):
            UserSettings(folder / "settings.json").set("default-model", "x")
    finally:
        folder.chmod(0o700)


def test_a_file_in_place_of_the_folder_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot write"):
        UserSettings(tmp_path / "plain" / "settings.json").set("default-model", "x")


def test_a_folder_in_place_of_the_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "settings.json").mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        UserSettings(tmp_path / "settings.json").get("default-model")


def test_threads_setting_at_once_leave_a_valid_file(tmp_path: Path) -> None:
    settings = UserSettings(tmp_path / "settings.json")
    errors: List[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(5):
                settings.set("default-model", f"model-{i}-{j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    value = settings.get("default-model")
    assert value is not None and value.endswith("-4")


# -- the command line ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "entry"), FRONT_ENDS)
def test_config_commands(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, entry: Entry
) -> None:
    reg = ["--registry", str(tmp_path / name / "registry.json")]
    code, out, err = run_cli(capsys, entry, *reg, "config", "get", "default-model")
    assert code == 1 and out == "" and "default-model is not set" in err
    code, out, _ = run_cli(capsys, entry, *reg, "config", "set", "default-model", "acme/x")
    assert code == 0 and out.strip() == "default-model = acme/x"
    assert (tmp_path / name / "settings.json").exists()  # beside --registry
    code, out, _ = run_cli(capsys, entry, *reg, "config", "get", "default-model")
    assert code == 0 and out == "acme/x\n"
    code, out, err = run_cli(capsys, entry, *reg, "config", "list")
    assert code == 0 and "default-model  acme/x" in out and "settings.json" in err
    code, out, _ = run_cli(capsys, entry, *reg, "--json", "config", "list")
    doc = json.loads(out)
    assert doc["settings"] == {"default-model": "acme/x"}
    assert doc["file"] == str(tmp_path / name / "settings.json")
    code, out, _ = run_cli(capsys, entry, *reg, "--json", "config", "get", "default-model")
    assert code == 0 and json.loads(out)["value"] == "acme/x"
    code, out, _ = run_cli(capsys, entry, *reg, "config", "unset", "default-model")
    assert code == 0 and out.strip() == "default-model unset"
    code, out, _ = run_cli(capsys, entry, *reg, "--json", "config", "unset", "default-model")
    assert code == 0 and json.loads(out)["was_set"] is False
    code, out, _ = run_cli(capsys, entry, *reg, "config", "unset", "default-model")
    assert out.strip() == "default-model was not set"
    code, out, _ = run_cli(capsys, entry, *reg, "--json", "config", "get", "default-model")
    assert code == 1 and json.loads(out)["value"] is None
    code, out, _ = run_cli(capsys, entry, *reg, "--json", "config", "set", "default-model", "b")
    assert code == 0 and json.loads(out)["value"] == "b"


@pytest.mark.parametrize(("name", "entry"), FRONT_ENDS)
@pytest.mark.parametrize(
    "args",
    [
        ["config", "get", "colour"],
        ["config", "set", "colour", "blue"],
        ["config", "unset", "default_model"],
        ["config", "set", "default-model", ""],
        ["config"],
    ],
)
def test_config_bad_usage_exits_2(
    capsys: pytest.CaptureFixture[str], name: str, entry: Entry, args: List[str]
) -> None:
    code, out, err = run_cli(capsys, entry, *args)
    assert code == 2 and out == ""
    if len(args) > 2 and args[2] != "default-model":
        assert "the settings are: default-model" in err


@pytest.mark.parametrize(("name", "entry"), FRONT_ENDS)
def test_chat_without_a_model_uses_the_default(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sim: FakeLMStudio,
    name: str,
    entry: Entry,
) -> None:
    server = ["--server", sim.base_url]
    monkeypatch.setattr("sys.stdin", io.StringIO("What is 2+2?"))
    code, out, err = run_cli(capsys, entry, *server, "chat")
    assert code == 2 and out == ""
    assert "give a model or run lmstrix config set default-model KEY" in err
    assert run_cli(capsys, entry, "config", "set", "default-model", "acme/small-8k")[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("What is 2+2?"))
    code, out, err = run_cli(capsys, entry, *server, "-v", "chat")
    assert code == 0 and out.strip() == "4"
    assert "using the default model acme/small-8k" in err
    body = sim.received[-1].body
    assert isinstance(body, dict) and body["model"] == "acme/small-8k"
    monkeypatch.setattr("sys.stdin", io.StringIO("What is 2+3?"))
    code, out, err = run_cli(capsys, entry, *server, "chat", "-f", "-")
    assert code == 0 and out.strip() == "5" and "default model" not in err  # said with -v only
