"""The GitHub Action's step script (scripts/github_action.py), run as action.yml runs it: inputs
as INPUT_* variables, fake $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY files, a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import local_s3
from conftest import ROOT
from helpers import stored_keys


def run_action(
    tmp_path: Path, server: local_s3.LocalS3, **inputs: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str], str]:
    output, summary = tmp_path / "github_output", tmp_path / "step_summary.md"
    output.write_text("")
    summary.write_text("")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "INPUT_ENDPOINT_URL": server.endpoint,
        **{f"INPUT_{name.upper()}": value for name, value in inputs.items()},
    }
    process = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "github_action.py")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return process, parse_github_output(output.read_text()), summary.read_text()


def parse_github_output(text: str) -> dict[str, str]:
    """The runner's reading of $GITHUB_OUTPUT: name=value lines and name<<DELIMITER blocks."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block = []
            for body in lines:
                if body == delimiter:
                    break
                block.append(body)
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


def test_sync_upload_reports_outputs_and_a_summary_table(
    tmp_path: Path, s3_server: local_s3.LocalS3, bucket: str, raw: object, wheel_series: list[Path]
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    for wheel in wheel_series[:2]:
        (dist / wheel.name).write_bytes(wheel.read_bytes())
    first, _, _ = run_action(
        tmp_path, s3_server, command="sync", source=str(dist), destination=f"s3://{bucket}/1.0/"
    )
    assert first.returncode == 0, first.stderr

    for wheel in wheel_series[:2]:
        (dist / wheel.name).unlink()
    for wheel in wheel_series[2:4]:
        (dist / wheel.name).write_bytes(wheel.read_bytes())
    process, outputs, table = run_action(
        tmp_path,
        s3_server,
        command="sync",
        source=str(dist),
        destination=f"s3://{bucket}/1.1/",
        args="--exclude '*.txt'",
        **{"max_ratio": "0.6"},
    )
    assert process.returncode == 0, process.stderr
    original = sum(w.stat().st_size for w in wheel_series[2:4])
    stored_now = {k: v for k, v in stored_keys(raw, bucket, "1.1/").items()}
    assert int(outputs["original-bytes"]) == original
    assert int(outputs["stored-bytes"]) == sum(stored_now.values())
    assert int(outputs["stored-bytes"]) < original // 5  # deltas against the series' reference
    assert float(outputs["savings-ratio"]) == round(1 - int(outputs["stored-bytes"]) / original, 4)
    summary = json.loads(outputs["summary-json"])
    assert summary["files"] == 2 and summary["failed"] == 0
    assert {Path(t["destination"]).name for t in summary["transfers"]} == {
        w.name for w in wheel_series[2:4]
    }
    assert "| file | stored as | size | stored | saved |" in table
    assert "**total (2 files)**" in table
    for wheel in wheel_series[2:4]:
        assert f"upload: {dist / wheel.name} to s3://{bucket}/1.1/{wheel.name}" in process.stdout
    assert "deltaglider-test-secret" not in process.stdout + process.stderr + table


def test_a_failing_command_fails_the_step_with_its_status(
    tmp_path: Path, s3_server: local_s3.LocalS3, bucket: str
) -> None:
    process, outputs, table = run_action(
        tmp_path,
        s3_server,
        command="cp",
        source=f"s3://{bucket}/missing.zip",
        destination=str(tmp_path / "got.zip"),
    )
    assert process.returncode == 1
    assert outputs["original-bytes"] == "0"
    assert json.loads(outputs["summary-json"])["failed"] == 1
    assert "1 failed" in table

    bad, _, _ = run_action(tmp_path, s3_server, command="cp", source="only-one")
    assert bad.returncode == 2


def test_unbalanced_quotes_in_args_are_a_one_line_error(
    tmp_path: Path, s3_server: local_s3.LocalS3
) -> None:
    process, _, _ = run_action(tmp_path, s3_server, command="ls", args="--exclude 'unclosed")
    assert process.returncode == 1
    assert process.stderr.strip() == "deltaglider action: error: args: No closing quotation"
