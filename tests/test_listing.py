"""The logical view (FORMAT "The logical view") against a model, over random buckets and raw
page sizes 1-5: through the listing `ls`/`sync`/`rm` use, `deltaglider ls` itself, and the SDK's
`list_objects_v2` / paginator with small MaxKeys."""

from __future__ import annotations

import pytest
from botocore.exceptions import ParamValidationError
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from deltaglider.cli import AppContext, main
from deltaglider.client import DeltagliderClient
from deltaglider.config import Settings
from deltaglider.engine import Engine
from deltaglider.listing import logical_listing, unseen_bound

# Names chosen so that stripping `.delta` reorders keys (`a.zip` < `a.zip-3` < `a.zip.delta`),
# folders share a name with files (`a.zip/`), and internal objects sit everywhere.
SEGMENTS = ["a", "a.zip", "a.zip-3", "a.zip.delta", "a.zip0", "a-", "b.jar", "reference.bin"]
FOLDERS = ["a", "a.zip", "x", ".deltaglider"]
SHA = "0" * 64


@st.composite
def raw_keys(draw: st.DrawFn) -> list[str]:
    """Stored keys: one to three segments; any file may also exist as `.delta`."""
    keys = set()
    for _ in range(draw(st.integers(0, 14))):
        depth = draw(st.integers(0, 2))
        folders = [draw(st.sampled_from(FOLDERS)) for _ in range(depth)]
        name = draw(st.sampled_from(SEGMENTS))
        key = "/".join([*folders, name])
        keys.add(key)
        if draw(st.booleans()) and not key.endswith(".delta"):
            keys.add(key + ".delta")
    return sorted(keys)


def is_user_key(key: str) -> bool:
    return not key.startswith(".deltaglider/") and key.rsplit("/", 1)[-1] != "reference.bin"


def model(keys: list[str], prefix: str, delimiter: str, start_after: str) -> list[str]:
    """What a person sees: logical keys (files) and folders holding a user file, sorted."""
    shown: set[str] = set()
    for key in filter(is_user_key, keys):
        logical = key.removesuffix(".delta") if key.endswith(".delta") else key
        if not logical.rsplit("/", 1)[-1]:
            logical = key
        if not logical.startswith(prefix) or not is_user_key(logical):
            continue
        rest = logical[len(prefix) :]
        if delimiter and delimiter in rest:
            logical = prefix + rest[: rest.index(delimiter) + 1]
        shown.add(logical)
    return sorted(k for k in shown if k > start_after)


def logical_size(keys: list[str], logical: str) -> int:
    return 100 + len(logical) if logical in keys else 5000 + len(logical)


def filled_store(keys: list[str], page_size: int) -> MemoryStore:
    """Plain objects of size 100+len; each `.delta` records a logical size of 5000+len."""
    store = MemoryStore(page_size)
    for key in keys:
        if key.endswith(".delta") and key.rsplit("/", 1)[-1] != ".delta":
            logical = key.removesuffix(".delta")
            meta = {"dg-file-sha256": SHA, "dg-file-size": str(5000 + len(logical))}
            meta.update({"dg-ref-key": "reference.bin", "dg-ref-sha256": SHA})
            store.put("b", key, b"d", **meta)
        else:
            store.put("b", key, b"p" * (100 + len(key)))
    return store


def engine_on(store: MemoryStore) -> Engine:
    return Engine(Settings(cache_backend="memory"), store=store.as_store())


# A random bucket, raw page size, and listing request.
LISTINGS = {
    "keys": raw_keys(),
    "page_size": st.integers(1, 5),
    "prefix": st.sampled_from(["", "a", "a.zip", "a.zip.", "a/", "x/", "a.zip/", "x/a"]),
    "delimiter": st.sampled_from(["", "/"]),
    "start_after": st.sampled_from(["", "a", "a.zip", "a.zip-3", "a.zip/", "a/", "x", "x/a.zip"]),
}


@settings(max_examples=300, deadline=None)
@given(**LISTINGS, batch=st.integers(1, 4))
def test_logical_listing_matches_the_model(
    keys: list[str], page_size: int, prefix: str, delimiter: str, start_after: str, batch: int
) -> None:
    store = filled_store(keys, page_size)
    listed = list(
        logical_listing(
            store.as_store(),
            "b",
            prefix,
            delimiter=delimiter,
            start_after=start_after,
            logical_sizes=True,
            batch=batch,
        )
    )
    assert [e.key for e in listed] == model(keys, prefix, delimiter, start_after)
    for entry in listed:
        if not entry.is_prefix:
            assert entry.size == logical_size(keys, entry.key), entry


@settings(max_examples=200, deadline=None)
@given(**LISTINGS, max_keys=st.integers(1, 4))
def test_list_objects_v2_pages_match_the_model(
    keys: list[str], page_size: int, prefix: str, delimiter: str, start_after: str, max_keys: int
) -> None:
    client = DeltagliderClient(engine_on(filled_store(keys, page_size)))
    seen: list[str] = []
    request = {"Bucket": "b", "Prefix": prefix, "Delimiter": delimiter, "MaxKeys": max_keys}
    if start_after:
        request["StartAfter"] = start_after
    while True:
        page = client.list_objects_v2(**request)
        names = [c["Key"] for c in page.get("Contents", [])]
        folders = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert len(names) + len(folders) == page["KeyCount"] <= max_keys
        for item in page.get("Contents", []):
            assert item["Size"] == logical_size(keys, item["Key"])
        seen += sorted(names + folders)
        if not page["IsTruncated"]:
            break
        request["ContinuationToken"] = page["NextContinuationToken"]
    assert seen == model(keys, prefix, delimiter, start_after)

    paginator = client.get_paginator("list_objects_v2")
    through_paginator: list[str] = []
    for page in paginator.paginate(
        Bucket="b", Prefix=prefix, Delimiter=delimiter, PaginationConfig={"PageSize": max_keys}
    ):
        through_paginator += [c["Key"] for c in page.get("Contents", [])]
        through_paginator += [f["Prefix"] for f in page.get("CommonPrefixes", [])]
    assert sorted(through_paginator) == model(keys, prefix, delimiter, "")


