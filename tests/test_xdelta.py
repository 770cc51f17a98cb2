"""The codecs: encode -> decode roundtrips (xdelta3 and zstd), window sizing, which decoder a
delta gets (recorded codec vs magic bytes), and compatibility with the plain
`xdelta3 -d -f -s REF DELTA OUT` that deltaglider 6.2.0 runs (FORMAT "What the old tool got wrong")."""

import contextlib
import gzip
import io
import os
import random
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaglider import codec as codec_table
from deltaglider import xdelta
from deltaglider.errors import CodecError
from deltaglider.files import digest_file

MIB = 1024 * 1024


def roundtrip(tmp_path: Path, reference: bytes, target: bytes, codec: str = "xdelta3") -> bytes:
    ref, new, delta = tmp_path / "ref", tmp_path / "new", tmp_path / "new.delta"
    ref.write_bytes(reference)
    new.write_bytes(target)
    encoding = xdelta.encode(ref, new, delta, codec=codec, budget=1024 * MIB)
    out = io.BytesIO()
    digest = xdelta.decode(ref, delta, out, tag=encoding.tag)
    assert digest.size == len(target)
    return out.getvalue()


@st.composite
def reference_and_target(draw: st.DrawFn) -> tuple[bytes, bytes]:
    reference = draw(st.binary(max_size=4096))
    kind = draw(st.sampled_from(["identical", "unrelated", "edited", "empty-target"]))
    if kind == "identical":
        return reference, reference
    if kind == "unrelated":
        return reference, draw(st.binary(max_size=4096))
    if kind == "empty-target":
        return reference, b""
    edited = bytearray(reference)
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(edited)))
        edited[position:position] = draw(st.binary(min_size=1, max_size=16))
    return reference, bytes(edited)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pair=reference_and_target(), codec=st.sampled_from(codec_table.NAMES))
def test_decode_inverts_encode(tmp_path: Path, pair: tuple[bytes, bytes], codec: str) -> None:
    reference, target = pair
    assert roundtrip(tmp_path, reference, target, codec) == target


@pytest.mark.parametrize("codec", codec_table.NAMES)
@pytest.mark.parametrize("target", [b"", b"x", b"\x00" * 3])
def test_tiny_inputs_roundtrip(tmp_path: Path, target: bytes, codec: str) -> None:
    assert roundtrip(tmp_path, b"", target, codec) == target
    assert roundtrip(tmp_path, b"y", target, codec) == target


@pytest.mark.parametrize("codec", codec_table.NAMES)
def test_self_delta_of_a_new_reference(tmp_path: Path, codec: str) -> None:
    """A new space's first file is encoded against itself (FORMAT): one path, both roles."""
    ref = tmp_path / "ref"
    ref.write_bytes(random.Random(5).randbytes(200_000))
    delta = tmp_path / "self.delta"
    encoding = xdelta.encode(ref, ref, delta, codec=codec, budget=1024 * MIB)
    assert delta.stat().st_size < 2000
    assert xdelta.decode(ref, delta, None, tag=encoding.tag).sha256 == digest_file(ref).sha256


def test_small_edit_of_large_input_makes_small_delta(tmp_path: Path) -> None:
    rng = random.Random(7)
    reference = rng.randbytes(3 * MIB)
    target = reference[:MIB] + b"version 1.2.4" + reference[MIB + 13 :]
    ref, new, delta = tmp_path / "ref", tmp_path / "new", tmp_path / "d"
    ref.write_bytes(reference)
    new.write_bytes(target)
    for codec in codec_table.NAMES:
        encoding = xdelta.encode(ref, new, delta, codec=codec, budget=1024 * MIB)
        assert delta.stat().st_size < 2048, codec
        assert xdelta.decode(ref, delta, None, tag=encoding.tag).sha256 == digest_file(new).sha256


@pytest.mark.parametrize(
    ("reference_size", "budget", "window"),
    [
        (0, 1024 * MIB, 1 * MIB),
        (100_000, 1024 * MIB, 1 * MIB),
        (1 * MIB, 1024 * MIB, 4 * MIB),
        (10 * MIB, 1024 * MIB, 64 * MIB),
        (64 * MIB, 1024 * MIB, 64 * MIB),
        (64 * MIB + 1, 1024 * MIB, 128 * MIB),
        (700 * MIB, 1024 * MIB, 1024 * MIB),
        (3000 * MIB, 1024 * MIB, 1024 * MIB),
        (3000 * MIB, 100 * MIB, 64 * MIB),
        (3000 * MIB, 16 * MIB, 16 * MIB),
        (10 * 1024 * MIB, 64 * 1024 * MIB, 2048 * MIB),
    ],
)
def test_source_window_holds_reference_within_budget(
    reference_size: int, budget: int, window: int
) -> None:
    assert xdelta.source_window(reference_size, budget) == window


