"""``lmstrix summarize`` and ``lmstrix ask``, on both front ends, against the simulator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest
from _cli_helpers import Entry, front_ends, run_cli
from _text_helpers import clean_embedder_key

import lmstrix
from lmstrix.registry import ModelRecord
from lmstrix.testing import MARKER_PATTERN, FakeLMStudio, SimModel, long_document

READER = SimModel("sim/reader-4k", 16384, 8192, 4096, echo_pattern=MARKER_PATTERN)
EMBEDDER = SimModel(clean_embedder_key(), 2048, type="embedding")
NEEDLES = {"amber": "4711", "birch": "2290"}
FRONT_ENDS = front_ends()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Tuple[FakeLMStudio, List[str]]]:
    with FakeLMStudio([READER, EMBEDDER]) as server:
        registry_path = tmp_path / "registry.json"
        registry = lmstrix.Registry(str(registry_path), server=server.base_url)
        registry.upsert(ModelRecord(READER.key, working_context=4096, status="done"))
        yield server, ["--server", server.base_url, "--registry", str(registry_path)]


Run = Callable[..., Tuple[int, str, str]]


@pytest.fixture(params=[entry for _, entry in FRONT_ENDS], ids=[n for n, _ in FRONT_ENDS])
def cli(
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    setup: Tuple[FakeLMStudio, List[str]],
) -> Run:
    """Runs one front end with the server and registry options, then ``args``."""
    entry: Entry = request.param

    def run(*args: str) -> Tuple[int, str, str]:
        return run_cli(capsys, entry, *setup[1], *args)

    return run


def write(tmp_path: Path, text: str, name: str = "doc.txt") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_summarize_prints_the_summary_and_resumes_from_its_state(
    cli: Run, setup: Tuple[FakeLMStudio, List[str]], tmp_path: Path
) -> None:
    fake = setup[0]
    text = long_document(200, marker_every=4)
    state = tmp_path / "state.jsonl"
    args = ["summarize", write(tmp_path, text), "-m", READER.key, "--state", str(state)]
    code, out, err = cli(*args)
    assert code == 0, err
    assert set(re.findall(MARKER_PATTERN, out)) == set(re.findall(MARKER_PATTERN, text))
    assert "chunks" in err and "requests" in err
    requests = fake.counters.requests.get("/v1/chat/completions", 0)
    code, out2, err = cli("--json", *args, "--max-tokens", "512")
    assert code == 0, err
    doc = json.loads(out2)
    assert doc["text"] == out.strip() and doc["requests"] == 0  # all from the state
    assert fake.counters.requests.get("/v1/chat/completions", 0) == requests
    assert doc["working_context"] == 4096 and doc["levels"][0] == len(doc["chunks"])


def test_ask_finds_the_needle_in_map_and_extractive_mode(cli: Run, tmp_path: Path) -> None:
    document = write(tmp_path, long_document(150, marker_every=0, needles=NEEDLES))
    question = "What is the amber vault code?"
    code, out, err = cli("ask", document, question, "-m", READER.key)
    assert (code, out.strip()) == (0, "[[AMBER-4711]]"), err
    code, out, err = cli(
        "--json",
        "ask",
        document,
        question,
        "-m",
        READER.key,
        "--extractive",
        "--embedding-model",
        EMBEDDER.key,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["text"] == "[[AMBER-4711]]" and doc["mode"] == "extractive"
    assert 0 < len(doc["selected"]) < len(doc["chunks"])


def test_bad_input_exits_2_saying_what_to_do(cli: Run, tmp_path: Path) -> None:
    document = write(tmp_path, "Some [[text]].")
    missing = str(tmp_path / "missing.txt")
    code, _, err = cli("summarize", missing, "-m", READER.key)
    assert code == 2 and "cannot read" in err and missing in err
    code, _, err = cli("summarize", document, "-m", EMBEDDER.key)
    assert code == 2 and f"lmstrix test {EMBEDDER.key}" in err and "--working-context" in err
    code, _, err = cli("ask", document, "why?", "-m", READER.key, "--extractive")
    assert code == 2 and "--embedding-model" in err
    code, _, err = cli("ask", document, "why?", "-m", READER.key, "--embedding-model", "e")
    assert code == 2 and "--embedding-model is for --extractive" in err
    code, _, err = cli("summarize", document, "-m", READER.key, "--max-tokens", "3000")
    assert code == 2 and "--max-tokens" in err
    code, _, err = cli("summarize", document, "-m", READER.key, "--workers", "0")
    assert code == 2 and "--workers must be at least 1" in err
    code, _, err = cli("summarize", write(tmp_path, "  \n", "empty.txt"), "-m", READER.key)
    assert code == 2 and "empty" in err


def test_an_unknown_model_exits_1_with_close_matches_and_ctrl_c_exits_130(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = write(tmp_path, long_document(100, marker_every=4))
    code, _, err = cli("summarize", document, "-m", "sim/reader-4", "--working-context", "4096")
    assert code == 1 and "sim/reader-4k" in err

    def interrupt(self: object, message: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("lmstrix.cli._output.Output.progress", interrupt)
    state = tmp_path / "state.jsonl"
    code, out, err = cli("summarize", document, "-m", READER.key, "--state", str(state))
    assert code == 130 and out == ""
    assert f"the answers so far are in {state}" in err
    code, out, err = cli("summarize", document, "-m", READER.key)
    assert code == 130 and "give --state PATH" in err
