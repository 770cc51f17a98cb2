"""The README's example outputs, made by running the examples, so they cannot drift.

A fenced block in README.md right after a line `<!-- output: NAME -->` holds what example NAME
prints: each `$ command` line and the command's stdout, run with the real CLI against a local
SeaweedFS on real PyPI artifacts (cached under .cache/). `e2e/test_readme.py` fails when a
block differs from a fresh run; this script rewrites them:

    python scripts/readme_outputs.py --write    # regenerate every block in README.md
    python scripts/readme_outputs.py --check    # exit 1 with a diff when one differs

Lines of commands whose parallel workers finish in any order (migrate) are shown sorted.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import artifacts
import local_s3

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- output: (?P<name>[\w-]+) -->\n```\n)(?P<body>.*?)(```)", re.S)
WHEELS = artifacts.WHEEL_SERIES
SIX = artifacts.SDIST_SERIES


@dataclass
class Session:
    """One server, a scratch folder, and the CLI run as a user types it."""

    server: local_s3.LocalS3
    work: Path

    @property
    def raw(self) -> Any:
        return self.server.client()

    def fresh_bucket(self, name: str) -> None:
        self.run("rb", f"s3://{name}", "--force", check=False)
        self.raw.create_bucket(Bucket=name)

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "deltaglider", *args],
            cwd=self.work,
            env={**os.environ, **self.server.env()},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"deltaglider {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def shown(self, *args: str, sort: bool = False) -> str:
        """`$ deltaglider ARGS` and what it printed (its per-file lines sorted with `sort`)."""
        lines = self.run(*args).splitlines()
        if sort:
            lines = sorted(lines[:-1]) + lines[-1:]
        return "\n".join([f"$ deltaglider {' '.join(args)}", *lines]) + "\n"

    def upload_wheels(self, prefix: str, count: int) -> list[Path]:
        wheels = artifacts.fetch(WHEELS[0], WHEELS[1][:count])
        for version, wheel in zip(WHEELS[1], wheels, strict=False):
            self.run("cp", str(wheel), f"s3://{prefix}{version}/")
        return wheels


def demo(session: Session) -> str:
    """`make demo`'s table: scripts/demo.py on its own SeaweedFS."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    lines = done.stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("version "))
    end = next(n for n, line in enumerate(lines) if line.startswith("logical "))
    return "\n".join(lines[start : end + 1]) + "\n"


def stats(session: Session) -> str:
    """Seven boto3 wheels, one folder per version, and three six sdists in `six/`."""
    session.fresh_bucket("releases")
    session.upload_wheels("releases/", 7)
    for sdist in artifacts.fetch(*SIX, sdist=True):
        session.run("cp", str(sdist), "s3://releases/six/")
    return session.shown("stats", "s3://releases", "--detailed", "--by", "series")


def estimate(session: Session) -> str:
    """`estimate` against the stats example's bucket; `analyze` of two versions on disk."""
    newest = artifacts.fetch(WHEELS[0], WHEELS[1][7:8])[0]
    shutil.copy(newest, session.work / newest.name)
    for version, wheel in zip(WHEELS[1], artifacts.fetch(WHEELS[0], WHEELS[1][:2]), strict=False):
        (session.work / "last-month" / version).mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, session.work / "last-month" / version / wheel.name)
    return (
        session.shown("estimate", newest.name, f"s3://releases/{WHEELS[1][7]}/")
        + "\n"
        + session.shown("analyze", "last-month")
    )


def migrate(session: Session) -> str:
    """Eight wheels, an empty file and a non-ASCII name as plain objects of another tool."""
    session.fresh_bucket("old-plain")
    session.fresh_bucket("new-home")
    for version, wheel in zip(WHEELS[1], artifacts.fetch(*WHEELS), strict=True):
        session.raw.upload_file(str(wheel), "old-plain", f"app/{version}/{wheel.name}")
    session.raw.put_object(Bucket="old-plain", Key="empty.bin", Body=b"")
    session.raw.put_object(Bucket="old-plain", Key="café/ü.txt", Body=b"notes")
    first = session.shown("migrate", "s3://old-plain", "s3://new-home", sort=True)
    return first + session.shown("migrate", "s3://old-plain", "s3://new-home", sort=True)


def prune(session: Session) -> str:
    """Six wheels, one folder per version, under `releases/app/`."""
    session.fresh_bucket("releases")
    session.upload_wheels("releases/app/", 6)
    return session.shown("prune", "s3://releases/app/", "--keep-last", "3")


EXAMPLES: dict[str, Callable[[Session], str]] = {
    "demo": demo,
    "stats": stats,
    "estimate": estimate,
    "migrate": migrate,
    "prune": prune,
}


def generate(names: list[str]) -> dict[str, str]:
    """Every named example's output, in EXAMPLES' order (later ones build on earlier ones)."""
    outputs: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="dg-readme-") as scratch,
        local_s3.running("seaweedfs") as server,
    ):
        session = Session(server, Path(scratch))
        for name, example in EXAMPLES.items():
            if name in names or (name == "stats" and "estimate" in names):
                outputs[name] = example(session)
    return {name: outputs[name] for name in names}


def blocks(text: str) -> dict[str, str]:
    found = {m["name"]: m["body"] for m in BLOCK.finditer(text)}
    unknown = set(found) - set(EXAMPLES)
    if unknown:
        raise SystemExit(f"readme_outputs: no example named {', '.join(sorted(unknown))}")
    return found


def differences(text: str, outputs: dict[str, str]) -> list[str]:
    """A unified diff line list per block whose body is not its fresh output."""
    lines: list[str] = []
    for name, body in blocks(text).items():
        if body != outputs[name]:
            lines += difflib.unified_diff(
                body.splitlines(),
                outputs[name].splitlines(),
                f"README {name}",
                "a fresh run",
                lineterm="",
            )
    return lines


def rewritten(text: str, outputs: dict[str, str]) -> str:
    return BLOCK.sub(lambda m: m[1] + outputs[m["name"]] + m[4], text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite README.md's blocks")
    action.add_argument("--check", action="store_true", help="exit 1 when a block differs")
    options = parser.parse_args(argv)
    text = README.read_text()
    outputs = generate(list(blocks(text)))
    if options.write:
        README.write_text(rewritten(text, outputs))
        return 0
    diff = differences(text, outputs)
    print("\n".join(diff) or "README outputs match fresh runs")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
