"""Settings: every `DG_*` environment variable and its default, validated in one place.

Owns: reading and checking configuration. Must not create clients, caches or files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from deltaglider import codec as codecs
from deltaglider.errors import UsageError
from deltaglider.models import REFERENCE_MODES, ReferenceMode

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What an Engine needs to know; build with `Settings.from_env()` and `with_overrides`."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    max_ratio: float = 0.5
    references: ReferenceMode | None = None  # None: the bucket's setting
    # shared references: a file whose best delta is over this ratio starts a new reference;
    # None: the max ratio (where the file would otherwise be stored direct: the same bytes)
    renew_ratio: float | None = None
    cache_backend: str = "persistent"  # or "filesystem" (one process, encrypted) or "memory"
    cache_memory_bytes: int = 100 * MIB
    cache_dir: str | None = None  # persistent cache; None: DG_CACHE_DIR or the XDG cache dir
    cache_size_bytes: int = 2048 * MIB  # persistent cache bound (least recently used go)
    cache_encryption_key: str | None = field(default=None, repr=False)
    codec: str | None = None  # "xdelta3" or "zstd" (faster, 6.x cannot read it); None: the
    # bucket's setting, else xdelta3
    codec_memory_bytes: int = 1024 * MIB  # bound on xdelta3's source window
    multipart_threshold: int = 64 * MIB
    multipart_chunksize: int = 16 * MIB
    max_concurrency: int = 4  # requests in flight per transfer (DG_MAX_CONCURRENCY)
    # files at a time in many-file commands (--jobs): DG_MAX_CONCURRENCY, else the cores
    # (at least 2); None until read from the environment
    jobs: int | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5  # per request, botocore's standard retry mode
    verify_ssl: bool = True  # --no-verify-ssl
    log_level: str | None = None  # DG_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR (CLI: WARNING)
    # sent with every object a write creates or copies (deltas, references, markers, direct):
    # --sse/DG_SSE, --sse-kms-key-id/DG_SSE_KMS_KEY_ID, --storage-class, --acl
    server_side_encryption: str | None = None  # AES256 or aws:kms
    sse_kms_key_id: str | None = None
    storage_class: str | None = None
    acl: str | None = None
    # SSE-C: the customer's AES-256 key (32 bytes), sent with every request that reads or
    # writes an object's bytes or head (--sse-c-key / DG_SSE_C_KEY); never logged or printed
    sse_customer_key: bytes | None = field(default=None, repr=False)
    metrics: str = "logging"  # DG_METRICS: noop, logging (6.x's default) or cloudwatch
    metrics_namespace: str = "DeltaGlider"  # DG_METRICS_NAMESPACE (cloudwatch)

    def __post_init__(self) -> None:
        if self.references is not None:  # a plain "shared"/"folder" given in code
            object.__setattr__(self, "references", ReferenceMode(self.references))
        if self.sse_customer_key is not None and self.server_side_encryption:
            raise UsageError("--sse and --sse-c-key cannot be combined: S3 takes one encryption")

    @property
    def write_args(self) -> dict[str, str]:
        """boto3's arguments for every PUT, multipart start and copy a write makes."""
        found = {
            "ServerSideEncryption": self.server_side_encryption,
            "SSEKMSKeyId": self.sse_kms_key_id,
            "StorageClass": self.storage_class,
            "ACL": self.acl,
        }
        return {name: value for name, value in found.items() if value}

    @property
    def customer_key_args(self) -> dict[str, str | bytes]:
        """boto3's SSE-C arguments (it adds the key's MD5) for every HEAD, GET, PUT, part and
        copy of an object a write creates; empty without a customer key."""
        if self.sse_customer_key is None:
            return {}
        return {"SSECustomerAlgorithm": SSE_C_ALGORITHM, "SSECustomerKey": self.sse_customer_key}

    @property
    def transfer_jobs(self) -> int:
        """Files at a time when no `--jobs` is given: DG_MAX_CONCURRENCY, else the cores."""
        return self.jobs or max(2, os.cpu_count() or 2)

    @property
    def renewal(self) -> float:
        """The renew ratio in force: `renew_ratio`, else the max ratio."""
        return self.max_ratio if self.renew_ratio is None else self.renew_ratio

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        backend = env.get("DG_CACHE_BACKEND", defaults.cache_backend) or defaults.cache_backend
        if backend not in CACHE_BACKENDS:
            raise UsageError(
                f"DG_CACHE_BACKEND must be one of {', '.join(CACHE_BACKENDS)}, not {backend!r}"
            )
        return cls(
            codec=check_codec(env["DG_CODEC"], "DG_CODEC") if env.get("DG_CODEC") else None,
            endpoint_url=check_endpoint(
                env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
                "AWS_ENDPOINT_URL",
            ),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            profile=env.get("AWS_PROFILE") or None,
            max_ratio=check_ratio(
                env.get("DG_MAX_RATIO"), defaults.max_ratio, "DG_MAX_RATIO", zero=True
            ),
            log_level=check_log_level(env.get("DG_LOG_LEVEL") or None),
            server_side_encryption=check_choice(env.get("DG_SSE") or None, SSE_MODES, "DG_SSE"),
            sse_kms_key_id=env.get("DG_SSE_KMS_KEY_ID") or None,
            sse_customer_key=check_customer_key(env.get("DG_SSE_C_KEY") or None, "DG_SSE_C_KEY"),
            metrics=check_choice(env.get("DG_METRICS") or "logging", METRICS, "DG_METRICS")
            or "logging",
            metrics_namespace=env.get("DG_METRICS_NAMESPACE") or defaults.metrics_namespace,
            references=check_references(env.get("DG_REFERENCES") or None, "DG_REFERENCES"),
            renew_ratio=(
                check_ratio(env["DG_RENEW_RATIO"], 1.0, "DG_RENEW_RATIO")
                if env.get("DG_RENEW_RATIO")
                else None
            ),
            cache_backend=backend,
            cache_memory_bytes=_mib(env, "DG_CACHE_MEMORY_SIZE_MB", defaults.cache_memory_bytes),
            cache_encryption_key=env.get("DG_CACHE_ENCRYPTION_KEY") or None,
            cache_dir=env.get("DG_CACHE_DIR") or None,
            cache_size_bytes=_mib(env, "DG_CACHE_SIZE_MB", defaults.cache_size_bytes),
            codec_memory_bytes=_mib(env, "DG_CODEC_MEMORY_MB", defaults.codec_memory_bytes),
            multipart_threshold=_mib(
                env, "DG_MULTIPART_THRESHOLD_MB", defaults.multipart_threshold
            ),
            multipart_chunksize=_mib(
                env, "DG_MULTIPART_CHUNKSIZE_MB", defaults.multipart_chunksize
            ),
            max_concurrency=_int(env, "DG_MAX_CONCURRENCY", defaults.max_concurrency),
            jobs=_int(env, "DG_MAX_CONCURRENCY", 0) or None,
            connect_timeout=_seconds(env, "DG_CONNECT_TIMEOUT", defaults.connect_timeout),
            read_timeout=_seconds(env, "DG_READ_TIMEOUT", defaults.read_timeout),
            max_attempts=_int(env, "DG_MAX_ATTEMPTS", defaults.max_attempts),
        )

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the non-None values of `changes` applied (CLI flags over environment)."""
        given = {k: v for k, v in changes.items() if v is not None}
        if "codec" in given:
            given["codec"] = check_codec(str(given["codec"]), "--codec")
        if "endpoint_url" in given:
            given["endpoint_url"] = check_endpoint(str(given["endpoint_url"]), "--endpoint-url")
        if "references" in given:
            given["references"] = check_references(str(given["references"]), "--references")
        if "server_side_encryption" in given:
            given["server_side_encryption"] = check_choice(
                str(given["server_side_encryption"]), SSE_MODES, "--sse"
            )
        if "sse_customer_key" in given:
            given["sse_customer_key"] = check_customer_key(given["sse_customer_key"], "--sse-c-key")
        if "max_ratio" in given:
            given["max_ratio"] = check_ratio(
                str(given["max_ratio"]), self.max_ratio, "--max-ratio", zero=True
            )
        return replace(self, **given)  # type: ignore[arg-type]


CACHE_BACKENDS = ("persistent", "filesystem", "memory")


def cache_directory(settings: Settings, env: Mapping[str, str] | None = None) -> Path:
    """Where the persistent reference cache lives: `cache_dir` (DG_CACHE_DIR), else
    `$XDG_CACHE_HOME/deltaglider`, else `~/.cache/deltaglider`."""
    env = os.environ if env is None else env
    if settings.cache_dir:
        return Path(settings.cache_dir)
    base = env.get("XDG_CACHE_HOME") or ""
    if not Path(base).is_absolute():  # the XDG spec: a relative value is ignored
        base = str(Path(env.get("HOME") or "/nonexistent") / ".cache")
    return Path(base) / "deltaglider"


def cache_key_file(env: Mapping[str, str] | None = None) -> Path:
    """Where the user's own key for the persistent cache lives, outside any cache directory
    (a shared or backed-up cache volume never holds it): DG_CACHE_KEY_FILE, else
    `$XDG_CONFIG_HOME/deltaglider/cache.key`, else `~/.config/deltaglider/cache.key`."""
    env = os.environ if env is None else env
    if env.get("DG_CACHE_KEY_FILE"):
        return Path(env["DG_CACHE_KEY_FILE"])
    base = env.get("XDG_CONFIG_HOME") or ""
    if not Path(base).is_absolute():
        base = str(Path(env.get("HOME") or "/nonexistent") / ".config")
    return Path(base) / "deltaglider" / "cache.key"


def check_endpoint(raw: str | None, name: str) -> str | None:
    """An S3 endpoint URL with its scheme (`http://host:port`), as boto3 needs it."""
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise UsageError(
            f"{name} must start with http:// or https:// (e.g. http://{raw}), not {raw!r}"
        )
    return raw


def check_references(raw: str | None, name: str) -> ReferenceMode | None:
    """Where new references go (`--references`, DG_REFERENCES): shared, folder or chain."""
    if raw is not None and raw not in REFERENCE_MODES:
        raise UsageError(f"{name} must be one of {', '.join(REFERENCE_MODES)}, not {raw!r}")
    return None if raw is None else ReferenceMode(raw)


def check_codec(raw: str, name: str) -> str:
    """A codec name `--codec`/DG_CODEC accept; anything else is a UsageError naming `name`."""
    if raw not in codecs.NAMES:
        raise UsageError(f"{name} must be one of {', '.join(codecs.NAMES)}, not {raw!r}")
    return raw


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SSE_MODES = ("AES256", "aws:kms")
SSE_C_ALGORITHM = "AES256"  # the one algorithm S3 offers for customer keys
METRICS = ("noop", "logging", "cloudwatch")
STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
)
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)


def check_choice(raw: str | None, choices: tuple[str, ...], name: str) -> str | None:
    if raw is not None and raw not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def check_customer_key(raw: object, name: str) -> bytes | None:
    """An SSE-C key as aws s3 takes it: the key itself, `fileb://PATH` (its raw bytes) or
    `file://PATH` (its text), or bytes from code; S3 wants exactly 32 bytes. The error never
    shows the key."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        key = raw
    elif not isinstance(raw, str):
        raise UsageError(f"{name} must be a 32-byte key (str or bytes)")
    elif raw.startswith(("fileb://", "file://")):
        path = Path(raw.split("://", 1)[1]).expanduser()
        try:
            data = path.read_bytes()
        except OSError as error:
            raise UsageError(f"{name}: cannot read {path}: {error.strerror}") from None
        key = data if raw.startswith("fileb://") else data.decode(errors="replace").strip().encode()
    else:
        key = raw.encode()
    if len(key) != 32:
        raise UsageError(f"{name} must be a 32-byte AES-256 key, not {len(key)} bytes")
    return key


def check_log_level(raw: str | None) -> str | None:
    """DG_LOG_LEVEL (any case): one of LOG_LEVELS."""
    if raw is None:
        return None
    if raw.upper() not in LOG_LEVELS:
        raise UsageError(f"DG_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}")
    return raw.upper()


def check_ratio(raw: str | None, default: float, name: str, *, zero: bool = False) -> float:
    """A delta/file size ratio in (0, 1] (with `zero`, 0 too: never a delta, as deltaglider
    6.x documents DG_MAX_RATIO=0); anything else is a UsageError naming `name`."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number between 0 and 1, not {raw!r}") from None
    if not (value >= 0.0 if zero else value > 0.0) or value > 1.0:
        lowest = "at least 0" if zero else "greater than 0"
        raise UsageError(f"{name} must be {lowest} and at most 1, not {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise UsageError(f"{name} must be positive, not {raw!r}")
    return value


def _mib(env: Mapping[str, str], name: str, default_bytes: int) -> int:
    if not env.get(name):
        return default_bytes
    return _int(env, name, 0) * MIB


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 <= value < 86400:
        raise UsageError(f"{name} must be between 0 and 86400 seconds, not {raw!r}")
    return value
