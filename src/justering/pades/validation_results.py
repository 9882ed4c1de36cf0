"""What validating a signed extract or protocol finds (``justering.pades.validate``):
a report for each signature and each document timestamp, and the verdict over all of
them, computed from the problems found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from justering.model.roles import Role
from justering.pades.assurance import UNKNOWN, CertificateAssurance

__all__ = ["DocumentTimestampReport", "ExtractValidation", "SignatureReport"]


@dataclass(frozen=True)
class SignatureReport:
    """What one signature of an extract says and whether it holds."""

    field_name: str
    signer_name: str
    """The certificate's CN."""
    role: Role | None
    """The role the certificate names (its title), None when it names none."""
    signed_at: datetime | None
    """The signing time the signature claims."""
    certificate_fingerprint: str
    intact: bool
    """The digest of the signed bytes matches."""
    valid: bool
    """The cryptographic signature over that digest is correct."""
    trusted: bool
    """The certificate chains to a trust root and was valid at ``validated_at``."""
    covers_whole_file: bool
    """The signed byte range ends at the end of the file."""
    modification_level: str
    """The kind of change made after this signature, by pyHanko's difference
    analysis: ``none``, ``lta_updates``, ``form_filling``, ``annotations`` or ``other``."""
    validated_at: datetime
    """The time the certificate was checked at."""
    timestamped_at: datetime | None = None
    """The time of the signature's RFC 3161 timestamp, None when it has none."""
    timestamp_trusted: bool = False
    """The timestamp is intact, valid and chains to a trust root."""
    long_term: bool = False
    """Checked with the file's long-term validation data, under a document timestamp."""
    assurance: CertificateAssurance = UNKNOWN
    """How the certificate says its signer was identified (link, or a login's level)."""


@dataclass(frozen=True)
class DocumentTimestampReport:
    """One document timestamp (PAdES-LTA) and whether it holds."""

    field_name: str
    timestamped_at: datetime | None
    trusted: bool
    """Intact, valid, and its TSA certificate chains to a trust root at ``validated_at``."""
    validated_at: datetime


@dataclass(frozen=True)
class ExtractValidation:
    """All signatures of an extract, in file order, and every problem found."""

    signatures: tuple[SignatureReport, ...]
    problems: tuple[str, ...]
    document_timestamps: tuple[DocumentTimestampReport, ...] = ()
    """The document timestamps after the signatures, oldest first."""

    @property
    def ok(self) -> bool:
        return not self.problems
