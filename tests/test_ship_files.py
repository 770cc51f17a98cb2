"""What ships besides the package: Dockerfiles (hadolint), the GitHub Action and workflows
(GitHub's JSON schemas through check-jsonschema), and the action's wiring to its script."""

from __future__ import annotations

import re
import subprocess
import sys
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


def test_the_action_installs_the_version_this_tree_is() -> None:
    action = YAML(typ="safe").load((ROOT / "action.yml").read_text())
    project = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', project, re.MULTILINE)
    assert version is not None
    assert action["inputs"]["version"]["default"] == version.group(1)
