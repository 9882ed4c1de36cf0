"""Archiving a certified extract or a justered protocol: long-term validation data
(with a TSA), a last validation, the bundle written to object storage (the PDF, its
trail, the CA certificates, the certificate of completion, the checksums), and the
``archived`` event.

Archiving is the longest step of a meeting and runs after the certifier's one
request: ``justering serve`` spreads it over its worker processes, one per core
(:mod:`justering.workflow.workers`), so that it is not bound to one core.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from justering.archive.bundle import (
    EXTRACT_CA,
    EXTRACT_COMPLETION,
    EXTRACT_TRAIL,
    EXTRACT_TRAIL_SEAL,
    EXTRACT_TSA_CA,
    Bundle,
    write_bundle,
)
from justering.archive.completion_text import CompletionSubject
from justering.archive.intyg import render_completion
from justering.archive.keys import extract_prefix
from justering.errors import ArchiveError, JusteringError, Refusal, TrailError, WorkflowError
from justering.ledger.database import utcnow
from justering.ledger.extracts import (
    append_event,
    checked_trail,
    get_extract,
    last_event,
    load_document,
    lock_extract,
    store_document,
)
from justering.ledger.leases import WorkLease
from justering.ledger.schema import ExtractRow
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.trail import EventKind, TrailEvent, trail_to_json
from justering.pades.seal import verify_seal
from justering.pades.timestamps import add_long_term_validation
from justering.pades.validate import validate_extract
from justering.workflow.meetings import load_meeting
from justering.workflow.noticeboard import announcement_of
from justering.workflow.protocols import protocol_archive_key, shown_in, span
from justering.workflow.services import Services
from justering.workflow.workers import spread

log = logging.getLogger(__name__)

__all__ = [
    "ArchiveFailure",
    "ArchiveOutcome",
    "archive_certified",
    "archive_extract",
    "archive_if_free",
]


def archive_extract(services: Services, extract_id: int) -> str:
    """Add long-term validation data to a certified extract or a justered protocol
    (with a TSA), validate it, write its bundle (PDF, trail and its seal, CA
    certificates, certificate of completion, checksums) to the archive and record it;
    returns the PDF's URI. Idempotent: a retry neither timestamps nor writes twice. A
    document whose PDF does not validate, or whose trail in the ledger is broken or
    not the one the ledger sealed (:func:`justering.ledger.extracts.checked_trail`),
    is not archived: nothing is written."""
    with services.ledger.reading() as session:
        extract = get_extract(session, extract_id)
        if extract.status is ExtractStatus.ARCHIVED and extract.archive_uri:
            return extract.archive_uri
        if not extract.status.to_archive:
            refusal = (
                Refusal.JUSTERING_INCOMPLETE if extract.kind.is_protocol else Refusal.NOT_CERTIFIED
            )
            raise WorkflowError(refusal, paragraph=extract.paragraph, detail=extract.status.value)
        if extract.kind.is_protocol and announcement_of(session, extract) is None:
            # A protocol is archived as justered once its justering is announced.
            raise WorkflowError(
                Refusal.JUSTERING_INCOMPLETE, paragraph=extract.paragraph, detail="not announced"
            )
        _trail_to_archive(session, extract)
        last = last_event(session, extract.id)
        timestamped = last is not None and last.kind == EventKind.TIMESTAMPED
        head = extract.head_sha256
        pdf = load_document(session, head)
    if services.timestamper is not None and not timestamped:
        pdf = _add_long_term_validation(services, extract_id, head, pdf)
    with services.ledger.reading() as session:
        extract = get_extract(session, extract_id)
        meeting = load_meeting(session, extract.meeting_id)
        trail = _trail_to_archive(session, extract)
        prefix = _prefix(meeting, extract)
        paragraph, head, kind = extract.paragraph, extract.head_sha256, extract.kind
        subject = CompletionSubject(
            kind,
            paragraph,
            extract.dnr,
            extract.title,
            span(shown_in(meeting, kind)) if kind.is_protocol else "",
        )
    validation = validate_extract(
        pdf, services.trust_roots, expected_adjusters=len(meeting.adjusters), roles=kind.roles
    )
    if not validation.ok:
        raise WorkflowError(
            Refusal.DOES_NOT_VALIDATE, paragraph=paragraph, detail="; ".join(validation.problems)
        )
    trail_json = trail_to_json(trail)
    files = {
        subject.pdf_name: pdf,
        EXTRACT_TRAIL: trail_json,
        EXTRACT_CA: services.ca.export_pem().encode(),
        # Issued at the last trail event, not the clock: a retry writes the same bytes.
        EXTRACT_COMPLETION: render_completion(
            meeting,
            subject,
            trail,
            validation,
            hashlib.sha256(pdf).hexdigest(),
            issued_at=trail[-1].at,
        ),
    }
    if services.tsa_root is not None:
        files[EXTRACT_TSA_CA] = services.tsa_root.public_bytes(serialization.Encoding.PEM)
    bundle = _write_sealed(services, prefix, files, trail_json)
    uri = services.archive.uri(f"{bundle.prefix}/{subject.pdf_name}")
    with services.ledger.transaction() as session:
        extract = lock_extract(session, extract_id)
        if extract.status is ExtractStatus.ARCHIVED and extract.archive_uri:
            return extract.archive_uri
        if extract.head_sha256 != head:
            raise WorkflowError(Refusal.CHANGED_WHILE_ARCHIVING, paragraph=paragraph)
        append_event(
            session,
            extract,
            EventKind.ARCHIVED,
            document_sha256=extract.head_sha256,
            detail={"uri": uri, "bundle": services.archive.uri(bundle.prefix)},
        )
        extract.status = ExtractStatus.ARCHIVED
        extract.archive_uri = uri
        extract.updated_at = utcnow()
    return uri


def _prefix(meeting: Meeting, row: ExtractRow) -> str:
    """Where the document's bundle goes: an extract's by body, year, meeting, dnr, date,
    § and version, a protocol's beside them by its version (:mod:`justering.archive.keys`)."""
    if row.kind.is_protocol:
        return protocol_archive_key(meeting, row)
    return extract_prefix(
        meeting.body.code, meeting.date, meeting.meeting_id, row.dnr, row.paragraph, row.version
    )


