"""``lmstrix.plugins``: entry points found on ``sys.path`` and loaded only when asked,
each hook gathered, a broken plugin skipped with one warning, the CLI's commands and
``lmstrix plugins``, post-processors, prompt formats and routers.

The fake plugins here are ``.dist-info`` folders written into a temporary folder put on
``sys.path``: the same metadata an installed package has. The example package under
``examples/plugins/`` is installed into a fresh virtual environment by
``test_the_example_plugin_in_a_fresh_venv``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import lmstrix
from lmstrix.plugins import Plugins, PluginWarning, installed, load, post_process
from lmstrix.plugins._post import PostProcessError
from lmstrix.prompts import PromptFormat, PromptLibrary
from lmstrix.testing import FakeLMStudio
from tests._cli_helpers import front_ends, run_cli

CHAT = "lmstrix-demo/tiny-chat-1b"
ROOT = Path(__file__).resolve().parent.parent

GOOD = textwrap.dedent(
    """
    from dataclasses import replace
    from lmstrix.cli import Argument, Command, Option
    from lmstrix.prompts import PromptFormat

    SEEN = []

    def record(event):
        SEEN.append((event.operation, event.model))

    def tag(request, call_next):
        SEEN.append(("request", request.url))
        return call_next(request)

    class Plugin:
        def observers(self):
            return [record]
        def middleware(self):
            return [tag]
        def post_processors(self):
            return {"shout": lambda done: replace(done, text=done.text.upper())}
        def prompt_formats(self):
            return [PromptFormat("dollar", (".djson",), convert=lambda t: t.replace("$x", "{{x}}"))]
        def routers(self):
            return {"first": lambda candidate: candidate.server}
        def cli_commands(self):
            return [Command("greet", "say hello", "good_plugin", "cmd_greet",
                            (Argument("name", "NAME", "?"),),
                            (Option("loud", ("--loud",), "in capitals", kind="flag"),))]

    def cmd_greet(session, name=None, loud=False):
        text = f"hello {name or 'world'}"
        session.echo(text.upper() if loud else text)
        return 0
    """
)


def _dist(folder: Path, name: str, entry: str, module: str = "", source: str = "") -> None:
    """A distribution ``name`` whose ``lmstrix.plugins`` entry point is ``entry``."""
    info = folder / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[lmstrix.plugins]\n{entry}\n", encoding="utf-8")
    if module:
        (folder / f"{module}.py").write_text(source, encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` holding a good plugin and nothing else yet."""
    folder = tmp_path / "site"
    folder.mkdir()
    _dist(folder, "good-plugin", "good = good_plugin:Plugin", "good_plugin", GOOD)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("LMSTRIX_NO_PLUGINS", raising=False)
    yield folder
    for module in [m for m in sys.modules if m.endswith("_plugin")]:
        del sys.modules[module]


def _broken(site: Path) -> None:
    _dist(
        site, "broken-plugin", "broken = broken_plugin", "broken_plugin", "raise ImportError('no')"
    )


def test_installed_lists_without_importing(site: Path) -> None:
    (info,) = installed()
    assert (info.name, info.value, info.distribution, info.version) == (
        "good",
        "good_plugin:Plugin",
        "good-plugin",
        "1.0",
    )
    assert not info.loaded and "good_plugin" not in sys.modules


def test_load_gathers_every_hook(site: Path) -> None:
    plugins = load()
    (info,) = plugins.infos
    assert info.loaded and info.error is None
    assert set(info.provides) == {
        "observers",
        "middleware",
        "post_processors",
        "prompt_formats",
        "routers",
        "cli_commands",
    }
    assert len(plugins.observers) == 1 and len(plugins.middleware) == 1
    assert {"shout", "json", "extract-code", "strip-reasoning"} <= set(plugins.post_processors)
    assert plugins.routers["first"] and plugins.cli_commands[0].name == "greet"
    seen = sys.modules["good_plugin"].SEEN  # type: ignore[attr-defined]
    with FakeLMStudio() as server, lmstrix.Client(
        server.base_url, middleware=plugins.middleware, observers=plugins.observers
    ) as client:
        done = client.chat(CHAT, "hi")
    assert ("chat", CHAT) in seen and any(kind == "request" for kind, _ in seen)
    assert plugins.post_process(done, ["shout"]).text == done.text.upper()


def test_a_broken_plugin_is_skipped_with_one_warning(site: Path) -> None:
    _broken(site)
    _dist(
        site,
        "wrong-plugin",
        "wrong = wrong_plugin",
        "wrong_plugin",
        "def observers():\n    return [1]\n",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins = load()
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]
    assert len(messages) == 2
    assert any("'broken'" in m and "ImportError: no" in m for m in messages)
    assert any("'wrong'" in m and "observers()" in m for m in messages)
    by_name = {info.name: info for info in plugins.infos}
    assert by_name["good"].loaded and not by_name["broken"].loaded
    assert by_name["broken"].error == "ImportError: no" and plugins.observers  # the good one's


