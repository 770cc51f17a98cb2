"""The boto3-shaped client on real servers.

The stateful test drives put/get/head/delete/list/copy through a client and checks every step
against a plain dict. It runs against `deltaglider.create_client()` and, unchanged, against
plain `boto3.client("s3")`, so any divergence from boto3's shapes, error codes and listing
semantics shows up as a failure of one and not the other.
"""

from __future__ import annotations

import hashlib
import random
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from local_s3 import REGION, LocalS3

import deltaglider
from deltaglider.models import StoredAs

# These tests pin the folder layout of FORMAT "Objects"; e2e/test_layouts.py runs the same
# operations with shared references.
REFERENCES = "folder"
CONTAINERS = True  # also against the testcontainers servers (conftest)

# Names chosen to hit the hard cases: `a.zip` is stored as `a.zip.delta`, which sorts after
# `a.zip-2` although `a.zip` sorts before it; nested folders; non-ASCII; direct and delta kinds.
KEYS = ["a.zip", "a.zip-2", "a.zip.bak", "b/c.whl", "b/d.txt", "b/e/f.jar", "é/ü.zip", "top.jar"]
BASE = random.Random(42).randbytes(24_000)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["edit", "edit", "random", "empty"]))
    if kind == "empty":
        return b""
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=3000))
    position = draw(st.integers(0, len(BASE)))
    return BASE[:position] + draw(st.binary(min_size=1, max_size=40)) + BASE[position + 40 :]


def make_boto3(server: LocalS3) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=REGION,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def make_deltaglider(server: LocalS3) -> Any:
    return deltaglider.create_client(endpoint_url=server.endpoint, region_name=REGION)


def expected_listing(model: dict[str, Any], prefix: str, delimiter: str) -> list[str]:
    """Keys and common prefixes as S3 lists them, in order."""
    found = set()
    for key in model:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            found.add(prefix + rest.split(delimiter)[0] + delimiter)
        else:
            found.add(key)
    return sorted(found)


