"""The option table: one declaration per option, rendered alike by argparse and click.

Also the usage errors both front ends must share: a bad ``--timeout`` or ``--server``,
``--min`` above ``--max``; a closed stdout; messages naming flags; load-error advice.
"""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from _cli_helpers import Entry, front_ends
from _cli_helpers import run_cli as _run

import lmstrix
from lmstrix.cli import main as lite_main
from lmstrix.cli._checks import server_url
from lmstrix.cli._lite import build_parser
from lmstrix.cli._options import COMMANDS, GLOBAL_OPTIONS, FromLibrary, Option
from lmstrix.cli._session import Session, run_command
from lmstrix.testing import FakeLMStudio, Fault, SimModel

REPO = Path(__file__).resolve().parents[1]
FLEET = [SimModel("acme/small-8k", 8192), SimModel("acme/limited-16k", 16384, 12_000, 9_000)]


ENTRIES = front_ends()


@pytest.fixture(scope="module")
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=FLEET) as server:
        yield server


def _lite_parsers() -> Dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    found: Dict[str, argparse.ArgumentParser] = {"": parser}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[prefix + name] = sub
                    walk(sub, f"{prefix}{name} ")

    walk(parser, "")
    return found


def _expected(option: Option) -> Any:
    default = option.parsed_default()
    return list(default) if option.multiple else default


def test_argparse_renders_every_option_of_the_table() -> None:
    parsers = _lite_parsers()
    for command in COMMANDS:
        actions = {a.dest: a for a in reversed(parsers[command.name]._actions)}
        for option in command.options:
            action = actions[option.dest]  # the first one (--stream, not --no-stream)
            flags = {
                flag
                for a in parsers[command.name]._actions
                if a.dest == option.dest
                for flag in a.option_strings
            }
            assert flags == set(option.flags), (command.name, option.dest)
            assert action.default == _expected(option), (command.name, option.dest)
            assert action.required is option.required
            assert (tuple(action.choices) if action.choices else None) == option.choices
        for argument in command.arguments:
            assert actions[argument.dest].metavar == argument.metavar


def test_click_renders_every_option_of_the_table() -> None:
    click_app = pytest.importorskip("lmstrix.cli.click_app")
    for command in COMMANDS:
        group = click_app.cli
        for word in command.name.split():
            group = group.commands[word]
        params = {p.name: p for p in group.params}
        for option in command.options:
            param = params[option.dest]
            assert set(option.flags) == {*param.opts, *param.secondary_opts}, option.dest
            default = () if option.multiple else _expected(option)
            assert param.default == default, (command.name, option.dest)
            assert param.required is option.required and param.multiple is option.multiple
            if option.choices:
                assert tuple(param.type.choices) == option.choices
        for argument in command.arguments:
            assert params[argument.dest].required is (argument.nargs == "1")
        hidden = {p.name for p in group.params if getattr(p, "hidden", False)}
        assert hidden == {o.dest for o in GLOBAL_OPTIONS}  # global options after the name


def test_command_functions_take_the_table_and_restate_no_default() -> None:
    """Each implementation takes exactly the table's names; its defaults are 'not given'."""
    import importlib

    for command in COMMANDS:
        module = importlib.import_module(f"lmstrix.cli.{command.module}")
        signature = inspect.signature(getattr(module, command.function))
        names = [a.dest for a in command.arguments] + [o.dest for o in command.options]
        params = signature.parameters
        assert set(names) <= set(params), command.name
        for name in names:
            assert params[name].default in (inspect.Parameter.empty, None, False, ()), (
                command.name,
                name,
                params[name].default,
            )


def test_library_defaults_come_from_the_library() -> None:
    search = inspect.signature(lmstrix.find_context_limit).parameters
    test = next(c for c in COMMANDS if c.name == "test")
    for option in test.options:
        if isinstance(option.default, FromLibrary):
            assert option.resolved_default() == search[option.dest].default
    timeout = next(o for o in GLOBAL_OPTIONS if o.dest == "timeout")
    assert timeout.resolved_default() == lmstrix.Timeout().read_s
    assert FromLibrary("no_such_module", "x").resolve() is None  # left out of a vendored copy


def test_help_shows_the_library_default_in_both_front_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    trials = inspect.signature(lmstrix.find_context_limit).parameters["trials"].default
    for _, entry in ENTRIES:
        code, out, _ = _run(capsys, entry, "test", "--help")
        assert code == 0 and f"limit (default {trials})" in " ".join(out.split())


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-5", "soon"])
@pytest.mark.parametrize(("front", "entry"), ENTRIES)
def test_a_bad_timeout_is_bad_usage(
    capsys: pytest.CaptureFixture[str], front: str, entry: Entry, value: str
) -> None:
    code, out, err = _run(capsys, entry, f"--timeout={value}", "list")
    assert code == 2 and out == "", front
    assert "--timeout" in err and "Traceback" not in err
    code, _, _ = _run(capsys, entry, "list", f"--timeout={value}")  # after the command too
    assert code == 2


