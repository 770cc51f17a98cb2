"""The codec: encode -> decode roundtrips, window sizing, and compatibility with the plain
`xdelta3 -d -f -s REF DELTA OUT` that deltaglider 6.2.0 runs (FORMAT "What the old tool got wrong")."""

import gzip
import io
import os
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaglider import xdelta
from deltaglider.errors import CodecError
from deltaglider.files import digest_file

MIB = 1024 * 1024


def roundtrip(tmp_path: Path, reference: bytes, target: bytes) -> bytes:
    ref, new, delta = tmp_path / "ref", tmp_path / "new", tmp_path / "new.delta"
    ref.write_bytes(reference)
    new.write_bytes(target)
    xdelta.encode(ref, new, delta, xdelta.source_window(len(reference), 1024 * MIB))
    out = io.BytesIO()
    digest = xdelta.decode(ref, delta, out)
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
@given(pair=reference_and_target())
def test_decode_inverts_encode(tmp_path: Path, pair: tuple[bytes, bytes]) -> None:
    reference, target = pair
    assert roundtrip(tmp_path, reference, target) == target


@pytest.mark.parametrize("target", [b"", b"x", b"\x00" * 3])
def test_tiny_inputs_roundtrip(tmp_path: Path, target: bytes) -> None:
    assert roundtrip(tmp_path, b"", target) == target
    assert roundtrip(tmp_path, b"y", target) == target


def test_small_edit_of_large_input_makes_small_delta(tmp_path: Path) -> None:
    rng = random.Random(7)
    reference = rng.randbytes(3 * MIB)
    target = reference[:MIB] + b"version 1.2.4" + reference[MIB + 13 :]
    ref, new, delta = tmp_path / "ref", tmp_path / "new", tmp_path / "d"
    ref.write_bytes(reference)
    new.write_bytes(target)
    xdelta.encode(ref, new, delta, xdelta.source_window(len(reference), 1024 * MIB))
    assert delta.stat().st_size < 2048
    assert xdelta.decode(ref, delta, None).sha256 == digest_file(new).sha256


@pytest.mark.parametrize(
    ("reference_size", "budget", "window"),
    [
        (0, 1024 * MIB, 64 * MIB),
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


def test_environment_cannot_inject_xdelta_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDELTA", "-S djw -9 -n")
    assert roundtrip(tmp_path, b"abc" * 1000, b"abd" * 1000) == b"abd" * 1000


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
    window = xdelta.source_window(len(reference), 1024 * MIB)
    assert window == 128 * MIB
    xdelta.encode(ref, new, delta, window)
    assert delta.stat().st_size < 2 * MIB
    subprocess.run(
        ["xdelta3", "-d", "-f", "-s", str(ref), str(delta), str(out)],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "XDELTA"},
    )
    assert out.read_bytes() == target
