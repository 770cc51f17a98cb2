"""The delta codecs: every codec subprocess deltaglider runs (`xdelta3`, and `zstd` when asked
for) is started here, and only here.

Owns: the exact encode/decode command lines (FORMAT "What the old tool got wrong": `-D` on
encode, `-D -R` on decode, a source window sized to the reference), which codec a delta needs
(its recorded `dg-codec`, cross-checked against the delta's magic bytes), streaming decoded
bytes through a hash, bounding how many codec processes run at once (one per core), and
turning codec failures into CodecError. Must not touch S3.

xdelta3 (VCDIFF) is the default and what deltaglider 6.x reads. zstd (`--patch-from`, the
reference as a prefix dictionary) encodes several times faster for slightly larger deltas; the
old tool cannot decode it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from deltaglider import codec as codecs
from deltaglider import interrupt
from deltaglider.codec import XDELTA3, ZSTD, Codec
from deltaglider.errors import CodecError
from deltaglider.files import CHUNK_SIZE, Digest, HashingWriter, Progress

DEFAULT_WINDOW = 64 * 1024 * 1024  # xdelta3's own default source window
MAX_WINDOW = 2 * 1024 * 1024 * 1024  # xdelta3's largest source window on 64-bit builds
MIN_WINDOW = 1024 * 1024
# xdelta3's compression level by reference size (BENCHMARKS.md "Codec level by size"): -6
# encodes wheels ~1.6x faster than -9 for +0.1-0.2% bytes, and -3 large zips 2.4x and 1 GiB
# images 3x faster for +0.65% and +0%; every corpus stays within 1% of -9. Decoding does not
# depend on the level: 6.x reads every one of these deltas.
LEVEL_SMALL = 6
LEVEL_LARGE = 3
LARGE_REFERENCE = 64 * 1024 * 1024
ZSTD_LEVEL = 3
ZSTD_MAX_REFERENCE = 1 << 31  # --patch-from keeps the whole reference in a window of <= 2 GiB
# Variables through which the codecs read extra arguments; the caller's environment must not
# change what we encode.
_CODEC_VARIABLES = ("XDELTA", "ZSTD_CLEVEL", "ZSTD_NBTHREADS")
# Each codec process is single-threaded and holds up to a source window of memory: however
# many transfers run at once (--jobs), at most one codec process per core runs in this process.
_codec_slots = threading.BoundedSemaphore(os.cpu_count() or 2)


@dataclass(frozen=True)
class Encoding:
    """How a delta was made: `tag` is its `dg-codec`, `command` its `dg-delta-cmd`."""

    tag: str
    command: str


def binary(codec: Codec = XDELTA3) -> str:
    """Absolute path of a codec binary, or CodecError saying how to install it."""
    found = shutil.which(codec.binary)
    if found is None:
        raise CodecError(
            f"the {codec.binary} binary is not installed (Debian/Ubuntu: {codec.install_hint})"
        )
    return found


def source_window(reference_size: int, budget: int) -> int:
    """xdelta3's source window for a reference: a power of two holding the reference, capped by
    the memory budget and xdelta3's maximum.

    At least 4x a small reference (smaller windows lost up to 0.3% on 12 MB wheels) and at least
    xdelta3's 64 MiB default once a reference passes 16 MiB (what deltaglider 6.2 used). Below
    that a smaller window gives the same delta faster and in a fraction of the memory: a 100 KB
    jar encodes in 1 MiB instead of 64 MiB (BENCHMARKS.md)."""
    wanted = min(4 * reference_size, max(reference_size, DEFAULT_WINDOW))
    window = 1 << (max(wanted, MIN_WINDOW) - 1).bit_length()
    cap = 1 << (max(min(budget, MAX_WINDOW), MIN_WINDOW).bit_length() - 1)
    return min(window, cap)


def level(reference_size: int) -> int:
    """xdelta3's compression level for a reference of this size."""
    return LEVEL_LARGE if reference_size >= LARGE_REFERENCE else LEVEL_SMALL


def chosen_codec(name: str, reference_size: int, target_size: int, budget: int) -> Codec:
    """The codec that will encode this pair (`name` asked for). zstd needs the whole reference
    in memory, so a reference beyond the budget (or zstd's 2 GiB window) is encoded with
    xdelta3; so is an empty file (zstd 1.5.4 aborts on one with --patch-from)."""
    codec = codecs.BY_NAME[name]
    if codec is ZSTD and (target_size == 0 or reference_size > min(budget, ZSTD_MAX_REFERENCE)):
        return XDELTA3
    return codec


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _CODEC_VARIABLES}


def encode_command(
    source: Path, target: Path, out: Path, *, codec: str = XDELTA3.name, budget: int
) -> tuple[list[str], Encoding]:
    """The command line that writes the delta of `target` against `source` to `out`, and how
    it will be recorded."""
    reference_size = source.stat().st_size
    chosen = chosen_codec(codec, reference_size, target.stat().st_size, budget)
    return _ENCODE_COMMANDS[chosen.name](source, target, out, reference_size, budget)


def _xdelta3_encode(
    source: Path, target: Path, out: Path, reference_size: int, budget: int
) -> tuple[list[str], Encoding]:
    window = source_window(reference_size, budget)
    chosen = level(reference_size)
    # -A: no application header, which would otherwise carry the local names of the file and
    # the reference (scratch paths with a PID in them): deltas stay byte-identical for the
    # same bytes whatever the names, and no local name reaches the bucket
    flags = ["-e", f"-{chosen}", "-D", "-A", "-B", str(window)]
    command = [binary(XDELTA3), *flags, "-f", "-s", str(source), str(target), str(out)]
    recorded = f"xdelta3 {' '.join(flags)} -s reference.bin <file> <file>.delta"
    return command, Encoding(XDELTA3.tag, recorded)