@pytest.mark.parametrize(
    "url",
    ["not a url", "http://[::1", "ftp://x", "http://h:99999", "1234", "http://a,b:1", "http://h:0"],
)
@pytest.mark.parametrize(("front", "entry"), ENTRIES)
def test_a_bad_server_is_bad_usage(
    capsys: pytest.CaptureFixture[str], front: str, entry: Entry, url: str
) -> None:
    code, out, err = _run(capsys, entry, "--server", url, "list")
    assert code == 2 and out == "", (front, err)
    assert "--server" in err and "Traceback" not in err


def test_server_urls_that_are_fine() -> None:
    for url in ("localhost:1234", "http://[::1]:1234", "https://gpu-1.lan:8443/lm", "10.0.0.5"):
        assert server_url(url) == url


def test_a_bad_server_in_the_environment_is_bad_usage(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LMSTRIX_SERVER", "not a url")
    for _, entry in ENTRIES:
        code, _, err = _run(capsys, entry, "--registry", str(tmp_path / "r.json"), "list")
        assert code == 2 and "$LMSTRIX_SERVER" in err


@pytest.mark.parametrize(("front", "entry"), ENTRIES)
@pytest.mark.parametrize("bounds", [["--min", "9000", "--max", "4096"], ["--max", "1000"]])
def test_min_above_max_is_bad_usage(
    capsys: pytest.CaptureFixture[str],
    sim: FakeLMStudio,
    tmp_path: Path,
    front: str,
    entry: Entry,
    bounds: List[str],
) -> None:
    loads = sim.counters.loads
    code, out, err = _run(
        capsys,
        entry,
        *("--server", sim.base_url, "--registry", str(tmp_path / "r.json")),
        *("test", "acme/small-8k", *bounds),
    )
    assert code == 2 and out == "", front
    assert "--min" in err and "--max" in err and "above" in err
    assert sim.counters.loads == loads  # refused before anything was loaded


class _ClosedPipe:
    """A stdout whose reader has gone: every write fails like a closed pipe."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_stdout_ends_the_command_quietly(sim: FakeLMStudio, tmp_path: Path) -> None:
    import io

    err = io.StringIO()
    session = Session(
        server=sim.base_url,
        registry_path=str(tmp_path / "r.json"),
        stdout=_ClosedPipe(),  # type: ignore[arg-type]
        stderr=err,
    )
    assert run_command(session, "_cmd_models", "cmd_show", model="acme/small-8k") == 0
    assert err.getvalue() == ""


@pytest.mark.parametrize("command", [["show", "acme/small-8k"], ["list"], ["--json", "list"]])
def test_piping_into_a_closed_reader_exits_0_quietly(
    sim: FakeLMStudio, tmp_path: Path, command: List[str]
) -> None:
    """``lmstrix show X | head -1``: the reader is gone before lmstrix writes."""
    read, write = os.pipe()
    os.close(read)  # every write to `write` now fails with EPIPE
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSTRIX_")}
    env.update(LMSTRIX_HOME=str(tmp_path), PYTHONPATH=str(REPO))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lmstrix", "--server", sim.base_url, *command],
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_library_messages_name_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from lmstrix.errors import ContextSearchError

    def refuse(session: Session, *args: Any, **kwargs: Any) -> int:
        raise ContextSearchError("min_context (5000) must not exceed max_context (4000)")

    monkeypatch.setattr("lmstrix.cli._cmd_test.cmd_test", refuse)
    err = io.StringIO()
    assert run_command(Session(stderr=err), "_cmd_test", "cmd_test") == 1
    assert err.getvalue() == "error: --min (5000) must not exceed --max (4000)\n"


@pytest.mark.parametrize(
    ("fault", "advised"),
    [
        (Fault(path="/api/v1/models/load", kind="status", status=503, times=10), False),
        (Fault(path="/api/v1/models/load", kind="html_500", times=10), False),
        (
            Fault(
                path="/api/v1/models/load",
                kind="status",
                status=400,
                message="Model loading was stopped due to insufficient system resources.",
            ),
            True,
        ),
        (
            Fault(
                path="/api/v1/models/load",
                kind="status",
                status=500,
                message='Failed to load model "m". Error: The model has crashed without '
                "additional information. (Exit code: 18446744072635812000)",
            ),
            True,
        ),
    ],
)
def test_only_a_memory_refusal_gets_memory_advice(
    capsys: pytest.CaptureFixture[str], fault: Fault, advised: bool
) -> None:
    with FakeLMStudio(models=FLEET) as server:
        server.inject(fault)
        code, out, err = _run(
            capsys, lite_main, "--server", server.base_url, "load", "acme/small-8k"
        )
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1, err
    assert ("free memory" in err and "smaller context" in err) is advised, err
    assert ("memory" in err) is advised, err
    if not advised:
        assert "error of the server itself" in err and "try again" in err
