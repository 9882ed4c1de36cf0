"""The anslagstavla: the municipality's official notice board.

When the chair and every adjuster have signed a protocol, it is justered, and the
justering must be announced on the notice board no later than the second day after
it (Kommunallagen 8 kap. 12 §), saying where the protocol is kept (its
förvaringsplats). An appeal (laglighetsprövning) must reach the court within three
weeks of the day of the announcement (13 kap. 5 §), and the announcement stays on
the board for that whole period. The protocol is what is announced, never a
paragraph on its own, except the paragraphs under omedelbar justering (5 kap. 70 §),
whose small protocol is announced when it is justered, on its own.

:func:`announce` records the announcement as an ``announced`` event on the
protocol's trail, whose detail holds everything the board shows, so the archived
trail proves what was announced and when; a justering after its last day is marked
as late there. :func:`current_notices` is what the board shows today. Dates are
Swedish local dates (Europe/Stockholm).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from justering.config import Settings
from justering.errors import Refusal, TrailError, WorkflowError
from justering.ledger.extracts import append_event
from justering.ledger.schema import ExtractRow, TrailEventRow
from justering.model.calendar import announcement_deadline, appeal_deadline, local_date
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind
from justering.model.roles import Role
from justering.model.trail import EventKind, TrailEvent
from justering.workflow.meetings import deadline_of, is_late, kept_at_of

__all__ = [
    "Notice",
    "NoticeParagraph",
    "announce",
    "announcement_of",
    "current_notices",
    "paragraph_numbers",
]

# --- recording the announcement --------------------------------------------------------


def announcement_of(session: Session, protocol: ExtractRow) -> TrailEventRow | None:
    """The announcement of the protocol's current version, if it was announced."""
    return session.execute(
        select(TrailEventRow).where(
            TrailEventRow.extract_id == protocol.id,
            TrailEventRow.kind == EventKind.ANNOUNCED,
            TrailEventRow.version == protocol.version,
        )
    ).scalar_one_or_none()


def _justered_at(session: Session, protocol: ExtractRow, meeting: Meeting) -> dt.datetime:
    """When the last of the chair and the adjusters signed the current version.
    Refuses a protocol whose justering is not complete."""
    signed = {
        row.slot: row.to_event().at
        for row in session.execute(
            select(TrailEventRow).where(
                TrailEventRow.extract_id == protocol.id,
                TrailEventRow.kind == EventKind.SIGNED,
                TrailEventRow.version == protocol.version,
            )
        ).scalars()
    }
    justerare = meeting.signers(Role.CHAIR) + meeting.signers(Role.ADJUSTER)
    missing = [signer.name for signer in justerare if signer.slot not in signed]
    if missing:
        raise WorkflowError(
            Refusal.JUSTERING_INCOMPLETE, detail=f"not signed by {', '.join(missing)}"
        )
    return max(signed[signer.slot] for signer in justerare)


def paragraph_numbers(numbers: Sequence[int]) -> str:
    """``94,95,96``: the paragraphs of an announcement, as its detail stores them."""
    return ",".join(str(number) for number in numbers)


def announce(
    session: Session,
    protocol: ExtractRow,
    meeting: Meeting,
    settings: Settings,
    *,
    now: dt.datetime,
) -> TrailEvent:
    """Record that the protocol's justering is announced on the notice board today
    (``now`` in Swedish time), with its appeal deadline and förvaringsplats, and
    whether it came after the justering's last day (``late``).

    Idempotent per protocol version: a second call returns the event already
    recorded. The caller holds the protocol's lock (in the transaction that recorded
    its last justering signature). Refuses an extract, and a protocol whose chair or
    adjusters have not all signed its current version.
    """
    if protocol.meeting_id != meeting.meeting_id:
        raise ValueError(f"{protocol.ref} is not from meeting {meeting.meeting_id}")
    if not protocol.kind.is_protocol:
        raise ValueError(f"{protocol.ref} is an extract: only a protocol is announced")
    existing = announcement_of(session, protocol)
    if existing is not None:
        return existing.to_event()
    immediate = protocol.kind is DocumentKind.IMMEDIATE_PROTOCOL
    announced_on = local_date(now)
    justered_on = local_date(_justered_at(session, protocol, meeting))
    deadline = deadline_of(meeting, settings, immediate=immediate)
    justered = [p.number for p in meeting.paragraphs if p.immediate == immediate]
    return append_event(
        session,
        protocol,
        EventKind.ANNOUNCED,
        document_sha256=protocol.head_sha256,
        at=now,
        detail={
            "announced_on": announced_on.isoformat(),
            "announce_by": announcement_deadline(justered_on).isoformat(),
            "appeal_deadline": appeal_deadline(announced_on).isoformat(),
            "justered_on": justered_on.isoformat(),
            "justering_deadline": deadline.isoformat(),
            "late": "true" if is_late(justered_on, deadline) else "false",
            "body": meeting.body.name,
            "meeting_date": meeting.date.isoformat(),
            "municipality": meeting.municipality,
            "kept_at": kept_at_of(meeting, settings),
            "paragraphs": paragraph_numbers(justered),
            "immediate_paragraphs": ""
            if immediate
            else paragraph_numbers(sorted(meeting.immediate_numbers)),
        },
    )


