"""Drafting: every paragraph of a recorded meeting rendered as version 1 of its
extract, and the meeting's protocols as version 1 of theirs, each recorded with its
``drafted`` event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from justering.documents.rendering import render_extract
from justering.errors import NotFoundError
from justering.ledger.database import utcnow
from justering.ledger.extracts import append_event, store_document
from justering.ledger.leases import WorkLease
from justering.ledger.schema import ExtractRow, MeetingRow
from justering.model.meeting import Meeting
from justering.model.minutes import Paragraph
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.trail import EventKind
from justering.workflow.meetings import get_meeting, load_meeting
from justering.workflow.protocols import (
    current_paragraphs,
    new_protocol_row,
    protocol_kinds,
    render_protocol_version,
)
from justering.workflow.services import Services
from justering.workflow.workers import chunked, spread

__all__ = ["draft_extract", "draft_meeting", "draft_protocol"]


def _extract_id(
    session: Session, meeting_id: str, paragraph_number: int, kind: DocumentKind
) -> int | None:
    return session.execute(
        select(ExtractRow.id).where(
            ExtractRow.meeting_id == meeting_id,
            ExtractRow.kind == kind,
            ExtractRow.paragraph == paragraph_number,
        )
    ).scalar_one_or_none()


def draft_extract(services: Services, meeting_id: str, paragraph_number: int) -> int:
    """Render and record version 1 of a paragraph's extract (idempotent); its id."""
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        existing = _extract_id(session, meeting_id, paragraph_number, DocumentKind.EXTRACT)
    if existing is not None:
        return existing
    paragraph = meeting.paragraph(paragraph_number)
    if paragraph is None:
        raise NotFoundError("paragraph", f"§ {paragraph_number} of {meeting_id}")
    row = _extract_row(meeting_id, paragraph)
    return _record_draft(services, row, render_extract(meeting, paragraph, version=1))


def draft_protocol(services: Services, meeting_id: str, kind: DocumentKind) -> int:
    """Render and record version 1 of one of the meeting's protocols (idempotent), from
    the paragraphs' current texts (one may have been redrafted before it); its id."""
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        existing = _extract_id(session, meeting_id, 0, kind)
        paragraphs = current_paragraphs(session, meeting)
    if existing is not None:
        return existing
    pdf = render_protocol_version(meeting, kind, paragraphs, 1)
    return _record_draft(services, new_protocol_row(meeting, kind, utcnow()), pdf)


def _extract_row(meeting_id: str, paragraph: Paragraph) -> ExtractRow:
    """Version 1 of a paragraph's extract, before its document is stored."""
    return ExtractRow(
        meeting_id=meeting_id,
        kind=DocumentKind.EXTRACT,
        paragraph=paragraph.number,
        dnr=paragraph.dnr,
        title=paragraph.title,
        version=1,
        status=ExtractStatus.AWAITING_CHAIR,
        head_sha256="",
        updated_at=utcnow(),
    )


def _record_draft(services: Services, row: ExtractRow, pdf: bytes) -> int:
    """Record ``row`` (version 1) with ``pdf``; the id of the row that stands."""
    try:
        with services.ledger.transaction() as session:
            existing = _extract_id(session, row.meeting_id, row.paragraph, row.kind)
            if existing is not None:
                return existing
            session.add(row)
            session.flush()
            row.head_sha256 = store_document(session, row, pdf)
            client = session.execute(
                select(MeetingRow.client).where(MeetingRow.meeting_id == row.meeting_id)
            ).scalar_one()
            append_event(
                session,
                row,
                EventKind.DRAFTED,
                document_sha256=row.head_sha256,
                # Who started the meeting: a registered meeting system, or the operator.
                detail={"started_by": f"client:{client}" if client else "command line"},
            )
            return row.id
    except IntegrityError:  # drafted concurrently by another advance: that one stands
        with services.ledger.reading() as session:
            existing = _extract_id(session, row.meeting_id, row.paragraph, row.kind)
        if existing is None:
            raise
        return existing


def draft_meeting(services: Services, meeting_id: str) -> tuple[int, ...] | None:
    """Draft every paragraph of the meeting not drafted yet, those under omedelbar
    justering first, then its protocols; the new documents' ids. None if another
    process is drafting the meeting now (a lease in the ledger): the work is not done
    twice. The documents are rendered in the service's worker processes, if it has
    some, and recorded here in that order."""
    meeting = get_meeting(services, meeting_id)
    with services.ledger.reading() as session:
        existing = {
            (kind, paragraph)
            for kind, paragraph in session.execute(
                select(ExtractRow.kind, ExtractRow.paragraph).where(
                    ExtractRow.meeting_id == meeting_id
                )
            )
        }
        paragraphs = current_paragraphs(session, meeting)
    missing = sorted(
        (p for p in meeting.paragraphs if (DocumentKind.EXTRACT, p.number) not in existing),
        key=lambda p: (not p.immediate, p.number),
    )
    protocols = [kind for kind in protocol_kinds(meeting) if (kind, 0) not in existing]
    if not missing and not protocols:
        return ()
    jobs = [
        *(
            _Rendering(meeting, DocumentKind.EXTRACT, tuple(p.number for p in piece))
            for piece in chunked(missing, services)
        ),
        *(_Rendering(meeting, kind, paragraphs=paragraphs) for kind in protocols),
    ]
    with WorkLease(services.ledger, f"draft:{meeting_id}") as lease:
        if not lease.held:
            return None
        drafted = []
        for job, pdfs in zip(jobs, spread(services, _render, jobs), strict=True):
            for row, pdf in zip(job.rows(), pdfs, strict=True):
                drafted.append(_record_draft(services, row, pdf))
                lease.renew()
        return tuple(drafted)


@dataclass(frozen=True)
class _Rendering:
    """A piece of a meeting's drafting: the extracts of paragraphs ``numbers``, or the
    protocol of ``kind`` from ``paragraphs`` (their current texts)."""

    meeting: Meeting
    kind: DocumentKind
    numbers: tuple[int, ...] = ()
    paragraphs: Mapping[int, Paragraph] = field(default_factory=dict)

    def rows(self) -> list[ExtractRow]:
        """The rows of version 1 of the documents, in the order of their renderings."""
        if self.kind.is_protocol:
            return [new_protocol_row(self.meeting, self.kind, utcnow())]
        paragraphs = {p.number: p for p in self.meeting.paragraphs}
        return [_extract_row(self.meeting.meeting_id, paragraphs[n]) for n in self.numbers]


def _render(services: Services, job: _Rendering) -> list[bytes]:
    """The documents of ``job`` (in a worker process, when the service has some)."""
    del services  # rendering needs nothing but the meeting
    if job.kind.is_protocol:
        return [render_protocol_version(job.meeting, job.kind, job.paragraphs, 1)]
    paragraphs = {p.number: p for p in job.meeting.paragraphs}
    return [render_extract(job.meeting, paragraphs[n], version=1) for n in job.numbers]
