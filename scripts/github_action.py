"""The GitHub Action's step (action.yml): run one deltaglider command, report what it stored.

action.yml passes its inputs as environment variables (INPUT_COMMAND, INPUT_SOURCE,
INPUT_DESTINATION, INPUT_ARGS, INPUT_MAX_RATIO, INPUT_ENDPOINT_URL). This script runs
`deltaglider COMMAND [SOURCE] [DESTINATION] ARGS… --json`, echoes each transfer as
`aws s3` would print it, and writes:
- step outputs to $GITHUB_OUTPUT: original-bytes, stored-bytes, savings-ratio, summary-json;
- a Markdown table to $GITHUB_STEP_SUMMARY (one row per file and a total).
The command's exit status is the step's. Credentials come from the environment
(aws-actions/configure-aws-credentials) and are never printed.

Run it locally exactly as the action does:
    INPUT_COMMAND=cp INPUT_SOURCE=dist/app.zip INPUT_DESTINATION=s3://releases/1.2.3/ \\
    GITHUB_OUTPUT=/dev/stdout GITHUB_STEP_SUMMARY=/dev/stdout python scripts/github_action.py
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

JSON_COMMANDS = {"cp", "mv", "sync", "rm", "verify"}


@dataclass(frozen=True)
class Summary:
    command: str
    files: int
    failed: int
    original_bytes: int
    stored_bytes: int
    savings_ratio: float
    transfers: list[dict[str, Any]]


def command_name(env: Mapping[str, str]) -> str:
    return env.get("INPUT_COMMAND", "").strip() or "cp"


def command_line(env: Mapping[str, str]) -> list[str]:
    """The deltaglider arguments the inputs ask for (a bad input is a one-line error)."""
    command = command_name(env)
    args = [command]
    args += [
        value
        for name in ("INPUT_SOURCE", "INPUT_DESTINATION")
        if (value := env.get(name, "").strip())
    ]
    try:
        args += shlex.split(env.get("INPUT_ARGS", ""))
    except ValueError as error:
        raise SystemExit(f"deltaglider action: error: args: {error}") from None
    if ratio := env.get("INPUT_MAX_RATIO", "").strip():
        args += ["--max-ratio", ratio]
    if endpoint := env.get("INPUT_ENDPOINT_URL", "").strip():
        args = ["--endpoint-url", endpoint, *args]
    if command in JSON_COMMANDS and "--json" not in args:
        args.append("--json")
    return args


def summarize(command: str, records: Sequence[dict[str, Any]]) -> Summary:
    transfers = [r for r in records if "file_size" in r]
    original = sum(int(r["file_size"]) for r in transfers if r.get("ok"))
    stored = sum(int(r.get("stored_size") or 0) for r in transfers if r.get("ok"))
    uploads = any("stored_size" in r for r in transfers)
    ratio = round(1 - stored / original, 4) + 0.0 if uploads and original else 0.0  # never -0.0
    return Summary(
        command=command,
        files=len(transfers),
        failed=sum(1 for r in records if not r.get("ok", True)),
        original_bytes=original,
        stored_bytes=stored,
        savings_ratio=ratio,
        transfers=list(records),
    )


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def markdown(summary: Summary) -> str:
    lines = [
        f"### deltaglider {summary.command}",
        "",
        "| file | stored as | size | stored | saved |",
        "|---|---|---:|---:|---:|",
    ]
    for record in summary.transfers:
        if "file_size" not in record:
            continue
        size = int(record["file_size"])
        stored = record.get("stored_size")
        saved = f"{1 - int(stored) / size:.1%}" if stored is not None and size else ""
        name = record.get("destination") or record.get("source") or ""
        kind = record.get("stored_as") or ("failed" if not record.get("ok") else "")
        stored_text = human(int(stored)) if stored is not None else ""
        lines.append(f"| `{name}` | {kind} | {human(size)} | {stored_text} | {saved} |")
    total_saved = f"{summary.savings_ratio:.1%}" if summary.stored_bytes else ""
    stored_total = human(summary.stored_bytes) if summary.stored_bytes else ""
    files = f"{summary.files} file" + ("" if summary.files == 1 else "s")
    lines.append(
        f"| **total ({files})** | | {human(summary.original_bytes)} | "
        f"{stored_total} | {total_saved} |"
    )
    if summary.failed:
        lines += ["", f"{summary.failed} failed; see the step's log."]
    return "\n".join(lines) + "\n"


def write_outputs(path: str, summary: Summary) -> None:
    document = json.dumps(asdict(summary), separators=(",", ":"))
    delimiter = f"deltaglider_{uuid.uuid4().hex}"
    with Path(path).open("a", encoding="utf-8") as out:
        out.write(f"original-bytes={summary.original_bytes}\n")
        out.write(f"stored-bytes={summary.stored_bytes}\n")
        out.write(f"savings-ratio={summary.savings_ratio}\n")
        out.write(f"summary-json<<{delimiter}\n{document}\n{delimiter}\n")


def aws_line(record: dict[str, Any]) -> str:
    if not record.get("ok", True):
        return f"{record.get('action', 'transfer')} failed: {record.get('source')} {record.get('error')}"
    destination = f" to {record['destination']}" if record.get("destination") else ""
    return f"{record.get('action')}: {record.get('source')}{destination}{how_stored(record)}"


def how_stored(record: dict[str, Any]) -> str:
    """How an upload was stored, as the CLI's own line says it: ` (delta: X stored for Y)`."""
    kind, stored = record.get("stored_as"), record.get("stored_size")
    if kind == "unchanged":
        return " (unchanged: identical file already stored)"
    if stored is None or kind is None:
        return ""
    note = f", {record['note']}" if record.get("note") else ""
    return f" ({kind}: {human(int(stored))} stored for {human(int(record['file_size']))}{note})"


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    executable = shutil.which("deltaglider", path=env.get("PATH"))
    if executable is None:
        raise SystemExit("deltaglider action: error: deltaglider is not installed on this runner")
    process = subprocess.run(
        [executable, *command_line(env)], stdout=subprocess.PIPE, text=True, check=False
    )
    records: list[dict[str, Any]] = []
    for line in process.stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            print(line)
            continue
        if isinstance(record, dict):
            records.append(record)
            print(aws_line(record))
        else:
            print(line)
    summary = summarize(command_name(env), records)
    if output := env.get("GITHUB_OUTPUT"):
        write_outputs(output, summary)
    if step_summary := env.get("GITHUB_STEP_SUMMARY"):
        with Path(step_summary).open("a", encoding="utf-8") as out:
            out.write(markdown(summary))
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
