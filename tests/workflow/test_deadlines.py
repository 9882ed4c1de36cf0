"""Deadlines, on SQLite and on PostgreSQL: reminders to the chair and adjusters on
the body's reminder days before the justering deadline, one notice to the secretary
once it has passed, each sent once however often (and however concurrently) the
check runs.

The meetings are dated today (in Sweden) and the check is run "later" by passing
``today``: the first requests are then sent, as in real life, long before the
reminder days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update

from justering import workflow
from justering.config import BodyRules
from justering.ledger.database import utcnow
from justering.ledger.extracts import lock_extract
from justering.ledger.schema import LinkTokenRow, MailOutboxRow
from justering.mail.compose import Message
from justering.mail.delivery import NotificationError, Notifier
from justering.model.calendar import local_today
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Person, Role
from justering.model.trail import EventKind, TrailEvent
from justering.workflow.deadlines import DeadlineReport, due_offset, send_due_reminders
from justering.workflow.declining import decline_with_link
from justering.workflow.mailing import send_queued_mail
from justering.workflow.meetings import deadline_of
from justering.workflow.redraft import redraft_extract
from justering.workflow.services import Services
from support.workflow import (
    SHORT_PARAGRAPH,
    delivered,
    extract_rows,
    newest_token,
    outbox,
    protocol_row,
    run_in_threads,
    sign_as,
    small_meeting,
    start,
    trail,
)
from support.workflow import (
    Message as OutboxMessage,
)

LONG_PARAGRAPH = 94
SECRETARY = Person("Sara Sekreterare", "sara.sekreterare@nacka.example")


def _meeting(
    sample: Meeting,
    *,
    meeting_id: str = "ksau-deadlines",
    paragraphs: tuple[int, ...] = (SHORT_PARAGRAPH,),
    adjusters: int = 1,
    days_ago: int = 0,
) -> Meeting:
    meeting = small_meeting(
        sample, paragraphs=paragraphs, adjusters=adjusters, meeting_id=meeting_id
    )
    return replace(meeting, date=local_today() - dt.timedelta(days=days_ago))


def _day(services: Services, meeting: Meeting, days_before: int) -> dt.date:
    """The day ``days_before`` the meeting's deadline (negative: after it)."""
    return deadline_of(meeting, services.settings) - dt.timedelta(days=days_before)


def _reminders(services: Services) -> list[OutboxMessage]:
    return [*delivered(services, "reminder-chair"), *delivered(services, "reminder-adjuster")]


def _events(services: Services, extract_id: int, detail_key: str) -> list[TrailEvent]:
    return [
        e
        for e in trail(services, extract_id)
        if e.kind is EventKind.NOTIFIED and detail_key in e.detail
    ]


def _links_to(services: Services, email: str) -> int:
    with services.ledger.reading() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(LinkTokenRow)
                .where(LinkTokenRow.signer_email == email)
            ).scalar_one()
        )


class _Refusing:
    """A notifier whose SMTP server refuses one address."""

    def __init__(self, inner: Notifier, refused: str) -> None:
        self.inner = inner
        self.refused = refused

    def send(
        self, message: Message, *, message_id: str | None = None, date: dt.datetime | None = None
    ) -> str:
        if message.to.email == self.refused:
            raise NotificationError(f"550 5.1.1 <{self.refused}>: mailbox unavailable")
        return self.inner.send(message, message_id=message_id, date=date)


def _retry_now(services: Services) -> None:
    """The outbox's back-off has passed: what could not be sent is tried again."""
    with services.ledger.transaction() as session:
        session.execute(
            update(MailOutboxRow)
            .where(MailOutboxRow.sent_at.is_(None))
            .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )
    send_queued_mail(services)


# --- which reminder is in force -------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "expected"),
    [(10, None), (4, None), (3, 3), (2, 3), (1, 1), (0, 1), (-1, None)],
)
def test_the_reminder_in_force_is_the_nearest_one_reached(
    days_left: int, expected: int | None
) -> None:
    assert due_offset((3, 1), days_left) == expected


def test_a_reminder_on_the_last_day_itself() -> None:
    assert due_offset((7, 0), 0) == 0
    assert due_offset((7, 0), 1) == 7
    assert due_offset((), 0) is None


