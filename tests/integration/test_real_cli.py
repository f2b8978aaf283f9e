"""The ``lmstrix`` command against a real OpenAI-compatible server (llama.cpp + SmolLM2-135M).

Opt-in like the rest of this folder (``pytest -m integration``). The server has no load
endpoint, so ``test`` measures the working context of the instance it serves, with no
load at all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
QUESTION = "What is 2+2? Answer with a number only."


def _lmstrix(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env: Dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith("LMSTRIX_")}
    env["LMSTRIX_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "lmstrix", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_chat_json(real_server: Tuple[str, int], model: str, tmp_path: Path) -> None:
    url, _ = real_server
    result = _lmstrix(
        tmp_path, "--server", url, "chat", model, QUESTION, "--json", "--temperature", "0"
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout holds the JSON document and nothing else
    assert {"model", "text", "finish_reason", "usage", "stats"} <= set(doc)
    assert doc["model"] == model
    assert re.findall(r"\d+", doc["text"])[-1] == "4", doc["text"]
    assert doc["usage"]["prompt_tokens"] > 0


def test_chat_streamed_with_stats(real_server: Tuple[str, int], model: str, tmp_path: Path) -> None:
    url, _ = real_server
    result = _lmstrix(
        tmp_path,
        "--server",
        url,
        "chat",
        model,
        QUESTION,
        "--stream",
        "--stats",
        "--temperature",
        "0",
    )
    assert result.returncode == 0, result.stderr
    assert "4" in result.stdout
    assert "time to first token" in result.stderr and "tokens/s" in result.stderr


def test_test_json(real_server: Tuple[str, int], model: str, tmp_path: Path) -> None:
    url, n_ctx = real_server
    args: List[str] = [
        "--server",
        url,
        "--registry",
        str(tmp_path / "registry.json"),
        "test",
        model,
        "--json",
        "--min",
        "512",
        "--resolution",
        "256",
        "--trials",
        "1",
    ]
    result = _lmstrix(tmp_path, *args)
    assert result.returncode in (0, 1), result.stderr  # 1: the model failed the test
    (report,) = json.loads(result.stdout)["models"]
    assert {
        "key",
        "declared_context",
        "loadable_context",
        "working_context",
        "status",
        "loads",
    } <= set(report)
    assert report["key"] == model
    assert report["loads"] == 0  # no load endpoint: the served instance is probed
    assert report["can_load"] is False
    assert report["status"] in ("done", "failed")
    if report["status"] == "done":
        assert result.returncode == 0
        assert report["working_context"] is not None and report["working_context"] <= n_ctx
    assert "probe" in result.stderr  # progress on stderr

    listed = _lmstrix(
        tmp_path, "--server", url, "--registry", str(tmp_path / "registry.json"), "list", "--json"
    )
    assert listed.returncode == 0, listed.stderr
    row = next(m for m in json.loads(listed.stdout)["models"] if m["key"] == model)
    assert row["status"] == report["status"]
    assert row["working_context"] == report["working_context"]


def test_load_says_the_server_cannot(
    real_server: Tuple[str, int], model: str, tmp_path: Path
) -> None:
    url, _ = real_server
    result = _lmstrix(tmp_path, "--server", url, "load", model, "--context", "1024")
    assert result.returncode == 1
    assert "no load endpoint" in result.stderr
    doctor = _lmstrix(tmp_path, "--server", url, "--json", "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert json.loads(doctor.stdout)["server"]["api"] == "openai"


@pytest.mark.parametrize("command", [["ps"], ["list"]])
def test_read_only_commands(
    real_server: Tuple[str, int], tmp_path: Path, command: List[str]
) -> None:
    url, _ = real_server
    result = _lmstrix(tmp_path, "--server", url, "--json", *command)
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)
