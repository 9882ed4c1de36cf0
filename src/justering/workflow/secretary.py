"""What a secretary does from their pages (``/sekreterare``): the meetings of the
bodies they follow, a signer's link sent again, the redraft page of a declined
paragraph opened.

A secretary sees only their bodies' meetings: every function here takes the
``bodies`` of the logged-in secretary and answers ``NotFoundError`` for any other
meeting, exactly as for one that does not exist (so nothing tells them apart).
Where a meeting stands is :func:`justering.workflow.meeting_view.meeting_view`'s.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from justering.errors import NotFoundError, Refusal, WorkflowError
from justering.ledger.database import utcnow
from justering.ledger.extracts import lock_extract, lock_meeting, signed_slots
from justering.ledger.links import issue_secretary_link
from justering.ledger.schema import ExtractRow, LinkTokenRow, MeetingRow
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Person, Role, Signer
from justering.workflow.advance import request_signatures
from justering.workflow.meetings import deadline_of, drafted_extract, load_meeting, secretary_of
from justering.workflow.protocols import documents_of
from justering.workflow.services import Services

__all__ = [
    "REDRAFT_PAGE_TTL",
    "MeetingLine",
    "Resent",
    "meeting_of_bodies",
    "meetings_of_bodies",
    "open_redraft",
    "resend_link",
]

REDRAFT_PAGE_TTL = dt.timedelta(hours=2)
"""How long a redraft link opened from the secretary's page lasts (it is used at once)."""

_ROLES = (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER)


@dataclass(frozen=True)
class MeetingLine:
    """A meeting in a secretary's list."""

    meeting_id: str
    body_code: str
    body_name: str
    date: dt.date
    paragraphs: int
    deadline: dt.date
    protocol: ExtractStatus | None
    """The protocol's status; None while it is not drafted."""
    statuses: tuple[tuple[ExtractStatus, int], ...]
    """How many extracts stand at each status (in the process's order)."""

    @property
    def declined(self) -> int:
        return dict(self.statuses).get(ExtractStatus.DECLINED, 0)


def meetings_of_bodies(services: Services, bodies: Collection[str]) -> tuple[MeetingLine, ...]:
    """The meetings of ``bodies``, the latest first (two queries whatever their number)."""
    if not bodies:
        return ()
    with services.ledger.reading() as session:
        ids = list(
            session.execute(
                select(MeetingRow.meeting_id).where(
                    MeetingRow.manifest[("body", "code")].as_string().in_(sorted(bodies))
                )
            ).scalars()
        )
        protocols: dict[str, ExtractStatus] = {}
        counts: dict[str, Counter[ExtractStatus]] = defaultdict(Counter)
        for meeting_id, kind, status in session.execute(
            select(ExtractRow.meeting_id, ExtractRow.kind, ExtractRow.status).where(
                ExtractRow.meeting_id.in_(ids)
            )
        ):
            if kind is DocumentKind.PROTOCOL:
                protocols[meeting_id] = status
            elif kind is DocumentKind.EXTRACT:
                counts[meeting_id][status] += 1
        meetings = [load_meeting(session, meeting_id) for meeting_id in ids]
    lines = [
        MeetingLine(
            m.meeting_id,
            m.body.code,
            m.body.name,
            m.date,
            len(m.paragraphs),
            deadline_of(m, services.settings),
            protocols.get(m.meeting_id),
            tuple((s, counts[m.meeting_id][s]) for s in ExtractStatus if counts[m.meeting_id][s]),
        )
        for m in meetings
        if m.body.code in bodies
    ]
    return tuple(sorted(lines, key=lambda line: (line.date, line.meeting_id), reverse=True))


def meeting_of_bodies(session: Session, meeting_id: str, bodies: Collection[str]) -> Meeting:
    """The meeting if it belongs to one of ``bodies``; ``NotFoundError`` otherwise,
    the same as for a meeting that does not exist."""
    meeting: Meeting | None
    try:
        meeting = load_meeting(session, meeting_id)
    except NotFoundError:
        meeting = None
    if meeting is None or meeting.body.code not in bodies:
        raise NotFoundError("meeting", meeting_id)
    return meeting


