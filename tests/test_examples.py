"""The examples run, on the simulator and against a server given with ``--server``.

Every ``examples/*.py`` (``_common.py`` aside) is run as a user would run it, in a
subprocess with no arguments, and must exit 0 and print what it is meant to print.
The pure helpers (code-fence extraction, document chunking, the table) are tested
directly. The Python snippets of the docs pages are run by ``test_docs_snippets.py``.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, Iterator, List, Tuple

import pytest

from lmstrix.testing import FakeLMStudio, demo_fleet

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# What each example must print on the simulator (regular expressions, multiline).
MARKERS: Dict[str, Tuple[str, ...]] = {
    "basic_chat.py": (r"^A: 42$", r"^conversation: 7 messages$"),
    "streaming_chat.py": (
        r"^Simulated answer from lmstrix-demo/solid-3b to: Tell me a short story",
        r"^first token after: \d+\.\d{3} s$",
        r"finish_reason stop",
        r"^stream closed early: yes$",
    ),
    "summarize_document.py": (
        r"^search: done, \d+ loads",
        r"^working context: [\d,]+ tokens \(tested\)",
        r"^fits in one request: no$",
        r"^chunks: [2-9]; texts per level: [2-9] -> 1$",
        r"^  part 1 \([\d,]+ characters\): Simulated answer from example/reader-3b",
        r"^final summary:\nSimulated answer from example/reader-3b to: These are summaries",
    ),
    "fit_long_prompt.py": (
        r"^search: working context [\d,]+ tokens$",
        r"^medium prompt: about [\d,]+ tokens, fits: True$",
        r"^loaded at \[17408\] tokens; answer: Simulated answer",
        r"^server counted [\d,]+; estimate held: True$",
        r"^long document fits: False$",
        r"^split into [2-9] chunks$",
        r"^  chunk 1 \[[\d,]+:104,878\] fits True: Simulated answer",
    ),
    "code_generator.py": (
        r"^task: Write a Python function is_palindrome",
        r"^no fenced code in the answer; the raw answer was:\nSimulated answer from",
    ),
    "compare_models.py": (
        r"^model +seconds +first token s +tokens +tokens/s +answer$",
        r"^example/fast-1b +\d+\.\d{3} +\d+\.\d{3} +13 ",
        r"^example/medium-4b ",
        r"^example/slow-8b ",
        r"^fastest: example/",
    ),
    "native_chat.py": (
        r"^\(thinking\.\.\.\)\nSimulated answer from example/thinker-4b to: Explain",
        r"^items: reasoning, message$",
        r"^this request loaded the model in \d+\.\d\d s$",
        r"^42  \[\d+ input tokens\]$",
        r"^conversation: 3 turns, last response resp_",
    ),
    "prompt_templates.py": (r"^--- system ---$", r"^--- user ---$"),
    "batch_processing.py": (r"^resumed: ", r"every id exactly once: yes$"),
    "requests_transport.py": (r"^transport: RequestsTransport", r"^chat: '42'$"),
    "stream_continuation.py": (
        r"^Simulated answer from lmstrix-demo/solid-3b to: Tell me a long story",
        r"^continued: 1 time\(s\); \d+ characters$",
        r"^finish_reason: stop$",
    ),
    "download_model.py": (
        r"^download of lmstrix-demo/fresh-chat-2b: downloading$",
        r"^completed: 1,000,000,000 bytes$",
        r"^listed by the server: yes\nanswer: 5$",
        r"^asked again: already_downloaded$",
    ),
    "tool_loop.py": (
        r"^call get_weather \{\"city\": \"Par -> error: the arguments of tool call 'get_weather' ",
        r"^call get_weather \{\"city\": \"Rome\"\} -> \{\"city\": \"Rome\", \"sky\": \"cloudy\"",
        r"^answer: Tool results: get_weather: .*; get_weather: ",
        r"^steps: 3, tool calls run: 3$",
    ),
    "structured_output.py": (
        r"^model: lmstrix-demo/\S+ \(server API: v1\)$",
        r'^      "genre": "fiction"$',
        r"^books: 2, first year: 1450$",
        r"^too short an answer, 2 tries: \$: the answer is not JSON$",
    ),
}


def _examples() -> List[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != "_common.py")


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def load_example(name: str) -> ModuleType:
    """Import ``examples/NAME.py`` as a module (with ``examples/`` on the path for _common)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name[:-3]}", EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- runs


