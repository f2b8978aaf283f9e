"""The repository's text files are whole: no merge-conflict markers left behind."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".git", ".venv", ".tox", "_build", "node_modules", "__pycache__", "dist", "build"}
SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".txt", ".yaml", ".yml", ".sh", ".ipynb"}
MARKER = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.MULTILINE)


def _text_files() -> List[Path]:
    found = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in SKIPPED and not d.endswith(".egg-info")]
        for name in names:
            path = Path(folder, name)
            if path.suffix in SUFFIXES or name in ("Dockerfile", "run"):
                found.append(path)
    return found


def test_no_file_holds_merge_conflict_markers() -> None:
    files = _text_files()
    assert any(p.name == "CHANGELOG.md" for p in files)  # the walk reaches the files
    marked = [
        str(path.relative_to(ROOT))
        for path in files
        if MARKER.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert marked == [], f"merge-conflict markers left in: {marked}"
