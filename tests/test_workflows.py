"""The workflow files, dependabot and pre-commit configuration parse and say what they must."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the dev and test extras")

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def load(path: Path) -> Dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def triggers(workflow: Dict[str, Any]) -> Dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean True.
    found = workflow.get("on", workflow.get(True))
    assert isinstance(found, dict), found
    return found


def runs(job: Dict[str, Any]) -> List[str]:
    return [step.get("run", "") for step in job["steps"]]


def uses(job: Dict[str, Any]) -> List[str]:
    return [step.get("uses", "") for step in job["steps"]]


def test_every_workflow_parses_and_every_job_has_steps() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert [f.name for f in files] == ["ci.yml", "release.yml"]
    for path in files:
        workflow = load(path)
        assert workflow["name"], path
        assert triggers(workflow), path
        for name, job in workflow["jobs"].items():
            assert job["runs-on"], (path, name)
            assert job["steps"], (path, name)
            assert job.get("timeout-minutes"), f"{path.name}:{name} has no timeout"


def test_ci_runs_the_project_gate_script_on_linux_for_every_python() -> None:
    workflow = load(WORKFLOWS / "ci.yml")
    linux = workflow["jobs"]["linux"]
    assert linux["runs-on"].startswith("ubuntu")
    assert "bash .ci/run" in runs(linux)
    setup = next(s for s in linux["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    versions = setup["with"]["python-version"].split()
    assert sorted(versions, key=lambda v: int(v.split(".")[1])) == [
        "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"
    ]  # fmt: skip
    # .ci/run's tox matrix is what the interpreters are for.
    assert "tox -e py38,py39,py310,py311,py312,py313" in (ROOT / ".ci" / "run").read_text()


def test_ci_runs_the_core_tests_on_macos_and_windows() -> None:
    core = load(WORKFLOWS / "ci.yml")["jobs"]["core"]
    matrix = core["strategy"]["matrix"]
    assert {os.split("-")[0] for os in matrix["os"]} == {"macos", "windows"}
    assert matrix["python"] == ["3.8", "3.13"]
    commands = " ".join(runs(core))
    assert 'pytest -m "not integration and not slow"' in commands
    assert '.[test]"' in commands


def test_release_builds_checks_and_publishes_by_trusted_publishing_on_a_tag() -> None:
    workflow = load(WORKFLOWS / "release.yml")
    assert triggers(workflow) == {"push": {"tags": ["v*"]}}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    commands = "\n".join(runs(build))
    assert "python -m build" in commands
    assert "twine check --strict dist/*" in commands
    assert '"v${version}"' in commands, "the tag must match lmstrix/_version.py"
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert "pypa/gh-action-pypi-publish@release/v1" in uses(publish)
    assert not any("password" in (s.get("with") or {}) for s in publish["steps"])
    assert workflow["permissions"] == {"contents": "read"}


def test_dependabot_watches_pip_and_the_actions() -> None:
    config = load(ROOT / ".github" / "dependabot.yml")
    assert config["version"] == 2
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(ecosystems) == {"pip", "github-actions"}
    groups = ecosystems["pip"]["groups"]
    assert set(groups["extras"]["patterns"]) == {"requests", "click"}
    assert "ruff" in groups["dev-tools"]["patterns"]


def test_pre_commit_hooks_are_local_and_pinned() -> None:
    config = load(ROOT / ".pre-commit-config.yaml")
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy", "layers", "docs-snippets"}
    for hook in hooks.values():
        assert hook["language"] == "python", hook["id"]
        for requirement in hook.get("additional_dependencies", []):
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^ ;]*", requirement), requirement
    for name in ("tests/test_isolation.py", "scripts/check_docs_snippets.py"):
        assert (ROOT / name).exists(), name
        assert any(name in hook["entry"] or name in hook["name"] for hook in hooks.values())


def test_pre_commit_mypy_is_the_version_setup_cfg_pins() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg", encoding="utf-8")
    pinned = re.search(r"^mypy==([0-9.]+)", setup["options.extras_require"]["dev"], re.M)
    assert pinned, "setup.cfg's dev extra pins mypy"
    config = load(ROOT / ".pre-commit-config.yaml")
    hook = next(h for h in config["repos"][0]["hooks"] if h["id"] == "mypy")
    assert f"mypy=={pinned.group(1)}" in hook["additional_dependencies"]
