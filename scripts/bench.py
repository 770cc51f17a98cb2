"""`make bench`: where time, memory and bytes go, side by side with what users would otherwise run.

    python scripts/bench.py            # every corpus (downloads ~200 MB once, builds ~1.5 GB)
    python scripts/bench.py --quick    # a small subset, under two minutes
    python scripts/bench.py --corpus botocore --runs 5
    python scripts/bench.py --layouts  # stored bytes by bucket layout, renewal thresholds
    python scripts/bench.py --stats    # `deltaglider stats` on 5,000 deltas + 5,000 direct objects
    python scripts/bench.py --migrate  # `deltaglider migrate` throughput next to `aws s3 sync`
    python scripts/bench.py --per-file # start-up, small-file sync, an 8-`cp` loop (in a full run)

Contenders, all against one SeaweedFS started on 127.0.0.1 for the run:
  boto3        plain upload_file / download_file (what `aws s3 cp` costs)
  dg-6.2.0     deltaglider 6.2.0 from PyPI in its own virtualenv (files given .zip names where
               it would otherwise store them whole)
  ours         this checkout's `deltaglider` CLI (default codec, xdelta3)
  ours-zstd    the same with the bucket set to codec=zstd (faster; not readable by 6.2.0)
  ours-ratio1  (jar corpus only) the same with DG_MAX_RATIO=1, 6.2.0's effective behaviour
Every contender runs as its own process, one `cp` per file (as a CI job does), through a proxy
that counts bytes on the wire, requests per file and the time from a process's start to its
first request; uploads of one run share a reference cache (one CI job), every download starts
with an empty one (a fresh machine). Peak RSS is sampled from /proc for the process and,
separately, its codec children. The bare `xdelta3` CLI is timed on the same files, and our engine in-process
too, so our overhead over the codec is visible. A full run then times `--version` and an
upload's first request per tool, `sync` of 1,500 real small files up and down next to
`aws s3 sync` (with the requests each made), and a Makefile-style loop of 8 `cp` processes by
reference cache. Corpora are real packages from PyPI (cached
under .cache/bench/) plus generated archives. Output: a markdown table on stdout and JSON in
.cache/bench/results.json (BENCHMARKS.md records a run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import artifacts
import local_s3
from faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
MIB = 1024 * 1024
OLD_VERSION = "6.2.0"


# ------------------------------------------------------------------------------ corpora


@dataclass(frozen=True)
class Corpus:
    name: str
    files: list[Path]
    note: str


def pypi_series(
    package: str, versions: list[str], *, sdist: bool = False, platform: str | None = None
) -> list[Path]:
    return artifacts.fetch(package, versions, sdist=sdist, platform=platform, cache=CACHE / "pypi")


def jar_series(versions: list[str]) -> list[Path]:
    """The py4j jar each py4j wheel carries: a real versioned .jar."""
    folder = CACHE / "jar"
    folder.mkdir(parents=True, exist_ok=True)
    jars = []
    for wheel in pypi_series("py4j", versions):
        target = folder / wheel.name.replace(".whl", ".jar")
        if not target.exists():
            with zipfile.ZipFile(wheel) as archive:
                name = next(n for n in archive.namelist() if n.endswith(".jar"))
                target.write_bytes(archive.read(name))
        jars.append(target)
    return jars


def generated_zip_series(size_mb: int, versions: int) -> list[Path]:
    """A build output of `size_mb` where each version changes a few entries (a version
    string, one rebuilt binary), deflated as build tools do."""
    folder = CACHE / f"generated-{size_mb}mb"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"app-1.0.{v}.zip" for v in range(versions)]
    if all(p.exists() for p in paths):
        return paths
    rng = random.Random(size_mb)
    entries: list[tuple[str, bytes]] = []
    total = 0
    words = [rng.randbytes(5).hex() for _ in range(5000)]
    while total < size_mb * MIB:
        index = len(entries)
        if index % 4 == 0:  # binary-ish, hardly compressible
            data = rng.randbytes(rng.randint(64 * 1024, 512 * 1024))
        else:  # source-like text
            data = " ".join(rng.choices(words, k=rng.randint(20_000, 80_000))).encode()
        entries.append((f"lib/module_{index:05d}.bin", data))
        total += len(data) // (1 if index % 4 == 0 else 3)
    for version, path in enumerate(paths):
        if path.exists():
            continue
        changed = dict(entries)
        changed["VERSION"] = f"1.0.{version}\n".encode()
        for pick in range(version * 3):
            name = entries[(pick * 997) % len(entries)][0]
            changed[name] = (
                changed[name][:1000] + f"rebuilt {version}".encode() + changed[name][1000:]
            )
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for name, data in sorted(changed.items()):
                archive.writestr(
                    zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)),
                    data,
                    compress_type=zipfile.ZIP_DEFLATED,
                    compresslevel=1,
                )
    return paths


def big_file_pair(size_mb: int) -> list[Path]:
    folder = CACHE / f"big-{size_mb}mb"
    folder.mkdir(parents=True, exist_ok=True)
    first, second = folder / "disk-1.iso", folder / "disk-2.iso"
    if not first.exists() or not second.exists():
        rng = random.Random(99)
        with first.open("wb") as a, second.open("wb") as b:
            for block in range(size_mb):
                chunk = rng.randbytes(MIB)
                a.write(chunk)
                b.write(chunk if block % 97 else rng.randbytes(MIB))
    return [first, second]


def corpora(quick: bool, only: str | None) -> list[Corpus]:
    botocore = [f"1.35.{i}" for i in range(3 if quick else 8)]
    makers = {
        "botocore": lambda: Corpus(
            "botocore", pypi_series("botocore", botocore), "wheels, 8 consecutive releases"
        ),
        "numpy": lambda: Corpus(
            "numpy",
            pypi_series(
                "numpy",
                ["2.1.0", "2.1.1"] if quick else ["2.1.0", "2.1.1", "2.1.2", "2.1.3"],
                platform="manylinux2014_x86_64",
            ),
            "native wheels",
        ),
        "jar": lambda: Corpus(
            "jar",
            jar_series(
                ["0.10.9.5", "0.10.9.7"]
                if quick
                else ["0.10.9.3", "0.10.9.4", "0.10.9.5", "0.10.9.7", "0.10.9.8", "0.10.9.9"]
            ),
            "py4j jars",
        ),
        "sdist": lambda: Corpus(
            "sdist",
            pypi_series("boto3", [f"1.35.{i}" for i in range(3 if quick else 8)], sdist=True),
            ".tar.gz sdists (compressed streams)",
        ),
        "zip300": lambda: Corpus(
            "zip300",
            generated_zip_series(40 if quick else 300, 2 if quick else 4),
            "generated zip, few entries change per version",
        ),
        "big1g": lambda: Corpus("big1g", big_file_pair(1024), "1 GiB pair, for memory"),
    }
    names = (
        only.split(",") if only else [n for n in makers if not (quick and n in ("big1g", "numpy"))]
    )
    return [makers[n]() for n in names]


# --------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    seconds: float
    peak_rss: int  # bytes, the contender's own process
    peak_child_rss: int  # bytes, its largest child (the codec)
    started: float = 0.0  # time.perf_counter() when the process was started


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(_tree(int(child)))
    return found


def _hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(command: list[str], env: dict[str, str]) -> Sample:
    """Run a command, sampling the peak RSS of it and of its children every 5 ms."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peaks = {"self": 0, "child": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree = _tree(process.pid)
            peaks["self"] = max(peaks["self"], _hwm(process.pid))
            for pid in tree[1:]:
                peaks["child"] = max(peaks["child"], _hwm(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])}… failed: {stderr.decode()[-800:]}")
    return Sample(seconds, peaks["self"], peaks["child"], started)


