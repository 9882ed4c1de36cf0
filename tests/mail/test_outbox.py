"""The e-mail outbox (``mail_outbox``): queued in the caller's transaction, sent after
it over real SMTP (a :class:`MailSink` on loopback), retried with back-off, sent
again with the same ``Message-ID`` when its sender died, and never sent twice by
senders working at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, update

from justering.devtools.mail_sink import MailSink
from justering.ledger.database import Ledger, utcnow
from justering.ledger.schema import MailOutboxRow, aware_utc
from justering.mail.compose import MeetingHeader, Message
from justering.mail.delivery import NotificationError, SmtpNotifier
from justering.mail.messages import SigningRequest
from justering.mail.outbox import (
    CLAIM_TTL,
    FAILURES_PER_PASS,
    RETRY_FIRST,
    RETRY_LONGEST,
    queue_message,
    retry_delay,
    send_due,
)
from justering.model.roles import Person, Role
from support.workflow import run_in_threads

SENDER = "Justering <justering@kommun.example>"
MEETING = "nacka-ksau-2014-08-19"


def _request(email: str = "rolf.wasteson@nacka.example", token: str = "abc") -> SigningRequest:
    return SigningRequest(
        to=Person("Rolf Wasteson", email),
        role=Role.ADJUSTER,
        meeting=MeetingHeader(
            MEETING, "Nacka kommun", "Kommunstyrelsens arbetsutskott", dt.date(2014, 8, 19)
        ),
        link=f"http://justering.test/s/{token}",
        expires_at=dt.datetime(2014, 9, 9, 12, 0, tzinfo=dt.UTC),
        deadline=dt.date(2014, 9, 2),
        extracts=(),
    )


def _smtp(sink: MailSink) -> SmtpNotifier:
    return SmtpNotifier(sink.smtp_url, sender=SENDER, timeout=10)


def _queue(ledger: Ledger, *messages: Message) -> list[str]:
    with ledger.transaction() as session:
        return [queue_message(session, m, sender=SENDER, meeting_id=MEETING) for m in messages]


def _rows(ledger: Ledger) -> list[MailOutboxRow]:
    with ledger.reading() as session:
        rows = list(session.execute(select(MailOutboxRow).order_by(MailOutboxRow.id)).scalars())
        session.expunge_all()  # as read, not expired by the reader's rollback
    return rows


def _make_due(ledger: Ledger) -> None:
    """Let the back-offs and claims run out (as time would)."""
    past = utcnow() - dt.timedelta(seconds=1)
    with ledger.transaction() as session:
        session.execute(update(MailOutboxRow).values(next_attempt_at=past))
        session.execute(
            update(MailOutboxRow)
            .where(MailOutboxRow.claimed_until.is_not(None))
            .values(claimed_until=past)
        )


def test_a_rolled_back_transaction_sends_nothing(ledger: Ledger, sink: MailSink) -> None:
    with pytest.raises(RuntimeError), ledger.transaction() as session:
        queue_message(session, _request(token="rolled-back"), sender=SENDER, meeting_id=MEETING)
        raise RuntimeError("the step failed after queueing its message")
    assert _rows(ledger) == []
    assert send_due(ledger, _smtp(sink)).sent == ()

    [message_id] = _queue(ledger, _request(token="committed"))
    report = send_due(ledger, _smtp(sink))
    assert report.sent == (message_id,) and report.failed == ()
    [mail] = sink.received()
    assert mail.message_id == message_id and mail.message_id.endswith("@kommun.example>")
    assert mail.links == ("http://justering.test/s/committed",)
    [row] = _rows(ledger)
    assert row.sent_at is not None and row.attempts == 1
    assert row.text is None and row.html is None, "a sent message's link is not kept"
    assert send_due(ledger, _smtp(sink)).sent == ()  # sent once
    assert len(sink.received()) == 1


def test_a_failed_attempt_is_recorded_and_retried_after_a_back_off(
    ledger: Ledger, sink: MailSink
) -> None:
    sink.stop()  # the SMTP server is down
    [message_id] = _queue(ledger, _request())
    before = utcnow()
    report = send_due(ledger, _smtp(sink))
    assert report.sent == () and len(report.failed) == 1
    [row] = _rows(ledger)
    assert row.attempts == 1 and row.sent_at is None and row.claimed_by is None
    assert row.last_error is not None and f"SMTP server {sink.address}" in row.last_error
    wait = aware_utc(row.next_attempt_at) - before
    assert RETRY_FIRST <= wait < RETRY_FIRST + dt.timedelta(seconds=5)

    sink.start()  # back, but the message waits out its back-off
    assert send_due(ledger, _smtp(sink)).sent == ()
    assert sink.received() == []

    _make_due(ledger)
    assert send_due(ledger, _smtp(sink)).sent == (message_id,)
    [mail] = sink.received()
    assert mail.message_id == message_id
    [row] = _rows(ledger)
    assert row.attempts == 2 and row.sent_at is not None
    assert row.last_error is not None  # what went wrong before, for the operator


def test_the_back_off_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [15, 30, 60, 120]
    assert retry_delay(9) == RETRY_LONGEST and retry_delay(10_000) == RETRY_LONGEST
    assert retry_delay(0) == RETRY_FIRST


def test_a_dead_server_costs_a_few_attempts_per_pass_not_one_per_message(
    ledger: Ledger, sink: MailSink
) -> None:
    sink.stop()
    _queue(ledger, *[_request(token=f"t{n}") for n in range(FAILURES_PER_PASS + 2)])
    report = send_due(ledger, _smtp(sink))
    assert len(report.failed) == FAILURES_PER_PASS
    assert [row.attempts for row in _rows(ledger)] == [1] * FAILURES_PER_PASS + [0, 0]


def test_a_refused_recipient_does_not_hold_back_the_next_message(
    ledger: Ledger, tmp_path: Path
) -> None:
    refused = "okand@nacka.example"
    with MailSink(tmp_path / "box", port=0) as sink:

        class Refusing(SmtpNotifier):
            def send(self, message: Message, **envelope: object) -> str:
                if message.to.email == refused:
                    raise NotificationError(f"550 5.1.1 <{refused}>: mailbox unavailable")
                return super().send(message, **envelope)  # type: ignore[arg-type]

        first, second = _queue(ledger, _request(refused), _request())
        report = send_due(ledger, Refusing(sink.smtp_url, sender=SENDER))
        assert report.sent == (second,)
        assert report.failed == (f"{first}: 550 5.1.1 <{refused}>: mailbox unavailable",)
        assert [m.message_id for m in sink.received()] == [second]


class _DiesAfterSending:
    """A transport whose process is killed right after the server took the message
    (before the outbox row is marked sent)."""

    def __init__(self, inner: SmtpNotifier) -> None:
        self.inner = inner

    def send(
        self, message: Message, *, message_id: str | None = None, date: dt.datetime | None = None
    ) -> str:
        self.inner.send(message, message_id=message_id, date=date)
        raise KeyboardInterrupt("killed")


def test_a_message_whose_sender_died_is_sent_again_with_the_same_message_id(
    ledger: Ledger, sink: MailSink
) -> None:
    [message_id] = _queue(ledger, _request())
    with pytest.raises(KeyboardInterrupt):
        send_due(ledger, _DiesAfterSending(_smtp(sink)))
    [row] = _rows(ledger)
    assert row.sent_at is None and row.claimed_by is not None
    claimed_for = aware_utc(row.claimed_until) - utcnow()  # type: ignore[arg-type]
    assert dt.timedelta(0) < claimed_for <= CLAIM_TTL
    # Another sender leaves it alone while the claim lasts ...
    assert send_due(ledger, _smtp(sink)).sent == ()
    # ... and sends it, the same message, once the claim has run out.
    _make_due(ledger)
    assert send_due(ledger, _smtp(sink)).sent == (message_id,)
    first, again = sink.received()
    assert first.message_id == again.message_id == message_id
    with_date = [Path(m.path).read_text() for m in (first, again)]
    dates = [
        next(line for line in text.splitlines() if line.startswith("Date:")) for text in with_date
    ]
    assert dates[0] == dates[1], "a message sent again carries its first Date too"


def test_senders_at_once_send_each_message_once(ledger: Ledger, sink: MailSink) -> None:
    ids = _queue(ledger, *[_request(token=f"t{n}") for n in range(12)])
    results = run_in_threads(4, lambda: send_due(ledger, _smtp(sink)))
    sent = [m for result in results if not isinstance(result, BaseException) for m in result.sent]
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(sent) == sorted(ids)
    assert Counter(m.message_id for m in sink.received()) == Counter(ids)


def test_a_ledger_from_before_the_outbox_gets_it_when_opened(ledger: Ledger) -> None:
    MailOutboxRow.__table__.drop(ledger.engine)  # type: ignore[attr-defined]
    assert "mail_outbox" not in inspect(ledger.engine).get_table_names()
    upgraded = Ledger(ledger.database_url)
    try:
        assert "mail_outbox" in inspect(upgraded.engine).get_table_names()
        [message_id] = _queue(upgraded, _request())
        assert [row.message_id for row in _rows(upgraded)] == [message_id]
    finally:
        upgraded.dispose()
