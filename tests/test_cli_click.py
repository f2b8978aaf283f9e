"""The click front end (extra ``[cli]``): same commands, flags, JSON and exit codes as lite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

pytest.importorskip("click")

from lmstrix.cli import click_app
from lmstrix.cli import main as lite_main
from lmstrix.testing import FakeLMStudio, SimModel

REPO = Path(__file__).resolve().parents[1]
FLEET = [
    SimModel("acme/small-8k", 8192),
    SimModel("acme/limited-16k", 16384, 12_000, 9_000),
    SimModel("acme/autofit-32k", 32768, 20_000, 15_000, auto_fit=True),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=FLEET) as server:
        yield server


def _both(
    capsys: pytest.CaptureFixture[str], *args: str
) -> Tuple[Tuple[int, str, str], Tuple[int, str, str]]:
    results = []
    for entry in (lite_main, click_app.main):
        capsys.readouterr()
        code = entry(list(args))
        out, err = capsys.readouterr()
        results.append((code, out, err))
    return results[0], results[1]


def _click(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str, str]:
    capsys.readouterr()
    code = click_app.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_click_and_lite_print_the_same_json(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    base = ["--server", sim.base_url, "--registry", str(tmp_path / "r.json")]
    code, out, err = _click(capsys, *base, "--json", "test", "acme/limited-16k", "--trials", "1")
    assert code == 0, err
    report = json.loads(out)["models"][0]
    assert report["status"] == "done" and report["loads"] >= 1
    library = tmp_path / "p.json"
    library.write_text(json.dumps({"hi": "Hi {{who}}"}), encoding="utf-8")
    sim.preload("acme/small-8k")
    assert _click(capsys, *base, "scan")[0] == 0
    for command in (
        ["list"],
        ["show", "acme/limited-16k"],
        ["ps"],
        ["scan"],
        ["test", "acme/limited-16k"],  # done already: the skipped report, no timing
        ["prompt", "render", str(library), "hi", "--var", "who=you"],
    ):
        lite, click = _both(capsys, *base, "--json", *command)
        assert lite[0] == click[0] == 0, (command, lite[2], click[2])
        assert json.loads(lite[1]) == json.loads(click[1]), command
    lite, click = _both(capsys, *base, "--json", "doctor")
    assert json.loads(lite[1]) == json.loads(click[1])


def test_global_options_after_the_command(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    registry = str(tmp_path / "r.json")
    code, out, _ = _click(
        capsys, "list", "--server", sim.base_url, "--registry", registry, "--json"
    )
    assert code == 0
    assert json.loads(out)["server"] == sim.base_url
    code, out, err = _click(
        capsys, "--server", sim.base_url, "prompt", "--json", "render", "/no/such.json", "x"
    )
    assert code == 2 and out == ""
    code, out, err = _click(
        capsys,
        "-q",
        "--server",
        sim.base_url,
        "test",
        "acme/small-8k",
        "--trials",
        "1",
        "--registry",
        registry,
    )
    assert code == 0 and err == ""


def test_chat_through_click(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    library = tmp_path / "p.json"
    library.write_text(json.dumps({"add": "What is {{a}}+{{b}}?"}), encoding="utf-8")
    code, out, err = _click(
        capsys,
        "--server",
        sim.base_url,
        "chat",
        "acme/small-8k",
        "--prompts",
        str(library),
        "--template",
        "add",
        "--var",
        "a=2",
        "--var",
        "b=2",
        "--stream",
        "--stats",
    )
    assert code == 0, err
    assert out.strip() == "4" and "tokens/s" in err
    code, out, _ = _click(
        capsys,
        "--server",
        sim.base_url,
        "--json",
        "chat",
        "acme/small-8k",
        "What is 2+5?",
        "--no-stream",
        "--max-tokens",
        "8",
        "--temperature",
        "0",
        "--system",
        "Be brief.",
    )
    doc: Dict[str, Any] = json.loads(out)
    assert code == 0 and doc["text"].strip() == "7"


def test_load_unload_through_click(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    base = ["--server", sim.base_url, "--registry", str(tmp_path / "r.json")]
    code, out, _ = _click(capsys, *base, "--json", "load", "acme/autofit-32k", "--context", "30000")
    assert code == 0 and json.loads(out)["auto_fitted"] is True
    code, _, err = _click(capsys, *base, "load", "acme/small-8k", "--context", "tested")
    assert code == 1 and "lmstrix test acme/small-8k" in err
    code, out, _ = _click(capsys, *base, "unload", "--all")
    assert code == 0 and "unloaded" in out
    assert _click(capsys, *base, "unload")[0] == 2


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([], 2),
        (["--help"], 0),
        (["test", "--help"], 0),
        (["no-such-command"], 2),
        (["list", "--no-such-option"], 2),
        (["test", "--min", "lots"], 2),
        (["simulate", "--api", "v9"], 2),
        (["batch", "in.jsonl"], 2),  # -o and -m are required
        (["prompt"], 2),
        (["prompt", "render", "/no/such/file.json", "x"], 2),
    ],
)
def test_click_exit_codes(capsys: pytest.CaptureFixture[str], args: List[str], code: int) -> None:
    assert _click(capsys, *args)[0] == code


def test_click_unknown_model_and_server_down(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    code, out, err = _click(capsys, "--server", sim.base_url, "chat", "acme/smal", "hi")
    assert code == 1 and out == "" and "did you mean" in err
    code, _, err = _click(capsys, "--server", "http://127.0.0.1:9", "ps")
    assert code == 1 and "http://127.0.0.1:9" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_in_click_parsing_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(command: str, **arguments: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(click_app, "_run", interrupted)
    assert _click(capsys, "ps")[0] == 130


def test_click_and_lite_have_the_same_commands_and_options() -> None:
    import argparse

    from lmstrix.cli._lite import COMMANDS, build_parser

    def click_commands(group: Any, prefix: str = "") -> Dict[str, Any]:
        found: Dict[str, Any] = {}
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                found.update(click_commands(command, f"{prefix}{name} "))
            else:
                found[f"{prefix}{name}"] = command
        return found

    clicks = click_commands(click_app.cli)
    assert set(clicks) == set(COMMANDS)

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in clicks.items():
        lite = subs.choices[name.split()[0]]
        if " " in name:
            inner = next(a for a in lite._actions if isinstance(a, argparse._SubParsersAction))
            lite = inner.choices[name.split()[1]]
        lite_flags = {s for a in lite._actions for s in a.option_strings} - {"-h", "--help"}
        click_flags = {
            s for p in command.params for s in [*p.opts, *p.secondary_opts] if s.startswith("-")
        }
        assert lite_flags == click_flags, name


def test_shell_completion_script(tmp_path: Path) -> None:
    import importlib.util

    click8 = importlib.util.find_spec("click.shell_completion") is not None
    env = dict(os.environ, _LMSTRIX_COMPLETE="bash_source" if click8 else "source_bash")
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", "from lmstrix.cli.click_app import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == (0 if click8 else 1), result.stderr  # click 7 exits 1
    assert "_lmstrix_completion" in result.stdout


def test_console_entry_point_in_a_subprocess(sim: FakeLMStudio, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSTRIX_")}
    env.update(LMSTRIX_HOME=str(tmp_path), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from lmstrix.cli import run; sys.argv[0] = 'lmstrix'; run()",
            "list",
            "--server",
            sim.base_url,
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [m["key"] for m in json.loads(result.stdout)["models"]] == [m.key for m in FLEET]


def test_demo_and_simulate_through_click(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    code, out, _ = _click(capsys, "demo", "--trials", "1", "--json")
    assert code == 0
    assert json.loads(out)["answer"].strip() == "5"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        code, _, err = _click(capsys, "simulate", "--port", str(taken.getsockname()[1]))
    assert code == 1 and "cannot listen" in err


def test_verbose_before_and_after_the_command_add_up(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio
) -> None:
    code, _, err = _click(capsys, "-v", "--server", "http://127.0.0.1:9", "ps", "-v")
    assert code == 1
    assert "Traceback" in err and "debug" in err.lower()  # -vv: debug logging