def test_import_lmstrix_imports_no_plugin(site: Path) -> None:
    code = (
        "import sys, lmstrix, lmstrix.cli, lmstrix.plugins; "
        "print(sorted(m for m in sys.modules if m.endswith('_plugin')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("name", "entry"), front_ends())
def test_the_cli_runs_a_plugin_command_and_lists_plugins(
    site: Path, capsys: pytest.CaptureFixture[str], name: str, entry: object
) -> None:
    _broken(site)
    code, out, err = run_cli(capsys, entry, "greet", "ada", "--loud")  # type: ignore[arg-type]
    assert code == 0 and out == "HELLO ADA\n"
    assert err.count("warning: lmstrix plugin 'broken'") == 1
    code, out, err = run_cli(capsys, entry, "--json", "plugins")  # type: ignore[arg-type]
    assert code == 0
    listed = {p["name"]: p for p in json.loads(out)["plugins"]}
    assert listed["good"]["loaded"] and "cli_commands" in listed["good"]["provides"]
    assert not listed["broken"]["loaded"] and "ImportError" in listed["broken"]["error"]
    code, out, _ = run_cli(capsys, entry, "plugins")  # type: ignore[arg-type]
    assert code == 0 and "good-plugin 1.0" in out and "skipped: ImportError" in out


@pytest.mark.parametrize(("name", "entry"), front_ends())
def test_lmstrix_no_plugins_loads_none(
    site: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    entry: object,
) -> None:
    monkeypatch.setenv("LMSTRIX_NO_PLUGINS", "1")
    code, _, _ = run_cli(capsys, entry, "greet")  # type: ignore[arg-type]
    assert code == 2  # no such command
    code, out, _ = run_cli(capsys, entry, "plugins")  # type: ignore[arg-type]
    assert code == 0 and "not loaded: LMSTRIX_NO_PLUGINS" in out and "good" in out
    assert "good_plugin" not in sys.modules


@pytest.mark.parametrize(("name", "entry"), front_ends())
def test_plugin_observers_see_the_cli_calls(
    site: Path, capsys: pytest.CaptureFixture[str], name: str, entry: object
) -> None:
    with FakeLMStudio() as server:
        code, _, _ = run_cli(capsys, entry, "--server", server.base_url, "chat", CHAT, "hi")  # type: ignore[arg-type]
    assert code == 0
    assert ("chat", CHAT) in sys.modules["good_plugin"].SEEN  # type: ignore[attr-defined]


def test_a_command_with_a_taken_name_is_skipped(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lmstrix.cli._params import Command
    from lmstrix.cli._plugins import plugin_commands

    plugins = Plugins(
        cli_commands=[Command("list", "x", "m", "f"), object(), Command("new", "y", "m", "f")]
    )
    chosen = plugin_commands(plugins, ["list"], sys.stderr)
    assert [c.name for c in chosen] == ["new"]
    err = capsys.readouterr().err
    assert "'list' has a name that is taken" in err and "is not an lmstrix.cli.Command" in err


def test_builtin_post_processors() -> None:
    thinking = lmstrix.Completion("<think>sum it</think>\nThe answer is 5.")
    done = post_process(thinking, ["strip-reasoning"], Plugins().post_processors)
    assert (done.text, done.reasoning) == ("The answer is 5.", "sum it")
    assert post_process(done, ["strip-reasoning"], Plugins().post_processors) is done
    fenced = lmstrix.Completion('Here:\n```json\n{"a": [1, 2]}\n```\nDone.')
    assert Plugins().post_process(fenced, ["extract-code"]).text == '{"a": [1, 2]}\n'
    assert Plugins().post_process(fenced, ["json"]).text == '{"a":[1,2]}'
    with pytest.raises(PostProcessError, match="not JSON"):
        Plugins().post_process(lmstrix.Completion("nope"), ["json"])
    with pytest.raises(PostProcessError, match="no post-processor named 'x'; known: extract-code"):
        Plugins().post_process(fenced, ["x"])
    failing = Plugins(post_processors={"boom": lambda d: 1 / 0})  # type: ignore[arg-type,dict-item]
    with pytest.raises(PostProcessError, match="'boom' failed: division by zero"):
        failing.post_process(fenced, ["boom"])


def test_a_prompt_format_reads_its_files(tmp_path: Path) -> None:
    path = tmp_path / "lib.djson"
    path.write_text('{"greet": "Hello $x!", "nested": {"list": ["$x"]}}', encoding="utf-8")
    dollar = PromptFormat("dollar", (".djson",), convert=lambda t: t.replace("$x", "{{x}}"))
    library = PromptLibrary.from_file(path, formats=[dollar])
    assert library.render("greet", {"x": "Ada"}) == "Hello Ada!"
    with pytest.raises(lmstrix.TemplateError, match=r"one of \.toml, \.json, \.djson"):
        PromptLibrary.from_file(tmp_path / "lib.yaml", formats=[dollar])
    broken = PromptFormat("yamlish", (".yml",), load=lambda text: 1 / 0)
    (tmp_path / "x.yml").write_text("a: 1", encoding="utf-8")
    with pytest.raises(lmstrix.TemplateError, match="yamlish prompt format could not read it"):
        PromptLibrary.from_file(tmp_path / "x.yml", formats=[broken])
    plain = PromptFormat(
        "yaml-ish", (".kv",), load=lambda text: dict(line.split("=") for line in text.split())
    )
    (tmp_path / "x.kv").write_text("a=Hi", encoding="utf-8")
    assert PromptLibrary.from_file(tmp_path / "x.kv", formats=[plain]).render("a") == "Hi"


def test_a_router_decides_where_a_pool_sends() -> None:
    with FakeLMStudio() as one, FakeLMStudio() as two:
        wanted = max(one.base_url, two.base_url)
        seen: List[lmstrix.pool.Candidate] = []

        def router(candidate: lmstrix.pool.Candidate) -> object:
            seen.append(candidate)
            return candidate.server != wanted  # False sorts first

        with lmstrix.Pool([one.base_url, two.base_url], prefer=router) as pool:
            for _ in range(4):
                pool.chat(CHAT, "hi")
        assert {c.server for c in seen} == {one.base_url, two.base_url}
        busy = one if wanted == one.base_url else two
        idle = two if busy is one else one
        assert busy.counters.requests.get("/v1/chat/completions") == 4
        assert not idle.counters.requests.get("/v1/chat/completions")
    with pytest.raises(ValueError, match="or a function"):
        lmstrix.Pool(["http://127.0.0.1:1"], prefer="fastest")


@pytest.mark.slow
def test_the_example_plugin_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = str(bin_dir / "python")
    example = ROOT / "examples" / "plugins" / "lmstrix-example-plugin"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        check=True,
    )
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(example)],
        check=True,
    )
    log = tmp_path / "calls.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LMSTRIX_NO_PLUGINS")}
    env.update(LMSTRIX_EXAMPLE_PLUGIN_LOG=str(log), LMSTRIX_HOME=str(tmp_path / "home"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *args], env=env, capture_output=True, text=True, check=False, cwd=tmp_path
        )

    listed = run("-m", "lmstrix", "--json", "plugins")
    assert listed.returncode == 0, listed.stderr
    (plugin,) = json.loads(listed.stdout)["plugins"]
    assert plugin["loaded"] and plugin["distribution"] == "lmstrix-example-plugin"
    hello = run("-m", "lmstrix", "hello", "ada", "--shout")
    assert hello.returncode == 0 and hello.stdout == "HELLO, ADA, FROM THE EXAMPLE PLUGIN\n"
    with FakeLMStudio() as server:
        chat = run("-m", "lmstrix", "--server", server.base_url, "chat", CHAT, "What is 2+3?")
        assert chat.returncode == 0, chat.stderr
        assert log.read_text(encoding="utf-8").splitlines() == [f"chat {CHAT} ok"]  # the observer
        shout = run(
            "-m", "lmstrix", "--server", server.base_url, "chat", CHAT, "hi", "--post", "shout"
        )
    assert shout.stdout.startswith("SIMULATED ANSWER FROM"), shout.stderr  # the post-processor
    quiet = run("-c", "import sys, lmstrix; print('lmstrix_example_plugin' in sys.modules)")
    assert quiet.stdout == "False\n"  # import lmstrix loads no plugin


