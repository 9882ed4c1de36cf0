"""Where things stand: a meeting's extracts and protocols, and which meetings still
have work."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select

from justering.ledger.database import utcnow
from justering.ledger.schema import ExtractRow, MeetingRow
from justering.model.extract import ExtractSummary
from justering.model.process import DocumentKind, ExtractStatus
from justering.workflow.meetings import load_meeting
from justering.workflow.services import Services

__all__ = [
    "meeting_summaries",
    "meetings_needing_work",
    "protocol_summaries",
    "unfinished_meetings",
]


def meeting_summaries(services: Services, meeting_id: str) -> tuple[ExtractSummary, ...]:
    """The meeting's extracts by §; ``NotFoundError`` for an unknown meeting."""
    return _summaries(services, meeting_id, protocols=False)


def protocol_summaries(services: Services, meeting_id: str) -> tuple[ExtractSummary, ...]:
    """The meeting's drafted protocols, the omedelbar justering's first;
    ``NotFoundError`` for an unknown meeting."""
    return _summaries(services, meeting_id, protocols=True)


def _summaries(
    services: Services, meeting_id: str, *, protocols: bool
) -> tuple[ExtractSummary, ...]:
    kind = (
        ExtractRow.kind != DocumentKind.EXTRACT
        if protocols
        else (ExtractRow.kind == DocumentKind.EXTRACT)
    )
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        rows = session.execute(
            select(ExtractRow)
            .where(ExtractRow.meeting_id == meeting_id, kind)
            .order_by(ExtractRow.paragraph, ExtractRow.kind.desc())
        ).scalars()
        return tuple(r.summary(immediate=r.paragraph in meeting.immediate_numbers) for r in rows)


def unfinished_meetings(services: Services) -> tuple[str, ...]:
    """Meetings with an extract not yet archived, or not yet drafted at all."""
    with services.ledger.reading() as session:
        meetings = set(session.execute(select(MeetingRow.meeting_id)).scalars())
        drafted = set(session.execute(select(ExtractRow.meeting_id).distinct()).scalars())
        open_ = set(
            session.execute(
                select(ExtractRow.meeting_id)
                .where(ExtractRow.status != ExtractStatus.ARCHIVED)
                .distinct()
            ).scalars()
        )
        return tuple(sorted((meetings - drafted) | open_))


def meetings_needing_work(services: Services, *, now: dt.datetime | None = None) -> tuple[str, ...]:
    """Meetings with something recorded since their last complete advance (a new
    meeting, a signature): what the reconciler nudges after a restart or a failure.
    A meeting whose advances keep failing is left out until its back-off has run out."""
    moment = now or utcnow()
    with services.ledger.reading() as session:
        return tuple(
            session.execute(
                select(MeetingRow.meeting_id)
                .where(
                    MeetingRow.work_requested > MeetingRow.work_done,
                    or_(MeetingRow.retry_after.is_(None), MeetingRow.retry_after <= moment),
                )
                .order_by(MeetingRow.created_at)
            ).scalars()
        )