# --- what the board shows ---------------------------------------------------------------


@dataclass(frozen=True)
class NoticeParagraph:
    """A paragraph of an announced protocol, as the board lists it."""

    number: int
    dnr: str | None
    title: str


@dataclass(frozen=True)
class Notice:
    """One announced protocol, as the notice board shows it."""

    reference: str
    """The protocol's stable reference, ``<meeting_id>/protokoll`` (or ``/protokoll-omedelbar``)."""
    version: int
    meeting_id: str
    municipality: str
    body: str
    meeting_date: dt.date
    immediate: bool
    """The small protocol of the paragraphs under omedelbar justering."""
    paragraphs: tuple[NoticeParagraph, ...]
    """The paragraphs this announcement's justering covers."""
    immediate_paragraphs: tuple[int, ...]
    """(The protocol.) Paragraphs justered at once, and announced on their own."""
    justered_on: dt.date
    announced_on: dt.date
    appeal_deadline: dt.date
    """The last day an appeal can reach the court; the notice stays up until then."""
    kept_at: str
    """Where the protocol is kept (förvaringsplats för protokollet)."""
    archive_uri: str | None

    @property
    def taken_down_on(self) -> dt.date:
        """The day the notice leaves the board: the day after the appeal deadline."""
        return self.appeal_deadline + dt.timedelta(days=1)


def current_notices(session: Session, *, today: dt.date) -> list[Notice]:
    """Every announcement whose appeal deadline is ``today`` or later, newest first
    (then by meeting, the omedelbar justering first). A protocol re-rendered since its
    announcement (it cannot be: a justered protocol is not redrafted) would have none.

    Two queries, whatever the size of the ledger: the announcements (their detail
    holds the board's content) and the titles of their paragraphs.
    """
    deadline = TrailEventRow.detail["appeal_deadline"].as_string()
    rows = session.execute(
        select(
            TrailEventRow.detail,
            ExtractRow.meeting_id,
            ExtractRow.kind,
            ExtractRow.version,
            ExtractRow.archive_uri,
        )
        .join(ExtractRow, ExtractRow.id == TrailEventRow.extract_id)
        .where(
            TrailEventRow.kind == EventKind.ANNOUNCED,
            TrailEventRow.version == ExtractRow.version,
            ExtractRow.kind != DocumentKind.EXTRACT,
            deadline >= today.isoformat(),
        )
    ).all()
    titles = _paragraph_titles(session, {row.meeting_id for row in rows})
    notices = [_notice(*row, titles) for row in rows]
    notices.sort(key=lambda n: (n.meeting_id, not n.immediate))
    notices.sort(key=lambda n: (n.announced_on, n.meeting_date), reverse=True)
    return notices


def _paragraph_titles(
    session: Session, meeting_ids: set[str]
) -> dict[tuple[str, int], NoticeParagraph]:
    if not meeting_ids:
        return {}
    found = session.execute(
        select(ExtractRow.meeting_id, ExtractRow.paragraph, ExtractRow.dnr, ExtractRow.title).where(
            ExtractRow.meeting_id.in_(sorted(meeting_ids)),
            ExtractRow.kind == DocumentKind.EXTRACT,
        )
    )
    return {
        (meeting_id, number): NoticeParagraph(number, dnr, title)
        for meeting_id, number, dnr, title in found
    }


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def _notice(
    detail: dict[str, str],
    meeting_id: str,
    kind: DocumentKind,
    version: int,
    archive_uri: str | None,
    titles: dict[tuple[str, int], NoticeParagraph],
) -> Notice:
    try:
        return Notice(
            reference=f"{meeting_id}/{kind.ref_suffix}",
            version=version,
            meeting_id=meeting_id,
            municipality=detail["municipality"],
            body=detail["body"],
            meeting_date=dt.date.fromisoformat(detail["meeting_date"]),
            immediate=kind is DocumentKind.IMMEDIATE_PROTOCOL,
            paragraphs=tuple(
                titles.get((meeting_id, number), NoticeParagraph(number, None, ""))
                for number in _numbers(detail["paragraphs"])
            ),
            immediate_paragraphs=_numbers(detail["immediate_paragraphs"]),
            justered_on=dt.date.fromisoformat(detail["justered_on"]),
            announced_on=dt.date.fromisoformat(detail["announced_on"]),
            appeal_deadline=dt.date.fromisoformat(detail["appeal_deadline"]),
            kept_at=detail["kept_at"],
            archive_uri=archive_uri,
        )
    except (KeyError, ValueError) as error:
        raise TrailError(
            f"the announcement of {meeting_id}/{kind.ref_suffix} is malformed: {error!r}"
        ) from None
