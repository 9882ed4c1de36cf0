"""Validation of a signed extract: every signature, their order, and what came after.

pyHanko checks each signature (digest, cryptography, chain to the trust roots,
and its difference analysis of every later revision); this module adds the
rules of the justering: one chair, then one or two adjusters, then one
certifier, each in the field of its slot, and nothing but signatures after
the first one, and nothing at all after the last.

Bad input never raises: an unreadable file is a problem in the result.

Time, without a TSA: a signer certificate is checked at the time of
validation while it is valid, and at the signing time it claims once it has
expired, so an archived extract still verifies next year. That claimed time is
the signer's own word (the signature service's clock).

Time, with a TSA (``justering.pades.timestamps``): a signature with an RFC 3161
timestamp (PAdES B-T) is checked at the timestamp's time, and the timestamp
itself must be valid and chain to a trust root (the TSA's root is passed with
the caller's ``trust_roots``). Checking a certificate in the past needs proof
that it was not revoked then: a sealed extract (PAdES B-LTA: a DSS and a
document timestamp after the signatures) carries it, a CRL of our CA and the
TSA's revocation data, proven to have existed by the document timestamp. So:

- while the signer certificate is valid and the extract is not sealed, the
  revocation check is soft (as without a TSA);
- once it is sealed, or once the signer certificate has expired, every
  certificate of both chains (signer, TSA) must have revocation data in the
  file: a B-T extract that was never sealed fails once its certificates expire;
- the document timestamps are checked from the last one back: the last at the
  time of validation (so while its TSA certificate is valid), each earlier one
  at the time of the next. Only the embedded data is used, never the network.

After the last signature only validation data (DSS) and document timestamps may
follow, and the file must end with a signature or a document timestamp.
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
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.errors import ValidationInfoReadingError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    SignatureCoverageLevel,
)
from pyhanko_certvalidator import ValidationContext

from justering.model.calendar import local_minute
from justering.model.roles import SIGNING_ORDER, Role
from justering.pades.assurance import assurance_of
from justering.pades.certificates import (
    asn1_certificate,
    common_name,
    fingerprint,
    role_from_certificate,
)
from justering.pades.checks import first_failed_check
from justering.pades.timestamps import (
    UNTRUSTED_TIMESTAMP,
    signature_timestamp_tokens,
    timestamp_time,
)
from justering.pades.validation_results import (
    DocumentTimestampReport,
    ExtractValidation,
    SignatureReport,
)

__all__ = [
    "ACCEPTED_AFTER_LAST_SIGNATURE",
    "ACCEPTED_LATER_CHANGES",
    "MAX_ADJUSTERS",
    "validate_extract",
]

ACCEPTED_LATER_CHANGES = frozenset({"none", "lta_updates", "form_filling"})
"""Modification levels (pyHanko's, lowercased) allowed after a signature:
further signatures in new fields, and validation data (DSS, archive timestamps)."""
ACCEPTED_AFTER_LAST_SIGNATURE = frozenset({"none", "lta_updates"})
"""After the last signature, only validation data and document timestamps."""

MAX_ADJUSTERS = 2
_FIELD_NAME = re.compile(r"Signatur-(?P<role>[a-z]+)-(?P<index>\d+)")


def validate_extract(
    pdf: bytes,
    trust_roots: Sequence[x509.Certificate],
    *,
    expected_adjusters: int | None = None,
    complete: bool = True,
    now: datetime | None = None,
    roles: Sequence[Role] = SIGNING_ORDER,
) -> ExtractValidation:
    """Validate the signatures of ``pdf`` against ``trust_roots`` and the justering rules.

    ``complete=False`` checks an extract still being signed: a missing adjuster
    or certifier is then no problem, as long as no later role has signed.
    ``now`` is the time of validation (default: the clock). ``roles``: who signs
    the document, in order (a protocol: the chair and the adjusters, no certifier).
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
    try:
        evidence = _Evidence.read(reader, roots)
        stamps = asyncio.run(_validate_document_timestamps(reader, found, roots, evidence, moment))
        results = asyncio.run(_validate_all(reader, found, roots, evidence, stamps, moment))
    except (PdfError, ValueError, KeyError, TypeError) as error:
        return ExtractValidation((), (f"the file is not a readable PDF: {error}",))
    reports = tuple(report for _revision, report, _problems in results)
    problems = [problem for stamp in stamps for problem in stamp.problems]
    problems.extend(
        problem for _revision, _report, found_problems in results for problem in found_problems
    )
    problems.extend(_order_problems(reports, expected_adjusters, complete=complete, roles=roles))
    problems.extend(_tail_problems(results, stamps))
    return ExtractValidation(reports, tuple(problems), tuple(stamp.report for stamp in stamps))


@dataclass(frozen=True)
class _Evidence:
    """The file's long-term validation data (its DSS), for validation contexts."""

    certs: tuple[asn1_x509.Certificate, ...] = ()
    crls: tuple[Any, ...] = ()
    ocsps: tuple[Any, ...] = ()

    @classmethod
    def read(cls, reader: PdfFileReader, roots: Sequence[asn1_x509.Certificate]) -> _Evidence:
        try:
            dss = DocumentSecurityStore.read_dss(reader)
        except ValidationInfoReadingError:
            return cls()
        context = dss.as_validation_context({"trust_roots": list(roots)})
        return cls(
            certs=tuple(dss.load_certs()), crls=tuple(context.crls), ocsps=tuple(context.ocsps)
        )

    def context(
        self, roots: Sequence[asn1_x509.Certificate], moment: datetime, *, proven: bool
    ) -> ValidationContext:
        """A context that never fetches.

        ``proven``: every certificate below a trust root must have revocation
        data here, used retroactively (data issued after ``moment`` proves there
        was no revocation before it). Otherwise revocation is not checked: at the
        present moment no archived data can speak for it (it would be stale).
        """
        return ValidationContext(
            trust_roots=list(roots),
            other_certs=list(self.certs),
            crls=list(self.crls) if proven else [],
            ocsps=list(self.ocsps) if proven else [],
            allow_fetching=False,
            moment=moment,
            revocation_mode="require" if proven else "soft-fail",
            retroactive_revinfo=True,
        )


@dataclass(frozen=True)
class _Stamp:
    revision: int
    report: DocumentTimestampReport
    covers_whole_file: bool
    modification_level: str
    problems: tuple[str, ...]


async def _validate_document_timestamps(
    reader: PdfFileReader,
    found: Sequence[tuple[str, Any, Any]],
    roots: Sequence[asn1_x509.Certificate],
    evidence: _Evidence,
    now: datetime,
) -> list[_Stamp]:
    """The document timestamps, oldest first, each checked at the time of the next."""
    embedded: list[tuple[int, str, EmbeddedPdfSignature | None]] = []
    for name, value, field in found:
        if value.get_object().get("/Type") != "/DocTimeStamp":
            continue
        try:
            revision = reader.xrefs.get_last_change(field.get_object().raw_get("/V").reference)
            embedded.append((revision, name, EmbeddedPdfSignature(reader, field, name)))
        except (PdfError, ValueError, KeyError, TypeError, AttributeError):
            embedded.append((-1, name, None))
    stamps: list[_Stamp] = []
    control = now
    for revision, name, signature in sorted(embedded, key=lambda item: item[0], reverse=True):
        # the last one at the present, with no revocation data: none can be current
        context = evidence.context(roots, control, proven=bool(stamps))
        try:
            if signature is None:
                raise ValueError("unreadable timestamp token")
            status = await async_validate_pdf_timestamp(signature, context)
        except (PdfError, ValueError) as error:
            report = DocumentTimestampReport(name, None, False, control)
            problem = f"document timestamp {name}: unreadable ({error})"
            stamps.append(_Stamp(revision, report, False, "other", (problem,)))
            continue
        trusted = status.intact and status.valid and status.trusted
        level = (status.modification_level or ModificationLevel.OTHER).name.lower()
        report = DocumentTimestampReport(name, status.timestamp, trusted, control)
        problems = []
        if not trusted:
            problems.append(f"document timestamp {name}: not trusted ({_untrusted(status)})")
        elif status.timestamp is not None:
            control = status.timestamp
        whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        stamps.append(_Stamp(revision, report, whole, level, tuple(problems)))
    stamps.reverse()
    return stamps


def _untrusted(status: DocumentTimestampStatus) -> str:
    if not status.intact:
        return "the timestamped content was changed"
    if not status.valid:
        return "its signature is invalid"
    return (
        "its TSA certificate does not chain to a trust root valid at the time it is checked "
        "at: is the TSA's root among the trust roots?"
    )


async def _validate_all(
    reader: PdfFileReader,
    found: Sequence[tuple[str, Any, Any]],
    roots: Sequence[asn1_x509.Certificate],
    evidence: _Evidence,
    stamps: Sequence[_Stamp],
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
        # the oldest trusted document timestamp after the signature proves its data existed
        sealed_at = next(
            (
                stamp.report.timestamped_at
                for stamp in stamps
                if stamp.revision > revision and stamp.report.trusted
            ),
            None,
        )
        report, problems = await _validate_one(embedded, roots, evidence, sealed_at, moment)
        results.append((revision, report, problems))
    results.sort(key=lambda result: result[0])
    return results


async def _validate_one(
    signature: EmbeddedPdfSignature,
    roots: Sequence[asn1_x509.Certificate],
    evidence: _Evidence,
    sealed_at: datetime | None,
    now: datetime,
) -> tuple[SignatureReport, list[str]]:
    field = signature.field_name
    try:
        certificate = x509.load_der_x509_certificate(signature.signer_cert.dump())
        claimed = signature.self_reported_timestamp
        tokens = list(signature_timestamp_tokens(signature.signer_info))
        timestamped = timestamp_time(tokens[0]) if tokens else None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return _broken(field, now), [f"signature {field}: unreadable signature ({error})"]
    expired = certificate.not_valid_after_utc < now
    if timestamped is not None:
        moment = timestamped
        # the signature timestamp is proven to exist at the document timestamp, if any
        tsa_context = evidence.context(roots, sealed_at or now, proven=sealed_at is not None)
        if sealed_at is None and expired:
            evidence = _Evidence(certs=evidence.certs)  # nothing proves non-revocation then
        context = evidence.context(roots, moment, proven=sealed_at is not None or expired)
    else:
        moment = claimed if claimed is not None and expired else now
        tsa_context = context = ValidationContext(
            trust_roots=list(roots),
            allow_fetching=False,
            moment=moment,
            revocation_mode="soft-fail",
        )
    try:
        status: PdfSignatureStatus = await async_validate_pdf_signature(
            signature, signer_validation_context=context, ts_validation_context=tsa_context
        )
    except (PdfError, ValueError) as error:
        return _broken(field, moment, certificate), [f"signature {field}: {error}"]
    tst = status.timestamp_validity
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
        timestamped_at=tst.timestamp if tst is not None else timestamped,
        timestamp_trusted=tst is not None and tst.intact and tst.valid and tst.trusted,
        long_term=timestamped is not None and sealed_at is not None,
        assurance=assurance_of(certificate),
    )
    problems = _signature_problems(report, status)
    if timestamped is not None and not report.timestamp_trusted:
        problems.append(f"signature {field}: {UNTRUSTED_TIMESTAMP}")
    return report, problems


def _signature_problems(report: SignatureReport, status: PdfSignatureStatus) -> list[str]:
    field = report.field_name
    failed = first_failed_check(
        report,
        changed=f"signature {field}: the signed content was changed (digest mismatch)",
        invalid=f"signature {field}: the cryptographic signature is invalid",
        untrusted=lambda: _untrusted_signer(report, status),
    )
    problems = [] if failed is None else [failed]
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


def _untrusted_signer(report: SignatureReport, status: PdfSignatureStatus) -> str:
    indication = status.trust_problem_indic
    why = str(indication).rpartition(".")[2].lower() if indication else "unknown"
    if report.timestamped_at is not None and not report.long_term:
        why += (
            "; no proven long-term validation data: the extract has no DSS "
            "under a trusted document timestamp"
        )
    return (
        f"signature {report.field_name}: the certificate of {report.signer_name!r} is not "
        f"trusted at {local_minute(report.validated_at, zone=True)} ({why})"
    )


def _tail_problems(
    results: Sequence[tuple[int, SignatureReport, list[str]]], stamps: Sequence[_Stamp]
) -> list[str]:
    """Only validation data may follow the last signature, and the file ends signed."""
    signed = [(revision, report) for revision, report, _problems in results if revision >= 0]
    if not signed:
        return []
    problems = []
    last_revision, last = signed[-1]
    if last.modification_level not in ACCEPTED_AFTER_LAST_SIGNATURE:
        problems.append(
            f"signature {last.field_name}: the document was changed after the last signature "
            f"by more than validation data ({last.modification_level.replace('_', ' ')})"
        )
    later = [stamp for stamp in stamps if stamp.revision > last_revision]
    if later:
        if not later[-1].covers_whole_file:
            problems.append(
                f"document timestamp {later[-1].report.field_name}: the file goes on after "
                "the last document timestamp (an incremental update that nothing covers "
                "was appended)"
            )
    elif not last.covers_whole_file:
        problems.append(
            f"signature {last.field_name}: the file goes on after the last signature "
            "(an incremental update that no signature covers was appended)"
        )
    return problems


def _order_problems(
    reports: Sequence[SignatureReport],
    expected_adjusters: int | None,
    *,
    complete: bool,
    roles: Sequence[Role],
) -> list[str]:
    if not reports:
        return ["the PDF has no signatures"] if complete else []
    problems = [
        f"signature {report.field_name}: the role {report.role.value} does not sign this "
        "document (a protocol is justered by the chair and the adjusters, not certified)"
        for report in reports
        if report.role is not None and report.role not in roles
    ]
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
    for role in roles:
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
