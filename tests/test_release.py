"""scripts/release.py: PEP 440 order, the changelog move, a real release in a temporary clone."""

from __future__ import annotations

import datetime
import random
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from _scripts import ROOT, load_script

release = load_script("release")

ORDERED = [
    "0.1.0",
    "0.1.1",
    "0.2.0.dev0",
    "0.2.0.dev3",
    "0.2.0a1.dev0",
    "0.2.0a1",
    "0.2.0a2",
    "0.2.0b1",
    "0.2.0rc1",
    "0.2.0rc2.dev1",
    "0.2.0rc2",
    "0.2.0",
    "0.2.1",
    "0.10.0",
    "1.0.0.dev0",
    "1.0.0",
    "2.0.0.dev0",
    "2.0.0a1",
    "2.0.0",
    "10.0.0",
]


def test_versions_sort_in_pep_440_order() -> None:
    shuffled = ORDERED[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled, key=release.version_key) == ORDERED
    assert release.version_key("1.0") == release.version_key("1.0.0")
    assert release.version_key("1.0.0") < release.version_key("1.0.1.dev0")


@pytest.mark.parametrize("bad", ["", "v1.0.0", "1.0.0-rc1", "1.0.0alpha1", "1.0.0.post1", "1..0"])
def test_other_version_forms_are_refused(bad: str) -> None:
    with pytest.raises(release.ReleaseError, match="is not a version of the form"):
        release.version_key(bad)


CHANGES = """# Changelog

Intro.

## [Unreleased]

### Added
- a thing

## [0.1.0] - 2026-01-02

### Added
- the first thing
"""


def test_the_unreleased_section_moves_under_the_new_version() -> None:
    text, moved = release.dated_changelog(CHANGES, "0.2.0", "2026-12-06")
    assert text == CHANGES.replace(
        "## [Unreleased]\n", "## [Unreleased]\n\n## [0.2.0] - 2026-12-06\n"
    )
    assert moved == ["", "### Added", "- a thing", ""]
    with pytest.raises(release.ReleaseError, match="empty"):
        release.dated_changelog(text, "0.3.0", "2026-12-07")
    with pytest.raises(release.ReleaseError, match=r"already has a section for 0\.1\.0"):
        release.dated_changelog(CHANGES, "0.1.0", "2026-12-07")
    with pytest.raises(release.ReleaseError, match="exactly one"):
        release.dated_changelog("# Changelog\n", "0.3.0", "2026-12-07")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=str(repo), capture_output=True, text=True, check=True
    ).stdout


def run_release(repo: Path, *args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "release.py"), *args, "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of this repository with one known line under Unreleased."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (the release test needs the repository)")
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True, timeout=120)
    git(repo, "config", "user.name", "Release Test")
    git(repo, "config", "user.email", "release-test@example.invalid")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "config", "tag.gpgsign", "false")
    changelog = repo / "CHANGELOG.md"
    text = changelog.read_text(encoding="utf-8")
    changelog.write_text(
        text.replace("## [Unreleased]\n", "## [Unreleased]\n\n- release-test entry\n", 1),
        encoding="utf-8",
    )
    git(repo, "commit", "-q", "-am", "test: an entry to release")
    return repo


def next_major(repo: Path) -> str:
    current = release.current_version(repo)
    return f"{release.version_key(current)[0][0] + 1}.0.0"


def sections(changelog: str) -> List[str]:
    return [line for line in changelog.splitlines() if line.startswith("## ")]


def test_release_in_a_clone_bumps_dates_commits_and_tags(clone: Path) -> None:
    version = next_major(clone)
    current = release.current_version(clone)
    before = git(clone, "rev-parse", "HEAD").strip()
    days = {datetime.datetime.now(datetime.timezone.utc).date().isoformat()}
    result = run_release(clone, version)
    days.add(datetime.datetime.now(datetime.timezone.utc).date().isoformat())
    assert result.returncode == 0, result.stderr
    assert f"lmstrix/_version.py: {current} -> {version}" in result.stdout

    assert release.current_version(clone) == version
    changelog = (clone / "CHANGELOG.md").read_text(encoding="utf-8")
    heads = sections(changelog)
    assert heads[0] == "## [Unreleased]"
    assert heads[1] in {f"## [{version}] - {day}" for day in days}
    new_section = changelog.split(heads[1], 1)[1].split("\n## ", 1)[0]
    assert "- release-test entry" in new_section
    unreleased = changelog.split("## [Unreleased]", 1)[1].split("\n## ", 1)[0]
    assert unreleased.strip() == ""

    assert git(clone, "tag", "--list", f"v{version}").strip() == f"v{version}"
    assert git(clone, "rev-parse", f"v{version}^{{commit}}") == git(clone, "rev-parse", "HEAD")
    assert git(clone, "cat-file", "-t", f"v{version}").strip() == "tag"  # annotated
    assert git(clone, "log", "-1", "--format=%s").strip() == f"Release {version}"
    assert git(clone, "rev-parse", "HEAD~1").strip() == before
    changed = git(clone, "diff", "--name-only", "HEAD~1", "HEAD").split()
    assert sorted(changed) == ["CHANGELOG.md", "lmstrix/_version.py"]
    assert git(clone, "status", "--porcelain").strip() == ""

    again = run_release(clone, version)
    assert again.returncode == 1
    assert f"{version} is not greater than the current version {version}" in again.stderr


def test_dry_run_changes_nothing(clone: Path) -> None:
    version = next_major(clone)
    head = git(clone, "rev-parse", "HEAD")
    result = run_release(clone, version, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dry run: nothing changed; would do:")
    assert f"annotated tag v{version}" in result.stdout
    assert git(clone, "rev-parse", "HEAD") == head
    assert git(clone, "status", "--porcelain").strip() == ""
    assert git(clone, "tag", "--list", f"v{version}").strip() == ""


def test_a_dirty_tree_or_an_older_version_is_refused(clone: Path) -> None:
    current = release.current_version(clone)
    older = run_release(clone, current)
    assert older.returncode == 1
    assert f"{current} is not greater than the current version {current}" in older.stderr
    bad = run_release(clone, "next")
    assert bad.returncode == 1
    assert "is not a version of the form" in bad.stderr

    (clone / "README.md").write_text("edited\n", encoding="utf-8")
    dirty = run_release(clone, next_major(clone))
    assert dirty.returncode == 1
    assert "uncommitted changes" in dirty.stderr
    assert " M README.md" in dirty.stderr
    assert git(clone, "tag", "--list", "v*").strip() == git(ROOT, "tag", "--list", "v*").strip()
