"""Deadlines: reminders before the justering deadline, and a notice to the body's
secretary once it has passed.

The justering (the chair's and the adjusters' signatures on the protocol and the
extracts of its paragraphs) is due within the body's ``justering_days`` of the
meeting (at most 14, KL 5 kap. 69 §; :func:`deadline_of`); the omedelbar
justering's (its small protocol and the extracts of its paragraphs) on the meeting
day or the next (``immediate_justering_days``). Each document has its own last day.
Before it, on each of the body's ``reminder_days`` (3 and 1 days before, by
default), every chair or adjuster whose turn it is and who has not signed gets one
reminder: a fresh link to every document waiting for them, in one message. Once a
last day has passed, the secretary (:func:`secretary_of`) gets one notice per
meeting naming each overdue document, its last day and whom it waits for. A
justering after its last day is still possible; it is marked as late
(:mod:`justering.workflow.noticeboard`).

The certifier is not reminded: the utdragsbestyrkande is not part of the
justering and has no deadline of its own. Declined extracts are back with the
secretary, who already knows; they get neither reminders nor an overdue notice.

Everything is decided from the ledger, so :func:`send_due_reminders` may run as
often as one likes, in several processes at once: what was sent is recorded as
``notified`` events on each extract's trail, in the same transaction that queues
the message (sent once it has committed), under the meeting row's write lock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from justering.config import BodyRules, Settings
from justering.errors import JusteringError
from justering.ledger.extracts import append_event, event_rows
from justering.ledger.schema import ExtractRow, MeetingRow, TrailEventRow, aware_utc
from justering.mail.compose import MeetingHeader, immediate_first
from justering.mail.notices import Overdue, OverdueNotice
from justering.model.calendar import local_today
from justering.model.meeting import Meeting
from justering.model.process import SIGNATURE_EVENTS, ExtractStatus
from justering.model.roles import Signer
from justering.model.trail import EventKind
from justering.model.webhooks import OVERDUE_DETAIL  # the secretary's notice: deadline.overdue
from justering.workflow.advance import request_signatures
from justering.workflow.mailing import queue_mail, send_queued_mail
from justering.workflow.meetings import deadline_of, load_meeting, secretary_of
from justering.workflow.protocols import document_line, under_immediate
from justering.workflow.services import Services

__all__ = ["DeadlineReport", "due_offset", "send_due_reminders"]

log = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE for a ``NOWAIT`` lock that is held by another transaction."""


@dataclass(frozen=True)
class DeadlineReport:
    """What one :func:`send_due_reminders` did."""

    reminded: tuple[str, ...] = ()
    """The signers reminded, as ``slot:email`` (``adjuster-0:rolf@…``)."""
    escalated: tuple[str, ...] = ()
    """The meetings whose secretary was told of overdue extracts."""
    failed: tuple[str, ...] = ()
    """Meetings that could not be handled now (busy, or an error); the next run
    tries again. (A message that could not leave is the outbox's to retry.)"""


def due_offset(reminder_days: Iterable[int], days_left: int) -> int | None:
    """The reminder in force ``days_left`` days before the deadline: the nearest of
    ``reminder_days`` already reached (with 3 and 1: 3 on days 3 and 2, 1 on days 1
    and 0), so that a run after an outage sends one reminder, not several. None
    before the first reminder day and after the deadline."""
    if days_left < 0:
        return None
    reached = [offset for offset in reminder_days if offset >= days_left]
    return min(reached) if reached else None


