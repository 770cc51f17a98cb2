"""Cut a release: one version (pyproject.toml's), one CHANGELOG entry, one tag.

    python scripts/release.py bump 7.1.0      # what `make release VERSION=7.1.0` runs
    python scripts/release.py check-tag v7.1.0  # workflows: the tag must be the version
    python scripts/release.py notes 7.1.0     # the CHANGELOG entry, for the GitHub release

`bump` refuses a dirty tree, a version that is not X.Y.Z or not above the current one, an
existing tag and an empty "Unreleased" section; then it writes the version into
pyproject.toml, turns "## [Unreleased]" into "## [X.Y.Z] - <today>" under a fresh empty
"Unreleased", commits both files and makes the annotated tag vX.Y.Z. Pushing is yours
(`git push --follow-tags`): the tag starts the PyPI and image workflows.
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNRELEASED = "## [Unreleased]"
SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def fail(message: str) -> None:
    raise SystemExit(f"release: error: {message}")


def current_version(root: Path) -> str:
    return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])


def parse(version: str) -> tuple[int, int, int]:
    match = SEMVER.fullmatch(version)
    if match is None:
        fail(f"VERSION must be X.Y.Z (e.g. 7.1.0), not {version!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        fail(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def notes(root: Path, version: str) -> str:
    """The body of the CHANGELOG section `## [version] …`, up to the next section."""
    text = (root / "CHANGELOG.md").read_text()
    match = re.search(rf"^## \[{re.escape(version)}\][^\n]*\n(.*?)(?=^## \[|\Z)", text, re.M | re.S)
    if match is None:
        fail(f"CHANGELOG.md has no section for {version}")
    return match.group(1).strip() + "\n"


def bump(root: Path, version: str, today: datetime.date) -> None:
    if parse(version) <= parse(current_version(root)):
        fail(f"{version} is not above the current version {current_version(root)}")
    if git(root, "status", "--porcelain"):
        fail("the working tree has uncommitted changes; commit or stash them first")
    if git(root, "tag", "--list", f"v{version}"):
        fail(f"the tag v{version} exists already")
    changelog = (root / "CHANGELOG.md").read_text()
    if UNRELEASED not in changelog:
        fail(f"CHANGELOG.md has no {UNRELEASED!r} section")
    pending = changelog.split(UNRELEASED, 1)[1].split("\n## [", 1)[0]
    if not pending.strip():
        fail(f"the {UNRELEASED!r} section of CHANGELOG.md is empty: say what changed first")
    project = root / "pyproject.toml"
    text = project.read_text()
    updated = re.sub(r'^version = "[^"]*"', f'version = "{version}"', text, count=1, flags=re.M)
    project.write_text(updated)
    entry = f"{UNRELEASED}\n\n## [{version}] - {today.isoformat()}"
    (root / "CHANGELOG.md").write_text(changelog.replace(UNRELEASED, entry, 1))
    git(root, "add", "pyproject.toml", "CHANGELOG.md")
    git(root, "commit", "--quiet", "-m", f"Release {version}")
    git(root, "tag", "-a", f"v{version}", "-m", f"deltaglider {version}")
    print(f"release: v{version} committed and tagged; push with: git push --follow-tags")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "bump", help="set the version, date the CHANGELOG, commit, tag"
    ).add_argument("version")
    commands.add_parser("check-tag", help="fail unless TAG is v<version>").add_argument("tag")
    commands.add_parser("notes", help="print a version's CHANGELOG entry").add_argument("version")
    args = parser.parse_args(argv)
    if args.command == "bump":
        bump(args.root, args.version, datetime.datetime.now(datetime.UTC).date())
    elif args.command == "check-tag":
        expected = f"v{current_version(args.root)}"
        if args.tag != expected:
            fail(f"the tag {args.tag} is not the package's version ({expected}, pyproject.toml)")
        notes(args.root, current_version(args.root))  # and the CHANGELOG says what it holds
    else:
        print(notes(args.root, args.version), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
