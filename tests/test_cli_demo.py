"""`lmstrix demo` and the lite CLI's plumbing (exit codes, JSON on stdout only)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lmstrix.cli import main
from lmstrix.cli._output import table


def test_demo_prints_the_table_and_streams_an_answer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--trials", "1"]) == 0
    out, err = capsys.readouterr()
    assert "declared" in out
    assert "loadable" in out
    assert "lmstrix-demo/solid-3b" in out
    assert "5" in out.splitlines()[-1]  # the streamed answer to "What is 2+3?"
    assert "probe" in err  # progress goes to stderr
    assert "load" in err


def test_demo_json_is_one_document_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "demo", "--trials", "1"]) == 0
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    keys = {"key", "declared_context", "loadable_context", "working_context", "status", "loads"}
    assert all(keys <= set(m) for m in doc["models"])
    solid = next(m for m in doc["models"] if m["key"] == "lmstrix-demo/solid-3b")
    assert solid["loadable_context"] == 16384
    assert doc["answer"].strip() == "5"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert main([]) == 2
    assert main(["demo", "--trials", "many"]) == 2
    capsys.readouterr()


def test_python_m_lmstrix_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lmstrix", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "demo" in result.stdout


def test_table_formats_numbers_and_missing_values() -> None:
    text = table(["a", "b"], [["x", 1234], ["yy", None]])
    assert text.splitlines() == ["a   b", "--  -----", "x   1,234", "yy  -"]