@settings(max_examples=200, deadline=None)
@given(**LISTINGS, max_keys=st.integers(1, 4), fetch=st.booleans())
def test_the_6x_paging_loop_sees_what_the_paginator_sees(
    keys: list[str],
    page_size: int,
    prefix: str,
    delimiter: str,
    start_after: str,
    max_keys: int,
    fetch: bool,
) -> None:
    """deltaglider 6.x's documented loop: `list_objects(..., MaxKeys, ContinuationToken,
    FetchMetadata)` until `IsTruncated` is false, feeding back `NextContinuationToken`. It
    must end, and see each key once, exactly what boto3's paginator and the model see."""
    client = DeltagliderClient(engine_on(filled_store(keys, page_size)))
    seen: list[str] = []
    token = None
    for _ in range(len(keys) + 2):  # a loop that cannot end fails here, not by hanging
        page = client.list_objects(
            Bucket="b",
            Prefix=prefix,
            Delimiter=delimiter,
            MaxKeys=max_keys,
            ContinuationToken=token,
            FetchMetadata=fetch,
        )
        for item in page.get("Contents", []):  # as 6.x: from the listing, or with the HEAD
            assert item["Metadata"]["deltaglider-original-size"] == str(item["Size"])
            assert item["Metadata"]["deltaglider-is-delta"] in ("true", "false")
        seen += [c["Key"] for c in page.get("Contents", [])]
        seen += [f["Prefix"] for f in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    else:
        raise AssertionError("the paging loop did not end")
    through_paginator = [
        name
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket="b", Prefix=prefix, Delimiter=delimiter, PaginationConfig={"PageSize": max_keys}
        )
        for name in [c["Key"] for c in page.get("Contents", [])]
        + [f["Prefix"] for f in page.get("CommonPrefixes", [])]
    ]
    assert sorted(seen) == sorted(through_paginator) == model(keys, prefix, delimiter, "")
    assert len(seen) == len(set(seen))


def test_list_objects_refuses_what_it_cannot_honour() -> None:
    client = DeltagliderClient(engine_on(filled_store(["a.zip"], 2)))
    with pytest.raises(ParamValidationError, match="EncodingType"):
        client.list_objects(Bucket="b", EncodingType="url")
    with pytest.raises(ParamValidationError, match="FetchOwner"):
        client.list_objects_v2(Bucket="b", FetchOwner=True)


def cli_ls(store: MemoryStore, *args: str) -> tuple[int, list[str]]:
    runner = CliRunner()
    app = AppContext(Settings(cache_backend="memory"), lambda s: Engine(s, store=store.as_store()))
    result = runner.invoke(main, ["ls", *args], obj=app, catch_exceptions=False)
    return result.exit_code, result.stdout.splitlines()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=raw_keys(), page_size=st.integers(1, 5), folder=st.sampled_from(["", "a/", "x/"]))
def test_cli_ls_prints_the_model(keys: list[str], page_size: int, folder: str) -> None:
    store = filled_store(keys, page_size)
    _, lines = cli_ls(store, f"s3://b/{folder}", "--recursive")
    assert [line.split()[-1] for line in lines] == model(keys, folder, "", "")
    _, lines = cli_ls(store, f"s3://b/{folder}")
    expected = [
        k[len(folder) :].split("/")[0] + ("/" if k.endswith("/") else "")
        for k in model(keys, folder, "/", "")
    ]
    assert [line.split()[-1] for line in lines] == expected


@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_the_three_listing_bugs_of_the_old_cli_path(page_size: int) -> None:
    """Found with raw pages of 3: `a.zip` printed after `a.zip-3`, twice when its two forms
    fell on different pages, and `PRE x/` for a folder holding only `reference.bin`."""
    store = filled_store(
        ["a.zip", "a.zip-3", "a.zip.delta", "x/reference.bin", "y/b.zip"], page_size
    )
    _, lines = cli_ls(store, "s3://b/")
    assert [line.split()[-1] for line in lines] == ["a.zip", "a.zip-3", "y/"]
    _, lines = cli_ls(store, "s3://b/", "--recursive")
    assert [line.split()[-1] for line in lines] == ["a.zip", "a.zip-3", "y/b.zip"]


def test_unseen_bound_cases() -> None:
    assert unseen_bound("a.zip-3", "") == "a.zip"  # `a.zip.delta` may still come
    assert unseen_bound("a.zip-3", "a.zip") == "a.zip"  # the prefix itself is a logical key
    assert unseen_bound("b", "") == "b"  # nothing shorter can follow: only `b.delta`
    assert unseen_bound("a/b/c", "a/") == "a/b/c"  # `/` sorts after `.`: no reordering


def test_listing_makes_no_request_per_object_without_logical_sizes() -> None:
    keys = [f"r/{n:04d}.zip.delta" for n in range(50)] + [f"r/{n:04d}.txt" for n in range(50)]
    store = filled_store(keys, 7)
    listed = list(engine_on(store).listing("b", "r/", recursive=True))
    assert len(listed) == 100
    assert set(store.requests) == {"ListObjectsV2"}
    assert store.requests.count("ListObjectsV2") == 15