# --- reminders --------------------------------------------------------------------------------


def test_no_reminder_before_the_first_reminder_day(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting)
    start(services, meeting)
    for days_before in (14, 10, 4):
        report = send_due_reminders(services, today=_day(services, meeting, days_before))
        assert report == DeadlineReport()
    assert _reminders(services) == []
    assert [m.to for m in outbox(services)] == [meeting.chair.email]


def test_a_reminder_with_a_working_link_sent_once_per_reminder_day(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting, paragraphs=(LONG_PARAGRAPH, SHORT_PARAGRAPH))
    start(services, meeting)
    first = newest_token(services, meeting.chair.email)
    deadline = deadline_of(meeting, services.settings)

    report = send_due_reminders(services, today=_day(services, meeting, 3))
    assert report.reminded == (f"chair-0:{meeting.chair.email}",)
    assert report.escalated == () and report.failed == ()
    [reminder] = delivered(services, "reminder-chair")
    assert reminder.to == meeting.chair.email
    assert reminder.subject.startswith("Påminnelse: ")
    assert "tiden för justering går ut om 3 dagar" in reminder.text
    assert f"Sista dag för justering: {deadline.isoformat()}" in reminder.text
    assert f"§ {LONG_PARAGRAPH}" in reminder.text and f"§ {SHORT_PARAGRAPH}" in reminder.text

    # The same day again, and the next day (still the 3-day reminder): nothing new.
    for days_before in (3, 2):
        assert send_due_reminders(services, today=_day(services, meeting, days_before)) == (
            DeadlineReport()
        )
    assert len(_reminders(services)) == 1
    for row in extract_rows(services, meeting.meeting_id):
        [event] = _events(services, row.id, "reminder_days_left")
        assert event.detail["reminder_days_left"] == "3"
        assert event.actor == meeting.chair.name and event.role == "chair"

    # The reminder's own link shows both extracts and signs them.
    token = newest_token(services, meeting.chair.email)
    assert token != first
    view = workflow.view_link(services, token)
    documents = ["Protokollet", f"§ {LONG_PARAGRAPH}", f"§ {SHORT_PARAGRAPH}"]
    assert [e.extract.label for e in view.pending] == documents
    receipt = workflow.sign_with_link(services, token)
    assert [item.extract.label for item in receipt.items] == documents
    assert {s.status for s in workflow.meeting_summaries(services, meeting.meeting_id)} == {
        ExtractStatus.AWAITING_ADJUSTERS
    }


def test_a_second_reminder_on_the_next_reminder_day(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting)
    start(services, meeting)
    send_due_reminders(services, today=_day(services, meeting, 3))
    report = send_due_reminders(services, today=_day(services, meeting, 1))
    assert report.reminded == (f"chair-0:{meeting.chair.email}",)
    first, second = delivered(services, "reminder-chair")
    assert "om 3 dagar" in first.text and "går ut i morgon" in second.text
    # The last day itself is still the 1-day reminder's: nothing new.
    assert send_due_reminders(services, today=_day(services, meeting, 0)) == DeadlineReport()
    [row] = extract_rows(services, meeting.meeting_id)
    assert [
        e.detail["reminder_days_left"] for e in _events(services, row.id, "reminder_days_left")
    ] == [
        "3",
        "1",
    ]


def test_after_an_outage_only_the_nearest_reminder_is_sent(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting)
    start(services, meeting)
    report = send_due_reminders(services, today=_day(services, meeting, 0))
    assert report.reminded == (f"chair-0:{meeting.chair.email}",)
    [reminder] = delivered(services, "reminder-chair")
    assert "tiden för justering går ut i dag" in reminder.text
    assert send_due_reminders(services, today=_day(services, meeting, 0)) == DeadlineReport()


def test_a_request_sent_on_a_reminder_day_counts_as_its_reminder(
    services: Services, sample_meeting: Meeting
) -> None:
    """A signer first asked on the 3-day reminder's day (the meeting was recorded
    late) is not reminded the same day, but is on the 1-day reminder's day."""
    meeting = _meeting(sample_meeting, days_ago=services.settings.justering_days - 3)
    start(services, meeting)
    assert _day(services, meeting, 3) == local_today()
    assert send_due_reminders(services) == DeadlineReport()
    report = send_due_reminders(services, today=_day(services, meeting, 1))
    assert report.reminded == (f"chair-0:{meeting.chair.email}",)


