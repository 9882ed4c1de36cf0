"""Validation of a signed extract: every signature, their order, and what came after.

pyHanko checks each signature (digest, cryptography, chain to the trust roots,
and its difference analysis of every later revision); this module adds the
rules of the justering: one chair, then one or two adjusters, then one
certifier, each in the field of its slot, and nothing but signatures after
the first one, and nothing at all after the last.

Bad input never raises: an unreadable file is a problem in the result.

Time: a signer certificate is checked at the time of validation while it is
valid, and at the signing time it claims once it has expired, so an archived
extract still verifies next year. That claimed time is the signer's own word
(the signature service's clock). When timestamps are configured, each
signature carries an RFC 3161 timestamp and the TSA's time replaces the
claimed one here; with PAdES-LTA archive timestamps the whole file is then
re-validated at the last archive timestamp instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from justering.pki import asn1_certificate, common_name, fingerprint, role_from_certificate
from justering.roles import SIGNING_ORDER, Role

ACCEPTED_LATER_CHANGES = frozenset({"none", "lta_updates", "form_filling"})
"""Modification levels (pyHanko's, lowercased) allowed after a signature:
further signatures in new fields, and validation data (DSS, archive timestamps)."""

MAX_ADJUSTERS = 2
_FIELD_NAME = re.compile(r"Signatur-(?P<role>[a-z]+)-(?P<index>\d+)")


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


@dataclass(frozen=True)
class ExtractValidation:
    """All signatures of an extract, in file order, and every problem found."""

    signatures: tuple[SignatureReport, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_extract(
    pdf: bytes,
    trust_roots: Sequence[x509.Certificate],
    *,
    expected_adjusters: int | None = None,
    complete: bool = True,
    now: datetime | None = None,
) -> ExtractValidation:
    """Validate the signatures of ``pdf`` against ``trust_roots`` and the justering rules.

    ``complete=False`` checks an extract still being signed: a missing adjuster
    or certifier is then no problem, as long as no later role has signed.
    ``now`` is the time of validation (default: the clock).
    """
    if not trust_roots:
        raise ValueError("validate_extract needs at least one trust root")
    moment = now or datetime.now(UTC)
    if pdf.lstrip()[:5] != b"%PDF-":
        return ExtractValidation((), ("the file is not a PDF (no %PDF- header)",))
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        found = list(fields.enumerate_sig_fields(reader, filled_status=True))
    except (PdfError, ValueError, KeyError, TypeError) as error:
        return ExtractValidation((), (f"the file is not a readable PDF: {error}",))
    roots = [asn1_certificate(root) for root in trust_roots]
    results = asyncio.run(_validate_all(reader, found, roots, moment))
    reports = tuple(report for _revision, report, _problems in results)
    problems = [
        problem for _revision, _report, found_problems in results for problem in found_problems
    ]
    problems.extend(_order_problems(reports, expected_adjusters, complete=complete))
    if reports and not reports[-1].covers_whole_file:
        problems.append(
            f"signature {reports[-1].field_name}: the file goes on after the last signature "
            "(an incremental update that no signature covers was appended)"
        )
    return ExtractValidation(reports, tuple(problems))


async def _validate_all(
    reader: PdfFileReader,
    found: Sequence[tuple[str, Any, Any]],
    roots: Sequence[asn1_x509.Certificate],
    moment: datetime,
) -> list[tuple[int, SignatureReport, list[str]]]:
    """Each signature's report and problems, in the order they were added to the file."""
    results = []
    for name, value, field in found:
        if value.get_object().get("/Type") == "/DocTimeStamp":
            continue  # validation data (PAdES-LTA), not a signer
        try:
            revision = reader.xrefs.get_last_change(field.get_object().raw_get("/V").reference)
            embedded = EmbeddedPdfSignature(reader, field, name)
        except (PdfError, ValueError, KeyError, TypeError, AttributeError) as error:
            problem = f"signature {name}: unreadable signature ({error})"
            results.append((-1, _broken(name, moment), [problem]))
            continue
        report, problems = await _validate_one(embedded, roots, moment)
        results.append((revision, report, problems))
    results.sort(key=lambda result: result[0])
    return results


async def _validate_one(
    signature: EmbeddedPdfSignature,
    roots: Sequence[asn1_x509.Certificate],
    now: datetime,
) -> tuple[SignatureReport, list[str]]:
    field = signature.field_name
    try:
        certificate = x509.load_der_x509_certificate(signature.signer_cert.dump())
        claimed = signature.self_reported_timestamp
    except (ValueError, KeyError, TypeError) as error:
        return _broken(field, now), [f"signature {field}: unreadable signature ({error})"]
    moment = now
    if claimed is not None and certificate.not_valid_after_utc < now:
        moment = claimed
    context = ValidationContext(
        trust_roots=list(roots), allow_fetching=False, moment=moment, revocation_mode="soft-fail"
    )
    try:
        status: PdfSignatureStatus = await async_validate_pdf_signature(
            signature, signer_validation_context=context
        )
    except (PdfError, ValueError) as error:
        return _broken(field, moment, certificate), [f"signature {field}: {error}"]
    level = status.modification_level
    report = SignatureReport(
        field_name=field,
        signer_name=common_name(certificate),
        role=role_from_certificate(certificate),
        signed_at=claimed,
        certificate_fingerprint=fingerprint(certificate),
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        modification_level=(level or ModificationLevel.OTHER).name.lower(),
        validated_at=moment,
    )
    return report, _signature_problems(report, status)


def _signature_problems(report: SignatureReport, status: PdfSignatureStatus) -> list[str]:
    field = report.field_name
    problems = []
    if not report.intact:
        problems.append(f"signature {field}: the signed content was changed (digest mismatch)")
    elif not report.valid:
        problems.append(f"signature {field}: the cryptographic signature is invalid")
    elif not report.trusted:
        indication = status.trust_problem_indic
        why = str(indication).rpartition(".")[2].lower() if indication else "unknown"
        problems.append(
            f"signature {field}: the certificate of {report.signer_name!r} is not trusted "
            f"at {report.validated_at:%Y-%m-%d %H:%M} UTC ({why})"
        )
    if report.role is None:
        problems.append(f"signature {field}: the certificate names no justering role")
    else:
        match = _FIELD_NAME.fullmatch(field)
        if match is None or match["role"] != report.role.value:
            problems.append(
                f"signature {field}: the certificate is for the role "
                f"{report.role.value}, which does not sign in this field"
            )
    if report.modification_level not in ACCEPTED_LATER_CHANGES:
        problems.append(
            f"signature {field}: the document was changed after it by more than further "
            f"signatures ({report.modification_level.replace('_', ' ')})"
        )
    return problems


def _order_problems(
    reports: Sequence[SignatureReport], expected_adjusters: int | None, *, complete: bool
) -> list[str]:
    if not reports:
        return ["the PDF has no signatures"] if complete else []
    problems = []
    highest: tuple[int, SignatureReport] | None = None
    for report in reports:
        if report.role is None:
            continue
        rank = _rank(report.role)
        if highest is not None and rank < highest[0]:
            earlier = highest[1]
            problems.append(
                f"signature {report.field_name} ({report.role.value}) comes after "
                f"{earlier.field_name} ({earlier.role}): the chair signs first, "
                "then the adjusters, then the certifier"
            )
        else:
            highest = (rank, report)
    by_role = {role: [r for r in reports if r.role is role] for role in SIGNING_ORDER}
    latest = max((_rank(r.role) for r in reports if r.role is not None), default=-1)
    for role in (Role.CHAIR, Role.CERTIFIER):
        fields = [r.field_name for r in by_role[role]]
        if len(fields) > 1:
            problems.append(f"more than one {role.value} signature: {', '.join(fields)}")
    for role in SIGNING_ORDER:
        if not by_role[role] and (complete or _rank(role) < latest):
            problems.append(f"no {role.value} signature")
    adjusters = by_role[Role.ADJUSTER]
    names = [r.signer_name for r in adjusters]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"adjuster {name!r} signed more than once")
    if len(adjusters) > MAX_ADJUSTERS:
        problems.append(f"{len(adjusters)} adjuster signatures; an extract has at most two")
    counted = complete or bool(by_role[Role.CERTIFIER])
    if expected_adjusters is not None and counted and len(adjusters) != expected_adjusters:
        problems.append(
            f"expected {expected_adjusters} adjuster signature(s), found {len(adjusters)}"
        )
    return problems


def _rank(role: Role) -> int:
    return SIGNING_ORDER.index(role)


def _broken(
    field: str, moment: datetime, certificate: x509.Certificate | None = None
) -> SignatureReport:
    return SignatureReport(
        field_name=field,
        signer_name=common_name(certificate) if certificate else "",
        role=role_from_certificate(certificate) if certificate else None,
        signed_at=None,
        certificate_fingerprint=fingerprint(certificate) if certificate else "",
        intact=False,
        valid=False,
        trusted=False,
        covers_whole_file=False,
        modification_level="other",
        validated_at=moment,
    )