def _zstd_encode(
    source: Path, target: Path, out: Path, reference_size: int, budget: int
) -> tuple[list[str], Encoding]:
    zstd_level = f"-{ZSTD_LEVEL}"
    command = [binary(ZSTD), "-q", "-f", "--single-thread", zstd_level, f"--patch-from={source}"]
    # zstd refuses one file as both input and dictionary: a self-delta reads stdin (encode()
    # feeds it), whose size zstd must be told.
    same = source.samefile(target)
    given = [f"--stream-size={reference_size}", "-"] if same else [str(target)]
    recorded = (
        f"zstd --single-thread {zstd_level} --patch-from=reference.bin <file> -o <file>.delta"
    )
    return [*command, *given, "-o", str(out)], Encoding(ZSTD.tag, recorded)


_ENCODE_COMMANDS = {XDELTA3.name: _xdelta3_encode, ZSTD.name: _zstd_encode}


def encode(
    source: Path, target: Path, out: Path, *, codec: str = XDELTA3.name, budget: int
) -> Encoding:
    """Write a delta of `target` against `source` to `out` with `codec` (see chosen_codec)."""
    command, encoding = encode_command(source, target, out, codec=codec, budget=budget)
    with (
        _codec_slots,
        target.open("rb") as stdin,
        _child(command, stdin=stdin, stdout=subprocess.DEVNULL) as process,
    ):
        assert process.stderr is not None
        stderr = process.stderr.read()
        returncode = process.wait()
    interrupt.check()  # killed because the command was cancelled: not a codec failure
    if returncode != 0:
        raise CodecError(f"{Path(command[0]).name} encode failed: {_last_line(stderr)}")
    return encoding


_children: set[subprocess.Popen[bytes]] = set()
_children_lock = threading.Lock()


@contextlib.contextmanager
def _child(command: list[str], **streams: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A codec process with a clean environment, killed when the block raises or the
    command is cancelled (`interrupt`), and always reaped."""
    interrupt.check()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=_env(), **streams)
    with _children_lock:
        _children.add(process)
    try:
        yield process
    except BaseException:
        process.kill()
        raise
    finally:
        with _children_lock:
            _children.discard(process)
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _kill_children() -> None:
    with _children_lock:
        for process in _children:
            with contextlib.suppress(OSError):
                process.kill()


interrupt.on_cancel(_kill_children)


def decoder(tag: str | None, delta: Path) -> Codec:
    """Which codec decodes `delta`: the recorded `dg-codec`, which must agree with the delta's
    magic bytes; with none recorded (older writers), the magic bytes decide."""
    with delta.open("rb") as handle:
        found = codecs.of_magic(handle.read(4))
    if tag is None:
        return found or XDELTA3  # let xdelta3 name what is wrong with it
    recorded = codecs.BY_TAG.get(tag)
    if recorded is None:
        raise CodecError(
            f"delta made with codec {tag!r}, which this deltaglider does not know (upgrade it)"
        )
    if found is not recorded:
        raise CodecError(
            f"delta metadata says {recorded.name} but its bytes are "
            f"{'not a delta of any known codec' if found is None else found.name + ' data'}"
        )
    return recorded


def decode_command(
    source: Path, delta: Path, *, tag: str | None, legacy: bool = False
) -> list[str]:
    """The command line that writes the decoded bytes of `delta` to stdout (see `decode`)."""
    return _DECODE_COMMANDS[decoder(tag, delta).name](source, delta, legacy)


def _xdelta3_decode(source: Path, delta: Path, legacy: bool) -> list[str]:
    flags = [] if legacy else ["-D", "-R"]
    return [binary(XDELTA3), "-d", *flags, "-c", "-f", "-s", str(source), str(delta)]


def _zstd_decode(source: Path, delta: Path, legacy: bool) -> list[str]:
    return [binary(ZSTD), "-d", "-c", "-q", "--long=31", f"--patch-from={source}", str(delta)]


_DECODE_COMMANDS = {XDELTA3.name: _xdelta3_decode, ZSTD.name: _zstd_decode}


def decode(
    source: Path,
    delta: Path,
    out: BinaryIO | None,
    *,
    tag: str | None = XDELTA3.tag,
    legacy: bool = False,
    progress: Progress | None = None,
    limit: int | None = None,
) -> Digest:
    """Decode `delta` against `source`, streaming the result into `out` (or nowhere, to check it)
    and returning its SHA-256 and size. `tag` is the delta's recorded `dg-codec`. `limit`: the
    size the result must not pass (its recorded size): the decoder is stopped the moment it
    does, so a small hostile delta cannot fill a disk before its check fails.

    xdelta3 deltas decode with `-D -R`, exact for every delta we write; `legacy=True` decodes
    as deltaglider <= 6.2 did (no flags), for old deltas of compressed-stream files.
    """
    command = decode_command(source, delta, tag=tag, legacy=legacy)
    writer = HashingWriter(out, progress=progress)
    with _codec_slots, _child(command, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        while chunk := process.stdout.read(CHUNK_SIZE):
            if limit is not None and writer.size + len(chunk) > limit:
                raise CodecError(f"reconstructed bytes pass the recorded {limit} bytes")
            writer.write(chunk)
        stderr = process.stderr.read()
        returncode = process.wait()
    interrupt.check()
    if returncode != 0:
        raise CodecError(f"{Path(command[0]).name} decode failed: {_last_line(stderr)}")
    return writer.digest


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"
