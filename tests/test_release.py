"""`make release VERSION=x.y.z` (scripts/release.py) in a scratch repository: it bumps the one
version, dates the CHANGELOG entry, commits and tags; bad versions and states are refused."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import release  # noqa: E402


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("pyproject.toml", "CHANGELOG.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    changelog = tmp_path / "CHANGELOG.md"
    head, rest = changelog.read_text().split("## [Unreleased]\n", 1)
    released = rest[rest.index("## [") :]  # whatever the real file has unreleased goes
    changelog.write_text(f"{head}## [Unreleased]\n\n- A change.\n\n{released}")
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "--quiet", "-m", "start")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@example.com")
    return tmp_path


def test_bump_sets_the_version_dates_the_entry_commits_and_tags(repo: Path) -> None:
    current = release.current_version(repo)
    major, minor, _ = release.parse(current)
    new = f"{major}.{minor + 1}.0"
    release.bump(repo, new, datetime.date(2027, 1, 2))
    assert release.current_version(repo) == new
    text = (repo / "CHANGELOG.md").read_text()
    assert f"## [Unreleased]\n\n## [{new}] - 2027-01-02\n\n- A change.\n" in text
    assert release.notes(repo, new) == "- A change.\n"
    assert git(repo, "tag", "--list") == f"v{new}\n"
    assert git(repo, "log", "-1", "--format=%s") == f"Release {new}\n"
    assert git(repo, "status", "--porcelain") == ""
    assert release.main(["--root", str(repo), "check-tag", f"v{new}"]) == 0
    with pytest.raises(SystemExit, match="is not the package's version"):
        release.main(["--root", str(repo), "check-tag", f"v{current}"])
    with pytest.raises(SystemExit, match=r"section .* is empty"):  # nothing new since
        release.bump(repo, f"{major}.{minor + 2}.0", datetime.date(2027, 1, 3))


@pytest.mark.parametrize(
    ("version", "message"),
    [("7.1", "must be X.Y.Z"), ("v7.1.0", "must be X.Y.Z"), ("0.0.1", "is not above")],
)
def test_a_bad_version_is_refused_and_nothing_changes(
    repo: Path, version: str, message: str
) -> None:
    before = (repo / "pyproject.toml").read_text()
    with pytest.raises(SystemExit, match=message):
        release.bump(repo, version, datetime.date(2027, 1, 2))
    assert (repo / "pyproject.toml").read_text() == before and git(repo, "tag", "--list") == ""


def test_a_dirty_tree_is_refused(repo: Path) -> None:
    (repo / "pyproject.toml").write_text((repo / "pyproject.toml").read_text() + "\n")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        release.bump(repo, "99.0.0", datetime.date(2027, 1, 2))


def test_make_release_needs_a_version() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "release"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "usage: make release VERSION=x.y.z" in done.stdout
