"""Audit the installed dependencies (the extras and dev tools) with pip-audit.

    python scripts/audit_deps.py [--python .venv/bin/python]

Freezes the environment of ``--python`` (every installed distribution but the editable
lmstrix and pip/setuptools/wheel: requests, click and the dev tools at the versions pip
resolved), installs pip-audit into a temporary virtual environment, and audits that
pinned set with ``pip-audit --no-deps --disable-pip``. It then reports:

* a vulnerability with a fixed release: listed with the version to move to; exit 1;
* a vulnerability with no fix yet: listed, exit 0 (nothing to do but watch it);
* dependencies pip-audit could not audit (the advisory service has no data for them, or
  cannot be reached): counted and named, exit 0, with a clear "NOT audited" line.

pip-audit that cannot be installed or that cannot reach its advisory database does not
fail CI: the script says so and exits 0. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

PIP_AUDIT = "pip-audit>=2.7"
# The virtual environment's own installers, not dependencies of lmstrix or its tools.
BOOTSTRAP = {"pip", "setuptools", "wheel"}
TIMEOUT_S = 600


def frozen(python: str) -> List[str]:
    """``name==version`` of each distribution installed for ``python``.

    lmstrix itself (editable, or installed as tox does) and the environment's installers
    (``BOOTSTRAP``) are left out.
    """
    out = subprocess.run(
        [python, "-m", "pip", "list", "--format=json", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT_S,
    ).stdout
    dists = json.loads(out)
    skip = BOOTSTRAP | {"lmstrix"}
    return sorted(f"{d['name']}=={d['version']}" for d in dists if d["name"].lower() not in skip)


def classify(report: Dict[str, Any]) -> Tuple[List[str], List[str], List[str], int]:
    """Split pip-audit's JSON into (fixable, unfixable, skipped, audited count)."""
    fixable: List[str] = []
    unfixable: List[str] = []
    skipped: List[str] = []
    audited = 0
    for dep in report.get("dependencies", []):
        name = f"{dep.get('name')} {dep.get('version', '')}".strip()
        if "skip_reason" in dep:
            skipped.append(f"{name}: {dep['skip_reason']}")
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            fixes = vuln.get("fix_versions") or []
            line = f"{name}: {vuln.get('id')}"
            if fixes:
                fixable.append(f"{line} (fixed in {', '.join(fixes)})")
            else:
                unfixable.append(f"{line} (no fixed release yet)")
    return fixable, unfixable, skipped, audited


def summary(report: Dict[str, Any]) -> Tuple[int, List[str]]:
    """Return the exit code and the lines to print for a pip-audit JSON report."""
    fixable, unfixable, skipped, audited = classify(report)
    total = audited + len(skipped)
    lines = [f"pip-audit: {audited} of {total} dependencies audited"]
    lines += [f"  vulnerable, FIX AVAILABLE: {item}" for item in fixable]
    lines += [f"  vulnerable, reported only: {item}" for item in unfixable]
    if skipped:
        lines.append(f"  NOT audited ({len(skipped)}): the advisory service has no data for them")
        lines += [f"    {item}" for item in skipped[:10]]
        if len(skipped) > 10:
            lines.append(f"    ... and {len(skipped) - 10} more")
    if fixable:
        lines.append(f"pip-audit: FAILED: {len(fixable)} advisories have a fixed release")
        return 1, lines
    if total and not audited:
        lines.append("pip-audit: the advisory database gave no answer for any dependency:")
        lines.append("  NOTHING was audited here (not counted as a failure)")
    else:
        lines.append("pip-audit: ok (no advisory with a fixed release)")
    return 0, lines


def unreachable(stderr: str) -> List[str]:
    """The lines to print when pip-audit gave no report (no network, service down)."""
    tail = [line for line in stderr.strip().splitlines() if line.strip()][-3:]
    return [
        "pip-audit: could not reach its advisory database (or failed before auditing);",
        "  dependencies NOT audited (not counted as a failure). Last lines of its output:",
        *(f"    {line}" for line in tail),
    ]


def pip_audit_command(tmp: Path) -> Optional[List[str]]:
    """Install pip-audit into a temporary virtual environment; None if that fails."""
    env = tmp / "pip-audit"
    venv.create(str(env), with_pip=True)
    python = env / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", PIP_AUDIT],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_S,
    )
    if done.returncode != 0:
        print(done.stderr.strip()[-2000:], file=sys.stderr)
        return None
    return [str(python), "-m", "pip_audit"]


def audit(command: Sequence[str], requirements: Path, service: str) -> Tuple[int, List[str]]:
    """Run pip-audit on the requirements file; return the exit code and report lines."""
    options = ["--no-deps", "--disable-pip", "--format=json", "--progress-spinner=off"]
    options += [f"--vulnerability-service={service}", "--timeout=30"]
    done = subprocess.run(
        [*command, "-r", str(requirements), *options],
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_S,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return 0, unreachable(done.stderr)
    return summary(report)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the environment to audit")
    # PyPI's advisories only: CI may reach package registries and nothing else.
    parser.add_argument("--service", default="pypi", choices=["pypi"])
    args = parser.parse_args(argv)
    pins = frozen(args.python)
    print(f"auditing {len(pins)} installed distributions of {args.python}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        requirements = tmp / "requirements.txt"
        requirements.write_text("\n".join(pins) + "\n", encoding="utf-8")
        command = pip_audit_command(tmp)
        if command is None:
            print("pip-audit: could not be installed; dependencies NOT audited (not a failure)")
            return 0
        code, lines = audit(command, requirements, args.service)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
