"""Every ``python`` block of the docs and the README runs as written, on ``lmstrix simulate``.

The pages tell the reader to start the simulator (``lmstrix simulate --port 1234``, in
another terminal) and to run the blocks in order. This test does the same for each page:
it serves the fleet ``lmstrix simulate`` serves by default on a free loopback port, points
``http://localhost:1234`` and ``$LMSTRIX_SERVER`` at it, puts ``$LMSTRIX_HOME`` and the
working directory in a temporary folder, and executes the page's blocks in order in one
namespace. Only 127.0.0.1 may be reached while they run.

Two HTML comments, placed on the line before a fence, are understood:

- ``<!-- file: NAME -->``: the block is a file the page asks the reader to save; it is
  written to NAME before the page's later blocks run;
- ``<!-- not-run: REASON -->``: the ``python`` block is not run, for the reason given.
  Every such block is listed in ``NOT_RUN`` below, so adding one is a visible change.

The demo tables of the README and of ``docs/index.md`` are checked against a real run of
``lmstrix demo`` (``scripts/update_demo_tables.py`` rewrites them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import logging
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from lmstrix.testing import FakeLMStudio, demo_fleet

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SERVER = "http://localhost:1234"  # what the pages connect to: `lmstrix simulate --port 1234`
START = "lmstrix simulate --port 1234"

# The blocks that are not run, by page, with the reason the page gives.
NOT_RUN: Dict[str, List[str]] = {
    "docs/user-guide/batch.md": [
        "needs the [dask] extra and starts a Dask cluster "
        "(tests/test_integrations_dask.py runs the same)"
    ],
    "docs/user-guide/observability.md": [
        "needs opentelemetry-exporter-otlp-proto-http, an MLflow server and a W&B account"
    ],
}

# Pages with a block that needs an extra's package. Where it is missing (tox's
# environments install only the [test] extra), the page is skipped, saying why; the
# main venv's dev extra has them all, and the README test command runs every page.
NEEDS: Dict[str, str] = {
    "docs/user-guide/batch.md": "pyarrow",
    "docs/user-guide/langchain.md": "langchain_core",
}

# Lines each page's blocks must print (the results the pages promise in comments).
EXPECTED: Dict[str, List[str]] = {
    "README.md": [
        "lmstrix-demo/nomic-embed-text 2048\n",
        "\n5\n",
        "Simulated answer from lmstrix-demo/qwen-like-4b to: Tell me a story",
    ],
    "docs/index.md": ["\n5\n", "Simulated answer from lmstrix-demo/qwen-like-4b to: Tell me"],
    "docs/user-guide/batch.md": ["2 0 0 ", "\n2\n", "\n3\n", "\n8\n"],
    "docs/user-guide/model-management.md": [
        "downloading 1000000000\n",
        "\n50% 2.0\n75% 1.0\n100% None\n",
        "completed 2026-01-01T00:00:04.000Z\nTrue\nalready_downloaded\n",
        "\n1\n0\n",
        "http://localhost:41343\nhttp://localhost:1234\n",
    ],
    "docs/user-guide/context-search.md": [
        "lmstrix-demo/qwen-like-4b: load at 65,536 tokens: failed (auto_fit)",
        "131072 49920 ",
    ],
    "docs/user-guide/langchain.md": [
        "42\nstop\n1\n42\n",
        "5 lmstrix-demo/qwen-like-4b\n",
        "Simulated answer from lmstrix-demo/qwen-\nTrue\n",
        "add {'a': 2, 'b': 40}\nTool results: add: 42\n",
        "name='example' age=1\n",
        "2 True\n",
        "49920\n",
    ],
    "docs/user-guide/extending.md": [
        "{'completions': 2}",
        "load False ok {'context_length': 4096} NoneType",
        "chat True closed {} NoneType",
        "chat False error {} ModelNotFoundError",
        "True True",
    ],
    "docs/user-guide/native-chat.md": [
        "42\n['message']\n",
        "\nTrue\nTrue\nmodel_load: 25%\n",
        "prompt_processing: 100%\n5\n1\nTrue\nTrue 2\n",
    ],
    "docs/user-guide/long-documents.md": [
        "False True\nabout 22,245 prompt tokens + 512 for the answer exceed the tested working",
        "2252 2278 False\nTrue\n",  # confirm() corrected the calibration
        "[True]\n",  # fit_context reloaded the 4,096 instance
        "refused: about 25,013 tokens (prompt + answer) exceed the tested working context",
        "2 True\nTrue\n",
        "['Boil pasta in salted water', 'Telescopes gather faint starlight']\n",
    ],
    "docs/user-guide/observability.md": [
        "5 1\n",
        "# TYPE lmstrix_calls_total counter\n",
        "team-a chat {'temperature': 0, 'max_tokens': 20} ok\nTrue 2\n",
        "False 1 the line was edited",
        "chat lmstrix-demo/tiny-chat-1b lmstudio\n20 True\n",
    ],
    "docs/user-guide/governance.md": [
        "True True\nCacheStats(hits=2, misses=2, stores=2, skipped=1)\n",
        "refused after 5 calls: 110 of 150 used\nTrue 1000000.0\n",
        "try again in 30 s\n",
        "refused: load lmstrix-demo/tiny-chat-1b\n",
        "alice lmstrix-demo/tiny-chat-1b 20 200\nalice no/such-model None 404\n",
        "[('error_rate', True)]\nTrue\n",
    ],
    "docs/user-guide/pool.md": [
        "5\n0 0\n",
        "[False, True]\n",
        "frozenset({'tool_use'})\n",
        "\nlmstrix-demo/tiny-chat-1b\n",
        "lmstrix-demo/solid-3b -> skipped",
        "no/such-model -> ModelNotFoundError",
        "\n20 0\n",
        "\n13\n",
    ],
    "docs/user-guide/prompts.md": [
        "- Quote the line.\n",
        "missing variables: name (in entry 'greeting')\n",
        "missing variables: name (in entry 'greeting'), topic (in template)\n",
        "('name', 'topic')\n",
    ],
    "docs/user-guide/python-api.md": [
        "\nv1\nTrue\n",
        "lmstrix-demo/qwen-like-4b 32768 32768 False\n",
        "asked 65536, got 49920\n",
        "\n5\n",
        "Hello Ada! I am a patient tutor.\n",
        "\nTrue\nFalse\n",  # fits(): the short prompt fits, the long one does not
        "\n42\n",
        "qwen-like-4b to: A long report",  # a fallback chain skipped tiny-chat-1b
        "lmstrix-demo/tiny-chat-1b -> skipped\n",
        "no/such-model -> ModelNotFoundError\n",
    ],
    "docs/user-guide/registry.md": ["lmstrix-demo/tiny-chat-1b untested None\n"],
    "docs/user-guide/simulator.md": [
        "42\n",
        "['reasoning', 'message'] 42\n",
        "3 Tool results: get_weather: sunny in Paris; get_weather: sunny in Rome\n",
    ],
    "docs/user-guide/tools.md": [
        "tool_calls\nget_weather {'city': 'Paris'}\n",
        '{"city": "Oslo"}\n',
        'get_weather True True\n{"city": "Rome"}\n',
        '2\nTool results: get_weather: {"city": "Paris", "sky": "sunny", "temperature": 21, '
        '"unit": "celsius"}\n',
    ],
    "docs/user-guide/structured-output.md": [
        "{'name': 'example', 'age': 1, 'languages': ['example']}\n2\n",
        "['age', 'languages', 'name']\n",
        "$.name: expected string, got integer\n$.age: -1 is less than the minimum 0\n",
        "1 ['$: the answer is not JSON', '$: the answer was cut short by max_tokens "
        "(finish_reason length)']\n",
        "\n['example']\n",
        "2 example\nYour answer failed validation: $: missing required property 'name'; "
        "answer again with JSON only.\n",
    ],
    "docs/user-guide/transports.md": ["/api/v1/models')"],
}

# Pages whose blocks write the default registry (so $LMSTRIX_HOME must be a temporary one).
WRITES_REGISTRY = {
    "README.md",
    "docs/index.md",
    "docs/user-guide/context-search.md",
    "docs/user-guide/long-documents.md",
    "docs/user-guide/python-api.md",
    "docs/user-guide/registry.md",
}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>file|not-run):\s*(?P<value>.*?)\s*-->\s*$")


class Block(NamedTuple):
    """One fenced block of a page: its language, text, first line and marker."""

    language: str
    code: str
    line: int
    marker: Optional[Tuple[str, str]]


def fenced_blocks(text: str) -> List[Block]:
    """The fenced blocks of a Markdown text (backticks or tildes, nested fences kept whole)."""
    blocks: List[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None or (opening.group("fence")[0] == "`" and "`" in opening.group("info")):
            index += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        first_line = index + 2  # 1-based number of the line after the fence
        before = next((ln for ln in reversed(lines[:index]) if ln.strip()), "")
        found = _MARKER.match(before)
        body: List[str] = []
        index += 1
        while index < len(lines):
            stripped = lines[index].strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                break
            line = lines[index]
            body.append(line[min(indent, len(line) - len(line.lstrip())) :])
            index += 1
        language = (opening.group("info").split() or [""])[0].lower()
        code = "\n".join(body) + ("\n" if body else "")
        marker = (found.group("kind"), found.group("value")) if found else None
        blocks.append(Block(language, code, first_line, marker))
        index += 1
    return blocks


def page_name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def python_blocks(path: Path) -> List[Block]:
    return [b for b in fenced_blocks(path.read_text(encoding="utf-8")) if b.language == "python"]


RUNNABLE = [page_name(p) for p in PAGES if python_blocks(p)]


# --------------------------------------------------------------------------- the guard
#
# The guard wraps the socket module's entry points for the length of one page and puts
# them back afterwards. It is not an audit hook (``sys.addaudithook``): a hook written in
# Python stays for the rest of the session, and with it, under coverage on CPython 3.11
# and older, a starting thread can die before its first line (tests/_threads.py says
# how): the simulator's connection threads died now and then in every later test (a CI
# run lost one that way).

_REFUSED: List[str] = []  # hosts refused during a run, in case a snippet caught the error
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like: not the network
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_unless_loopback(host: object) -> None:
    if not _is_loopback(host):
        _REFUSED.append(repr(host))
        raise PermissionError(f"a docs snippet tried to reach {host!r}: only 127.0.0.1 is allowed")


def _host_of(address: object) -> object:
    return address[0] if isinstance(address, tuple) else address


@contextlib.contextmanager
def offline_guard() -> Iterator[None]:
    """Refuse every name lookup and connection to a host that is not loopback."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        _refuse_unless_loopback(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> None:
        _refuse_unless_loopback(_host_of(address))
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        _refuse_unless_loopback(_host_of(address))
        return real_connect_ex(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        yield


@pytest.fixture
def offline() -> Iterator[None]:
    _REFUSED.clear()
    with offline_guard():
        yield
    assert not _REFUSED, f"tried to reach {', '.join(_REFUSED)}: only 127.0.0.1 is allowed"


# --------------------------------------------------------------------------- running


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working folder and a data folder of their own; sys.path and logging restored."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("LMSTRIX_HOME", str(tmp_path / "home"))
    for name in ("LMSTRIX_REGISTRY", "LM_API_TOKEN", "LMSTUDIO_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    saved_path = list(sys.path)
    root = logging.getLogger()
    ours = logging.getLogger("lmstrix")
    saved_logging = (list(root.handlers), root.level, ours.level)
    try:
        yield work
    finally:
        sys.path[:] = saved_path
        root.handlers[:], root.level = saved_logging[0], saved_logging[1]
        ours.setLevel(saved_logging[2])


def run_page(name: str, base_url: str) -> None:
    """Write the page's files and run its python blocks, in order, in one namespace."""
    namespace: Dict[str, Any] = {"__name__": "__main__"}
    for block in fenced_blocks((ROOT / name).read_text(encoding="utf-8")):
        kind, value = block.marker or ("", "")
        if kind == "file":
            Path(value).write_text(block.code, encoding="utf-8")
        if block.language != "python" or kind == "not-run":
            continue
        code = block.code.replace(SERVER, base_url)
        exec(compile(code, f"{name}, the block at line {block.line}", "exec"), namespace)


@pytest.mark.parametrize("name", RUNNABLE)
def test_page_blocks_run_on_the_simulator(
    name: str,
    sandbox: Path,
    offline: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"{name} needs {NEEDS[name]}, from an extra")
    with FakeLMStudio(demo_fleet()) as fake:
        monkeypatch.setenv("LMSTRIX_SERVER", fake.base_url)
        run_page(name, fake.base_url)
        used_server = fake.counters.total_requests > 0
    out = capsys.readouterr().out
    if name in WRITES_REGISTRY:  # to the temporary $LMSTRIX_HOME, never the user's own
        assert (sandbox.parent / "home" / "registry.json").is_file()
    for line in EXPECTED.get(name, []):
        assert line in out, (line, out)
    if used_server:  # the page must tell the reader what to start
        assert START in (ROOT / name).read_text(encoding="utf-8"), f"{name} must say `{START}`"


def test_the_not_run_blocks_are_the_listed_ones() -> None:
    found: Dict[str, List[str]] = {}
    for path in PAGES:
        for block in python_blocks(path):
            if block.marker and block.marker[0] == "not-run":
                assert block.marker[1], f"{page_name(path)}:{block.line}: give the reason"
                found.setdefault(page_name(path), []).append(block.marker[1])
    assert found == NOT_RUN


def test_the_file_markers_name_plain_files() -> None:
    for path in PAGES:
        for block in fenced_blocks(path.read_text(encoding="utf-8")):
            if block.marker and block.marker[0] == "file":
                assert re.fullmatch(r"[\w.-]+", block.marker[1]), (page_name(path), block.line)
                assert block.language != "python", "a file block is written, not run"


def test_every_python_block_compiles() -> None:
    """Signature listings (``f(a, *, b=1) -> X``) belong in ``text`` fences, not ``python``."""
    for path in PAGES:
        for block in python_blocks(path):
            compile(block.code, f"{page_name(path)}, the block at line {block.line}", "exec")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```python\nx = 1\n```\n", [("python", "x = 1\n", 2, None)]),
        (
            "<!-- not-run: a GPU -->\n\n~~~python\ny\n~~~",
            [("python", "y\n", 4, ("not-run", "a GPU"))],
        ),
        ("````text\n```python\nx\n```\n````", [("text", "```python\nx\n```\n", 2, None)]),
        (
            "- item\n\n  ```python\n  a()\n      b()\n  ```\n",
            [("python", "a()\n    b()\n", 4, None)],
        ),
        ("<!-- file: a.json -->\n```json\n{}\n```", [("json", "{}\n", 3, ("file", "a.json"))]),
        ("```python\n```", [("python", "", 2, None)]),
        ("```x``` inline", []),
        ("```\nopen to the end", [("", "open to the end\n", 2, None)]),
    ],
)
def test_fenced_blocks(text: str, expected: List[Tuple[Any, ...]]) -> None:
    assert [tuple(b) for b in fenced_blocks(text)] == expected


