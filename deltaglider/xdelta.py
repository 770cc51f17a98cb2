"""The delta codec: every `xdelta3` subprocess deltaglider runs is started here, and only here.

Owns: the exact encode/decode command lines (FORMAT "What the old tool got wrong": `-D` on
encode, `-D -R` on decode, a source window sized to the reference), streaming decoded bytes
through a hash, and turning codec failures into CodecError. Must not touch S3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import BinaryIO

from deltaglider.errors import CodecError
from deltaglider.files import CHUNK_SIZE, Digest, HashingWriter

XDELTA3 = "xdelta3"
DEFAULT_WINDOW = 64 * 1024 * 1024  # xdelta3's own default source window
MAX_WINDOW = 2 * 1024 * 1024 * 1024  # xdelta3's largest source window on 64-bit builds
MIN_WINDOW = 1024 * 1024
LEVEL = 9


def binary() -> str:
    """Absolute path of the xdelta3 binary, or CodecError saying how to install it."""
    found = shutil.which(XDELTA3)
    if found is None:
        raise CodecError(
            "the xdelta3 binary is not installed (Debian/Ubuntu: apt-get install xdelta3)"
        )
    return found


def source_window(reference_size: int, budget: int) -> int:
    """Source window for a reference: the smallest power of two that holds it (at least
    xdelta3's 64 MiB default), capped by the memory budget and xdelta3's maximum."""
    wanted = max(reference_size, DEFAULT_WINDOW)
    window = 1 << (wanted - 1).bit_length()
    cap = 1 << (max(min(budget, MAX_WINDOW), MIN_WINDOW).bit_length() - 1)
    return min(window, cap)


def _env() -> dict[str, str]:
    # xdelta3 reads extra arguments from $XDELTA; never let the caller's environment add any.
    return {k: v for k, v in os.environ.items() if k != "XDELTA"}


def encode_command(source: Path, target: Path, out: Path, window: int) -> list[str]:
    return [
        binary(),
        "-e",
        f"-{LEVEL}",
        "-D",
        "-B",
        str(window),
        "-f",
        "-s",
        str(source),
        str(target),
        str(out),
    ]


def describe_encode(window: int) -> str:
    """The human-readable `dg-delta-cmd` for what `encode` runs."""
    return f"xdelta3 -e -{LEVEL} -D -B {window} -s reference.bin <file> <file>.delta"


def encode(source: Path, target: Path, out: Path, window: int) -> None:
    """Write a VCDIFF delta of `target` against `source` to `out`."""
    result = subprocess.run(
        encode_command(source, target, out, window), capture_output=True, env=_env(), check=False
    )
    if result.returncode != 0:
        raise CodecError(f"xdelta3 encode failed: {_last_line(result.stderr)}")


def decode(source: Path, delta: Path, out: BinaryIO | None, *, legacy: bool = False) -> Digest:
    """Decode `delta` against `source`, streaming the result into `out` (or nowhere, to check it)
    and returning its SHA-256 and size.

    `legacy=False` decodes with `-D -R`, which is exact for every delta we write. `legacy=True`
    decodes as deltaglider <= 6.2 did (no flags), for old deltas of compressed-stream files.
    """
    flags = [] if legacy else ["-D", "-R"]
    command = [binary(), "-d", *flags, "-c", "-f", "-s", str(source), str(delta)]
    writer = HashingWriter(out)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        try:
            while chunk := process.stdout.read(CHUNK_SIZE):
                writer.write(chunk)
        except BaseException:
            process.kill()
            raise
        stderr = process.stderr.read()
        returncode = process.wait()
    if returncode != 0:
        raise CodecError(f"xdelta3 decode failed: {_last_line(stderr)}")
    return writer.digest


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"
