"""Errors as a user meets them: exit codes, one-line messages, no token, Ctrl-C and resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from lmstrix.cli import main
from lmstrix.cli._output import Output
from lmstrix.cli._session import Session, run_command
from lmstrix.registry import Registry
from lmstrix.testing import FakeLMStudio, SimModel

REPO = Path(__file__).resolve().parents[1]
TOKEN = "sk-lmstrix-s3cret-token-4242"
MODEL = "acme/slow-32k"
FLEET = [SimModel(MODEL, 32768, 21_000, 13_000), SimModel("acme/quick-8k", 8192)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "command",
    [["scan"], ["ps"], ["test", "m"], ["chat", "m", "hi"], ["load", "m"], ["show", "m"]],
)
def test_server_not_running_is_one_line_naming_the_url(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: List[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, out, err = _run(capsys, "--server", url, "--registry", str(tmp_path / "r.json"), *command)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert url in lines[0]
    assert "start LM Studio's server" in lines[0] and "lms server start" in lines[0]
    assert "Traceback" not in err


def test_server_not_running_with_verbose_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, _, err = _run(capsys, "-v", "--server", url, "--timeout", "5", "ps")
    assert code == 1
    assert "Traceback" in err and "lms server start" in err


def test_doctor_with_no_server_reports_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, out, _ = _run(
        capsys, "--server", url, "--registry", str(tmp_path / "r.json"), "--json", "doctor"
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["server"]["reachable"] is False and url in doc["server"]["error"]
    code, out, _ = _run(capsys, "--server", url, "doctor")
    assert code == 1 and f"FAIL  server {url}" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--server", "ftp://nowhere", "list"],
        ["--timeout", "soon", "list"],
        ["list", "--no-such-option"],
        ["no-such-command"],
        [],
        ["simulate", "--api", "v9"],
    ],
)
def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str], args: List[str]) -> None:
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "simulate" in out


@pytest.fixture
def locked() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=FLEET, api_token=TOKEN) as server:
        yield server


def test_a_token_is_never_echoed(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    locked: FakeLMStudio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = ["--server", locked.base_url, "--registry", str(tmp_path / "r.json")]
    seen: List[str] = []
    codes: List[int] = []
    for args in (
        [*base, "--token", TOKEN, "-vv", "doctor"],
        [*base, "--token", TOKEN, "--json", "doctor"],
        [*base, "--token", TOKEN, "-vv", "list"],
        [*base, "--token", TOKEN, "-vv", "chat", "acme/quick-8k", f"Repeat {TOKEN}"],
        [*base, "--token", TOKEN, "--json", "test", "acme/quick-8k", "--trials", "1"],
        [*base, "--token", TOKEN, "-v", "chat", "acme/nope", "hi"],
        [*base, "--token", "wrong-" + TOKEN, "-vv", "list"],  # refused: 401
        [*base, "--token", "wrong-" + TOKEN, "--json", "doctor"],
    ):
        code, out, err = _run(capsys, *args)
        codes.append(code)
        seen.append(out + err)
    assert codes == [0, 0, 0, 0, 0, 1, 1, 1]
    monkeypatch.setenv("LM_API_TOKEN", TOKEN)
    code, out, err = _run(capsys, *base, "-vv", "--json", "doctor")
    assert code == 0
    assert json.loads(out)["server"]["auth"] == "ok"
    seen.append(out + err)
    assert all(TOKEN not in text for text in seen)
    assert "***" in seen[0] or "token set" in seen[0]


def test_auth_failure_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, locked: FakeLMStudio
) -> None:
    base = ["--server", locked.base_url, "--registry", str(tmp_path / "r.json")]
    code, out, err = _run(capsys, *base, "list")
    assert code == 1 and out == ""
    assert "token" in err.lower()
    code, out, _ = _run(capsys, *base, "--json", "doctor")
    assert code == 1 and json.loads(out)["server"]["auth"] == "failed"
    code, out, _ = _run(capsys, *base, "doctor")
    assert code == 1 and "FAIL  auth: failed" in out


def test_output_blanks_out_secrets() -> None:
    out = Output(secrets=["abc123"])
    out.add_secret(None)
    out.add_secret("xyz")
    assert out.redact("abc123 and xyz") == "*** and ***"


def test_unexpected_errors_are_one_line_without_verbose(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(session: Session) -> int:
        raise RuntimeError("something odd")

    monkeypatch.setattr("lmstrix.cli._cmd_instances.cmd_ps", boom)
    assert run_command(Session(), "_cmd_instances", "cmd_ps") == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: RuntimeError: something odd (run with -v for the traceback)"


def test_system_exit_inside_a_command_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    def leave(session: Session) -> int:
        raise SystemExit(3)

    monkeypatch.setattr("lmstrix.cli._cmd_instances.cmd_ps", leave)
    with pytest.raises(SystemExit):
        run_command(Session(), "_cmd_instances", "cmd_ps")


# -- Ctrl-C during `test` -------------------------------------------------------------


class _CtrlC:
    """Raises KeyboardInterrupt from the progress display after ``steps`` steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.seen = 0

    def __call__(self, message: str) -> None:  # set on the class: called unbound
        self.seen += 1
        if self.seen >= self.steps:
            raise KeyboardInterrupt