def test_delta_of_gzip_decodes_to_exact_bytes(tmp_path: Path) -> None:
    """-D: xdelta3 must not gunzip inputs behind our back (the old tool's .tar.gz bug)."""
    rng = random.Random(3)
    words = [rng.randbytes(6).hex() for _ in range(2000)]
    first = gzip.compress(" ".join(words).encode(), mtime=0)
    words[1000] = "changed"
    second = gzip.compress(" ".join(words).encode(), mtime=0)
    assert roundtrip(tmp_path, first, second) == second


def test_decode_of_garbage_is_a_codec_error(tmp_path: Path) -> None:
    ref, delta = tmp_path / "ref", tmp_path / "d"
    ref.write_bytes(b"reference")
    delta.write_bytes(b"\xd6\xc3\xc4\x00 not really a delta")
    with pytest.raises(CodecError, match="xdelta3 decode failed"):
        xdelta.decode(ref, delta, None)
    delta.write_bytes(b"\x28\xb5\x2f\xfd not really a delta")
    with pytest.raises(CodecError, match="zstd decode failed"):
        xdelta.decode(ref, delta, None, tag=codec_table.ZSTD.tag)


@pytest.mark.parametrize(
    ("made_with", "recorded", "error"),
    [
        ("zstd", codec_table.XDELTA3.tag, "metadata says xdelta3 but its bytes are zstd data"),
        ("xdelta3", codec_table.ZSTD.tag, "metadata says zstd but its bytes are xdelta3 data"),
        ("xdelta3", "brotli-9", "codec 'brotli-9', which this deltaglider does not know"),
    ],
)
def test_recorded_codec_is_cross_checked_with_magic_bytes(
    tmp_path: Path, made_with: str, recorded: str, error: str
) -> None:
    ref, new, delta = tmp_path / "ref", tmp_path / "new", tmp_path / "d"
    ref.write_bytes(b"abc" * 1000)
    new.write_bytes(b"abd" * 1000)
    xdelta.encode(ref, new, delta, codec=made_with, budget=1024 * MIB)
    with pytest.raises(CodecError, match=error):
        xdelta.decode(ref, delta, None, tag=recorded)


@pytest.mark.parametrize("codec", codec_table.NAMES)
def test_delta_without_recorded_codec_is_decoded_by_its_magic_bytes(
    tmp_path: Path, codec: str
) -> None:
    ref, new, delta = tmp_path / "ref", tmp_path / "new", tmp_path / "d"
    ref.write_bytes(b"abc" * 1000)
    new.write_bytes(b"abd" * 1000)
    xdelta.encode(ref, new, delta, codec=codec, budget=1024 * MIB)
    assert xdelta.decode(ref, delta, None, tag=None).sha256 == digest_file(new).sha256


def test_zstd_falls_back_to_xdelta3_for_a_reference_beyond_the_memory_budget(
    tmp_path: Path,
) -> None:
    ref, new, delta = tmp_path / "ref", tmp_path / "new", tmp_path / "d"
    ref.write_bytes(b"abc" * 1_000_000)
    new.write_bytes(b"abd" * 1_000_000)
    assert xdelta.encode(ref, new, delta, codec="zstd", budget=MIB).tag == codec_table.XDELTA3.tag
    assert delta.read_bytes()[:3] == codec_table.XDELTA3.magic
    assert xdelta.encode(ref, new, delta, codec="zstd", budget=8 * MIB).tag == codec_table.ZSTD.tag
    assert delta.read_bytes()[:4] == codec_table.ZSTD.magic


