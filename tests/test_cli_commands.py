"""Every command of the lite CLI, in-process, against the simulator on loopback.

Each test runs ``main([...])`` with ``--server`` pointing at a `FakeLMStudio` and
``--registry`` at a temporary file, and checks the exit code, that ``--json`` prints
one JSON document (and nothing else) on stdout, and what goes to stderr.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from lmstrix.cli import main
from lmstrix.registry import Registry
from lmstrix.testing import FakeLMStudio, SimModel

RECORD_KEYS = {"key", "declared_context", "loadable_context", "working_context", "status"}

FLEET = [
    SimModel("acme/small-8k", 8192),
    SimModel("acme/limited-16k", 16384, 12_000, 9_000),
    SimModel("acme/autofit-32k", 32768, 20_000, 15_000, auto_fit=True),
    SimModel("acme/broken-4k", 4096, broken=True),
    SimModel("acme/embed", 2048, type="embedding"),
]


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=FLEET) as server:
        yield server


class Cli:
    """Runs the lite CLI in-process against one server and one registry file."""

    def __init__(self, capsys: pytest.CaptureFixture[str], url: str, registry: Path) -> None:
        self.capsys = capsys
        self.url = url
        self.registry = registry

    def __call__(self, *args: str) -> Tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--server", self.url, "--registry", str(self.registry), *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> Dict[str, Any]:
        code, out, err = self("--json", *args)
        assert code == 0, err
        doc: Dict[str, Any] = json.loads(out)  # the whole of stdout is one document
        return doc


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path) -> Cli:
    return Cli(capsys, sim.base_url, tmp_path / "registry.json")


def test_scan_adds_models_then_reports_no_change(cli: Cli) -> None:
    code, out, _ = cli("scan")
    assert code == 0
    assert "added (5)" in out
    doc = cli.json("scan")
    assert doc["added"] == [] and doc["vanished"] == [] and doc["models"] == 5
    code, out, _ = cli("scan")
    assert "nothing changed" in out
    assert len(Registry(cli.registry, server=cli.url).records()) == 5


def test_list_joins_the_server_and_the_registry(cli: Cli, sim: FakeLMStudio) -> None:
    doc = cli.json("list")
    assert doc["server"] == cli.url
    assert [m["key"] for m in doc["models"]] == [m.key for m in FLEET]
    assert all(set(m) >= RECORD_KEYS for m in doc["models"])
    assert {m["status"] for m in doc["models"]} == {"untested"}
    sim.preload("acme/small-8k")
    assert cli.json("test", "acme/small-8k", "--trials", "1")["models"][0]["status"] == "done"
    sim.preload("acme/small-8k")
    rows = {m["key"]: m for m in cli.json("list")["models"]}
    assert rows["acme/small-8k"]["loaded"] is True
    assert rows["acme/small-8k"]["working_context"] is not None
    code, out, _ = cli("list")
    assert code == 0
    assert "acme/limited-16k" in out and "untested" in out and "yes" in out


def test_list_shows_records_of_models_the_server_no_longer_has(cli: Cli) -> None:
    from lmstrix.registry import ModelRecord

    Registry(cli.registry, server=cli.url).upsert(ModelRecord(key="gone/model", status="done"))
    rows = {m["key"]: m for m in cli.json("list")["models"]}
    assert rows["gone/model"]["on_server"] is False
    assert rows["gone/model"]["status"] == "done"
    code, out, _ = cli("list")
    assert code == 0 and "done (gone)" in out


def test_list_of_an_empty_server(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with FakeLMStudio(models=[]) as empty:
        run = Cli(capsys, empty.base_url, tmp_path / "r.json")
        code, out, _ = run("list")
        assert code == 0
        assert "lists no models" in out


def test_test_one_model_json_report(cli: Cli) -> None:
    code, out, err = cli("--json", "test", "acme/limited-16k", "--trials", "1")
    assert code == 0, err
    doc = json.loads(out)
    (report,) = doc["models"]
    assert RECORD_KEYS | {"loads", "probes", "skipped"} <= set(report)
    assert report["status"] == "done"
    assert report["skipped"] is False
    assert report["loadable_context"] <= 12_000
    assert report["working_context"] <= 9_000
    assert report["loads"] >= 1
    assert "probe" in err and "load" in err  # progress on stderr, one line per step
    record = Registry(cli.registry, server=cli.url).get("acme/limited-16k")
    assert record is not None and record.status == "done"


def test_test_skips_done_models_unless_reset(cli: Cli, sim: FakeLMStudio) -> None:
    cli.json("test", "acme/small-8k", "--trials", "1")
    loads = sim.counters.loads
    doc = cli.json("test", "acme/small-8k")
    assert doc["models"][0]["skipped"] is True
    assert doc["models"][0]["loads"] == 0
    assert sim.counters.loads == loads
    code, out, err = cli("test", "acme/small-8k")
    assert code == 0 and "tested already" in err and "(skipped)" in out
    doc = cli.json("test", "acme/small-8k", "--reset", "--trials", "1")
    assert doc["models"][0]["skipped"] is False
    assert sim.counters.loads > loads


def test_test_all_searches_every_chat_model_and_fails_for_a_broken_one(cli: Cli) -> None:
    code, out, _ = cli(
        "--json", "test", "--all", "--trials", "1", "--min", "1024", "--resolution", "2048"
    )
    assert code == 1  # a model failed the test
    keys = [m["key"] for m in json.loads(out)["models"]]
    assert keys == [m.key for m in FLEET if m.type != "embedding"]
    statuses = {m["key"]: m["status"] for m in json.loads(out)["models"]}
    assert statuses["acme/broken-4k"] == "failed"
    assert statuses["acme/small-8k"] == "done"


def test_test_with_max_limits_the_search(cli: Cli) -> None:
    doc = cli.json("test", "acme/autofit-32k", "--max", "8192", "--trials", "1")
    assert doc["models"][0]["loadable_context"] <= 8192


@pytest.mark.parametrize(
    "args",
    [
        ["test"],
        ["test", "acme/small-8k", "--all"],
        ["test", "acme/small-8k", "--min", "0"],
        ["test", "acme/small-8k", "--trials", "0"],
        ["test", "acme/small-8k", "--resolution", "-5"],
        ["test", "acme/small-8k", "--max", "0"],
        ["test", "acme/small-8k", "--min", "lots"],
    ],
)
def test_test_bad_usage_exits_2(cli: Cli, args: List[str]) -> None:
    code, out, err = cli(*args)
    assert code == 2
    assert out == ""
    assert err


def test_test_of_an_embedding_model_fails(cli: Cli) -> None:
    code, out, err = cli("test", "acme/embed")
    assert code == 1
    assert "embedding" in err and out == ""


def test_show_a_tested_model_with_its_probe_history(cli: Cli) -> None:
    cli.json("test", "acme/limited-16k", "--trials", "1")
    doc = cli.json("show", "acme/limited-16k")
    assert set(doc) >= RECORD_KEYS
    assert doc["probes"] and doc["loads"] >= 1
    code, out, _ = cli("show", "acme/limited-16k")
    assert code == 0
    assert "probe history" in out and "working context:" in out


def test_show_an_untested_model_from_the_server(cli: Cli) -> None:
    doc = cli.json("show", "acme/small-8k")
    assert doc["status"] == "untested" and doc["declared_context"] == 8192
    code, out, _ = cli("show", "acme/small-8k")
    assert code == 0 and "not tested yet" in out


def test_show_a_failed_model_gives_the_reason(cli: Cli) -> None:
    cli("test", "acme/broken-4k", "--trials", "1", "--min", "1024")
    code, out, _ = cli("show", "acme/broken-4k")
    assert code == 0
    assert "reason:" in out


def test_load_with_a_size_reports_requested_and_applied(cli: Cli, sim: FakeLMStudio) -> None:
    doc = cli.json("load", "acme/small-8k", "--context", "4096")
    assert doc["requested_context"] == 4096 and doc["applied_context"] == 4096
    assert doc["auto_fitted"] is False
    code, out, _ = cli("load", "acme/limited-16k")
    assert code == 0 and "the default context" in out
    assert len(sim.loaded()) == 2


def test_load_auto_fit_is_reported(cli: Cli) -> None:
    code, out, err = cli("load", "acme/autofit-32k", "--context", "30000")
    assert code == 0
    assert "auto-fitted" in out
    assert "warning" in err and "applied" in err
    doc = cli.json("load", "acme/autofit-32k", "--context", "30,000")
    assert doc["auto_fitted"] is True and doc["applied_context"] < 30000


def test_load_tested_uses_the_loadable_context(cli: Cli) -> None:
    """'tested' loads at the loadable limit: a working-size prompt leaves room to answer."""
    report = cli.json("test", "acme/limited-16k", "--trials", "1")["models"][0]
    assert report["working_context"] < report["loadable_context"]
    doc = cli.json("load", "acme/limited-16k", "--context", "tested")
    assert doc["requested_context"] == report["loadable_context"]
    assert doc["applied_context"] == report["loadable_context"]


def test_load_tested_before_any_test_says_what_to_run(cli: Cli) -> None:
    code, out, err = cli("load", "acme/small-8k", "--context", "tested")
    assert code == 1 and out == ""
    assert "lmstrix test acme/small-8k" in err


@pytest.mark.parametrize("value", ["big", "0", "-1"])
def test_load_bad_context_exits_2(cli: Cli, value: str) -> None:
    code, _, err = cli("load", "acme/small-8k", "--context", value)
    assert code == 2 and "--context" in err


def test_load_unknown_model_lists_close_matches(cli: Cli) -> None:
    code, out, err = cli("load", "acme/smal-8k")
    assert code == 1 and out == ""
    assert "did you mean" in err and "acme/small-8k" in err
    code, _, err = cli("load", "acme/smal-8k", "--context", "tested")
    assert code == 1 and "did you mean" in err


def test_load_on_a_server_without_load_endpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with FakeLMStudio(models=FLEET, api="openai") as old:
        code, _, err = Cli(capsys, old.base_url, tmp_path / "r.json")("load", "acme/small-8k")
    assert code == 1
    assert "no load endpoint" in err


def test_ps_and_unload(cli: Cli, sim: FakeLMStudio) -> None:
    code, out, _ = cli("ps")
    assert code == 0 and "no model is loaded" in out
    assert cli.json("ps")["instances"] == []
    sim.preload("acme/small-8k", 4096)
    sim.preload("acme/limited-16k")
    doc = cli.json("ps")
    assert {i["key"] for i in doc["instances"]} == {"acme/small-8k", "acme/limited-16k"}
    assert all(
        RECORD_KEYS | {"id", "context_length", "parallel"} <= set(i) for i in doc["instances"]
    )
    small = next(i for i in doc["instances"] if i["key"] == "acme/small-8k")
    assert small["context_length"] == 4096
    code, out, _ = cli("ps")
    assert "acme/limited-16k" in out and "4,096" in out
    doc = cli.json("unload", "acme/small-8k")
    assert doc["unloaded"] == [small["id"]]
    code, out, _ = cli("unload", "--all")
    assert code == 0 and "unloaded 1 instance" in out
    code, out, _ = cli("unload", "--all")
    assert code == 0 and "nothing was loaded" in out
    assert sim.loaded() == []


def test_unload_errors(cli: Cli) -> None:
    assert cli("unload")[0] == 2
    assert cli("unload", "acme/small-8k", "--all")[0] == 2
    code, _, err = cli("unload", "acme/small-8k")
    assert code == 1 and "is not loaded" in err
    code, _, err = cli("unload", "acme/smal-8k")
    assert code == 1 and "did you mean" in err


def test_chat_answers_with_the_prompt_argument(cli: Cli) -> None:
    code, out, err = cli("chat", "acme/small-8k", "What is 2+2?")
    assert code == 0, err
    assert out.strip() == "4"


def test_chat_json_document(cli: Cli) -> None:
    doc = cli.json("chat", "acme/small-8k", "What is 2+3?", "--temperature", "0")
    assert {"model", "text", "finish_reason", "usage", "stats"} <= set(doc)
    assert doc["model"] == "acme/small-8k"
    assert doc["text"].strip() == "5"
    assert doc["usage"]["prompt_tokens"] > 0
    assert "tokens_per_second" in doc["stats"]


def test_chat_stream_with_stats(cli: Cli, sim: FakeLMStudio) -> None:
    code, out, err = cli(
        "chat", "acme/small-8k", "What is 3+4?", "--stream", "--stats", "--max-tokens", "20"
    )
    assert code == 0
    assert out.strip() == "7"
    assert "time to first token" in err and "tokens/s" in err and "prompt" in err
    body = sim.received[-1].body
    assert isinstance(body, dict)
    assert body["stream"] is True and body["max_tokens"] == 20
    doc = cli.json("chat", "acme/small-8k", "What is 3+4?", "--stream")
    assert doc["text"].strip() == "7" and doc["stats"]["time_to_first_token_s"] is not None


def test_chat_streams_by_default_on_a_terminal(
    cli: Cli, sim: FakeLMStudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lmstrix.cli._output._isatty", lambda stream: True)
    code, out, _ = cli("chat", "acme/small-8k", "What is 1+1?")
    assert code == 0 and out.strip() == "2"
    body = sim.received[-1].body
    assert isinstance(body, dict) and body["stream"] is True
    code, out, _ = cli("chat", "acme/small-8k", "What is 1+1?", "--no-stream")
    body = sim.received[-1].body
    assert isinstance(body, dict) and body["stream"] is False


def test_chat_with_a_system_message(cli: Cli, sim: FakeLMStudio) -> None:
    assert cli("chat", "acme/small-8k", "What is 2+2?", "--system", "Be brief.")[0] == 0
    body = sim.received[-1].body
    assert isinstance(body, dict)
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_chat_prompt_from_a_file_and_from_stdin(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = tmp_path / "q.txt"
    prompt.write_text("What is 6+1?\n", encoding="utf-8")
    code, out, _ = cli("chat", "acme/small-8k", "-f", str(prompt))
    assert code == 0 and out.strip() == "7"
    monkeypatch.setattr("sys.stdin", io.StringIO("What is 2+6?"))
    code, out, _ = cli("chat", "acme/small-8k")
    assert code == 0 and out.strip() == "8"
    monkeypatch.setattr("sys.stdin", io.StringIO("What is 1+2?"))
    code, out, _ = cli("chat", "acme/small-8k", "-f", "-")
    assert code == 0 and out.strip() == "3"


def test_chat_prompt_from_a_template(cli: Cli, tmp_path: Path, sim: FakeLMStudio) -> None:
    library = tmp_path / "prompts.json"
    library.write_text(
        json.dumps(
            {
                "ask": "{{persona}} What is {{a}}+{{b}}?",
                "persona": "You count.",
                "wrap": "Question: {{input}}",
            }
        ),
        encoding="utf-8",
    )
    args = ["--prompts", str(library), "--template", "ask", "--var", "a=2", "--var", "b=5"]
    code, out, _ = cli("chat", "acme/small-8k", *args)
    assert code == 0 and out.strip() == "7"
    body = sim.received[-1].body
    assert isinstance(body, dict)
    assert body["messages"][-1]["content"] == "You count. What is 2+5?"
    code, out, _ = cli(
        "chat", "acme/small-8k", "What is 4+4?", "--prompts", str(library), "--template", "wrap"
    )
    assert code == 0 and out.strip() == "8"


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "chat", "acme/small-8k"],  # no prompt, stdin a terminal: no JSON chat
        ["chat", "acme/small-8k", "hi", "-f", "x.txt"],
        ["chat", "acme/small-8k", "-f", "/no/such/file.txt"],
        ["chat", "acme/small-8k", "hi", "--template", "t"],
        ["chat", "acme/small-8k", "hi", "--var", "a=1"],
        ["chat", "acme/small-8k", "hi", "--max-tokens", "0"],
        ["chat", "acme/small-8k", "hi", "--prompts", "/no/such.json", "--template", "t"],
        ["chat", "acme/small-8k", "hi", "--temperature", "warm"],
    ],
)
def test_chat_bad_usage_exits_2(cli: Cli, args: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal())
    code, out, err = cli(*args)
    assert code == 2, err
    assert out == ""


def test_chat_file_that_is_not_utf8_exits_2(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    code, _, err = cli("chat", "acme/small-8k", "-f", str(bad))
    assert code == 2 and "UTF-8" in err


def test_chat_unknown_model_lists_close_matches(cli: Cli) -> None:
    for extra in ([], ["--stream"]):
        code, out, err = cli("chat", "acme/limited", "hi", *extra)
        assert code == 1 and out == ""
        assert "did you mean" in err and "acme/limited-16k" in err


def test_prompt_render(cli: Cli, tmp_path: Path) -> None:
    library = tmp_path / "p.json"
    library.write_text(json.dumps({"hello": {"en": "Hello, {{name}}!"}}), encoding="utf-8")
    code, out, _ = cli("prompt", "render", str(library), "hello.en", "--var", "name=Ann")
    assert code == 0 and out == "Hello, Ann!\n"
    doc = cli.json("prompt", "render", str(library), "hello.en", "--var", "name=Bo")
    assert doc == {"file": str(library), "name": "hello.en", "text": "Hello, Bo!"}
    code, _, err = cli("prompt", "render", str(library), "hello.en")
    assert code == 2 and "name" in err  # a missing variable is bad input
    code, _, err = cli("prompt", "render", str(library), "hello.en", "--var", "oops")
    assert code == 2
    code, _, err = cli("prompt", "render", str(tmp_path / "missing.json"), "x")
    assert code == 2
    assert cli("prompt")[0] == 2


def test_doctor_ok(cli: Cli) -> None:
    doc = cli.json("doctor")
    assert doc["ok"] is True
    assert doc["server"]["reachable"] is True and doc["server"]["api"] == "v1"
    assert doc["server"]["auth"] == "not required" and doc["server"]["models"] == 5
    assert doc["registry"]["ok"] is True and doc["registry"]["path"] == str(cli.registry)
    assert {"python", "lmstrix", "executable"} <= set(doc)
    code, out, _ = cli("doctor")
    assert code == 0 and "FAIL" not in out and "LM Studio 0.4+" in out


def test_doctor_reports_a_corrupt_registry(cli: Cli) -> None:
    cli.registry.write_text("{not json", encoding="utf-8")
    code, out, _ = cli("--json", "doctor")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and doc["registry"]["ok"] is False
    assert str(cli.registry) in doc["registry"]["error"]
    code, out, _ = cli("doctor")
    assert code == 1 and "FAIL  registry" in out


def test_a_corrupt_registry_fails_list_with_its_location(cli: Cli) -> None:
    cli.registry.write_text('{"schema": 1,\n  oops}', encoding="utf-8")
    code, out, err = cli("list")
    assert code == 1 and out == ""
    assert str(cli.registry) in err and "line 2" in err


def test_json_option_after_the_command(cli: Cli) -> None:
    code, out, _ = cli("list", "--json")
    assert code == 0
    assert json.loads(out)["models"]


def test_quiet_silences_progress(cli: Cli) -> None:
    code, out, err = cli("-q", "test", "acme/small-8k", "--trials", "1")
    assert code == 0 and "acme/small-8k" in out
    assert err == ""


def test_progress_rewrites_one_line_on_a_terminal(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lmstrix.cli._output._isatty", lambda stream: True)
    code, _, err = cli("test", "acme/small-8k", "--trials", "1")
    assert code == 0
    # The search's steps rewrite one line (\r), not a line each (the summary lines after
    # it are plain lines: their number depends on the metrics, not on the steps).
    rewritten = [line for line in err.split("\n") if "\r[1/1]" in line]
    assert rewritten and max(line.count("\r") for line in rewritten) >= 2


def _Terminal() -> Any:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    return Terminal("")


def test_demo_through_main_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--trials", "0"]) == 2
    capsys.readouterr()


def test_show_and_test_of_an_unknown_model_list_close_matches(cli: Cli) -> None:
    for command in (["show", "acme/small"], ["test", "acme/small"]):
        code, out, err = cli(*command)
        assert code == 1 and out == ""
        assert "did you mean" in err and "acme/small-8k" in err


def test_a_not_found_error_for_a_listed_model_is_kept(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmstrix.errors import ModelNotFoundError

    def refuse(self: Any, model: str, messages: Any, **params: Any) -> Any:
        raise ModelNotFoundError("the server lost acme/small-8k", status_code=404, model=model)

    monkeypatch.setattr("lmstrix.client.Client.chat", refuse)
    code, _, err = cli("chat", "acme/small-8k", "hi")
    assert code == 1
    assert err.strip() == "error: the server lost acme/small-8k"


def test_ctrl_c_in_any_command_exits_130(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Any, model: str, messages: Any, **params: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("lmstrix.client.Client.chat", interrupted)
    code, out, err = cli("chat", "acme/small-8k", "hi")
    assert code == 130 and out == ""
    assert "interrupted" in err


def test_output_survives_streams_that_cannot_say_if_they_are_terminals() -> None:
    from lmstrix.cli._output import Output

    closed = io.StringIO()
    closed.close()
    assert Output().is_tty(closed) is False
    assert Output().is_tty(object()) is False
