"""The anslagstavla: the municipality's official notice board.

When the chair and every adjuster have signed an extract, its justering is
complete and must be announced on the notice board no later than the second
day after it (Kommunallagen 8 kap. 12 §). An appeal (laglighetsprövning) must
reach the court within three weeks of the day of the announcement (13 kap. 5 §),
and the announcement stays on the board for that whole period.

:func:`announce` records the announcement as an ``announced`` trail event,
whose detail holds everything the board shows, so the archived trail proves
what was announced and when. :func:`current_notices` is what the board shows
today; :func:`appeal_deadline` applies lagen (1930:173) om beräkning av
lagstadgad tid. Dates are Swedish local dates (Europe/Stockholm).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from justering.errors import Refusal, TrailError, WorkflowError
from justering.ledger.extracts import append_event
from justering.ledger.schema import ExtractRow, TrailEventRow
from justering.model.calendar import appeal_deadline, local_date
from justering.model.meeting import Meeting
from justering.model.roles import Role
from justering.model.trail import EventKind, TrailEvent

__all__ = [
    "Notice",
    "announce",
    "current_notices",
]

# --- recording the announcement --------------------------------------------------------


def _existing_announcement(session: Session, extract: ExtractRow) -> TrailEventRow | None:
    return session.execute(
        select(TrailEventRow).where(
            TrailEventRow.extract_id == extract.id,
            TrailEventRow.kind == EventKind.ANNOUNCED,
            TrailEventRow.version == extract.version,
        )
    ).scalar_one_or_none()


def _justered_at(session: Session, extract: ExtractRow, meeting: Meeting) -> dt.datetime:
    """When the last of the chair and the adjusters signed the current version.
    Refuses an extract whose justering is not complete."""
    signed = {
        row.slot: row.to_event().at
        for row in session.execute(
            select(TrailEventRow).where(
                TrailEventRow.extract_id == extract.id,
                TrailEventRow.kind == EventKind.SIGNED,
                TrailEventRow.version == extract.version,
            )
        ).scalars()
    }
    justerare = meeting.signers(Role.CHAIR) + meeting.signers(Role.ADJUSTER)
    missing = [signer.name for signer in justerare if signer.slot not in signed]
    if missing:
        raise WorkflowError(
            Refusal.JUSTERING_INCOMPLETE,
            paragraph=extract.paragraph,
            detail=f"not signed by {', '.join(missing)}",
        )
    return max(signed[signer.slot] for signer in justerare)


def announce(
    session: Session,
    extract: ExtractRow,
    meeting: Meeting,
    *,
    now: dt.datetime,
    appeal_weeks: int,
) -> TrailEvent:
    """Record that the extract's completed justering is announced on the notice
    board today (``now`` in Swedish time), with its appeal deadline.

    Idempotent per extract version: a second call returns the event already
    recorded. The caller holds the extract's lock (in the transaction that
    recorded the last justering signature). Refuses an extract whose chair or
    adjusters have not all signed its current version.
    """
    if extract.meeting_id != meeting.meeting_id:
        raise ValueError(f"extract {extract.ref} is not from meeting {meeting.meeting_id}")
    existing = _existing_announcement(session, extract)
    if existing is not None:
        return existing.to_event()
    announced_on = local_date(now)
    justered_on = local_date(_justered_at(session, extract, meeting))
    return append_event(
        session,
        extract,
        EventKind.ANNOUNCED,
        document_sha256=extract.head_sha256,
        at=now,
        detail={
            "announced_on": announced_on.isoformat(),
            "appeal_deadline": appeal_deadline(announced_on, appeal_weeks).isoformat(),
            "justered_on": justered_on.isoformat(),
            "body": meeting.body.name,
            "meeting_date": meeting.date.isoformat(),
            "municipality": meeting.municipality,
            "kept_at": meeting.place,
        },
    )


# --- what the board shows ---------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One announced extract, as the notice board shows it."""

    extract: str
    """The extract's stable reference, ``<meeting_id>/<paragraph>``."""
    version: int
    meeting_id: str
    municipality: str
    body: str
    meeting_date: dt.date
    paragraph: int
    dnr: str | None
    title: str
    justered_on: dt.date
    announced_on: dt.date
    appeal_deadline: dt.date
    """The last day an appeal can reach the court; the notice stays up until then."""
    kept_at: str
    """Where the minutes are kept (förvaringsplats för protokollet)."""
    archive_uri: str | None

    @property
    def taken_down_on(self) -> dt.date:
        """The day the notice leaves the board: the day after the appeal deadline."""
        return self.appeal_deadline + dt.timedelta(days=1)


def current_notices(session: Session, *, today: dt.date) -> list[Notice]:
    """Every announcement whose appeal deadline is ``today`` or later, newest first
    (then by meeting and §). An extract redrafted since its announcement has none.

    One query, whatever the size of the ledger: the board's content is in the
    ``announced`` events' detail.
    """
    deadline = TrailEventRow.detail["appeal_deadline"].as_string()
    rows = session.execute(
        select(
            TrailEventRow.detail,
            ExtractRow.meeting_id,
            ExtractRow.paragraph,
            ExtractRow.version,
            ExtractRow.dnr,
            ExtractRow.title,
            ExtractRow.archive_uri,
        )
        .join(ExtractRow, ExtractRow.id == TrailEventRow.extract_id)
        .where(
            TrailEventRow.kind == EventKind.ANNOUNCED,
            TrailEventRow.version == ExtractRow.version,
            deadline >= today.isoformat(),
        )
    ).all()
    notices = [_notice(*row) for row in rows]
    notices.sort(key=lambda n: (n.meeting_id, n.paragraph))
    notices.sort(key=lambda n: (n.announced_on, n.meeting_date), reverse=True)
    return notices


def _notice(
    detail: dict[str, str],
    meeting_id: str,
    paragraph: int,
    version: int,
    dnr: str | None,
    title: str,
    archive_uri: str | None,
) -> Notice:
    try:
        return Notice(
            extract=f"{meeting_id}/{paragraph}",
            version=version,
            meeting_id=meeting_id,
            municipality=detail["municipality"],
            body=detail["body"],
            meeting_date=dt.date.fromisoformat(detail["meeting_date"]),
            paragraph=paragraph,
            dnr=dnr,
            title=title,
            justered_on=dt.date.fromisoformat(detail["justered_on"]),
            announced_on=dt.date.fromisoformat(detail["announced_on"]),
            appeal_deadline=dt.date.fromisoformat(detail["appeal_deadline"]),
            kept_at=detail["kept_at"],
            archive_uri=archive_uri,
        )
    except (KeyError, ValueError) as error:
        raise TrailError(
            f"the announcement of {meeting_id}/{paragraph} is malformed: {error!r}"
        ) from None
