"""What ships besides the package: Dockerfiles (hadolint), the GitHub Action and workflows
(GitHub's JSON schemas through check-jsonschema), and the action's wiring to its script."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCKERFILES = [
    ROOT / "Dockerfile",
    ROOT / "scripts" / "images" / "python-base.Dockerfile",
    *sorted((ROOT / "e2e" / "images").glob("*.Dockerfile")),
]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def test_dockerfiles_are_hadolint_clean_at_warning() -> None:
    linted = run(str(BIN / "hadolint"), "--failure-threshold", "warning", *map(str, DOCKERFILES))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_every_hadolint_ignore_says_why() -> None:
    for dockerfile in DOCKERFILES:
        lines = dockerfile.read_text().splitlines()
        for number, line in enumerate(lines):
            if "hadolint ignore" in line:
                assert (
                    number > 0
                    and lines[number - 1].startswith("#")
                    and "hadolint" not in lines[number - 1]
                ), f"{dockerfile.name}:{number + 1}: an ignore needs a comment above it saying why"


def test_action_and_workflows_match_githubs_schemas() -> None:
    action = run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.github-actions",
        str(ROOT / "action.yml"),
    )
    assert action.returncode == 0, action.stdout + action.stderr
    workflows = [
        *sorted((ROOT / ".github" / "workflows").glob("*.yml")),
        ROOT / "examples" / "release-upload.yml",
        ROOT / "examples" / "verify-sharded.yml",
    ]
    checked = run(
        str(BIN / "check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        *map(str, workflows),
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_action_passes_every_input_to_its_script() -> None:
    action = YAML(typ="safe").load((ROOT / "action.yml").read_text())
    script = (ROOT / "scripts" / "github_action.py").read_text()
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "run")
    assert "scripts/github_action.py" in step["run"]
    for name in ("command", "source", "destination", "args", "max-ratio", "endpoint-url"):
        variable = f"INPUT_{name.upper().replace('-', '_')}"
        assert step["env"][variable] == f"${{{{ inputs.{name} }}}}"
        assert variable in script
    for output in ("original-bytes", "stored-bytes", "savings-ratio", "summary-json"):
        assert action["outputs"][output]["value"] == f"${{{{ steps.run.outputs.{output} }}}}"
        assert re.search(rf"{output}(=|<<)", script), output


def test_one_version_in_one_place() -> None:
    """pyproject.toml's version is the only one written down: the package reports it, the
    image's OCI label gets it (scripts/images.py's build argument), the Action installs its
    own checkout unless told a version, and both publishing workflows refuse a tag that is not
    it."""
    import deltaglider

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert deltaglider.__version__ == version
    shown = run(str(BIN / "deltaglider"), "--version")
    assert shown.stdout.strip() == f"deltaglider, version {version}"
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import images
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert images.version() == version and images.default_tag().endswith(f":{version}")
    assert 'org.opencontainers.image.version="${VERSION}"' in (ROOT / "Dockerfile").read_text()
    action = YAML(typ="safe").load((ROOT / "action.yml").read_text())
    assert action["inputs"]["version"]["default"] == ""
    for workflow in ("publish-image.yml", "release.yml"):
        text = (ROOT / ".github" / "workflows" / workflow).read_text()
        assert "scripts/release.py check-tag" in text, workflow
    for literal in re.findall(
        r"\b7\.\d+\.\d+\b", (ROOT / "deltaglider" / "__init__.py").read_text()
    ):
        raise AssertionError(f"a version written in the package: {literal}")


def test_local_s3_prints_usage_for_help_and_refuses_an_unknown_server() -> None:
    script = str(ROOT / "scripts" / "local_s3.py")
    helped = run(sys.executable, script, "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: local_s3.py")
    typo = run(sys.executable, script, "seaweed")
    assert typo.returncode == 2 and "invalid choice: 'seaweed'" in typo.stderr


def test_the_kubernetes_example_matches_the_job_schema() -> None:
    checked = run(
        str(BIN / "kubernetes-validate"), "--strict", str(ROOT / "examples" / "verify-job.yaml")
    )
    assert checked.returncode == 0 and "passed" in checked.stdout, checked.stdout + checked.stderr
