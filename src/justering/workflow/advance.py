"""Advancing a meeting: drafting what is missing, one message to every signer whose
turn has come, telling the secretary and the signers what happened to the protocols
(justered, held), archiving what is complete (certified extracts, justered and
announced protocols). Idempotent, safe to run concurrently.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeGuard

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from justering.errors import JusteringError
from justering.ledger.database import utcnow
from justering.ledger.extracts import append_signer_event, lock_meeting, slots_with
from justering.ledger.links import issue_link
from justering.ledger.schema import ExtractRow, MeetingRow, aware_utc
from justering.mail.compose import MeetingHeader, immediate_first
from justering.mail.messages import SigningRequest
from justering.model.meeting import Meeting
from justering.model.process import SIGNATURE_EVENTS, ExtractStatus
from justering.model.roles import Role, Signer
from justering.model.trail import EventKind
from justering.workflow.archiving import ArchiveFailure, archive_certified
from justering.workflow.drafting import draft_meeting
from justering.workflow.mailing import queue_mail, send_queued_mail
from justering.workflow.meetings import deadline_of, get_meeting
from justering.workflow.noticeboard import announcement_of
from justering.workflow.protocol_notices import tell_held, tell_justered
from justering.workflow.protocols import document_line, documents_of, under_immediate
from justering.workflow.services import Services

__all__ = [
    "BACK_OFF_FIRST",
    "BACK_OFF_LONGEST",
    "AdvanceReport",
    "advance_meeting",
    "back_off",
    "justering_deadline",
    "request_signatures",
    "request_work",
]

log = logging.getLogger(__name__)

_NOTIFIED_OR_SIGNED = SIGNATURE_EVENTS | {EventKind.NOTIFIED}


BACK_OFF_FIRST = dt.timedelta(seconds=30)
BACK_OFF_LONGEST = dt.timedelta(hours=1)
"""A meeting whose advances keep failing waits 30 s, then 1, 2, 4 … minutes, at most an
hour, before the reconciler tries it again; other meetings are not held up by it."""


@dataclass(frozen=True)
class AdvanceReport:
    """What one :func:`advance_meeting` did."""

    drafted: tuple[int, ...] = ()
    notified: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()
    remaining: int = 0
    complete: bool = True
    """False when part of the work is left: another process held it, or it failed
    (the meeting stays marked, and the reconciler comes back to it)."""
    failed: tuple[str, ...] = ()
    """What could not be done now, and why (a message that did not leave, an extract
    the archive refused); the meeting backs off before it is tried again."""


def back_off(failures: int) -> dt.timedelta:
    """How long a meeting waits after ``failures`` failed advances in a row."""
    doubled: dt.timedelta = BACK_OFF_FIRST * (2 ** min(max(failures - 1, 0), 16))
    return min(doubled, BACK_OFF_LONGEST)


def advance_meeting(services: Services, meeting_id: str) -> AdvanceReport:
    """Bring a meeting forward as far as the ledger allows: draft what is missing,
    notify every signer whose turn has come and who has not been notified yet, tell
    the secretary of a justered protocol and the signers of a held one, archive what
    is complete. Safe to run any number of times, concurrently: work
    another process is doing (drafting this meeting, archiving an extract) is left to
    it, and the meeting stays marked as needing work until an advance did it all."""
    meeting = get_meeting(services, meeting_id)
    with services.ledger.reading() as session:
        requested, retry_after = session.execute(
            select(MeetingRow.work_requested, MeetingRow.retry_after).where(
                MeetingRow.meeting_id == meeting_id
            )
        ).one()
    drafted = draft_meeting(services, meeting_id)
    if drafted is None:  # another process is drafting; it notifies when it is done
        return AdvanceReport(complete=False, remaining=len(meeting.paragraphs))
    notified, failed = _notify_due(services, meeting)
    failed += tell_justered(services, meeting)
    failed += tell_held(services, meeting)
    # Committed above, sent now (outside the meeting's lock); a message that cannot
    # leave stays queued and is retried by the outbox, not by advancing again.
    send_queued_mail(services, meeting.meeting_id)
    with services.ledger.reading() as session:
        to_archive = [
            row.id
            for row in documents_of(session, meeting_id)
            if row.status.to_archive
            and (not row.kind.is_protocol or announcement_of(session, row) is not None)
        ]
    if retry_after is not None and aware_utc(retry_after) > utcnow():
        # Archiving failed lately: it waits out its back-off (the reconciler comes
        # back then); signers are still notified above.
        log.info("meeting %s: archiving waits until %s", meeting_id, retry_after)
        to_archive, waiting = [], bool(to_archive)
    else:
        waiting = False
    outcomes = archive_certified(services, to_archive)
    archived = tuple(outcome for outcome in outcomes if isinstance(outcome, str))
    failed += [
        f"extract {o.extract_id}: {o.reason}" for o in outcomes if isinstance(o, ArchiveFailure)
    ]
    # Incomplete when another process is archiving an extract, or something failed.
    complete = len(archived) == len(outcomes) and not failed and not waiting
    with services.ledger.transaction() as session:
        remaining = len(
            session.execute(
                select(ExtractRow.id).where(
                    ExtractRow.meeting_id == meeting_id,
                    ExtractRow.status != ExtractStatus.ARCHIVED,
                )
            ).all()
        )
        if complete:
            session.execute(
                update(MeetingRow)
                .where(MeetingRow.meeting_id == meeting_id, MeetingRow.work_done < requested)
                .values(work_done=requested, failures=None, retry_after=None)
            )
        elif failed:
            _note_failure(session, meeting_id)
    return AdvanceReport(drafted, notified, archived, remaining, complete, tuple(failed))


def _failed(outcome: object) -> TypeGuard[ArchiveFailure]:
    return isinstance(outcome, ArchiveFailure)


def _note_failure(session: Session, meeting_id: str) -> None:
    """Count one more failed advance and set when the meeting may be tried again."""
    row = session.get(MeetingRow, meeting_id, with_for_update=True)
    if row is None:
        return
    row.failures = (row.failures or 0) + 1
    row.retry_after = utcnow() + back_off(row.failures)
    log.warning(
        "meeting %s: advance failed %d time(s) in a row; next try after %s",
        meeting_id,
        row.failures,
        row.retry_after.isoformat(timespec="seconds"),
    )


def _notify_due(services: Services, meeting: Meeting) -> tuple[tuple[str, ...], list[str]]:
    """One message to every signer whose turn has come on some extract and who has
    not been notified for it; (who was notified, what failed). Each signer's link,
    queued message and events are one short transaction under the meeting's lock
    (which serialises concurrent advances); the messages leave after it."""
    with services.ledger.reading() as session:
        signers = list(_due(session, meeting))
    sent: list[str] = []
    failed: list[str] = []
    for signer in signers:
        try:
            with services.ledger.transaction() as session:
                lock_meeting(session, meeting.meeting_id)
                waiting = _due(session, meeting).get(signer)
                if not waiting:
                    continue  # notified by a concurrent advance meanwhile
                request_signatures(session, services, meeting, signer, waiting)
                session.execute(
                    update(MeetingRow)
                    .where(MeetingRow.meeting_id == meeting.meeting_id)
                    .values(advanced_at=utcnow())
                )
        except JusteringError as error:
            log.warning("no message to %s: %s", signer.email, error.diagnostics())
            failed.append(f"{signer.slot}: {error.diagnostics()}")
            continue
        sent.append(f"{signer.slot}:{signer.email}")
    return tuple(sent), failed


def _due(session: Session, meeting: Meeting) -> dict[Signer, list[ExtractRow]]:
    """For each signer whose turn has come, the documents they were not notified of."""
    due: dict[Signer, list[ExtractRow]] = defaultdict(list)
    for extract in documents_of(session, meeting.meeting_id):
        role = extract.status.signing_role
        if role is None:
            continue
        done = slots_with(session, extract, _NOTIFIED_OR_SIGNED)
        for signer in meeting.signers(role):
            if signer.slot not in done:
                due[signer].append(extract)
    return due


def request_signatures(
    session: Session,
    services: Services,
    meeting: Meeting,
    signer: Signer,
    extracts: Sequence[ExtractRow],
    *,
    days_left: int | None = None,
    resent_by: str | None = None,
) -> str:
    """Issue ``signer`` one link for ``extracts`` (documents: extracts and protocols),
    queue the message (a reminder when ``days_left`` is given) and record it on each
    document's trail (``resent_by``: the secretary who asked for a new link); the
    message id. Inside the caller's transaction: the message leaves only once the
    link is committed (:mod:`justering.workflow.mailing`)."""
    link = issue_link(
        session,
        meeting_id=meeting.meeting_id,
        signer=signer,
        extracts=extracts,
        ttl=services.settings.link_ttl,
    )
    justering = signer.role in (Role.CHAIR, Role.ADJUSTER)
    request = SigningRequest(
        to=signer.person,
        meeting=MeetingHeader.of(meeting),
        role=signer.role,
        link=f"{services.settings.public_url}/s/{link.token}",
        expires_at=link.expires_at,
        deadline=justering_deadline(services, meeting, extracts) if justering else None,
        extracts=immediate_first([document_line(meeting, e) for e in extracts]),
        days_left=days_left,
    )
    message_id = queue_mail(session, services, request, meeting_id=meeting.meeting_id)
    detail = {"message_id": message_id}
    if days_left is not None:
        detail["reminder_days_left"] = str(days_left)
    if resent_by is not None:
        detail["resent_by"] = resent_by
    for extract in extracts:
        append_signer_event(session, extract, EventKind.NOTIFIED, signer, detail=detail)
    return message_id


def justering_deadline(
    services: Services, meeting: Meeting, documents: Sequence[ExtractRow]
) -> dt.date:
    """The earliest last day of justering among ``documents``: the omedelbar
    justering's for its small protocol and its paragraphs' extracts, else the
    protocol's."""
    return min(
        deadline_of(meeting, services.settings, immediate=under_immediate(meeting, document))
        for document in documents
    )


def request_work(session: Session, meeting_id: str) -> None:
    """Note that the meeting may move now (cleared by the next complete advance)."""
    session.execute(
        update(MeetingRow)
        .where(MeetingRow.meeting_id == meeting_id)
        .values(work_requested=MeetingRow.work_requested + 1)
    )
