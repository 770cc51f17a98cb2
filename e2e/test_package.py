"""What users install, used as they use it: the sdist and wheel `python -m build` makes (the
wheel built from the sdist, so a file missing from the sdist fails here), installed into a
fresh venv outside the source tree and run against a local S3; and the GitHub Action's own
install and run steps from action.yml, run as a runner runs them (GITHUB_ACTION_PATH set).

moto only: what is checked is the package, not the server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import local_s3
from conftest import ROOT
from ruamel.yaml import YAML
from test_github_action import parse_github_output

SERVERS = ["moto"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def checkout(tmp_path: Path) -> Path:
    """The tracked tree, as a clone or the action's checkout holds it (no venv, no caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    target = tmp_path / "checkout"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def fresh_venv(where: Path) -> Path:
    """A venv with nothing of this tree or its venv in it; returns its bin directory."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    return where / "bin"


def clean_env(server: local_s3.LocalS3, path_first: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(server.env())
    env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    return env


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done


def test_the_built_wheel_installs_clean_and_stores_and_restores_a_series(
    tmp_path: Path, s3_server: local_s3.LocalS3, bucket: str, wheel_series: list[Path]
) -> None:
    source = checkout(tmp_path)
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert "deprecat" not in built.stdout.lower() + built.stderr.lower()  # no setuptools warnings
    wheel = dist / f"deltaglider-{VERSION}-py3-none-any.whl"
    sdist = dist / f"deltaglider-{VERSION}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"deltaglider/py.typed", "deltaglider/cli/app.py"} <= names
    assert f"deltaglider-{VERSION}.dist-info/licenses/LICENSE" in names
    with tarfile.open(sdist) as archive:
        members = {
            Path(m).relative_to(f"deltaglider-{VERSION}").as_posix() for m in archive.getnames()[1:]
        }
    assert {"LICENSE", "README.md", "pyproject.toml", "deltaglider/py.typed"} <= members

    bin_dir = fresh_venv(tmp_path / "venv")
    env = clean_env(s3_server, bin_dir)
    elsewhere = tmp_path / "elsewhere"  # not the source tree: nothing is imported from it
    elsewhere.mkdir()
    run([str(bin_dir / "pip"), "install", "--quiet", str(wheel)], elsewhere, env)
    shown = run([str(bin_dir / "deltaglider"), "--version"], elsewhere, env)
    assert shown.stdout.strip() == f"deltaglider, version {VERSION}"
    for number, artifact in enumerate(wheel_series[:2]):
        (elsewhere / artifact.name).write_bytes(artifact.read_bytes())
        stored = run(
            [
                str(bin_dir / "deltaglider"),
                "cp",
                artifact.name,
                f"s3://{bucket}/{number}/",
                "--json",
            ],
            elsewhere,
            env,
        )
        assert json.loads(stored.stdout)["stored_as"] == ("delta" if number else "reference"), (
            stored.stdout
        )
    back = elsewhere / "back.whl"
    run(
        [str(bin_dir / "deltaglider"), "cp", f"s3://{bucket}/1/{wheel_series[1].name}", str(back)],
        elsewhere,
        env,
    )
    assert back.read_bytes() == wheel_series[1].read_bytes()
    imported = run(
        [
            str(bin_dir / "python"),
            "-c",
            "import deltaglider; print(deltaglider.__file__, deltaglider.__version__)",
        ],
        elsewhere,
        env,
    )
    location, version = imported.stdout.split()
    assert Path(location).is_relative_to(tmp_path / "venv") and version == VERSION


def test_the_actions_install_and_run_steps_use_its_own_checkout(
    tmp_path: Path, s3_server: local_s3.LocalS3, bucket: str, wheel_series: list[Path]
) -> None:
    """`uses: owner/deltaglider@ref` puts the action's checkout at GITHUB_ACTION_PATH; its
    install step must install that code (not a PyPI release that may not exist yet)."""
    action = YAML(typ="safe").load((ROOT / "action.yml").read_text())
    steps = {step.get("name", ""): step for step in action["runs"]["steps"]}
    install = next(step for name, step in steps.items() if name.startswith("Install deltaglider"))
    run_step = next(step for step in steps.values() if step.get("id") == "run")
    assert action["inputs"]["version"]["default"] == ""

    action_path = checkout(tmp_path)
    bin_dir = fresh_venv(tmp_path / "runner-python")  # setup-python puts its python first
    workspace = tmp_path / "workspace"
    (workspace / "dist").mkdir(parents=True)
    (workspace / "dist" / wheel_series[0].name).write_bytes(wheel_series[0].read_bytes())
    env = {**clean_env(s3_server, bin_dir), "GITHUB_ACTION_PATH": str(action_path)}
    env["INPUT_VERSION"] = ""
    installed = run(["bash", "-e", "-c", install["run"]], workspace, env)
    assert f"installing {action_path}" in installed.stdout
    assert installed.stdout.strip().endswith(f"deltaglider, version {VERSION}")

    output, summary = tmp_path / "github_output", tmp_path / "step_summary.md"
    env.update(GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
    inputs = {
        "command": "cp",
        "source": f"dist/{wheel_series[0].name}",
        "destination": f"s3://{bucket}/1.0/",
    }
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    env.update({k: v for k, v in run_step["env"].items() if k not in env and "inputs." not in v})
    ran = run(["bash", "-e", "-c", run_step["run"]], workspace, env)
    assert (
        f"upload: dist/{wheel_series[0].name} to s3://{bucket}/1.0/{wheel_series[0].name} (reference:"
        in ran.stdout
    )
    outputs = parse_github_output(output.read_text())
    assert int(outputs["original-bytes"]) == wheel_series[0].stat().st_size
    assert "**total (1 file)**" in summary.read_text()
