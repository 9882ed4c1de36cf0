"""What every object store shares: the :class:`ArchiveStore` protocol, the stored
object's description, and the Object Lock retention policy."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from justering.errors import ArchiveError, ConfigError

__all__ = ["ArchiveStore", "RetentionPolicy", "StoredObject", "conflict", "sha256_hex"]


@dataclass(frozen=True)
class StoredObject:
    """An object as stored: its key, where it lives, and its verified checksum."""

    key: str
    uri: str
    sha256: str
    """Lower-case hex SHA-256 of the object's bytes."""
    size: int


_RETENTION_MODES = ("COMPLIANCE", "GOVERNANCE")


@dataclass(frozen=True)
class RetentionPolicy:
    """S3 Object Lock retention for every object :class:`S3Archive` writes.

    ``mode`` is ``COMPLIANCE`` (nobody, not even the account root, can delete or
    shorten it before the date) or ``GOVERNANCE`` (users with
    ``s3:BypassGovernanceRetention`` can); ``days`` counts from each write.
    ``ConfigError`` for anything else.
    """

    mode: str
    days: int

    def __post_init__(self) -> None:
        if self.mode not in _RETENTION_MODES:
            raise ConfigError(
                f"Object Lock retention mode must be COMPLIANCE or GOVERNANCE, not {self.mode!r}"
            )
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise ConfigError(
                f"Object Lock retention must be a whole number of days >= 1, not {self.days!r}"
            )

    def retain_until(self, now: dt.datetime) -> dt.datetime:
        """The retain-until date of an object written at ``now`` (UTC, whole seconds)."""
        return (now.astimezone(dt.UTC) + dt.timedelta(days=self.days)).replace(microsecond=0)


class ArchiveStore(Protocol):
    """Write-once object storage. Every method raises ``ArchiveError`` on failure."""

    def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        """Store ``data`` at ``key`` and verify it. Identical bytes at an existing key
        are a no-op returning the existing object; different bytes are refused."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes at ``key``; ``ArchiveError`` naming the key if there are none."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """The object at ``key``, or ``None`` if there is none."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix`` (a plain string prefix), in sorted order."""
        ...

    def uri(self, key: str) -> str:
        """Where ``key`` lives, as a ``file://`` or ``s3://`` URI."""
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def conflict(key: str) -> ArchiveError:
    return ArchiveError(
        f"archive key {key!r} already holds different content; archived objects are never replaced"
    )
