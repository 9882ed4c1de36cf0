"""The default object store: a folder of read-only files."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from justering.archive.keys import check_key, check_prefix
from justering.archive.objects import StoredObject, conflict, sha256_hex
from justering.errors import ArchiveError

__all__ = ["LocalArchive"]


class LocalArchive:
    """Objects as read-only files under ``root`` (created on first write).

    Writes go to a temporary file in the target directory, are fsynced, then
    linked into place only if the target does not exist yet (atomic), made
    read-only (0o444), and re-read to verify their SHA-256. ``content_type`` is
    not stored.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        # Defence in depth: a symlinked directory must not lead outside root.
        parent = path.parent.resolve()
        if not parent.is_relative_to(self.root) or path.is_symlink():
            raise ArchiveError(f"archive key {key!r} leads outside the archive {self.root}")
        return path

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def _stored(self, key: str, path: Path) -> StoredObject:
        data = path.read_bytes()
        return StoredObject(key, path.as_uri(), sha256_hex(data), len(data))

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            return self._stored(key, path)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ArchiveError(f"cannot read archive key {key!r}: {error}") from error

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ArchiveError(f"archive key {key!r} does not exist in {self.root}") from None
        except OSError as error:
            raise ArchiveError(f"cannot read archive key {key!r}: {error}") from error

    def list(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        start = self.root / prefix.rpartition("/")[0]
        if not start.is_dir():
            return
        keys = []
        for directory, dirs, names in os.walk(start):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if name.startswith("."):  # temporary files of unfinished writes
                    continue
                key = Path(directory, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        path = self._path(key)
        sha = sha256_hex(data)
        existing = self.head(key)
        if existing is not None:
            if existing.sha256 != sha:
                raise conflict(key)
            return existing
        raced = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write_once(path, data)
        except FileExistsError:
            raced = True  # another writer won the race: identical bytes are fine
        except OSError as error:
            raise ArchiveError(f"cannot write archive key {key!r}: {error}") from error
        stored = self.head(key)
        if stored is None:
            raise ArchiveError(f"archive key {key!r} vanished right after it was written")
        if stored.sha256 != sha:
            if raced:
                raise conflict(key)
            raise ArchiveError(
                f"archive key {key!r}: stored SHA-256 {stored.sha256} "
                f"does not match the written {sha}"
            )
        return stored

    @staticmethod
    def _write_once(path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically; ``FileExistsError`` if it appeared."""
        fd, tmp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name[:100]}.", suffix=".tmp"
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.chmod(0o444)
            try:
                os.link(tmp, path)  # fails if the target exists: never replaces
            except FileExistsError:
                raise
            except OSError:
                # Filesystems without hard links: check, then atomic replace.
                if path.exists():
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
