"""Build and run the project's container images with whatever engine this machine has.

Used by `make image`, by the e2e suite (the deltaglider image and the S3 server images that
testcontainers starts) and by anyone building where no registry is reachable:

    python scripts/images.py engine                 # which engine: docker, else podman (set up)
    python scripts/images.py deltaglider [--platforms linux/amd64,linux/arm64] [--tag T]
    python scripts/images.py test-servers           # LocalStack and SeaweedFS images for e2e
    python scripts/images.py all                    # both (what `make test` starts first)
    python scripts/images.py base bookworm          # the local Debian+Python base by itself

Engine: Docker when a Docker engine answers (multi-arch through `docker buildx`), otherwise
podman, installed with apt-get when missing and given a private containers.conf under
`.cache/containers/` (the runc runtime and ulimits within this process's hard limits: crun and
podman's defaults fail on machines with hybrid cgroups and no CAP_SYS_RESOURCE).

Base images: the registry's `python:3.11-slim` when it is present or can be pulled; otherwise a
local one made from Debian packages (debootstrap --variant=minbase, imported as
`localhost/debian-base:<suite>-<arch>`, then `scripts/images/python-base.Dockerfile` on it as
`localhost/python-base:<suite>-<arch>`). That is the air-gapped path: only a Debian mirror and
PyPI are needed. Images already built are reused; the engine's layer cache makes an unchanged
rebuild take seconds.

This script drives external programs (apt-get, debootstrap, podman/docker); it never touches S3.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "containers"
REGISTRY_PYTHON = "docker.io/library/python:3.11-slim"
IMAGE = "beshultd/deltaglider"
LOCALSTACK_IMAGE = "localhost/deltaglider-test/localstack:2026.3.0"
SEAWEEDFS_IMAGE = "localhost/deltaglider-test/seaweedfs:4.48"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
APT_CLEAN = (
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
    '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
    '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
    'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
)
DPKG_SLIM = (
    "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
    "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n"
    "path-exclude /usr/share/locale/*\n"
)
PODMAN_PACKAGES = [
    "podman",
    "runc",
    "uidmap",
    "slirp4netns",
    "containernetworking-plugins",
    "iptables",
]


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One build at a time across processes (a background `all` and test workers): the others
    wait, then find the images built."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return str(project["version"])


def default_tag() -> str:
    return f"{IMAGE}:{version()}"


def log(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Engine:
    """A container engine command and the environment it needs."""

    name: str  # "docker" or "podman"
    settings: dict[str, str]  # environment variables the engine needs on top of ours

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.settings}

    def run(self, *args: str, capture: bool = False, check: bool = True) -> str:
        result = subprocess.run(
            [self.name, *args],
            env=self.env,
            check=False,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
        )
        if check and result.returncode != 0:
            detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
            raise SystemExit(
                f"error: {self.name} {' '.join(args[:2])} failed (exit {result.returncode})"
                + (f": {detail[0]}" if detail else "")
            )
        return result.stdout or ""

    def has_image(self, ref: str) -> bool:
        probe = subprocess.run(
            [self.name, "image", "inspect", ref],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return probe.returncode == 0

    def pull(self, ref: str, arch: str) -> bool:
        pulled = subprocess.run(
            [self.name, "pull", "--quiet", "--platform", f"linux/{arch}", ref],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return pulled.returncode == 0


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return probe.returncode == 0


def apt_install(packages: Sequence[str]) -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and shutil.which("sudo") is None:
        raise SystemExit(f"error: need root or sudo to apt-get install {' '.join(packages)}")
    log(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get (or a parallel run) may hold it
    for command in (
        ["apt-get", *wait, "update", "-qq"],
        ["apt-get", *wait, "install", "-y", "-qq", *packages],
    ):
        subprocess.run([*sudo, *command], env=env, check=True, stdout=subprocess.DEVNULL)


def podman_config() -> Path:
    """A containers.conf that works without CAP_SYS_RESOURCE and on hybrid cgroups."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile_limit = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    nproc_limit = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    text = (
        "# Written by scripts/images.py for this project's builds and tests.\n"
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile_limit}:{nofile_limit}", '
        f'"nproc={nproc_limit}:{nproc_limit}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "containers.conf"
    if not path.exists() or path.read_text() != text:
        staged = path.with_name(f"{path.name}.{os.getpid()}")
        staged.write_text(text)
        staged.replace(path)  # atomic: concurrent test workers never read half a file
    return path


