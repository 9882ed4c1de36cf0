"""One extract as every reader sees it: the signer's page, the meeting system's
API, the secretary's and archivist's views, the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from justering.model.process import ExtractStatus

__all__ = ["ExtractSummary"]


@dataclass(frozen=True)
class ExtractSummary:
    """Where one paragraph's extract stands (its current version)."""

    extract_id: int
    meeting_id: str
    paragraph: int
    dnr: str | None
    title: str
    version: int
    status: ExtractStatus
    document_sha256: str
    """The newest document of the current version (each signature makes a new one)."""
    archive_uri: str | None = None
    immediate: bool = False
    """Under omedelbar justering (justered at the meeting itself)."""

    @property
    def ref(self) -> str:
        """The extract's stable reference in trails: ``<meeting_id>/<paragraph>``."""
        return f"{self.meeting_id}/{self.paragraph}"

    def to_json(self) -> dict[str, Any]:
        """The extract as the API and ``--json`` outputs show it (docs/api.md)."""
        return {
            "paragraph": self.paragraph,
            "dnr": self.dnr,
            "title": self.title,
            "version": self.version,
            "status": self.status.value,
            "sha256": self.document_sha256,
            "archive_uri": self.archive_uri,
            "immediate": self.immediate,
        }
