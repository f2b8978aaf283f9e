"""scripts/audit_deps.py: fail on advisories with a fix, report the rest, never on no network."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

from _scripts import load_script

audit_deps = load_script("audit_deps")

VULNERABLE: Dict[str, Any] = {
    "dependencies": [
        {"name": "requests", "version": "2.20.0", "vulns": [
            {"id": "GHSA-j8r2-6x86-q33q", "fix_versions": ["2.31.0"], "aliases": []},
        ]},
        {"name": "click", "version": "8.1.7", "vulns": [
            {"id": "PYSEC-0000-1", "fix_versions": [], "aliases": []},
        ]},
        {"name": "pytest", "version": "8.3.5", "vulns": []},
        {"name": "tox", "skip_reason": "Dependency not found on PyPI and could not be audited"},
    ],
    "fixes": [],
}  # fmt: skip


def test_an_advisory_with_a_fix_fails_and_one_without_is_reported() -> None:
    code, lines = audit_deps.summary(VULNERABLE)
    assert code == 1
    text = "\n".join(lines)
    assert lines[0] == "pip-audit: 3 of 4 dependencies audited"
    assert "FIX AVAILABLE: requests 2.20.0: GHSA-j8r2-6x86-q33q (fixed in 2.31.0)" in text
    assert "reported only: click 8.1.7: PYSEC-0000-1 (no fixed release yet)" in text
    assert "NOT audited (1)" in text
    assert lines[-1] == "pip-audit: FAILED: 1 advisories have a fixed release"


def test_advisories_without_a_fix_do_not_fail() -> None:
    report = {"dependencies": VULNERABLE["dependencies"][1:]}
    code, lines = audit_deps.summary(report)
    assert code == 0
    assert lines[-1] == "pip-audit: ok (no advisory with a fixed release)"


def test_nothing_audited_is_said_plainly_and_does_not_fail() -> None:
    report = {"dependencies": [VULNERABLE["dependencies"][3]]}
    code, lines = audit_deps.summary(report)
    assert code == 0
    assert lines[0] == "pip-audit: 0 of 1 dependencies audited"
    assert "NOTHING was audited" in lines[-1]


def fake_pip_audit(tmp_path: Path, body: str) -> List[str]:
    script = tmp_path / "fake_pip_audit.py"
    script.write_text(body, encoding="utf-8")
    return [sys.executable, str(script)]


def test_audit_reads_pip_audits_json_and_passes_it_the_pins(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests==2.20.0\n", encoding="utf-8")
    seen = tmp_path / "argv.json"
    body = (
        "import json, sys\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print(json.dumps({VULNERABLE!r}))\n"
        "sys.exit(1)\n"
    )
    code, lines = audit_deps.audit(fake_pip_audit(tmp_path, body), requirements, "pypi")
    assert code == 1
    assert "requests 2.20.0" in lines[1]
    argv = json.loads(seen.read_text(encoding="utf-8"))
    assert argv[:2] == ["-r", str(requirements)]
    assert {"--no-deps", "--disable-pip", "--format=json", "--vulnerability-service=pypi"} <= set(
        argv
    )


def test_an_unreachable_advisory_database_does_not_fail(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests==2.20.0\n", encoding="utf-8")
    body = (
        "import sys\n"
        "sys.stderr.write('Traceback (most recent call last):\\n  ...\\n"
        "requests.exceptions.ConnectionError: Failed to resolve api.osv.dev\\n')\n"
        "sys.exit(1)\n"
    )
    code, lines = audit_deps.audit(fake_pip_audit(tmp_path, body), requirements, "pypi")
    assert code == 0
    assert "could not reach its advisory database" in lines[0]
    assert "NOT audited" in lines[1]
    assert lines[-1].strip().endswith("Failed to resolve api.osv.dev")


def test_frozen_lists_the_environment_without_its_installers() -> None:
    pins = audit_deps.frozen(sys.executable)
    names = {pin.split("==")[0].lower() for pin in pins}
    assert "pytest" in names
    assert not names & {"pip", "setuptools", "wheel", "lmstrix"}
    assert all("==" in pin for pin in pins)