def test_ctrl_c_during_test_exits_130_and_the_next_test_resumes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = tmp_path / "registry.json"
    with FakeLMStudio(models=FLEET) as sim:
        args = ["--server", sim.base_url, "--registry", str(registry)]
        with monkeypatch.context() as patch:
            patch.setattr(Output, "progress", _CtrlC(steps=4))
            code, out, err = _run(capsys, *args, "test", MODEL, "--trials", "1")
        assert code == 130
        assert out == ""
        assert "interrupted" in err and "resumes" in err
        record = Registry(registry, server=sim.base_url).get(MODEL)
        assert record is not None
        assert record.status == "testing"  # consistent: every step so far is recorded
        assert len(record.probes) >= 3
        assert record.load_good is not None
        assert sim.loaded() == []  # the search unloaded on the way out

        loads_before = sim.counters.loads
        code, out, err = _run(capsys, *args, "--json", "test", MODEL, "--trials", "1")
        assert code == 0, err
        (report,) = json.loads(out)["models"]
        assert report["resumed"] is True
        assert report["status"] == "done"
        assert report["loadable_context"] <= 21_000 and report["working_context"] <= 13_000
        assert sim.counters.loads - loads_before == report["loads"]


# `python -m lmstrix`, with Ctrl-C handled even when this test run was started with SIGINT
# ignored (a background job of a non-interactive shell): children inherit "ignored".
LMSTRIX_WITH_SIGINT = [
    sys.executable,
    "-c",
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('lmstrix', run_name='__main__', alter_sys=True)",
]


def _child_env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONINSPECT", None)
    env.update(extra)
    return env


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child needs POSIX signals")
def _hold_loads_after(sim: FakeLMStudio, count: int) -> threading.Event:
    """Make the simulator's loads after the first ``count`` wait for the returned event."""
    engine = sim._engine  # the simulator runs in this process: its engine is ours to hold
    load = engine.load
    seen: List[int] = []
    release = threading.Event()

    def held_load(*args: Any, **kwargs: Any) -> Any:
        seen.append(1)
        if len(seen) > count:
            release.wait(60)
        return load(*args, **kwargs)

    engine.load = held_load  # type: ignore[method-assign]
    return release


def test_sigint_to_a_test_subprocess_exits_130_and_the_next_run_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry.json"
    # The search's third load waits until the child has gone, so there is always a
    # search under way to interrupt, however late this process reads the child's lines.
    with FakeLMStudio(models=FLEET) as sim:
        held = _hold_loads_after(sim, 2)
        child = subprocess.Popen(
            [
                *LMSTRIX_WITH_SIGINT,
                "--server",
                sim.base_url,
                "--registry",
                str(registry),
                "test",
                MODEL,
                "--trials",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        try:
            lines: List[str] = []
            assert child.stderr is not None
            while len([x for x in lines if "tokens ->" in x]) < 2:
                line = child.stderr.readline()
                assert line, "".join(lines)
                lines.append(line)
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            held.set()
        assert child.returncode == 130, "".join(lines) + err
        assert out == ""
        assert "interrupted" in err and "Traceback" not in err
        record = Registry(registry, server=sim.base_url).get(MODEL)
        assert record is not None and record.status == "testing" and record.probes

        code, out, err = _run(
            capsys,
            "--server",
            sim.base_url,
            "--registry",
            str(registry),
            "--json",
            "test",
            MODEL,
            "--trials",
            "1",
        )
        assert code == 0, err
        (report,) = json.loads(out)["models"]
        assert report["resumed"] is True and report["status"] == "done"


# -- simulate ---------------------------------------------------------------------------


def test_simulate_serves_until_stopped(tmp_path: Path) -> None:
    import io

    stop = threading.Event()
    out, err = io.StringIO(), io.StringIO()
    session = Session(as_json=True, stdout=out, stderr=err)
    codes: List[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            run_command(session, "_demo", "cmd_simulate", port=0, api="v0", stop_event=stop)
        )
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not out.getvalue().strip().endswith("}") and time.monotonic() < deadline:
            time.sleep(0.02)
        doc: Dict[str, Any] = json.loads(out.getvalue())
        assert doc["api"] == "v0" and doc["server"].startswith("http://127.0.0.1:")
        import lmstrix

        with lmstrix.Client(doc["server"]) as client:
            assert client.server_api == "v0"
            assert len(client.list_models()) == len(doc["models"])
    finally:
        stop.set()
        thread.join(10)
    assert codes == [0]
    assert "Ctrl-C stops it" in err.getvalue()


def test_simulate_human_output_and_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()  # serve starts, announces itself and stops at once
    session = Session()
    assert run_command(session, "_demo", "cmd_simulate", port=0, stop_event=stop) == 0
    out, err = capsys.readouterr()
    assert out.startswith("http://127.0.0.1:")
    assert "the simulator stopped" in err
    assert run_command(session, "_demo", "cmd_simulate", port=70000) == 2
    assert run_command(session, "_demo", "cmd_simulate", port=0, api="v9") == 2
    assert run_command(session, "_demo", "cmd_simulate", port=0, time_scale=-1.0) == 2


def test_simulate_on_a_taken_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = main(["simulate", "--port", str(port)])
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child needs POSIX signals")
def test_sigint_stops_simulate_with_exit_0(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [*LMSTRIX_WITH_SIGINT, "--json", "simulate", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    try:
        assert child.stdout is not None
        text = ""
        while not text.rstrip().endswith("}"):
            line = child.stdout.readline()
            assert line
            text += line
        url = json.loads(text)["server"]
        import lmstrix

        with lmstrix.Client(url) as client:
            assert client.list_models()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert "Traceback" not in err