def test_environment_cannot_inject_codec_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XDELTA / ZSTD_* in the caller's environment would change what the codecs write (xdelta3
    reads extra flags from XDELTA): the deltas must be byte-identical with and without them."""
    rng = random.Random(5)
    reference = rng.randbytes(256 * 1024)
    target = bytearray(reference)
    for _ in range(40):
        position = rng.randrange(len(target))
        target[position : position + 64] = rng.randbytes(64)
    ref, new = tmp_path / "ref", tmp_path / "new"
    ref.write_bytes(reference)
    new.write_bytes(bytes(target))

    def deltas() -> dict[str, bytes]:
        made = {}
        for codec in codec_table.NAMES:
            out = tmp_path / f"{codec}.delta"
            xdelta.encode(ref, new, out, codec=codec, budget=1024 * MIB)
            made[codec] = out.read_bytes()
        return made

    clean = deltas()
    monkeypatch.setenv("XDELTA", "-S djw -n")
    monkeypatch.setenv("ZSTD_CLEVEL", "1")
    monkeypatch.setenv("ZSTD_NBTHREADS", "4")
    assert deltas() == clean
    for codec in codec_table.NAMES:
        assert roundtrip(tmp_path, reference, bytes(target), codec) == bytes(target)


@pytest.mark.slow
def test_large_window_delta_decodes_with_plain_old_tool_command(tmp_path: Path) -> None:
    """A 96 MiB reference gets a 128 MiB window; the old tool's plain decode must still work,
    and the match beyond 64 MiB must be found (the delta stays small)."""
    rng = random.Random(11)
    block = rng.randbytes(MIB)
    reference = b"".join(bytes([i]) + block[1:] for i in range(96))
    # move the last 16 MiB to the front: matches lie > 64 MiB away in the source
    target = reference[80 * MIB :] + reference[: 80 * MIB]
    ref, new, delta, out = (tmp_path / n for n in ("ref", "new", "d", "out"))
    ref.write_bytes(reference)
    new.write_bytes(target)
    assert xdelta.source_window(len(reference), 1024 * MIB) == 128 * MIB
    encoding = xdelta.encode(ref, new, delta, budget=1024 * MIB)
    assert "-B 134217728" in encoding.command
    assert delta.stat().st_size < 2 * MIB
    subprocess.run(
        ["xdelta3", "-d", "-f", "-s", str(ref), str(delta), str(out)],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "XDELTA"},
    )
    assert out.read_bytes() == target


def test_codec_processes_are_bounded_whatever_the_number_of_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--jobs 8 must not start 8 codec processes on 2 cores: at most one slot each. Codec
    starts meet at a barrier of two, so without the bound pairs of them would pile up past two
    (a broken barrier only ends the pairing; it never lets more through)."""
    monkeypatch.setattr(xdelta, "_codec_slots", threading.BoundedSemaphore(2))
    running, most = 0, 0
    lock = threading.Lock()
    pair = threading.Barrier(2, timeout=5)
    real_child = xdelta._child

    @contextlib.contextmanager
    def counting_child(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                pair.wait()
            with real_child(*args, **kwargs) as process:
                yield process
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(xdelta, "_child", counting_child)
    ref = tmp_path / "ref"
    ref.write_bytes(b"abc" * 10_000)

    def one(index: int) -> bool:
        new, delta = tmp_path / f"new{index}", tmp_path / f"d{index}"
        new.write_bytes(b"abc" * 10_000 + str(index).encode())
        xdelta.encode(ref, new, delta, budget=1024 * MIB)
        return xdelta.decode(ref, delta, None).sha256 == digest_file(new).sha256

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(8)))
    assert 1 <= most <= 2


@pytest.mark.parametrize(
    ("reference_size", "expected"),
    [(0, 6), (12 * MIB, 6), (64 * MIB - 1, 6), (64 * MIB, 3), (1024 * MIB, 3)],
)
def test_level_follows_the_reference_size_and_is_recorded(
    tmp_path: Path, reference_size: int, expected: int
) -> None:
    ref, new = tmp_path / "ref", tmp_path / "new"
    with ref.open("wb") as out:  # sparse: only the size matters to the command line
        out.truncate(reference_size)
    new.write_bytes(b"x")
    command, encoding = xdelta.encode_command(ref, new, tmp_path / "d", budget=1024 * MIB)
    assert command[2] == f"-{expected}" and xdelta.level(reference_size) == expected
    assert encoding.command.startswith(f"xdelta3 -e -{expected} -D -A -B ")


def test_a_large_class_delta_reads_back_with_the_plain_decoder(tmp_path: Path) -> None:
    """A delta made at the large-reference level decodes with 6.2.0's plain command line."""
    rng = random.Random(3)
    reference = rng.randbytes(64 * MIB)
    target = bytearray(reference)
    target[1000:1010] = b"0123456789"
    ref, new, delta, out = (tmp_path / n for n in ("ref", "new", "new.delta", "out"))
    ref.write_bytes(reference)
    new.write_bytes(bytes(target))
    encoding = xdelta.encode(ref, new, delta, budget=1024 * MIB)
    assert encoding.command.startswith("xdelta3 -e -3 ")
    subprocess.run(["xdelta3", "-d", "-f", "-s", str(ref), str(delta), str(out)], check=True)
    assert out.read_bytes() == bytes(target)


@pytest.mark.parametrize("codec", codec_table.NAMES)
def test_a_delta_depends_on_the_bytes_not_on_the_file_names(tmp_path: Path, codec: str) -> None:
    """xdelta3's application header would carry both inputs' local names (scratch paths with
    a PID in them): -A leaves it out, so the same bytes give the same delta, and no local name
    is stored in the bucket."""
    reference = random.Random(5).randbytes(64 * 1024)
    target = reference[:1000] + b"changed" + reference[1007:]
    deltas = []
    for names in (("r", "t"), ("reference-1234567-abcdef.bin", "app-9.9.9-secret-build.zip")):
        folder = tmp_path / names[1]
        folder.mkdir()
        ref, new, out = folder / names[0], folder / names[1], folder / "out.delta"
        ref.write_bytes(reference)
        new.write_bytes(target)
        xdelta.encode(ref, new, out, codec=codec, budget=64 * MIB)
        deltas.append(out.read_bytes())
        assert b"secret-build" not in deltas[-1] and b"reference-1234567" not in deltas[-1]
    assert deltas[0] == deltas[1]
