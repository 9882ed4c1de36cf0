"""E-mail from the workflow through the outbox (:mod:`justering.workflow.mailing`): a
message is queued in the step's transaction, so a step that rolls back sends
nothing; it leaves after the commit, so an SMTP server that is down never holds
up signing, and what it could not take goes out, the same messages, once it is back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from justering import workflow
from justering.devtools.mail_sink import MailSink
from justering.ledger.database import utcnow
from justering.ledger.schema import LinkTokenRow, MailOutboxRow
from justering.mail.delivery import SmtpNotifier
from justering.model.meeting import Meeting
from justering.model.roles import Role
from justering.model.trail import EventKind
from justering.orchestration.prefect_server import free_port
from justering.workflow.advance import request_signatures
from justering.workflow.mailing import send_queued_mail
from justering.workflow.protocols import documents_of
from justering.workflow.services import Services
from support.workflow import extract_rows, outbox, small_meeting, trail

SENDER = "Justering <justering@nacka.example>"
LINK = re.compile(r"http://justering\.test/s/([A-Za-z0-9_-]+)")


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mailbox", port=free_port()) as server:
        yield server


@pytest.fixture
def smtp_services(services: Services, sink: MailSink) -> Services:
    """The workflow sending over SMTP to ``sink`` (which a test may stop)."""
    return replace(
        services,
        settings=replace(services.settings, mail_from=SENDER),
        notifier=SmtpNotifier(sink.smtp_url, sender=SENDER, timeout=10),
    )


def _queued(services: Services) -> list[tuple[str, str, str | None, int, str | None]]:
    """(recipient, Message-ID, text, attempts, last error) of every unsent message."""
    with services.ledger.reading() as session:
        rows = session.execute(
            select(
                MailOutboxRow.recipient_email,
                MailOutboxRow.message_id,
                MailOutboxRow.text,
                MailOutboxRow.attempts,
                MailOutboxRow.last_error,
            )
            .where(MailOutboxRow.sent_at.is_(None))
            .order_by(MailOutboxRow.id)
        ).all()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def test_a_step_that_rolls_back_sends_nothing(services: Services, sample_meeting: Meeting) -> None:
    meeting = small_meeting(sample_meeting)
    workflow.record_meeting(services, meeting)
    workflow.draft_meeting(services, meeting.meeting_id)
    chair = meeting.signers(Role.CHAIR)[0]
    with pytest.raises(RuntimeError), services.ledger.transaction() as session:
        documents = documents_of(session, meeting.meeting_id)
        request_signatures(session, services, meeting, chair, documents)
        raise RuntimeError("the step failed after its message was queued")
    send_queued_mail(services)
    assert outbox(services) == []
    assert _queued(services) == []
    with services.ledger.reading() as session:
        assert session.execute(select(func.count()).select_from(LinkTokenRow)).scalar_one() == 0
    [row] = extract_rows(services, meeting.meeting_id)
    assert not [e for e in trail(services, row.id) if e.kind is EventKind.NOTIFIED]

    workflow.advance_meeting(services, meeting.meeting_id)  # the step again: one message
    [message] = outbox(services)
    assert message.to == chair.email


def test_a_failing_smtp_server_never_blocks_signing(
    smtp_services: Services, sink: MailSink, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    sink.stop()  # the SMTP server is down from the start
    workflow.record_meeting(smtp_services, meeting)
    report = workflow.advance_meeting(smtp_services, meeting.meeting_id)
    assert report.complete and report.failed == ()  # the advance is not held up
    assert report.notified == (f"chair-0:{meeting.chair.email}",)
    [(to, request_id, text, attempts, error)] = _queued(smtp_services)
    assert to == meeting.chair.email and attempts == 1
    assert error is not None and sink.address in error
    found = LINK.search(text or "")
    assert found, text

    # The link was committed before its message tried to leave: the chair can sign.
    receipt = workflow.sign_with_link(smtp_services, found.group(1))
    assert receipt.items and receipt.signer.role is Role.CHAIR
    report = workflow.advance_meeting(smtp_services, meeting.meeting_id)
    assert report.complete and report.notified == (f"adjuster-0:{meeting.adjusters[0].email}",)
    queued = _queued(smtp_services)
    assert [q[0] for q in queued] == [
        meeting.chair.email,  # the request
        meeting.chair.email,  # the receipt
        meeting.adjusters[0].email,
    ]
    assert all(q[4] for q in queued), "each was tried and failed"

    # The server is back; once the back-off has passed, each goes out, as queued.
    sink.start()
    with smtp_services.ledger.transaction() as session:
        session.execute(
            update(MailOutboxRow).values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )
    sent = send_queued_mail(smtp_services)
    assert sent.failed == () and sent.sent == tuple(q[1] for q in queued)
    assert [m.message_id for m in sink.received()] == [q[1] for q in queued]
    assert sink.received()[0].message_id == request_id
    [row] = extract_rows(smtp_services, meeting.meeting_id)
    notified = {
        e.role: e.detail["message_id"]
        for e in trail(smtp_services, row.id)
        if e.kind is EventKind.NOTIFIED
    }
    assert notified == {"chair": request_id, "adjuster": queued[2][1]}
    assert _queued(smtp_services) == []