def test_the_guard_refuses_other_hosts_and_is_gone_afterwards() -> None:
    real = (socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex)
    _REFUSED.clear()
    with offline_guard():
        with pytest.raises(PermissionError, match=r"only 127\.0\.0\.1"):
            socket.getaddrinfo("example.com", 80)
        with pytest.raises(PermissionError, match=r"only 127\.0\.0\.1"):
            socket.create_connection(("example.com", 80), timeout=1)
        with pytest.raises(PermissionError, match=r"only 127\.0\.0\.1"), socket.socket() as sock:
            sock.connect(("192.0.2.1", 9))
        with pytest.raises(PermissionError, match=r"only 127\.0\.0\.1"), socket.socket() as sock:
            sock.connect_ex(("192.0.2.2", 9))
        assert socket.getaddrinfo("localhost", 80)  # loopback names still resolve
    assert _is_loopback("127.0.0.2") and _is_loopback(b"/tmp/socket")
    assert _REFUSED == ["'example.com'", "'example.com'", "'192.0.2.1'", "'192.0.2.2'"]
    assert (socket.getaddrinfo, socket.socket.connect, socket.socket.connect_ex) == real
    _REFUSED.clear()


# --------------------------------------------------------------------------- the simulator


def test_lmstrix_simulate_serves_the_demo_fleet() -> None:
    """What the pages tell the reader to start serves the models the blocks use."""
    command = [sys.executable, "-m", "lmstrix", "--json", "simulate", "--port", "0"]
    with subprocess.Popen(
        command, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            text = ""
            for line in proc.stdout:
                text += line
                if line.startswith("}"):
                    break
            announced = json.loads(text)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert announced["api"] == "v1"
    assert announced["server"].startswith("http://127.0.0.1:")
    assert announced["models"] == [m.key for m in demo_fleet()]


# --------------------------------------------------------------------------- demo tables


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_tables_are_what_lmstrix_demo_prints() -> None:
    tables = load_script("update_demo_tables")
    rows = tables.demo_rows()
    assert len(rows) == len([m for m in demo_fleet() if m.type != "embedding"])
    for path in tables.PAGES_WITH_TABLES:
        text = (ROOT / path).read_text(encoding="utf-8")
        assert tables.HEADER in text, f"{path} has no demo table"
        assert tables.update_tables(text, rows) == text, (
            f"the demo table of {path} is stale: run scripts/update_demo_tables.py"
        )


def test_updating_a_table_replaces_rows_and_keeps_an_ellipsis() -> None:
    tables = load_script("update_demo_tables")
    rule = "-" * 5
    text = f"x\n```text\n{tables.HEADER}\n{rule}\na/b  1  2\n...\n```\nafter\n"
    rows = {"a/b": "a/b  3  4", "c/d": "c/d  5  6"}
    assert tables.update_tables(text, rows) == text.replace("a/b  1  2", "a/b  3  4")
    full = f"```\n{tables.HEADER}\n{rule}\nc/d  0\n```"
    assert tables.update_tables(full, rows) == full.replace("c/d  0", "c/d  5  6")
    with pytest.raises(ValueError, match="e/f"):
        tables.update_tables(f"```\n{tables.HEADER}\n{rule}\ne/f 1\n```", rows)


def test_the_version_is_a_pre_release_of_the_second_major_line() -> None:
    """``lmstrix`` 1.x on PyPI is the earlier line; this one is 2.0.0, not released yet."""
    import lmstrix

    version = lmstrix.__version__
    # PEP 440: 2.0.0.devN, 2.0.0aN, 2.0.0bN or 2.0.0rcN (optionally .devN); not 2.0.0 itself,
    # which needs the install text of the docs changed to `pip install lmstrix>=2`.
    assert re.fullmatch(r"2\.0\.0(?:(?:a|b|rc)\d+(?:\.dev\d+)?|\.dev\d+)", version), version
    # The pages that name the version name this one.
    for page, written in [
        ("README.md", f"**{version}**"),
        ("docs/installation.md", f"`{version}`"),
        ("docs/migrating-from-1x.md", f"`{version}`"),
    ]:
        assert written in (ROOT / page).read_text(encoding="utf-8"), (page, written)
