"""S3 object storage (AWS, MinIO, Ceph) through boto3, honouring the standard AWS
environment (``AWS_ENDPOINT_URL``, the credentials chain, the region).

An S3 endpoint fails in transit (refuses connections, stalls, answers 500, cuts
an answer off). :class:`S3ClientSettings` bounds every request: connect and read
timeouts, and botocore's "standard" retries with exponential backoff. A write
whose answer was lost is safe to repeat: the repeat carries ``If-None-Match: *``,
S3 answers 412, and the object already there is accepted if its SHA-256 is ours,
so no second object version is ever written. When the endpoint is still down
after the retries, the store raises ``ArchiveError`` naming the endpoint; the
caller retries later and the bundle's manifest, written last, tells a complete
bundle from a partial one. On a bucket with Object Lock a :class:`RetentionPolicy`
locks every object written (docs/storage.md).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from justering.archive.keys import check_key, check_prefix
from justering.archive.objects import RetentionPolicy, StoredObject, conflict, sha256_hex
from justering.errors import ArchiveError, ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import ObjectLockModeType
    from mypy_boto3_s3.type_defs import PutObjectOutputTypeDef, PutObjectRequestTypeDef

__all__ = [
    "DEFAULT_S3_CONNECT_TIMEOUT",
    "DEFAULT_S3_MAX_ATTEMPTS",
    "DEFAULT_S3_READ_TIMEOUT",
    "S3Archive",
    "S3ClientSettings",
    "parse_s3_uri",
]

_RetryMode = Literal["standard", "adaptive", "legacy"]
_log = logging.getLogger(__name__)

DEFAULT_S3_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a TCP connection to the S3 endpoint."""
DEFAULT_S3_READ_TIMEOUT = 30.0
"""Seconds to wait for the next bytes of an answer (not for the whole answer)."""
DEFAULT_S3_MAX_ATTEMPTS = 4
"""Attempts per S3 request, the first included, unless the AWS environment says otherwise."""

_BODY_READ_ATTEMPTS = 3  # a GET whose body broke off after botocore returned it
_BLIND_PUT_ATTEMPTS = 3  # unconditional writes (endpoints without If-None-Match)
_RETRY_MODES = ("standard", "adaptive", "legacy")
_OWN_BACKOFF = 0.5  # seconds, doubled per attempt, for the retries botocore cannot do


@dataclass(frozen=True)
class S3ClientSettings:
    """How the S3 client talks to its endpoint: timeouts and botocore's retries.

    Every request gets ``connect_timeout`` to connect and ``read_timeout`` between
    bytes of the answer, and is tried ``max_attempts`` times in all, in botocore's
    ``standard`` retry mode: connection refused or reset, timeouts, and answers
    500, 502, 503 and 504 are retried after an exponential, jittered backoff (up to
    1, 2, 4 … seconds). So a stalled or dead endpoint costs at most about
    ``max_attempts * (connect or read timeout) + 2 ** (max_attempts - 1)`` seconds
    per request before ``ArchiveError``.

    ``max_attempts=None`` takes ``AWS_MAX_ATTEMPTS`` (or ``max_attempts`` in the
    AWS profile) when set, else :data:`DEFAULT_S3_MAX_ATTEMPTS`; ``AWS_RETRY_MODE``
    (or ``retry_mode`` in the profile) may choose another retry mode.
    """

    connect_timeout: float = DEFAULT_S3_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_S3_READ_TIMEOUT
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"S3 {name} must be a positive number of seconds, not {value!r}")
        attempts = self.max_attempts
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ConfigError(f"S3 max_attempts must be a whole number >= 1, not {attempts!r}")

    def client(self, endpoint_url: str | None = None) -> S3Client:
        """A boto3 S3 client with these settings. The standard AWS environment applies
        (``AWS_ENDPOINT_URL``, credentials chain, region); ``endpoint_url`` overrides
        the endpoint."""
        import boto3  # slow to import; only S3 users pay for it
        import botocore.session
        from botocore.config import Config
        from botocore.exceptions import ProfileNotFound

        core = botocore.session.Session()
        try:
            profile: Mapping[str, Any] = core.get_scoped_config()
        except ProfileNotFound as error:
            raise ConfigError(f"S3 archive: {error}") from None
        attempts = self.max_attempts
        if attempts is None:
            configured = core.get_config_variable("max_attempts")
            attempts = int(configured) if configured else DEFAULT_S3_MAX_ATTEMPTS
        mode = os.environ.get("AWS_RETRY_MODE") or profile.get("retry_mode") or "standard"
        if mode not in _RETRY_MODES:
            raise ConfigError(f"AWS retry mode must be one of {', '.join(_RETRY_MODES)}: {mode!r}")
        config = Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"mode": cast("_RetryMode", mode), "total_max_attempts": attempts},
        )
        session = boto3.session.Session(botocore_session=core)
        return session.client("s3", endpoint_url=endpoint_url, config=config)