@pytest.mark.parametrize("flavour", ["deltaglider", "boto3"])
def test_client_agrees_with_a_dict_model(s3_server: LocalS3, flavour: str) -> None:
    client = make_deltaglider(s3_server) if flavour == "deltaglider" else make_boto3(s3_server)
    # Plain boto3 on SeaweedFS shows server quirks that deltaglider's client hides: an empty
    # folder stays listed after its last object is deleted (as a common prefix, or as a
    # `folder/` entry on a later page), and CopyObject's ETag comes back unquoted. Only there
    # does the model tolerate them.
    quirks = flavour == "boto3" and s3_server.kind == "seaweedfs"
    # LocalStack 2026.3.0 loses a non-ASCII key from paginated ListObjectsV2 (with MaxKeys=1
    # over `a.zip`, `zz`, `é/ü.zip` the second page ends the listing without the third key; on
    # other pages its continuation token fails to decode): a server bug plain boto3 shows too,
    # so against it the model uses the ASCII names only.
    names = [key for key in KEYS if key.isascii()] if s3_server.kind == "localstack" else KEYS

    class ObjectStore(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.bucket = f"sm-{uuid.uuid4().hex[:12]}"
            client.create_bucket(Bucket=self.bucket)
            self.model: dict[str, tuple[bytes, dict[str, str]]] = {}

        @rule(
            key=st.sampled_from(names),
            body=bodies(),
            meta=st.sampled_from([{}, {"build": "42"}, {"owner": "ci", "stage": "rc"}]),
        )
        def put(self, key: str, body: bytes, meta: dict[str, str]) -> None:
            response = client.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=meta)
            assert response["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
            self.model[key] = (body, meta)

        @rule(key=st.sampled_from(names))
        def get(self, key: str) -> None:
            if key not in self.model:
                with pytest.raises(botocore.exceptions.ClientError) as raised:
                    client.get_object(Bucket=self.bucket, Key=key)
                assert raised.value.response["Error"]["Code"] == "NoSuchKey"
                return
            body, meta = self.model[key]
            response = client.get_object(Bucket=self.bucket, Key=key)
            with response["Body"] as stream:
                assert stream.read() == body
            assert response["ContentLength"] == len(body)
            assert response["Metadata"] == meta
            assert response["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

        @rule(key=st.sampled_from(names), start=st.integers(0, 30_000), length=st.integers(1, 500))
        def get_range(self, key: str, start: int, length: int) -> None:
            if key not in self.model or start >= len(self.model[key][0]):
                return
            body = self.model[key][0]
            end = start + length - 1
            response = client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")
            assert response["Body"].read() == body[start : end + 1]
            assert (
                response["ContentRange"] == f"bytes {start}-{min(end, len(body) - 1)}/{len(body)}"
            )

        @rule(key=st.sampled_from(names))
        def head(self, key: str) -> None:
            if key not in self.model:
                with pytest.raises(botocore.exceptions.ClientError) as raised:
                    client.head_object(Bucket=self.bucket, Key=key)
                assert raised.value.response["Error"]["Code"] == "404"
                return
            response = client.head_object(Bucket=self.bucket, Key=key)
            assert response["ContentLength"] == len(self.model[key][0])
            assert response["Metadata"] == self.model[key][1]

        @rule(key=st.sampled_from(names))
        def delete(self, key: str) -> None:
            response = client.delete_object(Bucket=self.bucket, Key=key)
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
            self.model.pop(key, None)

        @rule(source=st.sampled_from(names), destination=st.sampled_from(names))
        def copy(self, source: str, destination: str) -> None:
            if source not in self.model or source == destination:
                return
            response = client.copy_object(
                Bucket=self.bucket,
                Key=destination,
                CopySource={"Bucket": self.bucket, "Key": source},
            )
            body = self.model[source][0]
            etag = response["CopyObjectResult"]["ETag"]
            if quirks:
                etag = f'"{etag.strip(chr(34))}"'
            assert etag == f'"{hashlib.md5(body).hexdigest()}"'
            self.model[destination] = self.model[source]

        @rule(
            prefix=st.sampled_from(["", "b/", "a", "é/"]),
            delimiter=st.sampled_from(["", "/"]),
            page=st.sampled_from([1, 2, 3, 1000]),
        )
        def list_pages(self, prefix: str, delimiter: str, page: int) -> None:
            listed: list[str] = []
            sizes: dict[str, int] = {}
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": page}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            phantoms: set[str] = set()
            while True:
                response = client.list_objects_v2(**kwargs)
                entries = [c["Key"] for c in response.get("Contents", [])]
                phantoms.update(
                    c["Key"]
                    for c in response.get("Contents", [])
                    if c["Key"].endswith("/") and c["Size"] == 0
                )
                entries += [p["Prefix"] for p in response.get("CommonPrefixes", [])]
                assert response["KeyCount"] == len(entries) <= page
                listed.extend(sorted(entries))
                sizes.update(
                    {
                        c["Key"]: c["Size"]
                        for c in response.get("Contents", [])
                        if not (quirks and c["Key"].endswith("/"))
                        and not (c["Key"] in phantoms and c["Key"] not in self.model)
                    }
                )
                if not response["IsTruncated"]:
                    break
                kwargs["ContinuationToken"] = response["NextContinuationToken"]
            if quirks or (s3_server.kind == "seaweedfs" and flavour == "deltaglider"):
                # SeaweedFS may still list a just-emptied directory as a zero-byte `folder/`
                # object (seen once, on `é/`, in the container): no client can tell it from a
                # folder marker someone stored, so deltaglider shows it as S3 would show a marker
                listed = [
                    k
                    for k in listed
                    if not k.endswith("/")
                    or any(m.startswith(k) for m in self.model)
                    or (not quirks and k not in phantoms)
                ]
            assert listed == expected_listing(self.model, prefix, delimiter)
            for key, size in sizes.items():
                assert size == len(self.model[key][0])

        @invariant()
        def paginator_sees_everything(self) -> None:
            paginator = client.get_paginator("list_objects_v2")
            keys = [
                c["Key"]
                for page in paginator.paginate(Bucket=self.bucket, PaginationConfig={"PageSize": 3})
                for c in page.get("Contents", [])
                if not (quirks and c["Key"].endswith("/"))
            ]
            assert keys == sorted(self.model)

    run_state_machine_as_test(
        ObjectStore,
        settings=settings(
            max_examples=10,
            stateful_step_count=18,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_errors_are_client_errors_with_s3_codes(s3_server: LocalS3, bucket: str) -> None:
    client = make_deltaglider(s3_server)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.get_object(Bucket="no-such-bucket-dg", Key="x.zip")
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.get_object(Bucket=bucket, Key="x.zip", Range="bytes=0-1")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"
    client.put_object(Bucket=bucket, Key="x.zip", Body=b"0123456789")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.get_object(Bucket=bucket, Key="x.zip", Range="bytes=50-60")
    assert raised.value.response["Error"]["Code"] == "InvalidRange"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.put_object(Bucket=bucket, Key="x/reference.bin", Body=b"nope")
    assert raised.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(botocore.exceptions.ParamValidationError):
        client.put_object(Bucket=bucket, Key="y.zip", Body=b"1", ServerSideEncryption="AES256")


def test_transfer_methods_streaming_and_fallthrough(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    client = make_deltaglider(s3_server)
    seen: list[int] = []
    client.upload_file(str(wheel_series[0]), bucket, "t/a.whl", Callback=seen.append)
    with wheel_series[1].open("rb") as handle:
        client.upload_fileobj(
            handle,
            bucket,
            "t/b.whl",
            ExtraArgs={"Metadata": {"k": "v"}, "ContentType": "application/zip"},
        )
    assert seen == [wheel_series[0].stat().st_size]
    out = tmp_path / "b.whl"
    client.download_file(bucket, "t/b.whl", str(out))
    assert out.read_bytes() == wheel_series[1].read_bytes()
    with (tmp_path / "b2.whl").open("wb") as handle:
        client.download_fileobj(bucket, "t/b.whl", handle)
    assert (tmp_path / "b2.whl").read_bytes() == wheel_series[1].read_bytes()
    response = client.get_object(Bucket=bucket, Key="t/b.whl")
    assert response["ContentType"] == "application/zip" and response["Metadata"] == {"k": "v"}
    assert b"".join(response["Body"].iter_chunks(4096)) == wheel_series[1].read_bytes()
    head = client.head_object(Bucket=bucket, Key="t/b.whl")
    assert head["ContentLength"] == wheel_series[1].stat().st_size
    # the stored objects really are a reference and deltas
    raw = make_boto3(s3_server)
    keys = {o["Key"] for o in raw.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"t/reference.bin", "t/a.whl.delta", "t/b.whl.delta"}
    # methods deltaglider does not override are boto3's own
    assert bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Grants" in client.get_bucket_acl(Bucket=bucket)
    assert client.meta.service_model.service_name == "s3"
    deleted = client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "t/a.whl"}, {"Key": "t/b.whl"}]}
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["t/a.whl", "t/b.whl"]
    assert "Contents" not in raw.list_objects_v2(Bucket=bucket)  # reference went with them


def test_extras_upload_download_verify_estimate(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path], tmp_path: Path
) -> None:
    client = make_deltaglider(s3_server)
    first = client.upload(wheel_series[0], f"s3://{bucket}/x/")
    assert first.stored_as is StoredAs.REFERENCE
    guess = client.estimate(wheel_series[1], f"s3://{bucket}/x/")
    assert guess.stored_as is StoredAs.DELTA
    raw = make_boto3(s3_server)
    assert len(raw.list_objects_v2(Bucket=bucket)["Contents"]) == 2  # estimate stored nothing
    actual = client.upload(wheel_series[1], f"s3://{bucket}/x/")
    assert (actual.stored_as, actual.stored_size) == (guess.stored_as, guess.stored_size)
    assert actual.ratio < 0.1
    assert client.estimate(wheel_series[1], f"s3://{bucket}/x/").stored_as is StoredAs.UNCHANGED
    client.verify(f"s3://{bucket}/x/{wheel_series[1].name}")  # raises unless it reads back
    result = client.download(f"s3://{bucket}/x/{wheel_series[1].name}", tmp_path)
    assert (tmp_path / wheel_series[1].name).read_bytes() == wheel_series[1].read_bytes()
    assert result.verified


@pytest.mark.parametrize("codec", ["xdelta3", "zstd"])
def test_client_codec_setting_estimates_and_stores_with_that_codec(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path], codec: str
) -> None:
    client = deltaglider.create_client(
        endpoint_url=s3_server.endpoint, region_name=REGION, codec=codec
    )
    client.upload_file(str(wheel_series[0]), bucket, f"c/{wheel_series[0].name}")
    guess = client.estimate(wheel_series[1], f"s3://{bucket}/c/")
    client.upload_file(str(wheel_series[1]), bucket, f"c/{wheel_series[1].name}")
    raw = make_boto3(s3_server)
    head = raw.head_object(Bucket=bucket, Key=f"c/{wheel_series[1].name}.delta")
    assert (
        head["Metadata"]["dg-codec"] == {"xdelta3": "xdelta3-D", "zstd": "zstd-patch-from"}[codec]
    )
    assert head["ContentLength"] == guess.stored_size
    body = client.get_object(Bucket=bucket, Key=f"c/{wheel_series[1].name}")["Body"].read()
    assert body == wheel_series[1].read_bytes()
    with pytest.raises(deltaglider.UsageError, match="--codec must be one of xdelta3, zstd"):
        deltaglider.create_client(endpoint_url=s3_server.endpoint, codec="lz4")


