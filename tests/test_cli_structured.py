"""``lmstrix chat --schema FILE`` on both front ends, against the simulator: the JSON
printed (indented on a terminal, one line otherwise), ``--json`` with ``parsed``, the
retry, and bad schema files (exit 2 saying what and where)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Tuple

import pytest
from _cli_helpers import Entry, front_ends, run_cli

from lmstrix.testing import FakeLMStudio, Fault, SimModel

MODEL = "acme/chat-8k"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}
ANSWER = {"city": "example", "population": 1}


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio([SimModel(MODEL, 8192)]) as server:
        yield server


@pytest.fixture(params=front_ends(), ids=lambda pair: pair[0])
def entry(request: pytest.FixtureRequest) -> Entry:
    pair: Tuple[str, Entry] = request.param
    return pair[1]


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "city.json"
    path.write_text(json.dumps(SCHEMA), encoding="utf-8")
    return path


def chat(
    capsys: pytest.CaptureFixture[str],
    entry: Entry,
    sim: FakeLMStudio,
    *args: str,
    as_json: bool = False,
) -> Tuple[int, str, str]:
    """``lmstrix --server SIM [--json] chat MODEL "A city" ARGS``: exit code, stdout, stderr."""
    json_flag = ("--json",) if as_json else ()
    return run_cli(
        capsys, entry, "--server", sim.base_url, *json_flag, "chat", MODEL, "A city", *args
    )


def test_chat_schema_prints_the_json_on_one_line_in_a_pipe(
    capsys: pytest.CaptureFixture[str], entry: Entry, sim: FakeLMStudio, schema_file: Path
) -> None:
    sim.inject(Fault(kind="schema_invalid"))
    code, out, err = chat(capsys, entry, sim, "--schema", str(schema_file))
    assert code == 0, err
    assert out == json.dumps(ANSWER) + "\n"
    bodies = [r.body for r in sim.received if r.path == "/v1/chat/completions"]
    assert len(bodies) == 2  # the first answer lacked "city": asked again
    assert bodies[0]["stream"] is False
    assert bodies[0]["response_format"]["json_schema"]["schema"] == SCHEMA


def test_chat_schema_is_indented_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
    entry: Entry,
    sim: FakeLMStudio,
    schema_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("lmstrix.cli._output._isatty", lambda stream: True)
    code, out, _ = chat(capsys, entry, sim, "--schema", str(schema_file))
    assert code == 0
    assert out == json.dumps(ANSWER, indent=2) + "\n"
    body = sim.received[-1].body
    assert body["stream"] is False  # not streamed by default with --schema


def test_chat_schema_json_document_has_parsed(
    capsys: pytest.CaptureFixture[str], entry: Entry, sim: FakeLMStudio, schema_file: Path
) -> None:
    code, out, _ = chat(capsys, entry, sim, "--schema", str(schema_file), as_json=True)
    assert code == 0
    doc = json.loads(out)
    assert doc["parsed"] == ANSWER and json.loads(doc["text"]) == ANSWER
    code, out, _ = run_cli(capsys, entry, "--server", sim.base_url, "--json", "chat", MODEL, "x")
    assert "parsed" not in json.loads(out)


def test_chat_schema_streamed_when_asked(
    capsys: pytest.CaptureFixture[str], entry: Entry, sim: FakeLMStudio, schema_file: Path
) -> None:
    code, out, _ = chat(capsys, entry, sim, "--schema", str(schema_file), "--stream")
    assert code == 0 and json.loads(out) == ANSWER
    assert sim.received[-1].body["stream"] is True


def test_chat_schema_failing_every_try_exits_1(
    capsys: pytest.CaptureFixture[str], entry: Entry, sim: FakeLMStudio, schema_file: Path
) -> None:
    sim.inject(Fault(kind="schema_invalid", times=2))
    code, out, err = chat(capsys, entry, sim, "--schema", str(schema_file))
    assert (code, out) == (1, "")
    assert "no valid JSON for the schema in 2 answers" in err
    assert "missing required property 'city'" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--schema: cannot read"),
        ('{"type": "object",\n "properties": }', "not valid JSON at line 2, column 16"),
        ("[1, 2]", "a JSON schema is a JSON object, not a list"),
    ],
)
def test_a_bad_schema_file_exits_2(
    capsys: pytest.CaptureFixture[str],
    entry: Entry,
    sim: FakeLMStudio,
    tmp_path: Path,
    content: str,
    message: str,
) -> None:
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = chat(capsys, entry, sim, "--schema", str(path))
    assert (code, out) == (2, "")
    assert message in err and str(path) in err
    assert not [r for r in sim.received if r.path == "/v1/chat/completions"]
