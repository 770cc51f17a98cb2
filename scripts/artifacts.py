"""Fetch real versioned artifacts from PyPI into `.cache/` (never committed).

Shared by the e2e suite, the demo and the benchmark:

    python scripts/artifacts.py boto3 1.35.0 1.35.1 1.35.2     # prints the cached paths
"""

from __future__ import annotations

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
    package: str, versions: tuple[str, ...] | list[str], *, sdist: bool = False
) -> list[Path]:
    """Paths of `package`'s wheels (or sdists) for each version, downloading what is missing."""
    folder = CACHE / (f"{package}-sdist" if sdist else package)
    folder.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    for version in versions:
        pattern = f"{package}-{version}.tar.gz" if sdist else f"{package}-{version}-*.whl"
        matches = sorted(folder.glob(pattern))
        if not matches:
            kind = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--disable-pip-version-check",
                    *kind,
                    "-d",
                    str(folder),
                    f"{package}=={version}",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            matches = sorted(folder.glob(pattern))
        if not matches:
            raise RuntimeError(f"pip download gave no file matching {pattern} in {folder}")
        found.append(matches[0])
    return found


if __name__ == "__main__":
    for path in fetch(sys.argv[1], sys.argv[2:]):
        print(path)