@pytest.mark.parametrize("name", _examples())
def test_example_runs_on_the_simulator(name: str) -> None:
    result = run_example(name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), f"{name} printed nothing"
    assert "Traceback" not in result.stderr
    # An example without markers yet (just added) must still run cleanly.
    for marker in MARKERS.get(name, ()):
        assert re.search(marker, result.stdout, re.MULTILINE), (marker, result.stdout)


def test_the_examples_page_lists_every_example() -> None:
    page = (ROOT / "docs" / "user-guide" / "examples.md").read_text(encoding="utf-8")
    for name in _examples():
        assert f"examples/{name}" in page, f"describe examples/{name} in examples.md"


@pytest.mark.parametrize("name", [n for n in _examples() if n != "prompt_templates.py"])
def test_example_takes_server_and_model(name: str) -> None:
    result = run_example(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "--server URL" in result.stdout
    assert "--model KEY" in result.stdout


@pytest.fixture
def server() -> Iterator[FakeLMStudio]:
    """A separate server, reached with --server like a real one (nothing loaded)."""
    with FakeLMStudio(demo_fleet()) as fake:
        yield fake


@pytest.mark.parametrize(
    ("name", "args", "marker"),
    [
        ("basic_chat.py", [], r"^model: lmstrix-demo/tiny-chat-1b\nQ: .*\nA: 42$"),
        ("basic_chat.py", ["--model", "lmstrix-demo/solid-3b"], r"^A: 42$"),
        ("streaming_chat.py", [], r"^stream closed early: yes$"),
        ("native_chat.py", ["--model", "lmstrix-demo/solid-3b"], r"^items: message$"),
        ("structured_output.py", [], r"^books: 2, first year: 1450$"),
        ("code_generator.py", ["--task", "What is 2+3?"], r"^no fenced code in the answer"),
        ("tool_loop.py", [], r"^call get_weather .*\n.*\nsteps: 2, tool calls run: 1$"),
        ("fit_long_prompt.py", [], r"^  lmstrix-demo/tiny-chat-1b has no tested working context"),
        (
            "compare_models.py",
            ["--model", "lmstrix-demo/solid-3b", "--model", "lmstrix-demo/noisy-2b"],
            r"^lmstrix-demo/noisy-2b ",
        ),
    ],
)
def test_example_against_a_server(
    server: FakeLMStudio, name: str, args: List[str], marker: str
) -> None:
    result = run_example(name, "--server", server.base_url, *args)
    assert result.returncode == 0, result.stderr
    assert "simulator" not in result.stderr  # it used the server it was given
    assert re.search(marker, result.stdout, re.MULTILINE), result.stdout


def test_compare_models_needs_a_model_when_none_is_loaded(server: FakeLMStudio) -> None:
    result = run_example("compare_models.py", "--server", server.base_url)
    assert result.returncode == 2
    assert "--model KEY" in result.stderr


def test_summarizer_against_a_server_uses_and_fills_the_registry(
    server: FakeLMStudio, tmp_path: Path
) -> None:
    registry = tmp_path / "registry.json"
    base = ["--server", server.base_url, "--model", "lmstrix-demo/tiny-chat-1b"]
    tested = run_example("summarize_document.py", *base, "--registry", str(registry), "--test")
    assert tested.returncode == 0, tested.stderr
    assert "searching it now" in tested.stdout
    assert registry.exists()
    assert not server.loaded()  # what the example loaded, it unloaded

    again = run_example("summarize_document.py", *base, "--registry", str(registry))
    assert again.returncode == 0, again.stderr
    assert "searching" not in again.stdout  # the registry's record is reused
    assert re.search(r"^working context: [\d,]+ tokens \(tested\)", again.stdout, re.MULTILINE)
    assert re.search(r"^fits in one request: yes$", again.stdout, re.MULTILINE)
    assert "chunks:" not in again.stdout

    other = tmp_path / "other.json"
    untested = run_example("summarize_document.py", *base, "--registry", str(other))
    assert untested.returncode == 0, untested.stderr
    assert "working context: not tested, assuming 2,048 tokens" in untested.stdout
    assert re.search(r"^chunks: [2-9]; ", untested.stdout, re.MULTILINE)
    assert not other.exists()  # no search unless asked


def test_example_reports_an_unreachable_server() -> None:
    result = run_example("basic_chat.py", "--server", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- code fences


@pytest.fixture(scope="module")
def codegen() -> ModuleType:
    return load_example("code_generator.py")


ANSWER = """Sure! Here is the function:

```python
def is_palindrome(text):
    \"\"\"True when text reads the same backwards.\"\"\"
    kept = [c.lower() for c in text if c.isalnum()]
    return kept == kept[::-1]
```

You can call it like `is_palindrome("Racecar")`.
"""


def test_extracts_the_fenced_python_from_an_answer(codegen: ModuleType) -> None:
    blocks = codegen.extract_code_blocks(ANSWER)
    assert len(blocks) == 1
    block = blocks[0]
    assert block.language == "python"
    assert block.closed
    assert block.code.startswith("def is_palindrome(text):\n")
    assert block.code.endswith("return kept == kept[::-1]\n")
    namespace: Dict[str, object] = {}
    exec(compile(block.code, "<answer>", "exec"), namespace)
    assert namespace["is_palindrome"]("A man, a plan, a canal: Panama")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no code here", []),
        ("```\nplain\n```", [("", "plain\n", True)]),
        ("~~~ Python extra words\nx = 1\n~~~", [("python", "x = 1\n", True)]),
        ("```js\na()\n```\ntext\n```py\nb()\n```", [("js", "a()\n", True), ("py", "b()\n", True)]),
        # A longer fence holds shorter ones; only a fence at least as long closes it.
        (
            "````markdown\n```python\nx\n```\n````",
            [("markdown", "```python\nx\n```\n", True)],
        ),
        # Tildes do not close a backtick fence, and the reverse.
        ("```\na\n~~~\nb\n```", [("", "a\n~~~\nb\n", True)]),
        # An answer cut off by max_tokens: the block runs to the end.
        ("```python\ndef f():\n    return", [("python", "def f():\n    return\n", False)]),
        # The opening fence's indentation is removed from the lines (no more than it).
        ("  ```python\n  if x:\n      y()\n z\n  ```", [("python", "if x:\n    y()\nz\n", True)]),
        # Four spaces make an indented code line, not a fence.
        ("    ```python\n    x\n    ```", []),
        # Backticks in the info string: inline code, not a fence.
        ("```x``` and more", []),
        ("```python\r\nx = 1\r\n```\r\n", [("python", "x = 1\n", True)]),
        ("```python\n```", [("python", "", True)]),
        ("```python\nx = 1\n```   ", [("python", "x = 1\n", True)]),
    ],
)
def test_fence_cases(codegen: ModuleType, text: str, expected: List[Tuple[str, str, bool]]) -> None:
    assert [tuple(b) for b in codegen.extract_code_blocks(text)] == expected


def test_pick_block_prefers_the_language_asked_for(codegen: ModuleType) -> None:
    blocks = codegen.extract_code_blocks("```bash\nls\n```\n```py\nx = 1\n```")
    assert codegen.pick_block(blocks, "python").code == "x = 1\n"
    assert codegen.pick_block(blocks, "rust").language == "bash"  # else the first
    assert codegen.pick_block([], "python") is None


# --------------------------------------------------------------------------- table


def test_comparison_table_aligns_columns() -> None:
    compare = load_example("compare_models.py")
    table = compare.format_table(
        ("model", "seconds", "answer"), [["a", "1.5", "yes"], ["long-model", "12.25", "no"]]
    )
    assert table.splitlines() == [
        "model       seconds  answer",
        "----------  -------  ------",
        "a               1.5  yes",
        "long-model    12.25  no",
    ]
