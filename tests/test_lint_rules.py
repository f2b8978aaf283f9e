"""The project's rules in ruff: third-party imports only in their extra's module, no print.

Each case lints a small module as if it were saved at a given path in the checkout
(``ruff check --stdin-filename``), so the per-file allowances in ``pyproject.toml`` apply
exactly as they would to a real file there, and nothing is written into the package.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
from _scripts import load_script

ROOT = Path(__file__).resolve().parent.parent

MODULE = '''"""A module."""

from __future__ import annotations

import {name}

__all__ = ["{root}"]
'''


def ruff(source: str, path: str) -> Tuple[int, str]:
    """Lint ``source`` as the file ``path`` of the checkout; return (exit code, report)."""
    pytest.importorskip("ruff", reason="ruff comes with the dev extra; tox's test envs lack it")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--output-format=concise",
            "--stdin-filename",
            path,
            "-",
        ],
        input=source,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def module(name: str) -> str:
    return MODULE.format(name=name, root=name.partition(".")[0])


# (imported module, where its extra keeps it, a core module that must not import it)
EXTRAS: List[Tuple[str, str, str]] = [
    ("requests", "lmstrix/requests_transport.py", "lmstrix/client/_client.py"),
    ("requests", "lmstrix/transport/_requests.py", "lmstrix/transport/_http.py"),
    ("click", "lmstrix/cli/click_app.py", "lmstrix/cli/_lite.py"),
    ("opentelemetry.trace", "lmstrix/observe/otel.py", "lmstrix/observe/_events.py"),
    ("langchain_core", "lmstrix/integrations/langchain.py", "lmstrix/batch/_runner.py"),
    ("dask.distributed", "lmstrix/integrations/dask.py", "lmstrix/pool/_pool.py"),
    ("datasets", "lmstrix/integrations/hf_datasets.py", "lmstrix/registry/_file.py"),
    ("pyarrow", "lmstrix/integrations/arrow.py", "lmstrix/batch/_io.py"),
    ("matplotlib.pyplot", "lmstrix/_plot.py", "lmstrix/context/_strategy.py"),
]


def test_a_core_module_importing_requests_fails_ruff_check() -> None:
    code, report = ruff(module("requests"), "lmstrix/x.py")
    assert code == 1, report
    assert "TID251 `requests` is banned" in report, report
    assert "lmstrix/transport/_requests.py" in report, "the message says where it belongs"


def test_the_requests_transport_itself_passes_ruff_check() -> None:
    real = ROOT / "lmstrix" / "transport" / "_requests.py"
    source = real.read_text(encoding="utf-8")
    assert "import requests" in source
    code, report = ruff(source, "lmstrix/transport/_requests.py")
    assert code == 0, report
    # The very same text, saved as a core module, is refused.
    code, report = ruff(source, "lmstrix/client_copy.py")
    assert code == 1
    assert "TID251" in report, report


@pytest.mark.parametrize(("name", "allowed", "core"), EXTRAS)
def test_each_extra_is_allowed_only_in_its_module(name: str, allowed: str, core: str) -> None:
    code, report = ruff(module(name), allowed)
    assert code == 0, f"{name} should be allowed in {allowed}:\n{report}"
    code, report = ruff(module(name), core)
    assert code == 1, f"{name} should be banned in {core}:\n{report}"
    assert f"TID251 `{name.partition('.')[0]}` is banned" in report, report


@pytest.mark.parametrize("path", ["tests/test_x.py", "benchmarks/bench_x.py", "examples/x.py"])
def test_tests_benchmarks_and_examples_may_import_anything(path: str) -> None:
    for name in ("requests", "click", "numpy", "matplotlib.pyplot"):
        code, report = ruff(module(name), path)
        assert code == 0, f"{name} in {path}:\n{report}"


PRINTS = '''"""A module."""

from __future__ import annotations


def f() -> None:
    print("hello")
'''


def test_print_is_refused_in_the_library_and_allowed_in_the_cli() -> None:
    code, report = ruff(PRINTS, "lmstrix/registry.py")
    assert code == 1
    assert "T201" in report, report
    for path in ("lmstrix/cli/_output.py", "examples/x.py", "scripts/x.py", "tests/test_x.py"):
        code, report = ruff(PRINTS, path)
        assert code == 0, f"{path}:\n{report}"


NAIVE = '''"""A module."""

from __future__ import annotations

import datetime


def f() -> datetime.datetime:
    return datetime.datetime.now()
'''

RERAISE = '''"""A module."""

from __future__ import annotations


def f(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RuntimeError(text)
'''


def test_naive_datetimes_and_reraise_without_from_are_refused() -> None:
    code, report = ruff(NAIVE, "lmstrix/registry/_records.py")
    assert code == 1
    assert "DTZ005" in report, report
    code, report = ruff(RERAISE, "lmstrix/registry/_records.py")
    assert code == 1
    assert "B904" in report, report
    fixed = RERAISE.replace("except ValueError:", "except ValueError as exc:").replace(
        "raise RuntimeError(text)", "raise RuntimeError(text) from exc"
    )
    assert ruff(fixed, "lmstrix/registry/_records.py") == (0, "All checks passed!\n")


def test_docs_python_blocks_all_compile() -> None:
    snippets = load_script("check_docs_snippets")
    files = snippets.markdown_files(["docs", "README.md"])
    assert len(files) > 10
    compiled, problems = snippets.check(files)
    assert problems == []
    assert compiled > 20


def test_a_broken_docs_block_is_named_by_file_and_line(tmp_path: Path) -> None:
    snippets = load_script("check_docs_snippets")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n```python\nx = 1\n```\n\n```text\nf(a) -> int\n```\n\n"
        "- a list item:\n\n  ````py\n  y = (\n  ````\n\n```sh\nls (\n```\n",
        encoding="utf-8",
    )
    blocks = list(snippets.python_blocks(page.read_text(encoding="utf-8")))
    assert blocks == [(4, "x = 1\n"), (14, "y = (\n")]
    compiled, problems = snippets.check([page])
    assert compiled == 2
    assert len(problems) == 1
    assert problems[0].startswith(f"{page}:14: ")
    assert snippets.main([str(page)]) == 1
