"""``lmstrix chat --native``: the answer on stdout, load and prompt progress on stderr.

Both front ends, in-process, against the simulator on loopback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, List

import pytest
from _cli_helpers import Entry, front_ends, run_cli

from lmstrix.testing import FakeLMStudio, SimModel

THINKER = "acme/thinker-4b"
PLAIN = "acme/plain-1b"
FRONT_ENDS = front_ends()
IDS = [name for name, _ in FRONT_ENDS]


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio([SimModel(THINKER, 32768, reasoning=True), SimModel(PLAIN, 8192)]) as s:
        yield s


def _base(sim: FakeLMStudio, tmp_path: Path) -> List[str]:
    return ["--server", sim.base_url, "--registry", str(tmp_path / "registry.json")]


@pytest.mark.parametrize(("name", "entry"), FRONT_ENDS, ids=IDS)
def test_native_chat_prints_answer_and_progress(
    capsys: pytest.CaptureFixture[str],
    sim: FakeLMStudio,
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    args = [*_base(sim, tmp_path), "chat", PLAIN, "What is 5+6?", "--native", "--stats"]
    code, out, err = run_cli(capsys, entry, *args, "--system", "Be brief.")
    assert code == 0, err
    assert out == "11\n"
    lines = err.splitlines()
    assert lines[:4] == [f"{PLAIN}: loading the model {p}%" for p in (25, 50, 75, 100)]
    assert lines[4:6] == [f"{PLAIN}: reading the prompt {p}%" for p in (50, 100)]
    assert lines[6].startswith("stats: time to first token ")
    assert "model loaded in" in lines[6] and "1 output tokens" in lines[6]
    body = [r.body for r in sim.received if r.path == "/api/v1/chat"][-1]
    assert body["system_prompt"] == "Be brief." and body["stream"] is True


def test_native_chat_streams_and_json(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    entry = FRONT_ENDS[0][1]
    base = _base(sim, tmp_path)
    code, out, err = run_cli(
        capsys, entry, *base, "chat", THINKER, "Say hi", "--native", "--stream", "--stats"
    )
    assert code == 0, err
    assert out == f"Simulated answer from {THINKER} to: Say hi\n"
    assert "reasoning)" in err.splitlines()[-1]
    code, out, err = run_cli(
        capsys,
        entry,
        *base,
        "--json",
        "chat",
        THINKER,
        "Say hi",
        "--native",
        "--max-tokens",
        "7",
        "--temperature",
        "0",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["model"] == THINKER and doc["server"] == sim.base_url
    assert [item["type"] for item in doc["output"]] == ["reasoning", "message"]
    assert doc["stats"]["total_output_tokens"] == 7
    assert doc["response_id"].startswith("resp_")
    body = [r.body for r in sim.received if r.path == "/api/v1/chat"][-1]
    assert body["max_output_tokens"] == 7 and body["temperature"] == 0


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["-m", PLAIN, "-m", THINKER], "one model"),
        (["--cache", "x.sqlite"], "--cache"),
    ],
)
def test_native_chat_bad_usage_exits_2(
    capsys: pytest.CaptureFixture[str],
    sim: FakeLMStudio,
    tmp_path: Path,
    extra: List[str],
    words: str,
) -> None:
    target = [] if extra[0] == "-m" else [PLAIN]
    args = [*_base(sim, tmp_path), "chat", *target, "hi", "--native", *extra]
    code, out, err = run_cli(capsys, FRONT_ENDS[0][1], *args)
    assert code == 2 and out == ""
    assert words in err


def test_native_chat_unknown_model_and_old_server(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, tmp_path: Path
) -> None:
    entry = FRONT_ENDS[0][1]
    code, _, err = run_cli(
        capsys, entry, *_base(sim, tmp_path), "chat", "acme/plain", "hi", "--native"
    )
    assert code == 1 and "acme/plain-1b" in err  # close matches named
    with FakeLMStudio([SimModel(PLAIN, 8192)], api="v0") as old:
        code, out, err = run_cli(
            capsys, entry, *_base(old, tmp_path), "chat", PLAIN, "hi", "--native"
        )
    assert code == 1 and out == ""
    assert "LM Studio 0.4 or newer" in err