def _trail_to_archive(session: Session, extract: ExtractRow) -> tuple[TrailEvent, ...]:
    """The extract's trail, refused (``TrailError``) unless its chain holds and its
    head is the one the ledger sealed."""
    events, problems = checked_trail(session, extract)
    if problems:
        raise TrailError(
            f"{extract.ref}: its trail in the ledger is not archived "
            f"({'; '.join(problems)}); nothing was written"
        )
    return events


def _write_sealed(services: Services, prefix: str, files: dict[str, bytes], trail: bytes) -> Bundle:
    """Write the bundle with the municipality's seal on ``trail`` (a timestamp with
    it when a TSA is configured; a TSA that fails raises, and the step is retried).

    A seal is never made twice alike (a fresh signature, a fresh timestamp), and
    archived objects are written once. So a retry that finds the seal of its
    bundle already stored (the bundle was cut off, or its ``archived`` event was
    lost), or an archiver that another one beat to it, keeps the stored seal, as
    long as it seals these very bytes; anything else differing is refused as
    before."""
    stored = _stored_seal(services, prefix, trail)
    seal = stored or services.trail_seal.seal(trail, timestamper=services.timestamper)
    try:
        return write_bundle(services.archive, prefix, {**files, EXTRACT_TRAIL_SEAL: seal})
    except ArchiveError:
        if stored is not None:
            raise
        stored = _stored_seal(services, prefix, trail)
        if stored is None:
            raise
    return write_bundle(services.archive, prefix, {**files, EXTRACT_TRAIL_SEAL: stored})


def _stored_seal(services: Services, prefix: str, trail: bytes) -> bytes | None:
    """The seal stored at ``prefix``, if there is one and it seals ``trail``."""
    key = f"{prefix}/{EXTRACT_TRAIL_SEAL}"
    if services.archive.head(key) is None:
        return None
    seal = services.archive.get(key)
    return seal if verify_seal(trail, seal, services.trust_roots).ok else None


def _add_long_term_validation(services: Services, extract_id: int, head: str, pdf: bytes) -> bytes:
    """Add validation data and a document timestamp (PAdES B-LTA) and record the
    new document. A TSA or revocation source that fails raises, and the step is
    retried; the trail's ``timestamped`` event keeps a retry from doing it twice."""
    assert services.timestamper is not None
    extended = add_long_term_validation(pdf, services.ca, services.timestamper)
    with services.ledger.transaction() as session:
        extract = lock_extract(session, extract_id)
        if extract.head_sha256 != head:
            raise WorkflowError(Refusal.CHANGED_WHILE_ARCHIVING, paragraph=extract.paragraph)
        digest = store_document(session, extract, extended)
        append_event(
            session,
            extract,
            EventKind.TIMESTAMPED,
            document_sha256=digest,
            detail={"tsa": services.settings.tsa_url or ""},
        )
        extract.head_sha256 = digest
        extract.updated_at = utcnow()
    return extended


@dataclass(frozen=True)
class ArchiveFailure:
    """An extract that could not be archived now (the store refused or is down, the
    PDF does not validate): the meeting backs off and tries again later."""

    extract_id: int
    reason: str
    """What went wrong (the error's diagnostics; errors do not cross processes)."""


ArchiveOutcome = str | ArchiveFailure | None
"""The archived PDF's URI; a failure; or None when another process is archiving it."""


def archive_if_free(services: Services, extract_id: int) -> ArchiveOutcome:
    """Archive the extract unless another process is archiving it (its lease)."""
    with WorkLease(services.ledger, f"archive:{extract_id}") as lease:
        if not lease.held:
            return None
        try:
            return archive_extract(services, extract_id)
        except JusteringError as error:
            log.warning("extract %s not archived: %s", extract_id, error.diagnostics())
            return ArchiveFailure(extract_id, error.diagnostics())


def archive_certified(services: Services, extract_ids: Sequence[int]) -> list[ArchiveOutcome]:
    """Archive each extract, in the worker processes when there are some
    (:func:`justering.workflow.workers.spread`); an outcome for each."""
    return list(spread(services, archive_if_free, extract_ids))