def _error_code(error: ClientError) -> tuple[str, int]:
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return code, status


def _b64_to_hex(value: str) -> str | None:
    """A full-object base64 SHA-256 as hex; ``None`` for composite (multipart) ones."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


class _ResendWithheld(Exception):
    """botocore was about to resend an unconditional write: ``S3Archive`` checks first."""

    def __init__(self, cause: object) -> None:
        self.cause = cause
        super().__init__(str(cause))


# Set (per thread) while S3Archive sends an unconditional PutObject; the two hooks
# below then keep botocore from resending it blindly.
_blind_put = threading.local()


def _note_retry_cause(
    response: tuple[Any, Mapping[str, Any]] | None = None,
    caught_exception: BaseException | None = None,
    **kwargs: Any,
) -> None:
    """``needs-retry`` hook: remember why the last attempt failed (no opinion on retrying)."""
    if getattr(_blind_put, "active", False):
        if caught_exception is not None:
            _blind_put.cause = caught_exception
        elif response is not None:
            error = response[1].get("Error", {})
            status = response[1].get("ResponseMetadata", {}).get("HTTPStatusCode")
            _blind_put.cause = f"HTTP {status} {error.get('Code', '')}".strip()


def _withhold_blind_resend(request: Any, **kwargs: Any) -> None:
    """``request-created`` hook: refuse a second attempt of an unconditional write.

    Without ``If-None-Match``, a write whose answer was lost and that botocore
    resends would add a second version of the object on a versioned bucket. The
    caller looks (HEAD) before it writes again instead.
    """
    if getattr(_blind_put, "active", False):
        attempt = request.context.get("retries", {}).get("attempt", 1)
        if attempt > 1:
            raise _ResendWithheld(getattr(_blind_put, "cause", None) or "no answer")


class S3Archive:
    """Objects in an S3 bucket under ``prefix``, through a boto3 S3 client.

    Writes send our SHA-256 (``ChecksumAlgorithm='SHA256'``) so S3 rejects a
    corrupted upload, use ``If-None-Match: *`` so an existing object is never
    replaced (falling back to head-then-put where the endpoint answers
    ``NotImplemented``), and compare the checksum S3 stored with our own.

    With ``retention``, the store asks once (at its first write) whether the
    bucket has Object Lock. If it has, every write carries ``ObjectLockMode`` and
    ``ObjectLockRetainUntilDate`` (now + days); if it has not, objects are written
    without retention and a warning says so once. An identical re-write writes
    nothing, so it neither creates a version nor extends the retention.

    Without ``client``, the store makes one with ``connection`` (default
    :class:`S3ClientSettings`: bounded timeouts and retries). A write repeated
    after a lost answer, by botocore or by the caller, is answered 412 and accepted
    when the stored SHA-256 is ours: one object version per key, whatever failed.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str,
        client: S3Client | None = None,
        *,
        retention: RetentionPolicy | None = None,
        connection: S3ClientSettings | None = None,
    ) -> None:
        if not bucket:
            raise ConfigError("S3 archive: the bucket name is empty")
        prefix = prefix.strip("/")
        if prefix:
            try:
                check_key(prefix)
            except ArchiveError as error:
                raise ConfigError(f"S3 archive prefix: {error}") from None
        if client is not None and connection is not None:
            raise ConfigError("S3 archive: give a client or connection settings, not both")
        if client is None:
            client = (connection or S3ClientSettings()).client()
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.retention = retention
        self._client = client
        self._conditional_put = True
        self._object_lock: bool | None = None  # unknown until the first write
        events = client.meta.events
        events.register(
            "needs-retry.s3.PutObject", _note_retry_cause, unique_id="justering-retry-cause"
        )
        events.register(
            "request-created.s3.PutObject",
            _withhold_blind_resend,
            unique_id="justering-withhold-blind-resend",
        )

    @property
    def endpoint(self) -> str:
        """The endpoint URL the client talks to."""
        return str(self._client.meta.endpoint_url)

    def _where(self) -> str:
        return f"S3 bucket {self.bucket!r} at {self.endpoint}"

    def _failure(self, key: str, action: str, error: object) -> ArchiveError:
        return ArchiveError(f"S3 {action} of archive key {key!r} failed ({self._where()}): {error}")

    def _bucket_has_object_lock(self) -> bool:
        """Whether the bucket has Object Lock enabled; asked once, failures not cached."""
        if self._object_lock is not None:
            return self._object_lock
        try:
            configuration = self._client.get_object_lock_configuration(Bucket=self.bucket)
            enabled = configuration["ObjectLockConfiguration"].get("ObjectLockEnabled")
            self._object_lock = enabled == "Enabled"
        except ClientError as error:
            code, status = _error_code(error)
            if code != "ObjectLockConfigurationNotFoundError" and status != 501:
                needs = (
                    " (the archive needs s3:GetBucketObjectLockConfiguration)"
                    if status in (401, 403)
                    else ""
                )
                raise ArchiveError(
                    f"cannot read the Object Lock configuration of {self._where()}{needs}: {error}"
                ) from error
            self._object_lock = False
        except BotoCoreError as error:
            raise ArchiveError(
                f"cannot read the Object Lock configuration of {self._where()}: {error}"
            ) from error
        if not self._object_lock:
            _log.warning(
                "S3 bucket %r has no Object Lock: archived objects are written without "
                "%s retention and can be deleted; see docs/storage.md to create a bucket "
                "with Object Lock",
                self.bucket,
                self.retention.mode if self.retention else "any",
            )
        return self._object_lock

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def head(self, key: str) -> StoredObject | None:
        full = self._full(key)
        try:
            response = self._client.head_object(
                Bucket=self.bucket, Key=full, ChecksumMode="ENABLED"
            )
        except ClientError as error:
            if _error_code(error)[1] == 404:
                return None
            raise self._failure(key, "head", error) from error
        except BotoCoreError as error:
            raise self._failure(key, "head", error) from error
        checksum = response.get("ChecksumSHA256")
        sha = _b64_to_hex(checksum) if checksum else None
        size = response["ContentLength"]
        if sha is None:  # written without a full-object SHA-256: hash the bytes
            data = self.get(key)
            sha, size = sha256_hex(data), len(data)
        return StoredObject(key, self.uri(key), sha, size)

    def get(self, key: str) -> bytes:
        full = self._full(key)
        for attempt in range(1, _BODY_READ_ATTEMPTS + 1):
            try:
                # ChecksumMode makes botocore verify the stored checksum while reading.
                response = self._client.get_object(
                    Bucket=self.bucket, Key=full, ChecksumMode="ENABLED"
                )
            except ClientError as error:
                if _error_code(error)[1] == 404:
                    raise ArchiveError(
                        f"archive key {key!r} does not exist in {self.uri(key)}"
                    ) from None
                raise self._failure(key, "get", error) from error
            except BotoCoreError as error:
                raise self._failure(key, "get", error) from error
            try:
                return response["Body"].read()
            except BotoCoreError as error:
                # The answer broke off (or failed its checksum) after botocore had
                # returned it, so botocore's retries do not cover it: ours do.
                if attempt == _BODY_READ_ATTEMPTS:
                    raise self._failure(key, "get", error) from error
                _log.warning("S3 get of %r broke off (%s); retrying", full, error)
                time.sleep(_OWN_BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def list(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield item["Key"].removeprefix(self.prefix)
        except (ClientError, BotoCoreError) as error:
            raise self._failure(prefix, "list", error) from error

    def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        sha = sha256_hex(data)
        checksum = base64.b64encode(bytes.fromhex(sha)).decode("ascii")
        request: PutObjectRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": self._full(key),
            "Body": data,
            "ContentType": content_type,
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": checksum,
        }
        if self.retention is not None and self._bucket_has_object_lock():
            request["ObjectLockMode"] = cast("ObjectLockModeType", self.retention.mode)
            request["ObjectLockRetainUntilDate"] = self.retention.retain_until(
                dt.datetime.now(dt.UTC)
            )
        response: PutObjectOutputTypeDef | None = None
        if self._conditional_put:
            conditional = request.copy()
            conditional["IfNoneMatch"] = "*"
            try:
                # botocore resends this after a refused connection, a timeout, a 5xx
                # or a lost answer; a resend of a write that did arrive gets 412.
                response = self._client.put_object(**conditional)
            except ClientError as error:
                code, status = _error_code(error)
                if status in (409, 412):  # exists: ours from an earlier attempt, or not
                    return self._same_or_refuse(key, sha)
                if code != "NotImplemented" and status != 501:
                    raise self._failure(key, "put", error) from error
                self._conditional_put = False
            except BotoCoreError as error:
                raise self._failure(key, "put", error) from error
        if response is None:  # the endpoint has no conditional writes
            response, existing = self._put_unconditionally(key, sha, request)
            if existing is not None:
                return existing
        assert response is not None
        returned = response.get("ChecksumSHA256")
        if returned not in (None, checksum):
            # A garbled answer, or S3 stored other bytes: either way not accepted
            # here. A retry then gets 412 and checks what is stored (HEAD).
            raise ArchiveError(
                f"archive key {key!r}: S3 reports SHA-256 {_b64_to_hex(returned) or returned!r} "
                f"in its answer to the write of {sha}"
            )
        stored = self.head(key)
        if stored is None or stored.sha256 != sha:
            raise ArchiveError(
                f"archive key {key!r}: S3 reports SHA-256 "
                f"{stored.sha256 if stored else 'none'} for the written {sha}"
            )
        return stored

    def _put_unconditionally(
        self, key: str, sha: str, request: PutObjectRequestTypeDef
    ) -> tuple[PutObjectOutputTypeDef | None, StoredObject | None]:
        """Head-then-put, for endpoints without conditional writes; (answer, None) or
        (None, the object already there). botocore may not resend the write (an
        earlier attempt may have been stored): this loop looks before each resend."""
        cause: object = "no answer"
        for attempt in range(1, _BLIND_PUT_ATTEMPTS + 1):
            existing = self.head(key)
            if existing is not None:
                return None, self._same_or_refuse(key, sha, existing)
            _blind_put.active, _blind_put.cause = True, None
            try:
                return self._client.put_object(**request), None
            except _ResendWithheld as withheld:
                cause = withheld.cause
            except (ClientError, BotoCoreError) as error:
                raise self._failure(key, "put", error) from error
            finally:
                _blind_put.active = False
            if attempt < _BLIND_PUT_ATTEMPTS:
                _log.warning("S3 put of %r failed (%s); looking before writing again", key, cause)
        raise self._failure(key, "put", f"{cause} ({_BLIND_PUT_ATTEMPTS} writes without answer)")

    def _same_or_refuse(
        self, key: str, sha: str, existing: StoredObject | None = None
    ) -> StoredObject:
        """The object at ``key`` (``existing``, or as HEAD finds it) if it holds ``sha``."""
        existing = existing or self.head(key)
        if existing is None:
            raise ArchiveError(f"archive key {key!r} is being written concurrently; retry")
        if existing.sha256 != sha:
            raise conflict(key)
        return existing


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``; the key may be empty."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"not an S3 URI (expected s3://bucket/key): {uri!r}")
    return parts.netloc, unquote(parts.path).lstrip("/")