def test_reminders_follow_the_signing_order_and_skip_who_signed(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting, adjusters=2)
    first_adjuster, second_adjuster = meeting.signers(Role.ADJUSTER)
    start(services, meeting)
    report = send_due_reminders(services, today=_day(services, meeting, 3))
    assert report.reminded == (f"chair-0:{meeting.chair.email}",)  # not the adjusters yet

    sign_as(services, meeting.chair.email)  # through the reminder's link
    workflow.advance_meeting(services, meeting.meeting_id)
    report = send_due_reminders(services, today=_day(services, meeting, 3))
    assert sorted(report.reminded) == [
        f"{first_adjuster.slot}:{first_adjuster.email}",
        f"{second_adjuster.slot}:{second_adjuster.email}",
    ]

    sign_as(services, first_adjuster.email)
    report = send_due_reminders(services, today=_day(services, meeting, 1))
    assert report.reminded == (f"{second_adjuster.slot}:{second_adjuster.email}",)
    assert sorted(m.to for m in delivered(services, "reminder-adjuster")) == sorted(
        [first_adjuster.email, second_adjuster.email, second_adjuster.email]
    )
    assert [m.to for m in delivered(services, "reminder-chair")] == [meeting.chair.email]


def test_the_certifier_is_not_reminded(services: Services, sample_meeting: Meeting) -> None:
    meeting = _meeting(sample_meeting)
    start(services, meeting)
    sign_as(services, meeting.chair.email)
    workflow.advance_meeting(services, meeting.meeting_id)
    sign_as(services, meeting.adjusters[0].email)
    workflow.advance_meeting(services, meeting.meeting_id)
    assert workflow.meeting_summaries(services, meeting.meeting_id)[0].status is (
        ExtractStatus.AWAITING_CERTIFIER
    )
    for days_before in (3, 1, 0, -1, -5):
        report = send_due_reminders(services, today=_day(services, meeting, days_before))
        assert report == DeadlineReport()
    assert delivered(services, "reminder-certifier") == [] and delivered(services, "overdue") == []


def test_declined_extracts_are_not_reminded(services: Services, sample_meeting: Meeting) -> None:
    meeting = _meeting(sample_meeting, paragraphs=(LONG_PARAGRAPH, SHORT_PARAGRAPH))
    start(services, meeting)
    rows = {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}
    token = newest_token(services, meeting.chair.email)
    decline_with_link(services, token, rows[LONG_PARAGRAPH], "Fel belopp i beslutet.")

    send_due_reminders(services, today=_day(services, meeting, 3))
    [reminder] = delivered(services, "reminder-chair")
    assert f"§ {SHORT_PARAGRAPH}" in reminder.text
    assert f"§ {LONG_PARAGRAPH}" not in reminder.text
    assert _events(services, rows[LONG_PARAGRAPH], "reminder_days_left") == []

    send_due_reminders(services, today=_day(services, meeting, -1))
    [notice] = delivered(services, "overdue")
    assert f"§ {SHORT_PARAGRAPH}" in notice.text
    assert f"§ {LONG_PARAGRAPH}" not in notice.text


# --- the deadline passed -------------------------------------------------------------------


