"""Where a meeting's paragraphs and protocols stand, as the secretary follows it: for
each paragraph its version and status, who has signed it, who is waiting (and since
when they were asked), the decline comments, the announcement of the protocol that
justered it; for each protocol the same, and whether its justering was late; for the
meeting its justering deadline.

Read only, in the same few queries whatever the meeting's size (the meeting, its
extracts, their trail events). ``justering status`` prints it
(:mod:`justering.cli.status`); a secretary's page can render the same
:class:`MeetingView`. Times are UTC here; readers show them in Swedish time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from justering.ledger.schema import ExtractRow, TrailEventRow, aware_utc
from justering.model.calendar import local_today
from justering.model.extract import ExtractSummary
from justering.model.meeting import Meeting
from justering.model.minutes import Paragraph
from justering.model.process import SIGNATURE_EVENTS, DocumentKind, ExtractStatus
from justering.model.roles import Role
from justering.model.trail import EventKind
from justering.workflow.meetings import deadline_of, load_meeting
from justering.workflow.secretary import meeting_of_bodies
from justering.workflow.services import Services

__all__ = [
    "Decline",
    "MeetingView",
    "ParagraphView",
    "ProtocolView",
    "Signature",
    "Waiting",
    "meeting_view",
]

NOT_DRAFTED_SWEDISH = "inte upprättat ännu"
"""The status of a paragraph whose extract has not been drafted yet."""

_KINDS = (
    *SIGNATURE_EVENTS,
    EventKind.NOTIFIED,
    EventKind.DECLINED,
    EventKind.ANNOUNCED,
    EventKind.JUSTERED,
    EventKind.HELD,
)


def _as_json(person: Signature | Waiting | Decline, *, at: str = "at") -> dict[str, Any]:
    """A signer's fields as plain JSON values (a role's value, a time in UTC ISO 8601),
    the field ``at`` under the name ``at`` says (``signed_at``, ``declined_at``)."""
    data: dict[str, Any] = {}
    for field in dataclasses.fields(person):
        value = getattr(person, field.name)
        if isinstance(value, Role):
            value = value.value
        elif isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).isoformat()
        data[at if field.name == "at" else field.name] = value
    return data


@dataclass(frozen=True)
class Signature:
    """A signature on the paragraph's current version."""

    name: str
    email: str | None
    role: Role
    at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return _as_json(self, at="signed_at")


@dataclass(frozen=True)
class Waiting:
    """A signer whose turn it is and who has not signed the current version."""

    name: str
    email: str
    role: Role
    notified_at: dt.datetime | None
    """When they were first asked to sign this version; None: not asked yet."""
    last_notified_at: dt.datetime | None
    """Their latest message for this version (a reminder, or a link sent again)."""
    slot: str = ""
    """Their place (``adjuster-1``): whom the secretary sends a new link."""

    def to_json(self) -> dict[str, Any]:
        return _as_json(self)


@dataclass(frozen=True)
class Decline:
    """A signer's decline of the current version, with their comment."""

    name: str
    email: str | None
    role: Role | None
    comment: str
    at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return _as_json(self, at="declined_at")


@dataclass(frozen=True)
class ParagraphView:
    """One paragraph of the meeting and where its extract stands."""

    paragraph: Paragraph
    extract: ExtractSummary | None
    """None while the paragraph is not drafted yet."""
    overdue: bool
    """Still in the justering (chair or adjusters) after the deadline."""
    signatures: tuple[Signature, ...] = ()
    waiting: tuple[Waiting, ...] = ()
    declines: tuple[Decline, ...] = ()
    announced_on: dt.date | None = None
    """The day the justering of the protocol that justered this version was announced
    on the anslagstavla."""
    appeal_deadline: dt.date | None = None

    @property
    def number(self) -> int:
        return self.paragraph.number

    @property
    def title(self) -> str:
        return self.extract.title if self.extract else self.paragraph.title

    @property
    def dnr(self) -> str | None:
        return self.extract.dnr if self.extract else self.paragraph.dnr

    @property
    def status(self) -> ExtractStatus | None:
        return self.extract.status if self.extract else None

    @property
    def status_swedish(self) -> str:
        return self.extract.status.swedish if self.extract else NOT_DRAFTED_SWEDISH

    def to_json(self) -> dict[str, Any]:
        e = self.extract
        return {
            "paragraph": self.number,
            "dnr": self.dnr,
            "title": self.title,
            "immediate": self.paragraph.immediate,
            "drafted": e is not None,
            "version": e.version if e else None,
            "status": e.status.value if e else None,
            "status_swedish": self.status_swedish,
            "overdue": self.overdue,
            "signatures": [s.to_json() for s in self.signatures],
            "waiting": [w.to_json() for w in self.waiting],
            "declines": [d.to_json() for d in self.declines],
            "announced_on": self.announced_on.isoformat() if self.announced_on else None,
            "appeal_deadline": self.appeal_deadline.isoformat() if self.appeal_deadline else None,
            "sha256": e.document_sha256 if e else None,
            "archive_uri": e.archive_uri if e else None,
        }