def old_tool() -> Path:
    return artifacts.venv_tool(
        f"deltaglider-{OLD_VERSION}", f"deltaglider=={OLD_VERSION}", "deltaglider", cache=CACHE
    )


BOTO3_SCRIPT = """
import sys, boto3
from botocore.config import Config
c = boto3.client("s3", config=Config(request_checksum_calculation="when_required",
                                     response_checksum_validation="when_required"))
op, bucket, key, path = sys.argv[1:5]
(c.upload_file(path, bucket, key) if op == "up" else c.download_file(bucket, key, path))
"""


@dataclass
class Result:
    corpus: str
    contender: str
    files: int
    logical_bytes: int
    stored_bytes: int
    upload_s: list[float] = field(default_factory=list)
    download_s: list[float] = field(default_factory=list)
    recursive_upload_s: float = 0.0
    peak_rss: int = 0
    peak_child_rss: int = 0
    wire_up: int = 0
    wire_down: int = 0
    requests_up: list[int] = field(default_factory=list)  # per delta file, first run
    requests_down: list[int] = field(default_factory=list)
    first_request_s: list[float] = field(default_factory=list)  # upload start to 1st request
    roundtrip_ok: bool = True
    note: str = ""


def run_contender(
    name: str, corpus: Corpus, server: local_s3.LocalS3, raw: Any, runs: int, scratch: Path
) -> Result:
    """Each run (and the recursive upload) gets a bucket of its own, files at its root:
    deltaglider 6.2.0 puts deltas in the root folder whatever prefix it is given."""
    stem = f"bench-{name.replace('.', '')}-{corpus.name}".lower()[:50]
    for run in range(runs):
        raw.create_bucket(Bucket=f"{stem}-{run}")
    raw.create_bucket(Bucket=f"{stem}-r")
    files = corpus.files
    if name == "dg-6.2.0":  # give it names it would try as deltas
        renamed = scratch / "as-zip"
        renamed.mkdir(exist_ok=True)
        files = []
        for path in corpus.files:
            target = renamed / (path.name + ".zip")
            if not target.exists():
                os.link(path, target)
            files.append(target)
    result = Result(corpus.name, name, len(files), sum(p.stat().st_size for p in files), 0)
    tool = [str(old_tool())] if name == "dg-6.2.0" else [sys.executable, "-m", "deltaglider"]
    settings = {"ours-ratio1": {"DG_MAX_RATIO": "1"}}
    if name == "ours-zstd":  # the bucket's setting, as a team would choose it once
        for bucket in [f"{stem}-{run}" for run in range(runs)] + [f"{stem}-r"]:
            set_bucket_codec(server, bucket, "zstd")

    def up(path: Path, bucket: str) -> list[str]:
        if name == "boto3":
            return [sys.executable, "-c", BOTO3_SCRIPT, "up", bucket, path.name, str(path)]
        return [*tool, "cp", str(path), f"s3://{bucket}/"]

    def down(path: Path, bucket: str, target: Path) -> list[str]:
        if name == "boto3":
            return [sys.executable, "-c", BOTO3_SCRIPT, "down", bucket, path.name, str(target)]
        return [*tool, "cp", f"s3://{bucket}/{path.name}", str(target)]

    def track(sample: Sample) -> Sample:
        result.peak_rss = max(result.peak_rss, sample.peak_rss)
        result.peak_child_rss = max(result.peak_child_rss, sample.peak_child_rss)
        return sample

    with FaultProxy(server.endpoint, rate=0.0) as proxy:
        env = {
            **os.environ,
            **server.env(),
            "AWS_ENDPOINT_URL": proxy.endpoint,
            "DG_SUPPRESS_DEPRECATION": "1",
            **settings.get(name, {}),
        }
        for run in range(runs):
            bucket = f"{stem}-{run}"
            before_sent = proxy.sent
            # one upload job per run (its commands share the reference cache); every download
            # a fresh machine's (an empty cache): the reference is fetched each time
            up_env = {**env, "DG_CACHE_DIR": str(scratch / f"cache-{name}-{run}")}
            for index, path in enumerate(files):
                proxy.reset_counts()
                sample = track(measure(up(path, bucket), up_env))
                if index > 0:  # the first file of a series makes the reference
                    result.upload_s.append(sample.seconds)
                    if proxy.first_request_at is not None:
                        result.first_request_s.append(proxy.first_request_at - sample.started)
                    if run == 0:
                        result.requests_up.append(sum(proxy.operations.values()))
            if run == 0:
                result.wire_up = proxy.sent - before_sent
                result.stored_bytes = sum(
                    o["Size"]
                    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                    for o in page.get("Contents", [])
                )
            before_received = proxy.received
            for index, path in enumerate(files):
                target = scratch / f"{name}-{path.name}"
                proxy.reset_counts()
                cold = {**env, "DG_CACHE_DIR": str(scratch / f"cache-{name}-{run}-{index}")}
                sample = track(measure(down(path, bucket, target), cold))
                if index > 0:
                    result.download_s.append(sample.seconds)
                    if run == 0:
                        result.requests_down.append(sum(proxy.operations.values()))
                if run == 0 and not same_bytes(target, path):
                    result.roundtrip_ok = False
                target.unlink(missing_ok=True)
                shutil.rmtree(cold["DG_CACHE_DIR"], ignore_errors=True)
            if run == 0:
                result.wire_down = proxy.received - before_received
            shutil.rmtree(up_env["DG_CACHE_DIR"], ignore_errors=True)
        # one command for the whole series, as a release job uploading dist/ does
        folder = scratch / f"series-{name}"
        folder.mkdir(exist_ok=True)
        for path in files:
            if not (folder / path.name).exists():
                os.link(path, folder / path.name)
        if name == "boto3":
            started = time.perf_counter()
            for path in files:
                measure(up(path, f"{stem}-r"), env)
            result.recursive_upload_s = time.perf_counter() - started
        else:
            flag = "-r" if name == "dg-6.2.0" else "--recursive"
            result.recursive_upload_s = measure(
                [*tool, "cp", flag, str(folder), f"s3://{stem}-r/"], env
            ).seconds
    for bucket in [f"{stem}-{run}" for run in range(runs)] + [f"{stem}-r"]:
        drop_bucket(raw, bucket)  # a long run must not fill the server's volumes
    shutil.rmtree(folder, ignore_errors=True)
    return result