def test_one_overdue_notice_to_the_secretary_naming_who_is_waited_for(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(
        sample_meeting,
        paragraphs=(LONG_PARAGRAPH, 95, SHORT_PARAGRAPH),
        adjusters=2,
    )
    start(services, meeting)
    rows = {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}
    rolf, eva = meeting.adjusters
    # Everyone but Eva signs everything; Eva declines § 94, which is redrafted (the
    # protocol with it: from the chair again), then signs § 95 but not § 96.
    sign_as(services, meeting.chair.email)
    workflow.advance_meeting(services, meeting.meeting_id)
    sign_as(services, rolf.email)
    eva_token = newest_token(services, eva.email)
    decline_with_link(services, eva_token, rows[LONG_PARAGRAPH], "Fel belopp.")
    redraft_extract(
        services, meeting.meeting_id, LONG_PARAGRAPH, text="Beslut\n\nRätt belopp.", actor="L"
    )
    workflow.sign_with_link(services, eva_token, [rows[95]])
    workflow.advance_meeting(services, meeting.meeting_id)
    deadline = deadline_of(meeting, services.settings)

    # On the last day: reminders, no notice.
    assert send_due_reminders(services, today=deadline).escalated == ()
    reminders = len(_reminders(services))

    report = send_due_reminders(services, today=deadline + dt.timedelta(days=1))
    assert report == DeadlineReport(escalated=(meeting.meeting_id,))
    [notice] = delivered(services, "overdue")
    assert notice.to == meeting.certifier.email  # no secretary configured for the body
    assert "Justeringen är försenad: 3 dokument" in notice.subject
    assert "Sista dagen för justering har passerat" in notice.text
    waiting_for_chair = f"väntar på ordförande {meeting.chair.name} ({meeting.chair.email})"
    last_day = f"sista dag {deadline.isoformat()}"
    assert f"Protokollet: {last_day}, {waiting_for_chair}" in notice.text
    assert f"§ {LONG_PARAGRAPH}: {last_day}, {waiting_for_chair}" in notice.text
    assert (
        f"§ {SHORT_PARAGRAPH}: {last_day}, väntar på justerare {eva.name} ({eva.email})"
        in notice.text
    )
    assert f"väntar på justerare {rolf.name}" not in notice.text
    assert "§ 95:" not in notice.text  # signed by all: waiting for its protocol only

    protocol = protocol_row(services, meeting.meeting_id)
    for row_id, waiting in (
        (rows[LONG_PARAGRAPH], meeting.chair.name),
        (rows[SHORT_PARAGRAPH], eva.name),
        (protocol.id, meeting.chair.name),
    ):
        [event] = _events(services, row_id, "overdue")
        assert event.detail["overdue"] == deadline.isoformat()
        assert waiting in event.detail["waiting_for"]
        assert event.actor == meeting.certifier.name and event.role is None
    assert _events(services, rows[95], "overdue") == []

    # Once: not again the same day, nor later; and no reminders after the deadline.
    for days_after in (1, 2, 30):
        later = deadline + dt.timedelta(days=days_after)
        assert send_due_reminders(services, today=later) == DeadlineReport()
    assert len(delivered(services, "overdue")) == 1
    assert len(_reminders(services)) == reminders


def test_a_body_with_its_own_deadline_reminder_days_and_secretary(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting)
    rules = BodyRules(justering_days=5, reminder_days=(2,), secretary=SECRETARY, kept_at="K")
    services = replace(
        services,
        settings=replace(services.settings, bodies={meeting.body.code: rules}),
    )
    deadline = deadline_of(meeting, services.settings)
    assert deadline == meeting.date + dt.timedelta(days=5)
    start(services, meeting)

    assert send_due_reminders(services, today=deadline - dt.timedelta(days=3)) == (DeadlineReport())
    report = send_due_reminders(services, today=deadline - dt.timedelta(days=2))
    assert report.reminded == (f"chair-0:{meeting.chair.email}",)
    assert "går ut om 2 dagar" in delivered(services, "reminder-chair")[0].text

    report = send_due_reminders(services, today=deadline + dt.timedelta(days=1))
    assert report.escalated == (meeting.meeting_id,)
    [notice] = delivered(services, "overdue")
    assert notice.to == SECRETARY.email
    assert f"Hej {SECRETARY.name}," in notice.text
    [row] = extract_rows(services, meeting.meeting_id)
    [event] = _events(services, row.id, "overdue")
    assert event.actor == SECRETARY.name and event.actor_email == SECRETARY.email


# --- failures and concurrency ----------------------------------------------------------------


def test_a_failing_send_for_one_meeting_does_not_stop_another(
    services: Services, sample_meeting: Meeting
) -> None:
    broken = replace(
        _meeting(sample_meeting, meeting_id="a-ksau-broken"),
        chair=Person("Olle Okänd", "olle.okand@nacka.example"),
    )
    fine = _meeting(sample_meeting, meeting_id="b-ksau-fine")
    start(services, broken)
    start(services, fine)
    today = _day(services, fine, 3)
    refusing = replace(services, notifier=_Refusing(services.notifier, broken.chair.email))

    # Both reminders are recorded and queued; the refused one waits in the outbox.
    report = send_due_reminders(refusing, today=today)
    assert report.reminded == (f"chair-0:{broken.chair.email}", f"chair-0:{fine.chair.email}")
    assert report.failed == ()
    assert [m.to for m in delivered(services, "reminder-chair")] == [fine.chair.email]
    [row] = extract_rows(services, broken.meeting_id)
    [event] = _events(services, row.id, "reminder_days_left")
    with services.ledger.reading() as session:
        waiting = session.execute(
            select(MailOutboxRow.last_error).where(
                MailOutboxRow.message_id == event.detail["message_id"],
                MailOutboxRow.sent_at.is_(None),
            )
        ).scalar_one()
    assert waiting is not None and "550 5.1.1" in waiting

    # Once the mail server takes the address again, the missing reminder goes out,
    # and only that one; the next pass reminds nobody.
    _retry_now(services)
    assert sorted(m.to for m in delivered(services, "reminder-chair")) == sorted(
        [fine.chair.email, broken.chair.email]
    )
    report = send_due_reminders(services, today=today)
    assert report.reminded == () and report.failed == ()


def test_a_refused_address_does_not_hold_back_a_fellow_signer(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting, adjusters=2)
    start(services, meeting)
    sign_as(services, meeting.chair.email)
    workflow.advance_meeting(services, meeting.meeting_id)
    rolf, eva = meeting.adjusters
    refusing = replace(services, notifier=_Refusing(services.notifier, eva.email))
    today = _day(services, meeting, 3)

    links = _links_to(services, eva.email)
    report = send_due_reminders(refusing, today=today)
    assert report.reminded == (f"adjuster-0:{rolf.email}", f"adjuster-1:{eva.email}")
    assert report.failed == ()
    assert _links_to(services, eva.email) == links + 1  # her link is kept, its message queued
    assert [m.to for m in delivered(services, "reminder-adjuster")] == [rolf.email]
    # The next run (the address still refused) reminds nobody again.
    report = send_due_reminders(refusing, today=today)
    assert report.reminded == () and report.failed == ()
    _retry_now(services)
    assert [m.to for m in delivered(services, "reminder-adjuster")] == [rolf.email, eva.email]
    assert newest_token(services, eva.email)  # the link in the message that left


def test_concurrent_runs_remind_once(services: Services, sample_meeting: Meeting) -> None:
    meeting = _meeting(sample_meeting)
    start(services, meeting)
    today = _day(services, meeting, 3)
    results = run_in_threads(4, lambda: send_due_reminders(services, today=today))
    reports = [r for r in results if isinstance(r, DeadlineReport)]
    assert len(reports) == 4, results
    assert sum(len(r.reminded) for r in reports) == 1
    assert len(delivered(services, "reminder-chair")) == 1

    later = deadline_of(meeting, services.settings) + dt.timedelta(days=1)
    results = run_in_threads(4, lambda: send_due_reminders(services, today=later))
    reports = [r for r in results if isinstance(r, DeadlineReport)]
    assert len(reports) == 4, results
    assert sum(len(r.escalated) for r in reports) == 1
    assert len(delivered(services, "overdue")) == 1


def test_a_meeting_whose_extract_is_being_signed_is_left_for_the_next_run(
    services: Services, sample_meeting: Meeting
) -> None:
    """PostgreSQL: a signature being recorded holds its extract's row lock (and will
    next ask for the meeting's); the reminders neither wait for it nor deadlock."""
    if services.ledger.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: one writer at a time")
    meeting = _meeting(sample_meeting)
    start(services, meeting)
    [row] = extract_rows(services, meeting.meeting_id)
    today = _day(services, meeting, 3)
    with services.ledger.transaction() as signing:
        lock_extract(signing, row.id)
        report = send_due_reminders(services, today=today)
    assert report == DeadlineReport(failed=(meeting.meeting_id,))
    assert _reminders(services) == []
    report = send_due_reminders(services, today=today)
    assert report.reminded == (f"chair-0:{meeting.chair.email}",)
