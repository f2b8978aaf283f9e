"""Make a release commit and tag: bump the version, date the changelog, tag vX.Y.Z.

    python scripts/release.py X.Y.Z [--dry-run] [--repo PATH]

1. checks: the work tree is clean, X.Y.Z is a version this script understands
   (``X.Y.Z[{a|b|rc}N][.devN]``, PEP 440), it is greater than the version in
   ``lmstrix/_version.py``, the tag ``vX.Y.Z`` does not exist yet, and CHANGELOG.md's
   ``## [Unreleased]`` section has something in it;
2. writes the version into ``lmstrix/_version.py``, its one place;
3. moves the changelog's Unreleased section under ``## [X.Y.Z] - YYYY-MM-DD`` (today,
   UTC) and leaves an empty ``## [Unreleased]`` above it;
4. commits both files ("Release X.Y.Z") and makes the annotated tag ``vX.Y.Z``.

``--dry-run`` makes the checks and prints what would change, and changes nothing.
Nothing is pushed: push the commit and the tag yourself (``git push --follow-tags``);
the tag starts the release workflow (.github/workflows/release.yml). Standard library
only; exits 1 with a message when a check fails.
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

VERSION_FILE = Path("lmstrix") / "_version.py"
CHANGELOG = Path("CHANGELOG.md")
VERSION_LINE = re.compile(r'^__version__ = "(?P<version>[^"]+)"$', re.M)
VERSION = re.compile(
    r"(?P<release>[0-9]+(?:\.[0-9]+)*)"
    r"(?:(?P<phase>a|b|rc)(?P<pre>[0-9]+))?"
    r"(?:\.dev(?P<dev>[0-9]+))?"
)
UNRELEASED = "## [Unreleased]"
PHASES = {"a": 0, "b": 1, "rc": 2}

VersionKey = Tuple[Tuple[int, ...], Tuple[int, int], Tuple[int, int]]


class ReleaseError(Exception):
    """A check failed; the message says which and what to do."""


def version_key(text: str) -> VersionKey:
    """A sort key for ``X.Y.Z[{a|b|rc}N][.devN]`` in PEP 440 order.

    ``1.0.dev0 < 1.0a1.dev0 < 1.0a1 < 1.0b1 < 1.0rc1 < 1.0 == 1.0.0 < 1.0.1``.

    Raises:
        ReleaseError: ``text`` is not of that form.
    """
    match = VERSION.fullmatch(text)
    if not match:
        raise ReleaseError(
            f"{text!r} is not a version of the form X.Y.Z, X.Y.Z{{a|b|rc}}N or "
            "X.Y.Z[...].devN (PEP 440; e.g. 2.0.0, 2.0.0rc1, 2.0.0.dev0)"
        )
    release = tuple(int(part) for part in match.group("release").split("."))
    while len(release) > 1 and release[-1] == 0:
        release = release[:-1]
    dev = match.group("dev")
    if match.group("phase"):
        pre = (PHASES[match.group("phase")], int(match.group("pre")))
    elif dev is not None:
        pre = (-1, 0)  # X.Y.Z.devN comes before every pre-release of X.Y.Z
    else:
        pre = (len(PHASES), 0)  # the final release comes after them
    return release, pre, ((0, int(dev)) if dev is not None else (1, 0))


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its output; raise ReleaseError if it fails."""
    done = subprocess.run(
        ["git", *args], cwd=str(root), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def current_version(root: Path) -> str:
    """The version written in ``lmstrix/_version.py``."""
    match = VERSION_LINE.search((root / VERSION_FILE).read_text(encoding="utf-8"))
    if not match:
        raise ReleaseError(f'{VERSION_FILE} has no line __version__ = "..."')
    return match.group("version")


def with_version(text: str, version: str) -> str:
    """The text of ``_version.py`` with ``version`` in place of the current one."""
    return VERSION_LINE.sub(f'__version__ = "{version}"', text, count=1)


def dated_changelog(text: str, version: str, date: str) -> Tuple[str, List[str]]:
    """Move the Unreleased section under ``## [version] - date``.

    Returns the new text and the lines of the section that was moved.

    Raises:
        ReleaseError: there is no ``## [Unreleased]`` heading, or nothing under it.
    """
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip() == UNRELEASED]
    if len(starts) != 1:
        raise ReleaseError(f"{CHANGELOG} needs exactly one '{UNRELEASED}' heading")
    start = starts[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    body = lines[start + 1 : end]
    if not "".join(body).strip():
        raise ReleaseError(f"{CHANGELOG}'s '{UNRELEASED}' section is empty: say what changed first")
    if any(line.startswith(f"## [{version}]") for line in lines):
        raise ReleaseError(f"{CHANGELOG} already has a section for {version}")
    heading = [f"{UNRELEASED}\n", "\n", f"## [{version}] - {date}\n"]
    new = lines[:start] + heading + body + lines[end:]
    return "".join(new), [line.rstrip("\n") for line in body]


def today() -> str:
    """Today's date (UTC) as YYYY-MM-DD."""
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def check(root: Path, version: str) -> str:
    """Make every check; return the current version.

    Raises:
        ReleaseError: the tree is dirty, the version is not newer, or the tag exists.
    """
    new_key = version_key(version)
    dirty = git(root, "status", "--porcelain", "--untracked-files=no")
    if dirty.strip():
        raise ReleaseError(f"the work tree has uncommitted changes; commit or stash:\n{dirty}")
    current = current_version(root)
    if new_key <= version_key(current):
        raise ReleaseError(f"{version} is not greater than the current version {current}")
    if git(root, "tag", "--list", f"v{version}").strip():
        raise ReleaseError(f"the tag v{version} exists already")
    return current


def release(root: Path, version: str, *, dry_run: bool, date: Optional[str] = None) -> str:
    """Bump, date the changelog, commit and tag (or, with ``dry_run``, only say so).

    Returns a report of what was (or would be) done.
    """
    current = check(root, version)
    date = date or today()
    version_path, changelog_path = root / VERSION_FILE, root / CHANGELOG
    new_version_text = with_version(version_path.read_text(encoding="utf-8"), version)
    new_changelog, moved = dated_changelog(
        changelog_path.read_text(encoding="utf-8"), version, date
    )
    tag = f"v{version}"
    report = [
        f"{VERSION_FILE}: {current} -> {version}",
        f"{CHANGELOG}: '{UNRELEASED}' ({len(moved)} lines) -> '## [{version}] - {date}'",
        f"commit 'Release {version}', annotated tag {tag}",
    ]
    if dry_run:
        return "\n".join(["dry run: nothing changed; would do:", *report])
    version_path.write_text(new_version_text, encoding="utf-8")
    changelog_path.write_text(new_changelog, encoding="utf-8")
    git(root, "add", "--", str(VERSION_FILE), str(CHANGELOG))
    git(root, "commit", "-q", "-m", f"Release {version}")
    git(root, "tag", "-a", tag, "-m", f"lmstrix {version}")
    report.append(f"done; publish with: git push --follow-tags   (pushes {tag})")
    return "\n".join(report)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="the new version, e.g. 2.0.0 or 2.0.0rc1")
    parser.add_argument("--dry-run", action="store_true", help="check and report only")
    parser.add_argument(
        "--repo", type=Path, help="the checkout to release (default: the one holding this script)"
    )
    args = parser.parse_args(argv)
    root = args.repo or Path(__file__).resolve().parent.parent
    try:
        print(release(root, args.version, dry_run=args.dry_run))
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