def engine() -> Engine:
    """Docker when an engine answers; otherwise podman, installed and configured if needed."""
    if docker_engine_answers():
        return Engine("docker", {})
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if missing:
        apt_install(PODMAN_PACKAGES)
    return Engine("podman", {"CONTAINERS_CONF": str(podman_config())})


def native_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def debian_mirror() -> str:
    """The Debian mirror apt on this machine uses for its own release (an air-gapped site's
    mirror included); `DEBIAN_MIRROR` overrides it."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    release = Path("/etc/os-release")
    fields = (
        dict(line.split("=", 1) for line in release.read_text().splitlines() if "=" in line)
        if release.is_file()
        else {}
    )
    codename = fields.get("VERSION_CODENAME", "").strip('"')
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in sources:
        if not source.is_file():
            continue
        text = source.read_text()
        # deb822 paragraphs (URIs:/Suites:) and one-line entries (deb [options] URI suite …).
        for paragraph in text.split("\n\n"):
            entry = dict(
                (line.split(":", 1)[0], line.split(":", 1)[1].split())
                for line in paragraph.splitlines()
                if ":" in line and not line.startswith("#")
            )
            if codename in entry.get("Suites", []) and entry.get("URIs"):
                return entry["URIs"][0]
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line).split()
            if words[:1] == ["deb"] and len(words) > 2 and words[2] == codename:
                return words[1]
    return "http://deb.debian.org/debian"


def enable_emulation(arch: str) -> None:
    """qemu-user-static and binfmt_misc, so a foreign-arch build can run its RUN steps."""
    if arch == native_arch():
        return
    qemu = {"arm64": "aarch64", "amd64": "x86_64"}.get(arch, arch)
    registered = Path(f"/proc/sys/fs/binfmt_misc/qemu-{qemu}")
    if registered.exists():
        return
    if shutil.which(f"qemu-{qemu}-static") is None:
        apt_install(["qemu-user-static", "binfmt-support"])
    if not Path("/proc/sys/fs/binfmt_misc/register").exists():
        subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"], check=True
        )
    if not registered.exists():
        subprocess.run(["update-binfmts", "--enable", f"qemu-{qemu}"], check=False)
    if not registered.exists():
        raise SystemExit(f"error: could not register qemu-{qemu} with binfmt_misc")


def debian_base(eng: Engine, suite: str, arch: str) -> str:
    """`localhost/debian-base:<suite>-<arch>`, made with debootstrap when missing."""
    ref = f"localhost/debian-base:{suite}-{arch}"
    if eng.has_image(ref):
        return ref
    if shutil.which("debootstrap") is None:
        apt_install(["debootstrap"])
    enable_emulation(arch)
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"debian-{suite}-", dir=CACHE) as workdir:
        rootfs = Path(workdir) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--arch={arch}",
                suite,
                str(rootfs),
                debian_mirror(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / leftover).glob("*"):
                if item.is_file():
                    item.unlink()
        # As Debian's official images do: apt keeps no downloaded packages in a layer.
        (rootfs / "etc/apt/apt.conf.d/docker-clean").write_text(APT_CLEAN)
        # As the -slim images do: no manuals, docs (but licences) or translations.
        (rootfs / "etc/dpkg/dpkg.cfg.d/slim").write_text(DPKG_SLIM)
        for folder in ("usr/share/man", "usr/share/doc", "usr/share/locale", "usr/share/info"):
            for item in sorted((rootfs / folder).rglob("*"), reverse=True):
                if item.name == "copyright" or (item.is_dir() and any(item.iterdir())):
                    continue
                if item.is_dir():
                    item.rmdir()
                else:
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        platform_flag = (
            ["--arch", arch] if eng.name == "podman" else ["--platform", f"linux/{arch}"]
        )
        subprocess.run(
            [eng.name, "import", "--quiet", *platform_flag, "-", ref],
            env=eng.env,
            stdin=tar.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            raise SystemExit(f"error: could not archive the {suite} root filesystem")
    log(f"{ref} made with debootstrap in {time.monotonic() - started:.0f} s")
    return ref


def python_base(eng: Engine, suite: str, arch: str) -> str:
    """`localhost/python-base:<suite>-<arch>`: Debian's python3 with a venv on PATH."""
    ref = f"localhost/python-base:{suite}-{arch}"
    if eng.has_image(ref):
        return ref
    debian = debian_base(eng, suite, arch)
    build(
        eng,
        ROOT / "scripts" / "images" / "python-base.Dockerfile",
        ROOT / "scripts" / "images",
        tag=ref,
        arch=arch,
        build_args={"DEBIAN_IMAGE": debian},
        host_ca=False,  # the base's own ca-certificates package must set up its bundle
    )
    return ref