def test_presigned_get_of_a_delta_serves_the_real_file(
    s3_server: LocalS3, bucket: str, wheel_series: list[Path]
) -> None:
    client = make_deltaglider(s3_server)
    client.upload(wheel_series[0], f"s3://{bucket}/p/")
    client.upload(wheel_series[1], f"s3://{bucket}/p/")
    client.put_object(Bucket=bucket, Key="p/notes.txt", Body=b"plain notes")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": f"p/{wheel_series[1].name}"}, ExpiresIn=600
    )
    assert "X-Amz-Signature" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == wheel_series[1].read_bytes()
        assert wheel_series[1].name in response.headers["Content-Disposition"]
    client.generate_presigned_url(  # rehydrated once, reused while still valid
        "get_object", Params={"Bucket": bucket, "Key": f"p/{wheel_series[1].name}"}, ExpiresIn=60
    )
    raw = make_boto3(s3_server)
    temps = raw.list_objects_v2(Bucket=bucket, Prefix=".deltaglider/tmp/")["Contents"]
    assert len(temps) == 1
    direct = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p/notes.txt"}
    )
    with urllib.request.urlopen(direct) as response:
        assert response.read() == b"plain notes"
    # purge: an expired rehydration goes, a valid one stays (times compared in UTC)
    client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": f"p/{wheel_series[0].name}"}, ExpiresIn=1
    )
    time.sleep(1.5)
    purged = client.purge_temp_files(bucket)
    assert (purged["Deleted"], purged["Kept"]) == (1, 1)
    listing = [e["Key"] for e in client.list_objects_v2(Bucket=bucket, Prefix="")["Contents"]]
    assert all(not k.startswith(".deltaglider/") for k in listing)


def test_listing_is_in_logical_order_across_pages(s3_server: LocalS3, bucket: str) -> None:
    """`app.zip` is stored as `app.zip.delta`, which S3 lists after `app.zip-1`…`app.zip-9`;
    the logical listing must still put `app.zip` first, on every page size."""
    client = make_deltaglider(s3_server)
    names = ["app.zip", *(f"app.zip-{i}" for i in range(1, 10)), "app.zip.bak", "app.zip0"]
    for index, name in enumerate(names):
        client.put_object(Bucket=bucket, Key=f"r/{name}", Body=BASE[: 20_000 + index])
    for page_size in (1, 2, 5, 1000):
        keys = [
            c["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix="r/", PaginationConfig={"PageSize": page_size}
            )
            for c in page.get("Contents", [])
        ]
        assert keys == sorted(f"r/{n}" for n in names), page_size
