"""One signed document of a meeting (a paragraph's extract, or one of its protocols)
as every reader sees it: the signer's page, the meeting system's API, the
secretary's and archivist's views, the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from justering.model.process import DocumentKind, ExtractStatus

__all__ = ["ExtractSummary"]


@dataclass(frozen=True)
class ExtractSummary:
    """Where one paragraph's extract, or a protocol, stands (its current version)."""

    extract_id: int
    meeting_id: str
    paragraph: int
    """The extract's § number (0 for a protocol)."""
    dnr: str | None
    title: str
    version: int
    status: ExtractStatus
    document_sha256: str
    """The newest document of the current version (each signature makes a new one)."""
    archive_uri: str | None = None
    immediate: bool = False
    """Under omedelbar justering (justered at the meeting itself)."""
    kind: DocumentKind = DocumentKind.EXTRACT

    @property
    def is_protocol(self) -> bool:
        return self.kind.is_protocol

    @property
    def ref(self) -> str:
        """The stable reference in trails: ``<meeting_id>/<paragraph>`` for an extract,
        ``<meeting_id>/protokoll`` (or ``/protokoll-omedelbar``) for a protocol."""
        suffix = self.kind.ref_suffix if self.is_protocol else str(self.paragraph)
        return f"{self.meeting_id}/{suffix}"

    @property
    def label(self) -> str:
        """What a person calls it: ``§ 94``, ``Protokollet`` or ``Protokollet över
        omedelbart justerade paragrafer``."""
        if not self.is_protocol:
            return f"§ {self.paragraph}"
        return self.kind.swedish.replace("protokoll", "Protokollet", 1)

    def to_json(self) -> dict[str, Any]:
        """The document as the API and ``--json`` outputs show it (docs/api.md); a
        protocol has no paragraph (``null``)."""
        return {
            "kind": self.kind.value,
            "paragraph": None if self.is_protocol else self.paragraph,
            "dnr": self.dnr,
            "title": self.title,
            "version": self.version,
            "status": self.status.value,
            "sha256": self.document_sha256,
            "archive_uri": self.archive_uri,
            "immediate": self.immediate,
        }
