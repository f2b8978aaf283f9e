"""Run code against a vendored copy of lmstrix in ``python -I -S`` (no site-packages, no
environment, no user site), as an application that copies the package folder would."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import lmstrix

PACKAGE = Path(lmstrix.__file__).parent


def run_vendored(code: str, folder: Path) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """Copy the package into ``folder`` and run ``code`` (dedented) there, isolated.

    Isolated mode leaves the working folder off ``sys.path``, so the code gets the
    folder holding the copied package put there first, as a vendoring application would.
    """
    shutil.copytree(str(PACKAGE), str(folder / "lmstrix"))
    prelude = f"import sys\nsys.path.insert(0, {str(folder)!r})\n"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + textwrap.dedent(code)],
        cwd=str(folder),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
