"""Drafting: every paragraph of a recorded meeting rendered as version 1 of its
extract, recorded with its ``drafted`` event."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from justering.documents.rendering import render_extract
from justering.errors import NotFoundError
from justering.ledger.database import utcnow
from justering.ledger.extracts import append_event, store_document
from justering.ledger.leases import WorkLease
from justering.ledger.schema import ExtractRow, MeetingRow
from justering.model.process import ExtractStatus
from justering.model.trail import EventKind
from justering.workflow.meetings import get_meeting, load_meeting
from justering.workflow.services import Services

__all__ = ["draft_extract", "draft_meeting"]


def _extract_id(session: Session, meeting_id: str, paragraph_number: int) -> int | None:
    return session.execute(
        select(ExtractRow.id).where(
            ExtractRow.meeting_id == meeting_id, ExtractRow.paragraph == paragraph_number
        )
    ).scalar_one_or_none()


def draft_extract(services: Services, meeting_id: str, paragraph_number: int) -> int:
    """Render and record version 1 of a paragraph's extract (idempotent); its id."""
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        existing = _extract_id(session, meeting_id, paragraph_number)
    if existing is not None:
        return existing
    paragraph = meeting.paragraph(paragraph_number)
    if paragraph is None:
        raise NotFoundError("paragraph", f"§ {paragraph_number} of {meeting_id}")
    pdf = render_extract(meeting, paragraph, version=1)
    try:
        with services.ledger.transaction() as session:
            existing = _extract_id(session, meeting_id, paragraph_number)
            if existing is not None:
                return existing
            extract = ExtractRow(
                meeting_id=meeting_id,
                paragraph=paragraph_number,
                dnr=paragraph.dnr,
                title=paragraph.title,
                version=1,
                status=ExtractStatus.AWAITING_CHAIR,
                head_sha256="",
                updated_at=utcnow(),
            )
            session.add(extract)
            session.flush()
            extract.head_sha256 = store_document(session, extract, pdf)
            client = session.execute(
                select(MeetingRow.client).where(MeetingRow.meeting_id == meeting_id)
            ).scalar_one()
            append_event(
                session,
                extract,
                EventKind.DRAFTED,
                document_sha256=extract.head_sha256,
                # Who started the meeting: a registered meeting system, or the operator.
                detail={"started_by": f"client:{client}" if client else "command line"},
            )
            return extract.id
    except IntegrityError:  # drafted concurrently by another advance: that one stands
        with services.ledger.reading() as session:
            existing = _extract_id(session, meeting_id, paragraph_number)
        if existing is None:
            raise
        return existing


def draft_meeting(services: Services, meeting_id: str) -> tuple[int, ...] | None:
    """Draft every paragraph of the meeting not drafted yet, those under omedelbar
    justering first; the new extracts' ids. None if another process is drafting the
    meeting now (a lease in the ledger): the work is not done twice."""
    meeting = get_meeting(services, meeting_id)
    with services.ledger.reading() as session:
        existing = set(
            session.execute(
                select(ExtractRow.paragraph).where(ExtractRow.meeting_id == meeting_id)
            ).scalars()
        )
    missing = sorted(
        (p for p in meeting.paragraphs if p.number not in existing),
        key=lambda p: (not p.immediate, p.number),
    )
    if not missing:
        return ()
    with WorkLease(services.ledger, f"draft:{meeting_id}") as lease:
        if not lease.held:
            return None
        drafted = []
        for paragraph in missing:
            drafted.append(draft_extract(services, meeting_id, paragraph.number))
            lease.renew()
        return tuple(drafted)
