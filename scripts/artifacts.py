"""Fetch real versioned artifacts from PyPI into `.cache/` (never committed).

Shared by the e2e suite, the demo and the benchmark:

    python scripts/artifacts.py boto3 1.35.0 1.35.1 1.35.2     # prints the cached paths
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "artifacts"

# Eight consecutive releases whose wheels differ by a few files each: the everyday CI case
# (each is a ~5.5% delta of the first).
WHEEL_SERIES = ("boto3", tuple(f"1.35.{patch}" for patch in range(8)))
# sdists are .tar.gz: the compressed-stream case the old tool stored undecodable.
SDIST_SERIES = ("six", ("1.15.0", "1.16.0", "1.17.0"))


def fetch(
    package: str,
    versions: tuple[str, ...] | list[str],
    *,
    sdist: bool = False,
    platform: str | None = None,
    cache: Path = CACHE,
) -> list[Path]:
    """Paths of `package`'s wheels (or sdists) for each version, downloading what is missing.
    `platform` picks another platform's wheels (e.g. manylinux2014_x86_64, Python 3.11)."""
    folder = cache / (f"{package}-sdist" if sdist else package)
    folder.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    for version in versions:
        pattern = f"{package}-{version}.tar.gz" if sdist else f"{package}-{version}-*.whl"
        matches = sorted(folder.glob(pattern))
        if not matches:
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
                str(folder),
            ]
            command += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
            if platform:
                command += ["--platform", platform, "--python-version", "3.11"]
            subprocess.run(
                [*command, f"{package}=={version}"], check=True, stdout=subprocess.DEVNULL
            )
            matches = sorted(folder.glob(pattern))
        if not matches:
            raise RuntimeError(f"pip download gave no file matching {pattern} in {folder}")
        found.append(matches[0])
    return found


def venv_tool(name: str, requirement: str, script: str, cache: Path = ROOT / ".cache") -> Path:
    """A console script from `requirement`, installed once into its own virtualenv under
    .cache/ (a lock keeps concurrent test workers from installing it twice)."""
    venv = cache / name
    binary = venv / "bin" / script
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [
                    str(venv / "bin" / "pip"),
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    requirement,
                ],
                check=True,
            )
    return binary


if __name__ == "__main__":
    for path in fetch(sys.argv[1], sys.argv[2:]):
        print(path)
