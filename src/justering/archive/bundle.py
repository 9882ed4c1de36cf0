"""Bundles: a set of files under one prefix, completed by a ``manifest.json`` of
their SHA-256 checksums written last, so a complete bundle is told from a
partial one; and what an archived extract's (or protocol's) bundle holds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from justering.archive.keys import check_key
from justering.archive.objects import ArchiveStore
from justering.errors import ArchiveError

__all__ = [
    "BUNDLE_FORMAT",
    "EXTRACT_CA",
    "EXTRACT_COMPLETION",
    "EXTRACT_PDF",
    "EXTRACT_TRAIL",
    "EXTRACT_TRAIL_SEAL",
    "EXTRACT_TSA_CA",
    "MANIFEST_NAME",
    "PROTOCOL_PDF",
    "Bundle",
    "read_bundle",
    "write_bundle",
]

BUNDLE_FORMAT = "justering-bundle/1"
MANIFEST_NAME = "manifest.json"

# What an archived extract's bundle holds, besides the manifest.
EXTRACT_PDF = "extract.pdf"
"""The certified PDF."""
PROTOCOL_PDF = "protocol.pdf"
"""In a protocol's bundle, instead of ``extract.pdf``: the justered protocol. The
other files are named as an extract's."""
EXTRACT_TRAIL = "trail.json"
"""Its signature trail (:func:`justering.model.trail.trail_to_json`)."""
EXTRACT_TRAIL_SEAL = "trail.json.p7s"
"""The municipality's seal on the trail: a detached CMS signature over the exact
bytes of ``trail.json`` (:mod:`justering.pades.seal`)."""
EXTRACT_CA = "ca.pem"
"""The signing CA's certificate, for convenience only: verification never trusts it."""
EXTRACT_COMPLETION = "intyg.pdf"
"""The human-readable certificate of completion (:mod:`justering.archive.intyg`)."""
EXTRACT_TSA_CA = "tsa-ca.pem"
"""The TSA's root certificate, when signatures carry timestamps; likewise not trusted."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A complete, verified bundle: its files by name and its manifest."""

    prefix: str
    files: Mapping[str, bytes]
    manifest: Mapping[str, Any]


def _check_name(name: str) -> str:
    if "/" in name or name == MANIFEST_NAME:
        raise ArchiveError(f"invalid bundle file name {name!r}: a plain name, not {MANIFEST_NAME}")
    return check_key(name)


def _manifest_bytes(files: Mapping[str, bytes]) -> bytes:
    manifest = {
        "files": {
            name: {"sha256": _sha256(data), "size": len(data)} for name, data in files.items()
        },
        "format": BUNDLE_FORMAT,
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_bundle(store: ArchiveStore, prefix: str, files: Mapping[str, bytes]) -> Bundle:
    """Write ``files`` under ``prefix``, then ``manifest.json`` (whose presence marks
    the bundle complete). Writing the same bundle again is a no-op; a different
    bundle at a complete prefix is refused before anything is written."""
    check_key(prefix)
    for name in files:
        _check_name(name)
    manifest = _manifest_bytes(files)
    if store.head(f"{prefix}/{MANIFEST_NAME}") is not None:
        existing = read_bundle(store, prefix)
        if _manifest_bytes(existing.files) != manifest:
            raise ArchiveError(f"a different bundle is already archived at {prefix!r}")
        return existing
    for name in sorted(files):
        store.put(f"{prefix}/{name}", files[name], content_type=_content_type(name))
    store.put(f"{prefix}/{MANIFEST_NAME}", manifest, content_type="application/json")
    return Bundle(prefix, MappingProxyType(dict(files)), MappingProxyType(json.loads(manifest)))


def _content_type(name: str) -> str:
    suffix = name.rpartition(".")[2].lower()
    return {
        "pdf": "application/pdf",
        "json": "application/json",
        "txt": "text/plain; charset=utf-8",
        "pem": "application/x-pem-file",
        "p7s": "application/pkcs7-signature",
    }.get(suffix, "application/octet-stream")


def read_bundle(store: ArchiveStore, prefix: str) -> Bundle:
    """Read the bundle at ``prefix`` and verify every file against its manifest.

    Raises ``ArchiveError`` naming the file that is missing or does not match.
    """
    check_key(prefix)
    manifest_key = f"{prefix}/{MANIFEST_NAME}"
    if store.head(manifest_key) is None:
        raise ArchiveError(f"no complete bundle at {store.uri(prefix)}: {MANIFEST_NAME} is missing")
    try:
        manifest = json.loads(store.get(manifest_key))
        entries = manifest["files"]
        if manifest["format"] != BUNDLE_FORMAT or not isinstance(entries, dict):
            raise ValueError(f"format is not {BUNDLE_FORMAT}")
    except (ValueError, KeyError, TypeError) as error:
        raise ArchiveError(
            f"bundle manifest {store.uri(manifest_key)} is unreadable: {error}"
        ) from error
    files: dict[str, bytes] = {}
    for name, entry in entries.items():
        key = f"{prefix}/{_check_name(name)}"
        try:
            data = store.get(key)
        except ArchiveError as error:
            raise ArchiveError(f"bundle file {name!r} is missing or unreadable: {error}") from error
        if not isinstance(entry, dict):
            raise ArchiveError(f"bundle manifest entry for {name!r} is not an object")
        if _sha256(data) != entry.get("sha256") or len(data) != entry.get("size"):
            raise ArchiveError(
                f"bundle file {name!r} at {store.uri(key)} does not match its manifest: "
                f"SHA-256 {_sha256(data)}, expected {entry.get('sha256')}"
            )
        files[name] = data
    return Bundle(prefix, MappingProxyType(files), MappingProxyType(manifest))