@dataclass(frozen=True)
class ProtocolView:
    """One of the meeting's protocols (drafted) and where it stands."""

    protocol: ExtractSummary
    deadline: dt.date
    """Its last day of justering (the omedelbar justering's for its small protocol)."""
    overdue: bool
    signatures: tuple[Signature, ...] = ()
    waiting: tuple[Waiting, ...] = ()
    held_for: tuple[int, ...] = ()
    """(Held.) The declined paragraphs it waits for."""
    announced_on: dt.date | None = None
    appeal_deadline: dt.date | None = None
    late: bool = False
    """Justered after its last day."""
    justered_on: dt.date | None = None
    kept_at: str | None = None
    """The förvaringsplats the announcement gave."""

    def to_json(self) -> dict[str, Any]:
        p = self.protocol
        return {
            "kind": p.kind.value,
            "version": p.version,
            "status": p.status.value,
            "status_swedish": p.status.swedish,
            "justering_deadline": self.deadline.isoformat(),
            "overdue": self.overdue,
            "signatures": [s.to_json() for s in self.signatures],
            "waiting": [w.to_json() for w in self.waiting],
            "held_for": list(self.held_for),
            "announced_on": self.announced_on.isoformat() if self.announced_on else None,
            "appeal_deadline": self.appeal_deadline.isoformat() if self.appeal_deadline else None,
            "late": self.late,
            "justered_on": self.justered_on.isoformat() if self.justered_on else None,
            "kept_at": self.kept_at,
            "sha256": p.document_sha256,
            "archive_uri": p.archive_uri,
        }


