"""Telling people what happened to a meeting's protocols: the secretary when one is
justered (and whether late), the chair and the adjusters when one is held by a
declined paragraph.

Both run from :func:`justering.workflow.advance.advance_meeting` and are decided
from the ledger alone: a message is queued and recorded as a ``notified`` event on
the protocol's trail in one transaction, under the meeting's lock, so running them
again, or in two processes at once, sends nothing twice. The advance sends it once
that transaction has committed; one that cannot leave stays queued and is retried
(:mod:`justering.workflow.mailing`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from justering.errors import JusteringError
from justering.ledger.extracts import append_event, append_signer_event, event_rows, lock_meeting
from justering.ledger.schema import ExtractRow
from justering.mail.compose import MeetingHeader
from justering.mail.messages import HeldNotice
from justering.mail.notices import JusteringNotice
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Role, Signer
from justering.model.trail import EventKind
from justering.workflow.mailing import queue_mail
from justering.workflow.meetings import secretary_of
from justering.workflow.noticeboard import announcement_of
from justering.workflow.protocols import (
    JUSTERED_STATUSES,
    document_line,
    documents_of,
    protocols_of,
)
from justering.workflow.services import Services

__all__ = ["HELD_NOTICE", "JUSTERED_NOTICE", "tell_held", "tell_justered"]

log = logging.getLogger(__name__)

JUSTERED_NOTICE = "justered_notice"
"""The detail key of the ``notified`` event that records the secretary's notice of a
justered protocol (its value: the protocol's version)."""
HELD_NOTICE = "held_notice"
"""The detail key of the ``notified`` event that records a signer's notice of a held
protocol (its value: the declined §)."""


def tell_justered(services: Services, meeting: Meeting) -> list[str]:
    """Tell the secretary of every justered protocol of the meeting they have not
    heard of; what could not be sent."""
    failed: list[str] = []
    with services.ledger.reading() as session:
        due = [row.id for row in _justered_untold(session, meeting)]
    for protocol_id in due:
        try:
            with services.ledger.transaction() as session:
                lock_meeting(session, meeting.meeting_id)
                untold = _justered_untold(session, meeting)
                protocol = next((row for row in untold if row.id == protocol_id), None)
                if protocol is not None:  # else told by a concurrent advance meanwhile
                    _send_justered(session, services, meeting, protocol)
        except JusteringError as error:
            log.warning("no justering notice for %s: %s", meeting.meeting_id, error.diagnostics())
            failed.append(f"justering notice: {error.diagnostics()}")
    return failed


def _justered_untold(session: Session, meeting: Meeting) -> list[ExtractRow]:
    return [
        row
        for row in protocols_of(session, meeting.meeting_id).values()
        if row.status in JUSTERED_STATUSES
        and not any(
            event.kind == EventKind.NOTIFIED
            and event.detail.get(JUSTERED_NOTICE) == str(row.version)
            for event in event_rows(session, row.id)
        )
    ]


def _send_justered(
    session: Session, services: Services, meeting: Meeting, protocol: ExtractRow
) -> None:
    announcement = announcement_of(session, protocol)
    if announcement is None:  # a justered protocol is announced when it is justered
        return
    detail = announcement.detail
    secretary = secretary_of(meeting, services.settings)
    message_id = queue_mail(
        session,
        services,
        JusteringNotice(
            to=secretary,
            meeting=MeetingHeader.of(meeting),
            protocol=document_line(meeting, protocol),
            justered_on=dt.date.fromisoformat(detail["justered_on"]),
            announced_on=dt.date.fromisoformat(detail["announced_on"]),
            appeal_deadline=dt.date.fromisoformat(detail["appeal_deadline"]),
            kept_at=detail["kept_at"],
            justering_deadline=dt.date.fromisoformat(detail["justering_deadline"]),
            late=detail.get("late") == "true",
        ),
        meeting_id=meeting.meeting_id,
    )
    append_event(
        session,
        protocol,
        EventKind.NOTIFIED,
        actor=secretary.name,
        actor_email=secretary.email,
        document_sha256=protocol.head_sha256,
        detail={JUSTERED_NOTICE: str(protocol.version), "message_id": message_id},
    )


@dataclass(frozen=True)
class _Hold:
    """One declined paragraph and the protocols it holds."""

    paragraph: int
    declined_by: str
    declined_slot: str
    protocols: tuple[ExtractRow, ...]


def tell_held(services: Services, meeting: Meeting) -> list[str]:
    """Tell the chair and every adjuster (but the one who declined) of every declined
    paragraph that holds a protocol they have not heard of, in one message per
    paragraph; what could not be sent."""
    failed: list[str] = []
    with services.ledger.reading() as session:
        due = [(hold.paragraph, signer) for hold, signer in _held_untold(session, meeting)]
    for paragraph, signer in due:
        try:
            with services.ledger.transaction() as session:
                lock_meeting(session, meeting.meeting_id)
                untold = _held_untold(session, meeting)
                found = (h for h, s in untold if (h.paragraph, s) == (paragraph, signer))
                hold = next(found, None)
                if hold is not None:
                    _send_held(session, services, meeting, hold, signer)
        except JusteringError as error:
            log.warning("no notice to %s: %s", signer.email, error.diagnostics())
            failed.append(f"{signer.slot}: {error.diagnostics()}")
    return failed


def _held_untold(session: Session, meeting: Meeting) -> list[tuple[_Hold, Signer]]:
    holds: dict[int, list[ExtractRow]] = defaultdict(list)
    who: dict[int, tuple[str, str]] = {}
    told: dict[int, set[str]] = defaultdict(set)
    for protocol in protocols_of(session, meeting.meeting_id).values():
        for event in event_rows(session, protocol.id):
            if event.version != protocol.version:
                continue
            if event.kind == EventKind.HELD and protocol.status is ExtractStatus.HELD:
                paragraph = int(event.detail["paragraph"])
                holds[paragraph].append(protocol)
                who[paragraph] = (event.detail.get("declined_by", ""), event.detail.get("slot", ""))
            elif event.kind == EventKind.NOTIFIED and HELD_NOTICE in event.detail and event.slot:
                told[int(event.detail[HELD_NOTICE])].add(event.slot)
    justerare = meeting.signers(Role.CHAIR) + meeting.signers(Role.ADJUSTER)
    untold = []
    for paragraph, protocols in sorted(holds.items()):
        name, slot = who[paragraph]
        hold = _Hold(paragraph, name, slot, tuple(protocols))
        untold += [
            (hold, signer)
            for signer in justerare
            if signer.slot != slot and signer.slot not in told[paragraph]
        ]
    return untold


def _send_held(
    session: Session, services: Services, meeting: Meeting, hold: _Hold, signer: Signer
) -> None:
    extract = next(
        row
        for row in documents_of(session, meeting.meeting_id)
        if not row.kind.is_protocol and row.paragraph == hold.paragraph
    )
    message_id = queue_mail(
        session,
        services,
        HeldNotice(
            to=signer.person,
            meeting=MeetingHeader.of(meeting),
            declined=document_line(meeting, extract),
            declined_by=hold.declined_by,
            protocols=tuple(document_line(meeting, p) for p in hold.protocols),
        ),
        meeting_id=meeting.meeting_id,
    )
    for protocol in hold.protocols:
        append_signer_event(
            session,
            protocol,
            EventKind.NOTIFIED,
            signer,
            detail={HELD_NOTICE: str(hold.paragraph), "message_id": message_id},
        )
