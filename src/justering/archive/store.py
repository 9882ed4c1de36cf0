"""The object store: where certified extracts and their signature trails are archived.

Two stores share the :class:`~justering.archive.objects.ArchiveStore` protocol:
:class:`~justering.archive.local.LocalArchive` (a directory, the default) and
:class:`~justering.archive.s3.S3Archive` (any S3 endpoint through boto3). Objects
are immutable: a key is written once, verified by SHA-256 after the write, and
never replaced. :func:`open_archive` picks one by URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from justering.archive.local import LocalArchive
from justering.archive.objects import ArchiveStore, RetentionPolicy
from justering.errors import ConfigError

if TYPE_CHECKING:
    from justering.archive.s3 import S3ClientSettings

__all__ = ["open_archive"]


def open_archive(
    url: str | None,
    *,
    default_dir: Path,
    retention: RetentionPolicy | None = None,
    connection: S3ClientSettings | None = None,
) -> ArchiveStore:
    """The store at ``url``: ``None`` (``default_dir``), ``file:///path`` or ``s3://bucket/prefix``.

    An S3 store's client honours the standard AWS environment (``AWS_ENDPOINT_URL``,
    the credentials chain, the region) with ``connection``'s timeouts and retries
    (default :class:`S3ClientSettings`), and applies ``retention`` where the bucket
    has Object Lock. A folder store ignores ``retention``: file modes are no lock.
    """
    if url is None:
        return LocalArchive(default_dir)
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        return LocalArchive(Path(url2pathname(parts.path)))
    if parts.scheme == "s3" and parts.netloc:
        from justering.archive.s3 import S3Archive, parse_s3_uri

        bucket, prefix = parse_s3_uri(url)
        return S3Archive(bucket, prefix, retention=retention, connection=connection)
    raise ConfigError(
        f"archive URL {url!r} is not supported: use file:///absolute/path or s3://bucket/prefix"
    )