@dataclass(frozen=True)
class MeetingView:
    """A meeting, its paragraphs and its protocols, as of ``today`` (a Swedish date)."""

    meeting: Meeting
    deadline: dt.date
    """The last day of the justering (:func:`justering.workflow.meetings.deadline_of`)."""
    today: dt.date
    paragraphs: tuple[ParagraphView, ...]
    protocols: tuple[ProtocolView, ...] = ()
    """The protocol first, then the small protocol of the omedelbar justering."""

    @property
    def deadline_passed(self) -> bool:
        return self.today > self.deadline

    @property
    def waiting_signers(self) -> tuple[tuple[Waiting, int], ...]:
        """Everyone waited for on some document, once each (protocols first, then by §),
        with how many documents wait for them; the earliest message they got."""
        found: dict[str, list[Waiting]] = {}
        documents: list[ProtocolView | ParagraphView] = [*self.protocols, *self.paragraphs]
        for document in documents:
            for w in document.waiting:
                found.setdefault(w.slot, []).append(w)
        never = dt.datetime.max.replace(tzinfo=dt.UTC)
        return tuple(
            (min(ws, key=lambda w: w.notified_at or never), len(ws)) for ws in found.values()
        )

    def count(self, status: ExtractStatus | None) -> int:
        """How many paragraphs stand at ``status`` (None: not drafted yet)."""
        return sum(1 for p in self.paragraphs if p.status == status)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON of ``justering status --json`` (docs/cli.md)."""
        m = self.meeting
        return {
            "meeting_id": m.meeting_id,
            "municipality": m.municipality,
            "body": {"code": m.body.code, "name": m.body.name},
            "date": m.date.isoformat(),
            "justering_deadline": self.deadline.isoformat(),
            "deadline_passed": self.deadline_passed,
            "paragraphs": [p.to_json() for p in self.paragraphs],
            "protocols": [p.to_json() for p in self.protocols],
        }


def meeting_view(
    services: Services,
    meeting_id: str,
    *,
    today: dt.date | None = None,
    bodies: Collection[str] | None = None,
) -> MeetingView:
    """Where the meeting's paragraphs stand; ``NotFoundError`` for an unknown meeting
    and, with ``bodies`` (a secretary's), for a meeting of any other body."""
    today = today or local_today()
    with services.ledger.reading() as session:
        if bodies is None:
            meeting = load_meeting(session, meeting_id)
        else:
            meeting = meeting_of_bodies(session, meeting_id, bodies)
        rows = list(
            session.execute(
                select(ExtractRow)
                .where(ExtractRow.meeting_id == meeting_id)
                .order_by(ExtractRow.id)
            ).scalars()
        )
        events: dict[int, list[TrailEventRow]] = defaultdict(list)
        for event in session.execute(
            select(TrailEventRow)
            .where(
                TrailEventRow.extract_id.in_([row.id for row in rows]),
                TrailEventRow.kind.in_(_KINDS),
            )
            .order_by(TrailEventRow.extract_id, TrailEventRow.seq)
        ).scalars():
            events[event.extract_id].append(event)
        extracts = {row.paragraph: row for row in rows if row.kind is DocumentKind.EXTRACT}
        views = []
        for paragraph in meeting.paragraphs:
            row = extracts.get(paragraph.number)
            if row is None:
                views.append(ParagraphView(paragraph, None, overdue=False))
                continue
            last = deadline_of(meeting, services.settings, immediate=paragraph.immediate)
            views.append(
                _paragraph_view(
                    meeting,
                    paragraph,
                    row.summary(immediate=paragraph.immediate),
                    [e for e in events[row.id] if e.version == row.version],
                    overdue=row.status.in_justering and today > last,
                )
            )
        protocols = tuple(
            _protocol_view(
                meeting,
                row.summary(immediate=False),
                [e for e in events[row.id] if e.version == row.version],
                deadline_of(
                    meeting,
                    services.settings,
                    immediate=row.kind is DocumentKind.IMMEDIATE_PROTOCOL,
                ),
                today,
            )
            for row in sorted(rows, key=_justered_first)
            if row.kind.is_protocol
        )
    return MeetingView(
        meeting, deadline_of(meeting, services.settings), today, tuple(views), protocols
    )


def _justered_first(row: ExtractRow) -> bool:
    """The small protocol of the omedelbar justering first: it is justered first."""
    return row.kind is not DocumentKind.IMMEDIATE_PROTOCOL


def _role(value: str | None) -> Role | None:
    try:
        return Role(value) if value else None
    except ValueError:
        return None


def _protocol_view(
    meeting: Meeting,
    protocol: ExtractSummary,
    events: Sequence[TrailEventRow],
    deadline: dt.date,
    today: dt.date,
) -> ProtocolView:
    """The view of one protocol from its current version's events."""
    signatures, waiting = _signatures(events), _waiting(meeting, protocol, events)
    announcement = next((e.detail for e in events if e.kind == EventKind.ANNOUNCED), {})
    held_for = tuple(
        sorted({int(e.detail["paragraph"]) for e in events if e.kind == EventKind.HELD})
    )
    return ProtocolView(
        protocol,
        deadline,
        protocol.status.in_justering and today > deadline,
        signatures,
        waiting,
        held_for if protocol.status is ExtractStatus.HELD else (),
        _date(announcement.get("announced_on")),
        _date(announcement.get("appeal_deadline")),
        announcement.get("late") == "true",
        _date(announcement.get("justered_on")),
        announcement.get("kept_at"),
    )


def _signatures(events: Sequence[TrailEventRow]) -> tuple[Signature, ...]:
    return tuple(
        Signature(e.actor, e.actor_email, by, aware_utc(e.at))
        for e in events
        if e.kind in SIGNATURE_EVENTS and (by := _role(e.role)) is not None
    )


def _waiting(
    meeting: Meeting, document: ExtractSummary, events: Sequence[TrailEventRow]
) -> tuple[Waiting, ...]:
    """Whose turn it is on the document and who has not signed it, since when asked."""
    signed = {e.slot for e in events if e.kind in SIGNATURE_EVENTS}
    asked: dict[str, list[dt.datetime]] = defaultdict(list)
    for e in events:
        if e.kind == EventKind.NOTIFIED and e.slot:
            asked[e.slot].append(aware_utc(e.at))
    role = document.status.signing_role
    return tuple(
        Waiting(
            signer.name,
            signer.email,
            signer.role,
            min(asked[signer.slot], default=None),
            max(asked[signer.slot], default=None),
            signer.slot,
        )
        for signer in (meeting.signers(role) if role else ())
        if signer.slot not in signed
    )


def _paragraph_view(
    meeting: Meeting,
    paragraph: Paragraph,
    extract: ExtractSummary,
    events: Sequence[TrailEventRow],
    *,
    overdue: bool,
) -> ParagraphView:
    """The view of one drafted paragraph from its current version's events."""
    signatures, waiting = _signatures(events), _waiting(meeting, extract, events)
    declines = tuple(
        Decline(e.actor, e.actor_email, _role(e.role), e.detail.get("comment", ""), aware_utc(e.at))
        for e in events
        if e.kind == EventKind.DECLINED
    )
    # The announcement of the protocol that justered it, as its ``justered`` event copies it.
    announcement = next((e.detail for e in events if e.kind == EventKind.JUSTERED), {})
    return ParagraphView(
        paragraph,
        extract,
        overdue,
        signatures,
        waiting,
        declines,
        _date(announcement.get("announced_on")),
        _date(announcement.get("appeal_deadline")),
    )


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None