def python_image(eng: Engine, arch: str) -> str:
    """The registry's python image when here or pullable, else the local Debian one."""
    if eng.has_image(REGISTRY_PYTHON) or eng.pull(REGISTRY_PYTHON, arch):
        return REGISTRY_PYTHON
    log(f"{REGISTRY_PYTHON} cannot be pulled; using a local base made from Debian packages")
    return python_base(eng, "bookworm", arch)


def build(
    eng: Engine,
    dockerfile: Path,
    context: Path,
    *,
    tag: str,
    arch: str,
    build_args: dict[str, str],
    host_ca: bool = True,
) -> None:
    """One single-arch build. With podman the host's CA bundle is mounted read-only so pip can
    reach PyPI through a TLS-inspecting proxy whose CA only the host trusts."""
    args = ["build", "--quiet", "--platform", f"linux/{arch}", "-f", str(dockerfile), "-t", tag]
    for name, value in build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    if eng.name == "podman":
        # docker's image format, as Docker builds it: OCI images drop HEALTHCHECK
        args += ["--network", "host", "--format", "docker"]
        if host_ca and HOST_CA_BUNDLE.is_file():
            args += ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    started = time.monotonic()
    eng.run(*args, str(context), capture=True)
    log(f"built {tag} ({arch}) in {time.monotonic() - started:.0f} s")


def deltaglider_image(eng: Engine, tag: str, platforms: Sequence[str]) -> str:
    """The project image for each platform; several platforms make a manifest list."""
    arches = [p.removeprefix("linux/") for p in platforms] or [native_arch()]
    build_args = {"VERSION": version()}
    if eng.name == "docker" and len(arches) > 1:
        args = ["buildx", "build", "--platform", ",".join(f"linux/{a}" for a in arches)]
        for name, value in build_args.items():
            args += ["--build-arg", f"{name}={value}"]
        eng.run(*args, "-t", tag, str(ROOT))
        return tag
    if len(arches) == 1:
        build_args["BASE_IMAGE"] = python_image(eng, arches[0])
        build(eng, ROOT / "Dockerfile", ROOT, tag=tag, arch=arches[0], build_args=build_args)
        return tag
    eng.run("manifest", "rm", tag, check=False, capture=True)
    eng.run("manifest", "create", tag, capture=True)
    for arch in arches:
        per_arch = f"{tag}-{arch}"
        build_args["BASE_IMAGE"] = python_image(eng, arch)
        build(eng, ROOT / "Dockerfile", ROOT, tag=per_arch, arch=arch, build_args=build_args)
        image_id = eng.run("image", "inspect", "--format", "{{.Id}}", per_arch, capture=True)
        eng.run("manifest", "add", tag, f"containers-storage:{image_id.strip()}", capture=True)
    return tag