def drop_bucket(raw: Any, bucket: str) -> None:
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            raw.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    raw.delete_bucket(Bucket=bucket)


def set_bucket_codec(server: local_s3.LocalS3, bucket: str, codec: str) -> None:
    env = {**os.environ, **server.env()}
    command = [sys.executable, "-m", "deltaglider", "config", f"s3://{bucket}"]
    subprocess.run([*command, "--set", f"codec={codec}"], env=env, check=True, capture_output=True)


def same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as x, b.open("rb") as y:
        while True:
            one, two = x.read(MIB), y.read(MIB)
            if one != two:
                return False
            if not one:
                return True


def bare_codec(corpus: Corpus, scratch: Path, codec: str) -> dict[str, float]:
    """The codec CLI alone, with exactly the flags our engine uses, on the same files."""
    from deltaglider import xdelta

    reference = corpus.files[0]
    encode, decode = [], []
    for path in corpus.files[1:]:
        out = scratch / "bare.delta"
        command, encoding = xdelta.encode_command(
            reference, path, out, codec=codec, budget=1024 * MIB
        )
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        encode.append(time.perf_counter() - started)
        decoder = xdelta.decode_command(reference, out, tag=encoding.tag)
        started = time.perf_counter()
        with (scratch / "bare.out").open("wb") as decoded:
            subprocess.run(decoder, check=True, stdout=decoded, stderr=subprocess.PIPE)
        decode.append(time.perf_counter() - started)
    return {
        "encode_s": statistics.median(encode) if encode else 0.0,
        "decode_s": statistics.median(decode) if decode else 0.0,
    }


def in_process(corpus: Corpus, server: local_s3.LocalS3, raw: Any, codec: str) -> dict[str, float]:
    """Our engine called directly (no process start-up): upload and download medians."""
    from deltaglider.config import Settings
    from deltaglider.engine import Engine

    bucket = f"bench-inproc-{codec}-{corpus.name}".lower()
    raw.create_bucket(Bucket=bucket)
    os.environ.update(server.env())
    engine = Engine(Settings(endpoint_url=server.endpoint, region=local_s3.REGION, codec=codec))
    ups, downs = [], []
    with tempfile.TemporaryDirectory(prefix="dg-bench-") as scratch:
        for index, path in enumerate(corpus.files):
            started = time.perf_counter()
            engine.upload(path, bucket, f"s/{path.name}")
            if index:
                ups.append(time.perf_counter() - started)
        for index, path in enumerate(corpus.files):
            started = time.perf_counter()
            engine.download(bucket, f"s/{path.name}", Path(scratch) / path.name)
            if index:
                downs.append(time.perf_counter() - started)
    engine.close()
    return {
        "upload_s": statistics.median(ups) if ups else 0.0,
        "download_s": statistics.median(downs) if downs else 0.0,
    }


# ------------------------------------------------------------------------------ layouts


