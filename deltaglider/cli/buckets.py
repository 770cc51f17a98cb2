"""Bucket commands: mb, rb, config (the bucket's deltaglider settings), presign, purge, and
the `aws s3api` ACL calls. Each is flags → one engine call → print.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deltaglider.cli.app import AppContext, main, reports_errors
from deltaglider.cli.output import EXIT_FAILED, echo, printer, without_locations
from deltaglider.errors import DeltagliderError, UsageError
from deltaglider.events import Subscriber
from deltaglider.metadata import TMP_PREFIX, is_internal_key
from deltaglider.models import DeleteResult, ReferenceMode
from deltaglider.urls import S3Url

if TYPE_CHECKING:  # imported where used: --version and --help start without botocore
    from deltaglider.maintenance import PurgeResult


@main.command()
@click.argument("path")
@click.pass_obj
@reports_errors
def mb(app: AppContext, path: str) -> None:
    """Make a bucket.

    \b
      deltaglider mb s3://releases
    """
    url = S3Url.parse(path)
    try:
        app.engine().create_bucket(url.bucket)
    except DeltagliderError as error:
        reason = without_locations(str(error), S3Url(url.bucket))
        echo(f"make_bucket failed: s3://{url.bucket} {reason}", err=True)
        sys.exit(EXIT_FAILED)
    echo(f"make_bucket: {url.bucket}")


class _DeletedLines(Subscriber):
    """`delete:` lines for the user's own objects (references and .deltaglider/ go silently)."""

    def on_done(self, **kwargs: Any) -> None:
        result: DeleteResult = kwargs["result"]
        if not is_internal_key(result.key):
            echo(f"delete: s3://{result.bucket}/{result.key}")


@main.command()
@click.argument("path")
@click.option("--force", is_flag=True, help="Delete every object first, then the bucket.")
@click.pass_obj
@reports_errors
def rb(app: AppContext, path: str, force: bool) -> None:
    """Remove a bucket (it must be empty unless --force).

    \b
      deltaglider rb s3://old-releases --force
    """
    url = S3Url.parse(path)
    engine = app.engine()
    try:
        if force:
            engine.delete_recursive(url.bucket, "", _DeletedLines())
        engine.delete_bucket(url.bucket)
    except DeltagliderError as error:
        reason = without_locations(str(error), S3Url(url.bucket))
        echo(f"remove_bucket failed: s3://{url.bucket} {reason}", err=True)
        sys.exit(EXIT_FAILED)
    echo(f"remove_bucket: {url.bucket}")