def send_due_reminders(services: Services, *, today: dt.date | None = None) -> DeadlineReport:
    """Send the reminders and overdue notices that are due ``today`` (default: today
    in Sweden) and have not been sent yet, one transaction per meeting that queues
    them (:mod:`justering.workflow.mailing`), sent once it has committed: a message
    that cannot leave now stays queued and is retried; the other meetings go on.
    Idempotent and safe to run concurrently."""
    today = today or local_today()
    reminded: list[str] = []
    escalated: list[str] = []
    failed: list[str] = []
    for meeting_id in _meetings_in_justering(services):
        try:
            outcome = _handle_meeting(services, meeting_id, today)
        except OperationalError as error:
            if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            # PostgreSQL: a signature on one of its extracts is being recorded right
            # now; we do not wait for it (see _waiting_extracts). The next run sees it.
            log.info("deadlines of %s deferred: an extract is busy", meeting_id)
            failed.append(meeting_id)
            continue
        except JusteringError as error:
            log.warning("deadlines of %s not handled: %s", meeting_id, error.diagnostics())
            failed.append(meeting_id)
            continue
        if outcome.reminded or outcome.escalated:
            send_queued_mail(services, meeting_id)  # committed: sent now, retried if need be
        reminded += outcome.reminded
        if outcome.escalated:
            escalated.append(meeting_id)
        if outcome.failed:
            failed.append(meeting_id)
    return DeadlineReport(tuple(reminded), tuple(escalated), tuple(failed))


# --- what is due ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _OverdueExtract:
    extract: ExtractRow
    waiting: tuple[Signer, ...]
    deadline: dt.date


@dataclass
class _Due:
    """What one meeting is owed today."""

    reminders: dict[Signer, list[ExtractRow]] = field(default_factory=dict)
    days_left: dict[Signer, int] = field(default_factory=dict)
    """For each signer reminded, the days left to the nearest last day of theirs."""
    overdue: list[_OverdueExtract] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.reminders or self.overdue)


@dataclass(frozen=True)
class _Outcome:
    reminded: tuple[str, ...] = ()
    escalated: bool = False
    failed: bool = False


def _meetings_in_justering(services: Services) -> tuple[str, ...]:
    """Meetings with an extract waiting for its chair or adjusters."""
    with services.ledger.reading() as session:
        return tuple(
            session.execute(
                select(ExtractRow.meeting_id)
                .where(ExtractRow.status.in_(ExtractStatus.in_justering_values()))
                .distinct()
                .order_by(ExtractRow.meeting_id)
            ).scalars()
        )


def _waiting_extracts(session: Session, meeting_id: str, *, lock: bool) -> list[ExtractRow]:
    query = (
        select(ExtractRow)
        .where(
            ExtractRow.meeting_id == meeting_id,
            ExtractRow.status.in_(ExtractStatus.in_justering_values()),
        )
        .order_by(ExtractRow.id)
    )
    if lock:
        # NOWAIT: a reminder pass never queues behind a signature being recorded;
        # the meeting is simply left to the next pass.
        query = query.with_for_update(nowait=True)
    return list(session.execute(query).scalars())


def _covers(event: TrailEventRow, offset: int, deadline: dt.date) -> bool:
    """Whether a message recorded by ``event`` already stands for the reminder
    ``offset`` days before ``deadline``: a reminder computed for at most ``offset``
    days left, or any request sent on or after that reminder's day."""
    left = event.detail.get("reminder_days_left")
    if left is not None and left.lstrip("-").isdigit() and int(left) <= offset:
        return True
    return local_today(aware_utc(event.at)) >= deadline - dt.timedelta(days=offset)


def _due(
    session: Session,
    meeting: Meeting,
    rules: BodyRules,
    settings: Settings,
    today: dt.date,
    extracts: Sequence[ExtractRow],
) -> _Due:
    due = _Due()
    waiting_on: dict[Signer, list[ExtractRow]] = {}
    behind: set[Signer] = set()
    for extract in extracts:
        deadline = deadline_of(meeting, settings, immediate=under_immediate(meeting, extract))
        days_left = (deadline - today).days
        offset = due_offset(rules.reminder_days, days_left)
        if offset is None and days_left >= 0:
            continue  # before its first reminder day: nothing to look at
        role = extract.status.signing_role
        assert role is not None  # a status in the justering has a signing role
        events = [e for e in event_rows(session, extract.id) if e.version == extract.version]
        signed = {e.slot for e in events if e.kind in SIGNATURE_EVENTS}
        waiting = tuple(s for s in meeting.signers(role) if s.slot not in signed)
        notified = [e for e in events if e.kind == EventKind.NOTIFIED]
        if days_left < 0:
            if waiting and not any(OVERDUE_DETAIL in e.detail for e in notified):
                due.overdue.append(_OverdueExtract(extract, waiting, deadline))
            continue
        assert offset is not None
        for signer in waiting:
            asked = [e for e in notified if e.slot == signer.slot]
            if not asked:
                continue  # never asked: advancing the meeting asks first
            waiting_on.setdefault(signer, []).append(extract)
            due.days_left[signer] = min(days_left, due.days_left.get(signer, days_left))
            if not any(_covers(e, offset, deadline) for e in asked):
                behind.add(signer)
    # One reminder per signer, with every document within its reminder days.
    due.reminders.update((s, waiting_on[s]) for s in waiting_on if s in behind)
    return due


