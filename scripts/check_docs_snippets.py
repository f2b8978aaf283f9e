"""Check that every ```python block in the docs still compiles.

    python scripts/check_docs_snippets.py [FILE_OR_FOLDER ...]   (default: docs/ README.md)

A light, offline check for pre-commit: each fenced block tagged ``python`` or ``py`` is
passed to ``compile()`` (syntax only, nothing runs). ``tests/test_examples.py`` runs the
snippets against the simulator; this catches a broken snippet on any page before it is
committed. Signature listings are fenced as ``text``, not ``python``. Standard library
only; exits 1 naming each broken block by file and line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = ("docs", "README.md")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
PYTHON_TAGS = {"python", "py", "python3"}


def python_blocks(text: str) -> Iterator[Tuple[int, str]]:
    """Yield (first line number of the code, code) for each python fenced block."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        fence, indent = match.group("fence"), len(match.group("indent"))
        info = match.group("info").strip().split()
        tag = info[0].lower() if info else ""
        body: List[str] = []
        index += 1
        start = index + 1
        while index < len(lines):
            closing = lines[index].strip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(fence[0]):
                break
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        index += 1
        if tag in PYTHON_TAGS:
            yield start, "\n".join(body) + "\n"


def markdown_files(targets: Sequence[str]) -> List[Path]:
    """Expand folders into their ``*.md`` files, sorted; keep files as given."""
    files: List[Path] = []
    for target in targets:
        path = Path(target)
        if not path.is_absolute():
            path = ROOT / path
        if path.is_dir():
            files.extend(sorted(path.rglob("*.md")))
        elif path.suffix == ".md" and path.exists():
            files.append(path)
    return files


def check(files: Sequence[Path]) -> Tuple[int, List[str]]:
    """Compile every python block; return (blocks compiled, problems)."""
    compiled = 0
    problems: List[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for line, code in python_blocks(text):
            try:
                compile(code, f"{path}:{line}", "exec", dont_inherit=True)
            except SyntaxError as exc:
                where = line + (exc.lineno or 1) - 1
                problems.append(f"{display(path)}:{where}: {exc.msg} (python block at {line})")
            compiled += 1
    return compiled, problems


def display(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: Sequence[str]) -> int:
    files = markdown_files(argv or DEFAULT_TARGETS)
    compiled, problems = check(files)
    for problem in problems:
        print(problem, file=sys.stderr)
    status = "FAILED" if problems else "ok"
    print(f"docs snippets: {compiled} python blocks in {len(files)} files compiled: {status}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