@main.command()
@click.argument("path")
@click.option(
    "--set",
    "changes",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a setting: references=shared|folder|chain, codec=xdelta3|zstd|default, "
    "conditional_writes=true|false|probe; may be repeated.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.pass_obj
@reports_errors
def config(app: AppContext, path: str, changes: tuple[str, ...], as_json: bool) -> None:
    """Show or change the bucket's deltaglider settings (.deltaglider/config.json).

    references: where new references go. shared (the default) keeps one reference per file
    series under .deltaglider/refs/ and encodes across folders, so one folder per version
    saves as much as one folder for all; folder keeps each folder's own reference.bin, which
    deltaglider 6.x and the Rust proxy also read. chain stores each version of a series as a
    delta of an earlier one (a read decodes at most log2(n)+1 of them), about a quarter of what
    shared stores on long series; deltaglider 6.x and the Rust proxy cannot read it.

    codec: what every writer of the bucket encodes new deltas with, unless its --codec or
    DG_CODEC says otherwise. zstd encodes several times faster; deltaglider 6.x cannot read
    it. default (the same as unset) is xdelta3.

    conditional_writes: whether the server honours If-None-Match (folder references only);
    the first folder-mode upload probes it and records the answer; probe forgets it.

    Existing objects are never rewritten.

    \b
      deltaglider config s3://releases
      deltaglider config s3://releases --set references=folder
      deltaglider config s3://releases --set references=chain
      deltaglider config s3://releases --set codec=zstd
    """
    url = S3Url.parse_loose(path)
    current = app.engine().change_bucket_settings(url.bucket, list(changes))
    if as_json:
        document = {
            "bucket": url.bucket,
            "references": current.references,
            "codec": current.codec,
            "conditional_writes": current.conditional_writes,
        }
        echo(json.dumps(document))
        return
    probed = current.conditional_writes
    chained = current.references is ReferenceMode.CHAIN
    note = " (delta chains: deltaglider 6.x and the Rust proxy cannot read them)" if chained else ""
    echo(f"references = {current.references}{note}")
    echo(f"codec = {current.codec or 'xdelta3 (default)'}")
    echo(f"conditional_writes = {'not probed yet' if probed is None else str(probed).lower()}")


@main.command()
@click.argument("path")
@click.option(
    "--expires-in",
    type=click.IntRange(1, 604800),
    default=3600,
    show_default=True,
    help="Seconds the URL stays valid (at most 7 days).",
)
@click.pass_obj
@reports_errors
def presign(app: AppContext, path: str, expires_in: int) -> None:
    """A presigned GET URL for a file, as `aws s3 presign`; for a delta, the URL serves the
    whole file (rebuilt once into .deltaglider/tmp/, removed by `purge` after it expires).

    \b
      deltaglider presign s3://releases/1.2.3/app.zip --expires-in 600
    """
    url = S3Url.parse(path)
    if not url.key or url.key.endswith("/"):
        raise UsageError(f"{path}: presign needs a file, not a bucket or folder")
    params = {"Bucket": url.bucket, "Key": url.key}
    echo(app.engine().presigned_url("get_object", params, expires_in))


@main.command()
@click.argument("path")
@click.option("--dryrun", "--dry-run", is_flag=True, help="Say which copies would go.")
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
@click.pass_obj
@reports_errors
def purge(app: AppContext, path: str, dryrun: bool, as_json: bool) -> None:
    """Delete the whole copies that presigned URLs of deltas served, once those URLs have
    expired (`cleanup` does this too). BUCKET may be `name` or `s3://name`.

    \b
      deltaglider purge s3://releases
      deltaglider purge releases --dryrun --json
    """
    url = S3Url.parse_loose(path)
    result = app.engine().purge_rehydrations(url.bucket, dryrun=dryrun)
    mark = "(dryrun) " if dryrun else ""
    record = purge_record(result)
    lines = [f"{mark}delete: s3://{url.bucket}/{key}" for key in result.deleted]
    would = "would be deleted" if dryrun else "deleted"
    lines.append(f"purge: {len(result.deleted)} expired copies {would}, {result.kept} kept")
    printer(as_json).show(record, "\n".join(lines))


def purge_record(result: PurgeResult) -> dict[str, Any]:
    """`purge --json`: deltaglider 6.x's keys (a dry run's, or a real run's)."""
    record: dict[str, Any] = {"bucket": result.bucket, "prefix": TMP_PREFIX}
    if result.dryrun:
        files = [{"key": key, "size": size} for key, size in result.expired]
        return {
            **record,
            "dry_run": True,
            "would_delete_count": len(result.expired),
            "total_size_to_free": result.freed_bytes,
            "expired_files": files,
            "kept": result.kept,
        }
    return {
        **record,
        "deleted_count": len(result.expired),
        "expired_count": len(result.expired),
        "error_count": 0,
        "total_size_freed": result.freed_bytes,
        "duration_seconds": round(result.seconds, 3),
        "errors": [],
        "kept": result.kept,
    }


@main.command("put-bucket-acl")
@click.argument("bucket_argument", metavar="[BUCKET]", required=False)
@click.option("--bucket", help="The bucket (or give it first: name or s3://name).")
@click.option(
    "--acl",
    type=click.Choice(["private", "public-read", "public-read-write", "authenticated-read"]),
    help="A canned ACL.",
)
@click.option("--access-control-policy", help="The policy as JSON, or file://PATH to read it from.")
@click.option("--grant-full-control", help="Grantees, as aws s3api takes them (id=…,uri=…).")
@click.option("--grant-read", help="Grantees allowed to list the bucket.")
@click.option("--grant-read-acp", help="Grantees allowed to read the ACL.")
@click.option("--grant-write", help="Grantees allowed to write objects.")
@click.option("--grant-write-acp", help="Grantees allowed to change the ACL.")
@click.option("--expected-bucket-owner", help="Fail unless this account owns the bucket.")
@click.pass_obj
@reports_errors
def put_bucket_acl(
    app: AppContext,
    /,
    bucket_argument: str | None,
    bucket: str | None,
    acl: str | None,
    access_control_policy: str | None,
    expected_bucket_owner: str | None,
    **grants: str | None,
) -> None:
    """Set a bucket's ACL, with `aws s3api put-bucket-acl`'s options (passed through).

    \b
      deltaglider put-bucket-acl --bucket releases --acl private
      deltaglider put-bucket-acl releases --acl private
    """
    target = _one_bucket(bucket_argument, bucket)
    request: dict[str, Any] = {}
    if acl:
        request["ACL"] = acl
    if access_control_policy:
        request["AccessControlPolicy"] = _json_argument(
            "--access-control-policy", access_control_policy
        )
    for name, value in grants.items():
        if value:
            request["".join(part.capitalize() for part in name.split("_"))] = value
    if expected_bucket_owner:
        request["ExpectedBucketOwner"] = expected_bucket_owner
    if not request.keys() - {"ExpectedBucketOwner"}:
        raise UsageError(
            "put-bucket-acl needs --acl, --access-control-policy or a --grant-* option"
        )
    app.engine().put_bucket_acl(target, request)


@main.command("get-bucket-acl")
@click.argument("bucket_argument", metavar="[BUCKET]", required=False)
@click.option("--bucket", help="The bucket (or give it first: name or s3://name).")
@click.pass_obj
@reports_errors
def get_bucket_acl(app: AppContext, bucket_argument: str | None, bucket: str | None) -> None:
    """Print a bucket's ACL (Owner and Grants) as JSON, as `aws s3api get-bucket-acl`.

    \b
      deltaglider get-bucket-acl --bucket releases
      deltaglider get-bucket-acl s3://releases
    """
    name = _one_bucket(bucket_argument, bucket)
    echo(json.dumps(app.engine().bucket_acl(name), indent=4))


def _one_bucket(argument: str | None, option: str | None) -> str:
    """The bucket of an ACL command: `--bucket NAME` (aws s3api) or first (6.x)."""
    if (argument is None) == (option is None):
        raise UsageError("give the bucket once: --bucket NAME, or NAME (or s3://NAME) first")
    return S3Url.parse_loose(argument or option or "").bucket


def _json_argument(option: str, value: str) -> Any:
    text = value
    if value.startswith("file://"):
        try:
            text = Path(value.removeprefix("file://")).read_text()
        except OSError as error:
            raise UsageError(f"{option}: cannot read {value}: {error.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{option} is not valid JSON: {error.msg}") from None