def test_server_images(eng: Engine) -> list[str]:
    """The S3 servers the e2e suite starts through testcontainers, built from PyPI packages."""
    arch = native_arch()
    images = ROOT / "e2e" / "images"
    if not eng.has_image(SEAWEEDFS_IMAGE):
        build(
            eng,
            images / "seaweedfs.Dockerfile",
            images,
            tag=SEAWEEDFS_IMAGE,
            arch=arch,
            build_args={"BASE_IMAGE": python_image(eng, arch)},
        )
    if not eng.has_image(LOCALSTACK_IMAGE):
        # LocalStack needs Python >= 3.12; Debian trixie has 3.13.
        base = (
            "docker.io/library/python:3.13-slim"
            if eng.pull("docker.io/library/python:3.13-slim", arch)
            else python_base(eng, "trixie", arch)
        )
        build(
            eng,
            images / "localstack.Dockerfile",
            images,
            tag=LOCALSTACK_IMAGE,
            arch=arch,
            build_args={"BASE_IMAGE": base},
        )
    return [SEAWEEDFS_IMAGE, LOCALSTACK_IMAGE]


@contextlib.contextmanager
def docker_api(eng: Engine, folder: Path) -> Iterator[str]:
    """A Docker-API endpoint for the `docker` package and testcontainers: Docker's own, or a
    `podman system service` on a private socket for the duration of the block."""
    if eng.name == "docker":
        yield os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return
    socket_path = folder / "podman.sock"
    url = f"unix://{socket_path}"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", url],
        env=eng.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_api(url, service)
        yield url
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


def wait_for_api(url: str, service: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import docker

    deadline = time.monotonic() + timeout
    while True:
        if service.poll() is not None:
            raise RuntimeError(f"podman system service exited with status {service.returncode}")
        try:
            docker.DockerClient(base_url=url, timeout=5).ping()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("engine", help="print the engine in use (setting podman up if needed)")
    image = commands.add_parser("deltaglider", help="build the deltaglider image")
    image.add_argument("--tag", default=default_tag())
    image.add_argument("--platforms", default="", help="e.g. linux/amd64,linux/arm64")
    commands.add_parser("test-servers", help="build the S3 server images the e2e suite starts")
    commands.add_parser("all", help="the deltaglider image and the test server images")
    base = commands.add_parser("base", help="build the local Debian+Python base image")
    base.add_argument("suite", nargs="?", default="bookworm")
    base.add_argument("--arch", default=native_arch())
    args = parser.parse_args(argv)

    if args.command == "all":
        # Released between the two, so a test waiting for the first need not wait for both.
        started = time.monotonic()
        with build_lock():
            eng = engine()
            print(deltaglider_image(eng, default_tag(), []))
        with build_lock():
            print("\n".join(test_server_images(eng)))
        log(f"all images ready in {time.monotonic() - started:.0f} s")
        return 0
    with build_lock():
        return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    eng = engine()
    if args.command == "engine":
        print(eng.name)
    elif args.command == "deltaglider":
        platforms = [p for p in args.platforms.split(",") if p]
        tag = deltaglider_image(eng, args.tag, platforms)
        if tag == default_tag() and len(platforms) <= 1:
            eng.run("tag", tag, f"{IMAGE}:latest")  # so `docker run beshultd/deltaglider` finds it
        print(tag)
        if len(platforms) <= 1:
            size = eng.run("image", "inspect", "--format", "{{.Size}}", tag, capture=True)
            log(f"{tag}: {int(size.strip()) / 1e6:.0f} MB")
    elif args.command == "test-servers":
        print("\n".join(test_server_images(eng)))
    else:
        print(python_base(eng, args.suite, args.arch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