def layouts(server: local_s3.LocalS3, raw: Any, long_count: int) -> str:
    """Stored bytes by bucket layout (issue: savings must not depend on it), and on a long
    series which renewal threshold stores least. Our engine in-process, one upload per file
    in version order, every file verified after."""
    from deltaglider.config import Settings
    from deltaglider.engine import Engine

    os.environ.update(server.env())
    versions = [f"1.35.{n}" for n in range(8)]
    botocore, boto3_wheels = pypi_series("botocore", versions), pypi_series("boto3", versions)
    long_series = pypi_series("botocore", [f"1.35.{n}" for n in range(long_count)])

    def store(name: str, files: list[tuple[Path, str]], **settings: Any) -> dict[str, Any]:
        bucket = f"layout-{name}".lower().replace("_", "-")
        raw.create_bucket(Bucket=bucket)
        engine = Engine(Settings(endpoint_url=server.endpoint, region=local_s3.REGION, **settings))
        ups: list[float] = []
        delta_ups: list[float] = []
        for path, key in files:
            started = time.perf_counter()
            result = engine.upload(path, bucket, key)
            ups.append(time.perf_counter() - started)
            if result.stored_as.value == "delta":
                delta_ups.append(ups[-1])
        exact = all(  # verify raises on a mismatch; this also compares with the local file
            engine.verify(bucket, key).actual_sha256
            == hashlib.sha256(path.read_bytes()).hexdigest()
            for path, key in files
        )
        engine.close()
        pages = raw.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        stored = sum(o["Size"] for page in pages for o in page.get("Contents", []))
        logical = sum(path.stat().st_size for path, _ in files)
        return {
            "layout": name,
            "files": len(files),
            "logical": logical,
            "stored": stored,
            "exact": exact,
            "delta_upload_s": med(delta_ups),
        }

    def per_version(paths: list[Path]) -> list[tuple[Path, str]]:
        return [(p, f"releases/{p.name.split('-')[1]}/{p.name}") for p in paths]

    rows = [
        store("one-folder", [(p, f"releases/botocore/{p.name}") for p in botocore]),
        store("per-version-folder-mode", per_version(botocore), references="folder"),
        store("per-version-shared", per_version(botocore)),
        store("two-series-per-version", per_version(botocore) + per_version(boto3_wheels)),
        store("boto3-alone-per-version", per_version(boto3_wheels)),
    ]
    renewal = [
        store(f"long-renew-{threshold}", per_version(long_series), renew_ratio=threshold)
        for threshold in (1.0, 0.5, 0.25, 0.1)
    ]
    lines = [
        "| layout | files | logical | stored | stored/logical | delta upload median s | "
        "round-trip |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows + renewal:
        lines.append(
            f"| {row['layout']} | {row['files']} | {mb(row['logical'])} | {mb(row['stored'])} | "
            f"{row['stored'] / row['logical']:.1%} | {row['delta_upload_s']:.2f} | "
            f"{'exact' if row['exact'] else 'WRONG BYTES'} |"
        )
    by = {row["layout"]: row for row in rows}
    two = by["two-series-per-version"]
    boto3_logical = sum(p.stat().st_size for p in boto3_wheels)
    second = two["stored"] - by["per-version-shared"]["stored"]
    lines += [
        "",
        f"- per-version folders / one folder: "
        f"{by['per-version-shared']['stored'] / by['one-folder']['stored']:.2f}x "
        f"(folder mode: {by['per-version-folder-mode']['stored'] / by['one-folder']['stored']:.2f}x)",
        f"- second series (boto3) in the same version folders: {second / boto3_logical:.1%} "
        "of its size",
        f"- delta upload, shared vs folder-mode single folder baseline: "
        f"{by['per-version-shared']['delta_upload_s'] / max(by['one-folder']['delta_upload_s'], 1e-9):.2f}x",
        f"- long series ({long_count} botocore wheels, per-version folders), renew_ratio 1.0 is "
        "one fixed reference (deltas over 0.5 go direct)",
    ]
    return "\n".join(lines)


def chain_depths(engine: Any, bucket: str, key: str) -> int:
    """How many chain links a cold read of `key` decodes: its reference's bases, walked."""
    from deltaglider.metadata import DeltaMeta, LinkMeta

    head = engine.head_stored(bucket, key + ".delta")
    meta = DeltaMeta.from_dict(head.metadata, key + ".delta")
    ref, links = meta.ref_key, 0
    while True:
        link = LinkMeta.from_dict(engine.head_stored(bucket, ref).metadata, ref)
        if link is None or link.base_key is None:
            return links
        ref, links = link.base_key, links + 1


def chains_bench(server: local_s3.LocalS3, raw: Any, count: int) -> str:
    """`references=chain` against the default (shared, renewal at the max ratio) on real
    series of `count` versions, one folder per version: stored bytes, upload time, a cold
    download of the newest, the worst read's chain links, a warm download of the next
    version, and `prune --keep-last 5` (kept versions restored, freed bytes exact)."""
    from deltaglider.config import Settings
    from deltaglider.engine import Engine
    from deltaglider.retention import execute_prune, plan_prune

    os.environ.update(server.env())
    series = {
        "botocore wheels": pypi_series("botocore", [f"1.35.{n}" for n in range(count)]),
        "boto3 wheels": pypi_series("boto3", [f"1.35.{n}" for n in range(count)]),
        "awscli wheels": pypi_series("awscli", [f"1.34.{n}" for n in range(count)]),
    }
    lines = [
        "| series | mode | files | logical | stored | stored/logical | upload median s | "
        "cold newest s | worst links | warm next s | prune 5: freed (plan = run) | restored |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, paths in series.items():
        for mode in ("shared", "chain"):
            bucket = f"chain-{mode}-{name.split()[0]}".lower()
            raw.create_bucket(Bucket=bucket)
            settings = Settings(endpoint_url=server.endpoint, region=local_s3.REGION)
            engine = Engine(replace(settings, references=mode, cache_backend="memory"))
            keys = [f"{p.name.split('-')[1]}/{p.name}" for p in paths]
            ups = []
            for path, key in zip(paths, keys, strict=True):
                started = time.perf_counter()
                engine.upload(path, bucket, key)
                ups.append(time.perf_counter() - started)
            engine.close()
            stored = sum(
                o["Size"]
                for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])
            )
            cold = Engine(replace(settings, cache_backend="memory"))
            with tempfile.TemporaryDirectory() as scratch:
                started = time.perf_counter()
                cold.download(bucket, keys[-1], Path(scratch) / "newest")
                cold_s = time.perf_counter() - started
                cold.download(bucket, keys[-3], Path(scratch) / "before")
                started = time.perf_counter()
                cold.download(bucket, keys[-2], Path(scratch) / "next")
                warm_s = time.perf_counter() - started
            worst = max(chain_depths(cold, bucket, key) for key in keys)
            plan = plan_prune(cold, bucket, "", keep_last=5)
            before = stored
            result = execute_prune(cold, plan)
            after = sum(
                o["Size"]
                for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])
            )
            restored = all(
                cold.verify(bucket, key).actual_sha256
                == hashlib.sha256(path.read_bytes()).hexdigest()
                for path, key in list(zip(paths, keys, strict=True))[-5:]
            )
            cold.close()
            exact = plan.freed_bytes == result.freed_bytes == before - after
            logical = sum(p.stat().st_size for p in paths)
            lines.append(
                f"| {name} | {mode} | {len(paths)} | {mb(logical)} | {mb(stored)} | "
                f"{stored / logical:.1%} | {med(ups[1:]):.2f} | {cold_s:.2f} | {worst} | "
                f"{warm_s:.2f} | {mb(before - after)} ({'=' if exact else 'NOT'}) | "
                f"{'exact' if restored else 'WRONG'} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


# ---------------------------------------------------------------------------- reporting


def stats_bench(server: local_s3.LocalS3, raw: Any, teams: int = 10, per_team: int = 500) -> str:
    """`deltaglider stats` on a bucket of `teams` x `per_team` deltas and as many direct
    objects. Each team's series starts with real uploads of eight boto3 wheels (one folder per
    version, shared references); the rest are server-side copies of those real deltas (same
    bytes and metadata) at later version folders, and the direct objects are small files of
    1-20 KB. Ground truth: the file sizes the deltas record, and the direct objects' sizes."""
    from concurrent.futures import ThreadPoolExecutor

    env = {**os.environ, **server.env()}
    bucket = "stats-bench"
    raw.create_bucket(Bucket=bucket)
    wheels = pypi_series("boto3", [f"1.35.{n}" for n in range(8)])
    dg = [str(Path(sys.executable).parent / "deltaglider")]
    for team in range(teams):
        for number, wheel in enumerate(wheels):
            subprocess.run(
                [*dg, "cp", str(wheel), f"s3://{bucket}/team{team}/1.35.{number}/"],
                env=env,
                check=True,
                capture_output=True,
            )
    real = [k for k in local_keys(raw, bucket) if k.endswith(".delta")]
    truth = {
        k: int(raw.head_object(Bucket=bucket, Key=k)["Metadata"]["dg-file-size"]) for k in real
    }
    jobs: list[tuple[str, str]] = []
    for team in range(teams):
        sources = [k for k in real if k.startswith(f"team{team}/")]
        for number in range(len(sources), per_team):
            source = sources[number % len(sources)]
            name = source.rsplit("/", 1)[1].replace("1.35.", f"1.{100 + number}.", 1)
            jobs.append((source, f"team{team}/1.{100 + number}.0/{name}"))
    rng = random.Random(7)
    directs = {
        f"docs/{n // 100}/page-{n}.html": rng.randint(1_000, 20_000)
        for n in range(teams * per_team)
    }

    def copy(job: tuple[str, str]) -> None:
        raw.copy_object(Bucket=bucket, Key=job[1], CopySource={"Bucket": bucket, "Key": job[0]})

    def put(item: tuple[str, int]) -> None:
        raw.put_object(Bucket=bucket, Key=item[0], Body=rng.randbytes(item[1]))

    started = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(copy, jobs))
        list(pool.map(put, directs.items()))
    for source, target in jobs:
        truth[target] = truth[source]
    logical_truth = sum(truth.values()) + sum(directs.values())
    print(
        f"# stats bench: {len(truth)} deltas, {len(directs)} direct, filled in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )

    rows = []
    runs = {
        "quick (default)": ["--no-cache"],
        "sampled": ["--sampled", "--no-cache"],
        "detailed": ["--detailed", "--no-cache"],
        "detailed, cached": ["--detailed"],
    }
    subprocess.run(
        [*dg, "stats", f"s3://{bucket}", "--detailed", "--json"],
        env=env,
        check=True,
        capture_output=True,
    )
    for label, args in runs.items():
        times, result = [], {}
        for _ in range(3):
            began = time.monotonic()
            done = subprocess.run(
                [*dg, "stats", f"s3://{bucket}", *args, "--json"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            times.append(time.monotonic() - began)
            result = json.loads(done.stdout)
        error = (result["logical_bytes"] - logical_truth) / logical_truth
        # One listing, and a second one to HEAD from when HEADs are made.
        pages = -(-result["objects"] // 1000) * (2 if result["heads"] else 1)
        rows.append(
            f"| {label} | {med(times):.2f} s | {pages} LIST + {result['heads']} HEAD | "
            f"{result['logical_bytes']:,} | {error:+.3%} | {'yes' if result['logical_estimated'] else 'no'} |"
        )
    header = (
        f"`deltaglider stats` on SeaweedFS, {len(truth):,} deltas + {len(directs):,} direct objects "
        f"({teams} series), median of 3 runs; logical truth {logical_truth:,} bytes\n\n"
        "| mode | time | requests | logical bytes | error | marked estimated |\n|---|---:|---:|---:|---:|---|"
    )
    return "\n".join([header, *rows])


def migrate_bench(server: local_s3.LocalS3, raw: Any) -> str:
    """Plain bucket -> deltaglider bucket with `deltaglider migrate`, next to `aws s3 sync`
    between two buckets, on one SeaweedFS: 30 botocore wheels (one folder per version) and
    200 small JSON files."""
    env = {**os.environ, **server.env()}
    wheels = pypi_series("botocore", [f"1.35.{n}" for n in range(30)])
    rng = random.Random(3)
    objects = {f"botocore/{w.name.split('-')[1]}/{w.name}": w.read_bytes() for w in wheels}
    objects.update(
        {
            f"meta/{n:03d}.json": json.dumps({"n": n, "x": "y" * rng.randint(10, 4000)}).encode()
            for n in range(200)
        }
    )
    logical = sum(len(body) for body in objects.values())
    aws = artifacts.venv_tool("awscli", "awscli", "aws")
    dg = str(Path(sys.executable).parent / "deltaglider")
    rows = []
    for label, command in (
        (
            "aws s3 sync (plain copy)",
            lambda src, dst: [
                str(aws),
                "s3",
                "sync",
                "--only-show-errors",
                f"s3://{src}",
                f"s3://{dst}",
            ],
        ),
        (
            "deltaglider migrate",
            lambda src, dst: [dg, "migrate", "--quiet", f"s3://{src}", f"s3://{dst}"],
        ),
        ("deltaglider migrate, re-run (all verified there)", None),
    ):
        times = []
        for run in range(3):
            src, dst = f"mb-src-{len(rows)}-{run}", f"mb-dst-{len(rows)}-{run}"
            raw.create_bucket(Bucket=src)
            raw.create_bucket(Bucket=dst)
            for key, body in objects.items():
                raw.put_object(Bucket=src, Key=key, Body=body)
            if command is None:  # a finished migration, run again
                subprocess.run(
                    [dg, "migrate", "--quiet", f"s3://{src}", f"s3://{dst}"],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                argv = [dg, "migrate", "--quiet", f"s3://{src}", f"s3://{dst}"]
            else:
                argv = command(src, dst)
            began = time.monotonic()
            subprocess.run(argv, env=env, check=True, capture_output=True)
            times.append(time.monotonic() - began)
            stored = sum(
                o["Size"]
                for page in raw.get_paginator("list_objects_v2").paginate(Bucket=dst)
                for o in page.get("Contents", [])
            )
        seconds = med(times)
        rows.append(
            f"| {label} | {seconds:.1f} s | {len(objects) / seconds:.1f} | "
            f"{logical / MIB / seconds:.1f} | {stored / MIB:.1f} MiB |"
        )
    header = (
        f"{len(objects)} objects, {logical / MIB:.1f} MiB (30 botocore wheels in per-version folders, "
        "200 small JSON files), plain bucket to another bucket on one SeaweedFS, median of 3\n\n"
        "| command | time | objects/s | MB/s (logical) | stored at the destination |\n|---|---:|---:|---:|---:|"
    )
    return "\n".join([header, *rows])


# ------------------------------------------------------- start-up, small files, CI loops


def aws_cli() -> Path:
    return artifacts.venv_tool("awscli", "awscli", "aws", cache=CACHE)


def startup_bench(server: local_s3.LocalS3, repeats: int = 10) -> str:
    """`--version` of each tool, and how long an upload takes to send its first request."""
    env = {**os.environ, **server.env(), "DG_SUPPRESS_DEPRECATION": "1"}
    tools = {
        "ours": [sys.executable, "-m", "deltaglider"],
        "dg-6.2.0": [str(old_tool())],
        "aws": [str(aws_cli())],
    }
    lines = [
        "| tool | `--version` median s | upload: first request median s |",
        "|---|---|---|",
    ]
    wheel = pypi_series("botocore", ["1.35.0"])[0]
    raw = server.client()
    for name, tool in tools.items():
        version = med([measure([*tool, "--version"], env).seconds for _ in range(repeats)])
        bucket = f"bench-start-{name.replace('.', '')}".lower()
        raw.create_bucket(Bucket=bucket)
        firsts = []
        with FaultProxy(server.endpoint, rate=0.0) as proxy:
            penv = {**env, "AWS_ENDPOINT_URL": proxy.endpoint}
            for run in range(5):
                proxy.reset_counts()
                if name == "aws":
                    command = [
                        *tool,
                        "--endpoint-url",
                        proxy.endpoint,
                        "s3",
                        "cp",
                        str(wheel),
                        f"s3://{bucket}/{run}/",
                    ]
                else:
                    command = [*tool, "cp", str(wheel), f"s3://{bucket}/{run}/"]
                sample = measure(command, penv)
                if proxy.first_request_at is not None:
                    firsts.append(proxy.first_request_at - sample.started)
        lines.append(f"| {name} | {version:.3f} | {med(firsts):.3f} |")
    return "\n".join(lines)


def small_files_tree(count: int = 1500, limit: int = 256 * 1024) -> Path:
    """Real small files: the non-archive members of a botocore and a numpy wheel (JSON
    service models, Python sources, type stubs, small shared objects), up to `count`."""
    root = CACHE / f"small-files-{count}"
    if root.exists() and sum(1 for p in root.rglob("*") if p.is_file()) == count:
        return root
    wheels = pypi_series("botocore", ["1.35.0"]) + pypi_series(
        "numpy", ["2.1.0"], platform="manylinux2014_x86_64"
    )
    written = 0
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = info.filename
                if written == count:
                    return root
                if info.is_dir() or info.file_size > limit or name.endswith(".gz"):
                    continue  # archives would be delta-eligible: this tree is about the rest
                target = root / wheel.name.split("-")[0] / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
                written += 1
    if written < count:
        raise RuntimeError(f"only {written} small files in {[w.name for w in wheels]}")
    return root


def small_files_bench(server: local_s3.LocalS3, runs: int = 3) -> str:
    """`sync` of a tree of small files up to an empty prefix and down to an empty folder,
    next to `aws s3 sync`, with the requests each made."""
    tree = small_files_tree()
    files = sum(1 for p in tree.rglob("*") if p.is_file())
    raw = server.client()
    aws = [str(aws_cli())]
    ours = [sys.executable, "-m", "deltaglider"]
    times: dict[str, list[float]] = {}
    counts: dict[str, dict[str, int]] = {}
    with (
        FaultProxy(server.endpoint, rate=0.0) as proxy,
        tempfile.TemporaryDirectory(prefix="dg-bench-small-", dir=CACHE) as scratch,
    ):
        env = {**os.environ, **server.env(), "AWS_ENDPOINT_URL": proxy.endpoint}
        for run in range(runs):
            for name, tool in (("aws s3 sync", aws), ("deltaglider sync", ours)):
                bucket = f"bench-small-{run}-{'aws' if tool is aws else 'ours'}"
                raw.create_bucket(Bucket=bucket)
                prefix = [*tool, "--endpoint-url", proxy.endpoint] if tool is aws else tool
                sub = ["s3", "sync"] if tool is aws else ["sync"]
                for direction, args in (
                    ("up", [str(tree), f"s3://{bucket}/site/"]),
                    ("down", [f"s3://{bucket}/site/", f"{scratch}/{bucket}"]),
                ):
                    proxy.reset_counts()
                    sample = measure([*prefix, *sub, *args], env)
                    times.setdefault(f"{name} {direction}", []).append(sample.seconds)
                    counts[f"{name} {direction}"] = dict(proxy.operations)
                assert tree_digest(Path(f"{scratch}/{bucket}")) == tree_digest(tree)
    lines = [
        f"{files} files, {mb(sum(p.stat().st_size for p in tree.rglob('*') if p.is_file()))} "
        f"(median of {runs} runs; every download compared byte for byte)",
        "",
        "| command | direction | median s | vs aws s3 sync | requests |",
        "|---|---|---|---|---|",
    ]
    for direction in ("up", "down"):
        theirs = med(times[f"aws s3 sync {direction}"])
        for name in ("aws s3 sync", "deltaglider sync"):
            seconds = med(times[f"{name} {direction}"])
            requests = ", ".join(
                f"{k} {v}" for k, v in sorted(counts[f"{name} {direction}"].items())
            )
            lines.append(
                f"| {name} | {direction} | {seconds:.2f} | {seconds / theirs:.2f}x | {requests} |"
            )
    return "\n".join(lines)


def tree_digest(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def loop_bench(server: local_s3.LocalS3) -> str:
    """A Makefile-style loop: 8 `cp` processes, one wheel each into its version's folder, as
    a release job uploading one series file by file; total wall time by reference cache."""
    wheels = pypi_series("botocore", [f"1.35.{i}" for i in range(8)])
    raw = server.client()
    env = {**os.environ, **server.env(), "DG_SUPPRESS_DEPRECATION": "1"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="dg-bench-loop-", dir=CACHE) as scratch:
        cases = [
            ("dg-6.2.0", [str(old_tool())], {}),
            (
                "ours, per-process cache (DG_CACHE_BACKEND=filesystem)",
                None,
                {"DG_CACHE_BACKEND": "filesystem"},
            ),
            (
                "ours, persistent cache, cold (empty at the start)",
                None,
                {"DG_CACHE_DIR": f"{scratch}/c"},
            ),
            (
                "ours, persistent cache, warm (the same job again)",
                None,
                {"DG_CACHE_DIR": f"{scratch}/c"},
            ),
        ]
        for index, (name, tool, extra) in enumerate(cases):
            bucket = f"bench-loop-{index}"
            raw.create_bucket(Bucket=bucket)
            started = time.perf_counter()
            for wheel in wheels:
                version = wheel.name.split("-")[1]
                if tool:  # 6.2.0: a .zip name (it stores .whl whole) in the root (its layout)
                    named = Path(scratch) / (wheel.name + ".zip")
                    if not named.exists():
                        os.link(wheel, named)
                    command = [*tool, "cp", str(named), f"s3://{bucket}/"]
                else:
                    ours = [sys.executable, "-m", "deltaglider", "cp", str(wheel)]
                    command = [*ours, f"s3://{bucket}/{version}/"]
                measure(command, {**env, **extra})
            rows.append((name, time.perf_counter() - started))
    lines = ["| 8 `cp` processes, one series | total s | per file s |", "|---|---|---|"]
    lines += [f"| {name} | {total:.2f} | {total / 8:.2f} |" for name, total in rows]
    return "\n".join(lines)


def local_keys(raw: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def table(
    results: list[Result], codec: dict[str, dict[str, float]], inproc: dict[str, dict[str, float]]
) -> str:
    lines = [
        "| corpus | contender | files | logical | stored | stored/logical | upload median s "
        "| download median s | recursive upload s | peak RSS (process / codec) | wire up / down "
        "| requests per file up / down | first request s | round-trip |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.corpus} | {r.contender} | {r.files} | {mb(r.logical_bytes)} | "
            f"{mb(r.stored_bytes)} | {r.stored_bytes / r.logical_bytes:.1%} | "
            f"{med(r.upload_s):.2f} | {med(r.download_s):.2f} | {r.recursive_upload_s:.2f} | "
            f"{mb(r.peak_rss)} / {mb(r.peak_child_rss)} | {mb(r.wire_up)} / {mb(r.wire_down)} | "
            f"{med(r.requests_up):g} / {med(r.requests_down):g} | {med(r.first_request_s):.2f} | "
            f"{'exact' if r.roundtrip_ok else 'WRONG BYTES'} |"
        )
    lines += [
        "",
        "| corpus | ours | vs dg-6.2.0 upload | download | recursive upload | "
        "stored bytes vs 6.2.0 | vs boto3 upload | download | bare codec encode s "
        "| decode s | in-process upload s | download s | overhead over codec (upload) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for corpus, contender in dict.fromkeys((r.corpus, r.contender) for r in results):
        if contender not in ("ours", "ours-zstd"):
            continue
        by = {r.contender: r for r in results if r.corpus == corpus}
        ours, old, plain = by[contender], by.get("dg-6.2.0"), by.get("boto3")
        name = "zstd" if contender == "ours-zstd" else "xdelta3"
        c, i = codec.get(f"{corpus}/{name}", {}), inproc.get(f"{corpus}/{name}", {})
        bare = c.get("encode_s", 0) + c.get("decode_s", 0)
        lines.append(
            f"| {corpus} | {contender} | {ratio(old.upload_s if old else [], ours.upload_s)} | "
            f"{ratio(old.download_s if old else [], ours.download_s)} | "
            f"{(old.recursive_upload_s / ours.recursive_upload_s if old and ours.recursive_upload_s else 0):.1f}x | "
            f"{(ours.stored_bytes / old.stored_bytes if old and old.stored_bytes else 0):.2f} | "
            f"{ratio(plain.upload_s if plain else [], ours.upload_s)} | "
            f"{ratio(plain.download_s if plain else [], ours.download_s)} | "
            f"{c.get('encode_s', 0):.2f} | {c.get('decode_s', 0):.2f} | "
            f"{i.get('upload_s', 0):.2f} | {i.get('download_s', 0):.2f} | "
            f"{(i.get('upload_s', 0) / bare - 1 if bare else 0):+.0%} |"
        )
    return "\n".join(lines)


def ratio(theirs: list[float], ours: list[float]) -> str:
    if not theirs or not ours:
        return "-"
    return f"{med(theirs) / med(ours):.1f}x"


def mb(value: float) -> str:
    return f"{value / MIB:.1f} MB" if value >= 0.1 * MIB else f"{value / 1024:.0f} KB"


def tar_series(count: int = 3, width: int = 5) -> list[Path]:
    """Uncompressed tars of `width` consecutive botocore wheels (~62 MB): version k holds
    wheels k..k+width-1, as a bundle of several artifacts changes between releases."""
    folder = CACHE / "tars"
    folder.mkdir(parents=True, exist_ok=True)
    wheels = pypi_series("botocore", [f"1.35.{n}" for n in range(count + width - 1)])
    tars = []
    for number in range(count):
        target = folder / f"bundle-1.{number}.tar"
        if not target.exists():
            with tarfile.open(target, "w") as archive:
                for wheel in wheels[number : number + width]:
                    archive.add(wheel, arcname=wheel.name)
        tars.append(target)
    return tars


LINK_CONTENDERS = ("aws", "boto3", "dg-6.2.0", "ours", "ours-zstd")


def link_bench(server: local_s3.LocalS3, mbps: float, rtt_ms: float) -> str:
    """Per file over a link (linkproxy: one shared token bucket, `rtt_ms` round trips): each
    contender as users run it (a process per file), uploads of versions 2.. after the first,
    interleaved by file; downloads of the newest with an empty reference cache (a fresh
    runner) and, for ours, with the reference cached (the next job on the same runner)."""
    from linkproxy import LinkProxy

    raw = server.client()
    series = {
        "botocore wheels (12.5 MB)": pypi_series("botocore", [f"1.35.{n}" for n in range(8)]),
        "tar of five wheels (~62 MB)": tar_series(3),
    }
    tools = {
        "aws": [str(aws_cli())],
        "dg-6.2.0": [str(old_tool())],
        "ours": [sys.executable, "-m", "deltaglider"],
        "ours-zstd": [sys.executable, "-m", "deltaglider"],
    }
    lines = [
        f"Link: {mbps:g} Mbit/s shared by both directions, {rtt_ms:g} ms RTT.",
        "",
        "| file | contender | upload median s | vs aws | cold download s | vs aws | "
        "warm download s |",
        "|---|---|---|---|---|---|---|",
    ]
    with (
        LinkProxy(server.endpoint, mbps=mbps, rtt_ms=rtt_ms) as link,
        tempfile.TemporaryDirectory(prefix="dg-link-", dir=CACHE) as scratch,
    ):
        env = {
            **os.environ,
            **server.env(),
            "AWS_ENDPOINT_URL": link.endpoint,
            "DG_SUPPRESS_DEPRECATION": "1",
            "DG_METRICS": "noop",
        }
        for name, files in series.items():
            ups: dict[str, list[float]] = {c: [] for c in LINK_CONTENDERS}
            buckets = {
                c: f"link-{c}-{len(files)}-{uuid_hex()}".replace(".", "") for c in LINK_CONTENDERS
            }
            caches = {c: Path(scratch) / f"cache-{c}" for c in LINK_CONTENDERS}
            for contender in LINK_CONTENDERS:
                raw.create_bucket(Bucket=buckets[contender])
            for number, path in enumerate(files):
                for contender in LINK_CONTENDERS:
                    command = _link_command(
                        tools, contender, "up", buckets[contender], path, link.endpoint
                    )
                    sample = measure(command, {**env, "DG_CACHE_DIR": str(caches[contender])})
                    if number:
                        ups[contender].append(sample.seconds)
            newest = files[-1]
            for contender in LINK_CONTENDERS:
                target = Path(scratch) / f"down-{contender}"
                cold_dir = Path(scratch) / f"cold-{contender}"
                command = _link_command(
                    tools, contender, "down", buckets[contender], newest, link.endpoint, target
                )
                cold = measure(command, {**env, "DG_CACHE_DIR": str(cold_dir)}).seconds
                if (
                    hashlib.sha256(target.read_bytes()).digest()
                    != hashlib.sha256(newest.read_bytes()).digest()
                ):
                    raise RuntimeError(f"{contender}: {newest.name} came back different")
                warm = ""
                if contender.startswith("ours"):
                    target.unlink()
                    warm_s = measure(
                        command, {**env, "DG_CACHE_DIR": str(caches[contender])}
                    ).seconds
                    warm = f"{warm_s:.2f}"
                if contender == "aws":
                    aws_up, aws_down = med(ups["aws"]), cold
                lines.append(
                    f"| {name} | {contender} | {med(ups[contender]):.2f} | "
                    f"{aws_up / med(ups[contender]):.2f}x faster | {cold:.2f} | "
                    f"{cold / aws_down:.2f}x aws's time | {warm} |"
                )
                print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def uuid_hex() -> str:
    return os.urandom(4).hex()


def _link_command(
    tools: dict[str, list[str]],
    contender: str,
    op: str,
    bucket: str,
    path: Path,
    endpoint: str,
    target: Path | None = None,
) -> list[str]:
    """How `contender` uploads `path` to its version folder, or downloads it to `target`."""
    version = path.name.split("-")[1].removesuffix(".tar")
    key = f"{version}/{path.name}"
    if contender == "boto3":
        args = ["up", bucket, key, str(path)] if op == "up" else ["down", bucket, key, str(target)]
        return [sys.executable, "-c", BOTO3_SCRIPT, *args]
    tool = tools[contender]
    if contender == "aws":
        tool = [*tool, "--endpoint-url", endpoint, "s3"]
    extra = ["--codec", "zstd"] if contender == "ours-zstd" and op == "up" else []
    if op == "up":
        return [*tool, "cp", str(path), f"s3://{bucket}/{version}/", *extra]
    if contender == "dg-6.2.0":  # 6.2.0 stores `cp f s3://b/dir/` at the bucket's root
        key = path.name
    return [*tool, "cp", f"s3://{bucket}/{key}", str(target)]


def per_file_sections(server: local_s3.LocalS3) -> str:
    return "\n\n".join(
        [
            "Start-up\n\n" + startup_bench(server),
            "Small files\n\n" + small_files_bench(server),
            "Makefile-style loop\n\n" + loop_bench(server),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small corpora, one run")
    parser.add_argument("--corpus", help="only these corpora (comma-separated)")
    parser.add_argument("--runs", type=int, default=None, help="repetitions per file")
    parser.add_argument("--contenders", default="boto3,dg-6.2.0,ours,ours-zstd,ours-ratio1")
    parser.add_argument(
        "--layouts", action="store_true", help="stored bytes by bucket layout and renewal"
    )
    parser.add_argument("--long", type=int, default=30, help="--layouts: long series length")
    parser.add_argument(
        "--chains", type=int, default=0, metavar="N", help="references=chain vs shared, N versions"
    )
    parser.add_argument(
        "--link", metavar="MBPS[,RTT_MS]", help="per-file times over a limited link, per contender"
    )
    parser.add_argument(
        "--stats", action="store_true", help="`deltaglider stats` at 10,000 objects"
    )
    parser.add_argument(
        "--migrate", action="store_true", help="migrate throughput next to aws s3 sync"
    )
    parser.add_argument(
        "--per-file",
        action="store_true",
        help="only start-up, small-file sync and the 8-cp loop (a full run includes them)",
    )
    options = parser.parse_args()
    if options.per_file:
        os.environ["DG_CACHE_DIR"] = str(CACHE / "reference-cache")
        with local_s3.running("seaweedfs") as server:
            print(per_file_sections(server))
        return
    if options.migrate:
        with local_s3.running("seaweedfs") as server:
            print(migrate_bench(server, server.client()))
        return
    if options.stats:
        with local_s3.running("seaweedfs") as server:
            print(stats_bench(server, server.client()))
        return
    if options.link:
        mbps, _, rtt = options.link.partition(",")
        with local_s3.running("seaweedfs") as server:
            print(link_bench(server, float(mbps), float(rtt or 0)))
        return
    if options.chains:
        with local_s3.running("seaweedfs") as server:
            print(chains_bench(server, server.client(), options.chains))
        return
    if options.layouts:
        with local_s3.running("seaweedfs") as server:
            raw = server.client()
            print(layouts(server, raw, options.long))
        return
    runs = options.runs or (1 if options.quick else 3)
    os.environ["DG_CACHE_DIR"] = str(CACHE / "reference-cache")  # never the user's ~/.cache
    contenders = options.contenders.split(",")
    CACHE.mkdir(parents=True, exist_ok=True)
    if "dg-6.2.0" in contenders:
        old_tool()
    chosen = corpora(options.quick, options.corpus)
    results: list[Result] = []
    codec: dict[str, dict[str, float]] = {}
    inproc: dict[str, dict[str, float]] = {}
    with (
        local_s3.running("seaweedfs") as server,
        tempfile.TemporaryDirectory(prefix="dg-bench-", dir=CACHE) as scratch_dir,
    ):
        raw = server.client()
        for corpus in chosen:
            print(
                f"# {corpus.name}: {len(corpus.files)} files, "
                f"{mb(sum(p.stat().st_size for p in corpus.files))}",
                file=sys.stderr,
            )
            scratch = Path(scratch_dir) / corpus.name
            scratch.mkdir()
            for name in ("xdelta3", "zstd"):
                codec[f"{corpus.name}/{name}"] = bare_codec(corpus, scratch, name)
                inproc[f"{corpus.name}/{name}"] = in_process(corpus, server, raw, name)
            for contender in contenders:
                if contender == "ours-ratio1" and corpus.name != "jar":
                    continue
                print(f"  {contender} ...", file=sys.stderr, flush=True)
                try:
                    results.append(run_contender(contender, corpus, server, raw, runs, scratch))
                except RuntimeError as error:
                    failed = Result(
                        corpus.name,
                        contender,
                        len(corpus.files),
                        1,
                        0,
                        roundtrip_ok=False,
                        note=str(error)[:300],
                    )
                    results.append(failed)
                    print(f"    failed: {error}", file=sys.stderr)
        print(table(results, codec, inproc), flush=True)
        write_results(options.quick, runs, results, codec, inproc)
        if not options.corpus and not options.quick:
            print("\n\n" + per_file_sections(server))


def write_results(
    quick: bool,
    runs: int,
    results: list[Result],
    codec: dict[str, dict[str, float]],
    inproc: dict[str, dict[str, float]],
) -> None:
    (CACHE / "results.json").write_text(
        json.dumps(
            {
                "quick": quick,
                "runs": runs,
                "results": [asdict(r) for r in results],
                "bare_codec": codec,
                "in_process": inproc,
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nJSON: {CACHE / 'results.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
