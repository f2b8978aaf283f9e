"""The lite CLI as users run it: ``python -m lmstrix`` in a subprocess, and vendored.

The vendored scenario copies nothing but the ``lmstrix/`` package into an empty folder
and runs ``python -S -m lmstrix`` there: no site-packages at all, so any import outside
the standard library would fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator

import pytest

import lmstrix
from lmstrix.testing import FakeLMStudio, SimModel

REPO = Path(__file__).resolve().parents[1]
FLEET = [SimModel("acme/small-8k", 8192), SimModel("acme/limited-16k", 16384, 12_000, 9_000)]


@pytest.fixture(scope="module")
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=FLEET) as server:
        yield server


@pytest.fixture
def vendored(tmp_path: Path) -> Path:
    """A folder holding only a copy of the lmstrix package."""
    folder = tmp_path / "vendored"
    folder.mkdir()
    source = Path(lmstrix.__file__).resolve().parent
    shutil.copytree(source, folder / "lmstrix", ignore=shutil.ignore_patterns("__pycache__"))
    assert sorted(p.name for p in folder.iterdir()) == ["lmstrix"]
    return folder


def _env(tmp_path: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LMSTRIX_"))}
    env["LMSTRIX_HOME"] = str(tmp_path / "home")
    return env


def _lite(
    folder: Path, env: Dict[str, str], *args: str, isolated: bool = True
) -> subprocess.CompletedProcess[str]:
    flags = ["-S"] if isolated else []
    return subprocess.run(
        [sys.executable, *flags, "-m", "lmstrix", *args],
        cwd=str(folder),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_vendored_lite_cli_runs_the_whole_scenario_without_site_packages(
    vendored: Path, sim: FakeLMStudio, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    base = ["--server", sim.base_url, "--registry", str(tmp_path / "registry.json")]

    probe = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "import sys, lmstrix; print(lmstrix.__file__); "
            "print(any('site-packages' in p for p in sys.path))",
        ],
        cwd=str(vendored),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    where, has_site = probe.stdout.split()
    assert Path(where).resolve().parent == (vendored / "lmstrix").resolve()
    assert has_site == "False"

    scan = _lite(vendored, env, *base, "--json", "scan")
    assert scan.returncode == 0, scan.stderr
    assert json.loads(scan.stdout)["added"] == ["acme/limited-16k", "acme/small-8k"]

    listed = _lite(vendored, env, *base, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    models = json.loads(listed.stdout)["models"]
    assert [m["key"] for m in models] == ["acme/small-8k", "acme/limited-16k"]

    tested = _lite(vendored, env, *base, "--json", "test", "acme/limited-16k", "--trials", "1")
    assert tested.returncode == 0, tested.stderr
    (report,) = json.loads(tested.stdout)["models"]
    assert report["status"] == "done" and report["loads"] >= 1
    assert "probe" in tested.stderr  # progress on stderr, not stdout

    chat = _lite(vendored, env, *base, "chat", "acme/small-8k", "What is 2+2?")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() == "4"

    chat_json = _lite(vendored, env, *base, "--json", "chat", "acme/small-8k", "What is 1+2?")
    assert json.loads(chat_json.stdout)["text"].strip() == "3"

    shown = _lite(vendored, env, *base, "show", "acme/limited-16k")
    assert shown.returncode == 0 and "probe history" in shown.stdout


def test_vendored_lite_cli_help_and_usage_errors(vendored: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    helped = _lite(vendored, env, "--help")
    assert helped.returncode == 0
    for command in (
        "doctor",
        "scan",
        "list",
        "show",
        "test",
        "load",
        "unload",
        "ps",
        "chat",
        "prompt",
        "batch",
        "demo",
        "simulate",
    ):
        assert command in helped.stdout
    assert _lite(vendored, env, "test", "--min", "x").returncode == 2
    bad_file = _lite(vendored, env, "chat", "m", "-f", str(tmp_path / "missing.txt"))
    assert bad_file.returncode == 2
    assert "cannot read" in bad_file.stderr


def test_python_m_lmstrix_from_the_repo(sim: FakeLMStudio, tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["PYTHONPATH"] = str(REPO)
    result = _lite(tmp_path, env, "--server", sim.base_url, "--json", "ps", isolated=False)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["server"] == sim.base_url
    assert all({"id", "key", "context_length", "status"} <= set(i) for i in doc["instances"])


def test_run_falls_back_to_the_lite_cli_without_click(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lmstrix.cli import run

    monkeypatch.setitem(sys.modules, "click", None)  # `import click` fails
    monkeypatch.delitem(sys.modules, "lmstrix.cli.click_app", raising=False)
    monkeypatch.setattr(sys, "argv", ["lmstrix", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 0
    assert "usage: lmstrix" in capsys.readouterr().out  # argparse's help, not click's


def test_run_does_not_hide_other_import_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from lmstrix.cli import run

    monkeypatch.setitem(sys.modules, "lmstrix.cli.click_app", None)
    with pytest.raises(ImportError):
        run()


def test_run_uses_click_when_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("click")
    from lmstrix.cli import run

    monkeypatch.setattr(sys, "argv", ["lmstrix", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 0
    assert "Usage: lmstrix" in capsys.readouterr().out  # click's help


def test_lite_module_imports_nothing_outside_the_standard_library(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from lmstrix.cli import main\n"
        "main(['--help'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'requests'))\n"
        "print(bad)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