# --- sending --------------------------------------------------------------------------------


def _handle_meeting(services: Services, meeting_id: str, today: dt.date) -> _Outcome:
    settings = services.settings
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        rules = settings.body_rules(meeting.body.code)
        extracts = _waiting_extracts(session, meeting_id, lock=False)
        if not _due(session, meeting, rules, settings, today, extracts):
            return _Outcome()
    with services.ledger.transaction() as session:
        # The meeting row's write lock, as advancing takes it: one sender at a time.
        session.execute(
            update(MeetingRow)
            .where(MeetingRow.meeting_id == meeting_id)
            .values(work_done=MeetingRow.work_done)
        )
        meeting = load_meeting(session, meeting_id)
        extracts = _waiting_extracts(session, meeting_id, lock=True)
        due = _due(session, meeting, rules, settings, today, extracts)
        reminded: list[str] = []
        failed = False
        for signer, waiting in due.reminders.items():
            try:
                with session.begin_nested():  # a failure undoes only its own link
                    request_signatures(
                        session, services, meeting, signer, waiting, days_left=due.days_left[signer]
                    )
            except JusteringError as error:
                log.warning(
                    "reminder to %s (%s) not sent: %s",
                    signer.email,
                    meeting_id,
                    error.diagnostics(),
                )
                failed = True
                continue
            reminded.append(f"{signer.slot}:{signer.email}")
        escalated = False
        if due.overdue:
            try:
                with session.begin_nested():
                    _tell_secretary(session, services, meeting, due.overdue)
                escalated = True
            except JusteringError as error:
                log.warning("overdue notice for %s not sent: %s", meeting_id, error.diagnostics())
                failed = True
    return _Outcome(tuple(reminded), escalated, failed)


def _waiting_for(waiting: Sequence[Signer]) -> str:
    """Whom an extract waits for, as the secretary reads it."""
    return " och ".join(f"{s.role.swedish.lower()} {s.name} ({s.email})" for s in waiting)


def _tell_secretary(
    session: Session,
    services: Services,
    meeting: Meeting,
    overdue: Sequence[_OverdueExtract],
) -> None:
    """One notice to the secretary for the meeting's overdue documents, recorded on
    each one's trail (inside the caller's transaction)."""
    secretary = secretary_of(meeting, services.settings)
    order = {document_line(meeting, o.extract): o for o in overdue}
    message_id = queue_mail(
        session,
        services,
        OverdueNotice(
            to=secretary,
            meeting=MeetingHeader.of(meeting),
            overdue=tuple(
                Overdue(item, _waiting_for(order[item].waiting), order[item].deadline)
                for item in immediate_first(list(order))
            ),
        ),
        meeting_id=meeting.meeting_id,
    )
    for item in overdue:
        append_event(
            session,
            item.extract,
            EventKind.NOTIFIED,
            actor=secretary.name,
            actor_email=secretary.email,
            document_sha256=item.extract.head_sha256,
            detail={
                OVERDUE_DETAIL: item.deadline.isoformat(),
                "waiting_for": _waiting_for(item.waiting),
                "message_id": message_id,
            },
        )