@dataclass(frozen=True)
class Resent:
    """A signer's link sent again."""

    signer: Signer
    documents: int
    """How many documents the new link grants."""
    revoked: int
    """How many of their old links were revoked."""
    message_id: str


def resend_link(
    services: Services,
    meeting_id: str,
    slot: str,
    *,
    asked_by: str,
    bodies: Collection[str],
) -> Resent:
    """Send the signer in ``slot`` (``adjuster-1``) a new link for everything that
    waits for them, and revoke their old links, in one transaction under the meeting's
    lock; the ``notified`` events say who asked (``resent_by``). The message goes out
    as every signing request does (:func:`~justering.workflow.advance.request_signatures`).

    Refused (``WorkflowError``) for a finished meeting, for a signer whose documents
    wait for a declined paragraph's redraft, and for one with nothing to sign;
    ``NotFoundError`` for an unknown signer or a meeting not of ``bodies``."""
    with services.ledger.transaction() as session:
        meeting = meeting_of_bodies(session, meeting_id, bodies)
        lock_meeting(session, meeting_id)
        signer = next((s for role in _ROLES for s in meeting.signers(role) if s.slot == slot), None)
        if signer is None:
            raise NotFoundError("signer", slot)
        documents = documents_of(session, meeting_id)
        waiting = [
            document
            for document in documents
            if document.status.signing_role is signer.role
            and signer.slot not in signed_slots(session, document)
        ]
        if not waiting:
            raise WorkflowError(_why_nothing(documents, signer), detail=signer.name)
        revoked = _revoke_links_of(session, meeting_id, signer)
        message_id = request_signatures(
            session, services, meeting, signer, waiting, resent_by=asked_by
        )
        return Resent(signer, len(waiting), revoked, message_id)


def _why_nothing(documents: list[ExtractRow], signer: Signer) -> Refusal:
    """Why nothing waits for ``signer``: the meeting is finished, what they sign next
    waits for a redraft, or it is simply not their turn (or they have signed)."""
    blocked = (ExtractStatus.DECLINED, ExtractStatus.HELD)
    if documents and all(
        d.status.signing_role is None and d.status not in blocked for d in documents
    ):
        return Refusal.MEETING_FINISHED
    if signer.role is not Role.CERTIFIER and any(d.status in blocked for d in documents):
        return Refusal.AWAITING_REDRAFT
    return Refusal.NOTHING_TO_SIGN


def _revoke_links_of(session: Session, meeting_id: str, signer: Signer) -> int:
    """Revoke every open link of ``signer`` on the meeting; how many."""
    links = session.execute(
        select(LinkTokenRow).where(
            LinkTokenRow.meeting_id == meeting_id,
            LinkTokenRow.role == signer.role.value,
            LinkTokenRow.slot == signer.slot,
            LinkTokenRow.used_at.is_(None),
            LinkTokenRow.revoked_at.is_(None),
        )
    ).scalars()
    now, count = utcnow(), 0
    for link in links:
        link.revoked_at = now
        count += 1
    return count


def open_redraft(
    services: Services,
    meeting_id: str,
    paragraph: int,
    *,
    asked_by: str,
    bodies: Collection[str],
) -> str:
    """A fresh secretary's link (its token) to the redraft page of declined
    § ``paragraph``, issued to ``asked_by`` (whom the ``redrafted`` event then names,
    with the body's secretary's e-mail) and lasting :data:`REDRAFT_PAGE_TTL`.
    Refused unless the paragraph is declined."""
    with services.ledger.transaction() as session:
        meeting = meeting_of_bodies(session, meeting_id, bodies)
        lock_meeting(session, meeting_id)
        extract = lock_extract(session, drafted_extract(session, meeting_id, paragraph).id)
        if extract.status is not ExtractStatus.DECLINED:
            raise WorkflowError(
                Refusal.NOT_DECLINED, paragraph=paragraph, detail=extract.status.value
            )
        secretary = secretary_of(meeting, services.settings)
        link = issue_secretary_link(
            session,
            meeting_id=meeting_id,
            secretary=Person(asked_by, secretary.email),
            extract=extract,
            ttl=min(REDRAFT_PAGE_TTL, services.settings.link_ttl),
        )
        return link.token