@pytest.mark.parametrize(("name", "entry"), front_ends())
def test_post_processors_on_chat_and_batch(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, entry: Any
) -> None:
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"id": "a", "prompt": "Tell me a story"}\n', encoding="utf-8")
    with FakeLMStudio() as server:
        url = ["--server", server.base_url]
        code, out, _ = run_cli(
            capsys, entry, *url, "chat", CHAT, "Tell me a story", "--post", "shout"
        )
        assert code == 0 and out.startswith("SIMULATED ANSWER FROM")  # the plugin's
        code, out, _ = run_cli(capsys, entry, *url, "chat", CHAT, "What is 2+3?", "--post", "json")
        assert code == 0 and out == "5\n"  # built in: the answer is JSON
        code, _, err = run_cli(capsys, entry, *url, "chat", CHAT, "hi", "--post", "nope")
        assert code == 2 and "no post-processor named 'nope'; known: " in err and "shout" in err
        code, _, err = run_cli(
            capsys, entry, *url, "chat", CHAT, "hi", "--post", "json", "--stream"
        )
        assert code == 2 and "--post prints the processed answer whole" in err
        args = ["batch", str(source), "-o", str(output), "-m", CHAT, "--post", "shout"]
        code, _, err = run_cli(capsys, entry, *url, *args)
    assert code == 0, err
    (record,) = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert record["output"].startswith("SIMULATED ANSWER FROM")


def test_a_post_processing_client_delegates_the_rest() -> None:
    from lmstrix.plugins import BUILTIN_POST_PROCESSORS, PostProcessingClient

    with FakeLMStudio() as server, lmstrix.Client(server.base_url) as client:
        wrapped = PostProcessingClient(client, ["json"], BUILTIN_POST_PROCESSORS)
        assert wrapped.chat(CHAT, "What is 2+3?").text == "5"
        assert wrapped.base_url == client.base_url  # everything else is the client's
        with pytest.raises(PostProcessError, match="no post-processor named 'x'"):
            PostProcessingClient(client, ["x"], BUILTIN_POST_PROCESSORS)
