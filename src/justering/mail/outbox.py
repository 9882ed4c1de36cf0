"""The e-mail outbox: every message is queued (a ``mail_outbox`` row) in the
transaction that records the event it reports, and sent after that transaction has
committed, outside any meeting lock, by :func:`send_due`.

So a message never leaves for a link, a signature or a decline that was rolled
back, and a link is committed before its message leaves (it never answers 404 to
the recipient). What SMTP cannot give is exactly-once delivery: a sender killed
after the server took a message but before the row was marked sent leaves it
queued, and it is sent again once the sender's claim runs out, with the same
``Message-ID`` (fixed when it was queued), which mail programs treat as one message.

Several senders (``justering serve`` processes) share the outbox: each claims one
row at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write lock
serialises the claims) for :data:`CLAIM_TTL`. A failed attempt is recorded (how
many, the last error) and the message waits :func:`retry_delay` before the next.
The transport is a :class:`justering.mail.delivery.Notifier` (the outbox folder or
SMTP).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from justering.errors import JusteringError
from justering.ledger.database import Ledger, utcnow
from justering.ledger.schema import MailOutboxRow, aware_utc
from justering.mail.compose import Message
from justering.mail.delivery import Notifier, new_message_id
from justering.model.roles import Person

__all__ = [
    "CLAIM_TTL",
    "FAILURES_PER_PASS",
    "RETRY_FIRST",
    "RETRY_LONGEST",
    "OutboxReport",
    "QueuedMessage",
    "queue_message",
    "retry_delay",
    "send_due",
]

log = logging.getLogger(__name__)

CLAIM_TTL = dt.timedelta(seconds=60)
"""How long a sender has to send a claimed message before another may send it
(again, with the same ``Message-ID``): longer than an SMTP exchange takes."""
RETRY_FIRST = dt.timedelta(seconds=15)
RETRY_LONGEST = dt.timedelta(hours=1)
"""A message that could not be sent is tried again after 15 s, then 30 s, 1, 2 …
minutes, at most an hour apart, until it leaves."""
FAILURES_PER_PASS = 3
"""A pass stops after this many failures in a row (the server is down, most likely):
a dead SMTP server costs a few time-outs, not one per queued message."""


@dataclass(frozen=True)
class QueuedMessage:
    """A queued message as the transport sends it: the composition, as it was when
    queued (a :class:`justering.mail.compose.Message`)."""

    to: Person
    kind: str
    subject_line: str
    text_part: str
    html_part: str

    def subject(self) -> str:
        return self.subject_line

    def text(self) -> str:
        return self.text_part

    def html(self) -> str:
        return self.html_part


@dataclass(frozen=True)
class OutboxReport:
    """What one :func:`send_due` pass did."""

    sent: tuple[str, ...] = ()
    """The ``Message-ID`` of each message sent."""
    failed: tuple[str, ...] = ()
    """``Message-ID: why`` of each attempt that failed (tried again later)."""


def queue_message(
    session: Session, message: Message, *, sender: str, meeting_id: str | None
) -> str:
    """Queue ``message`` in the caller's transaction (it leaves only if that commits);
    its ``Message-ID``, in ``sender``'s domain, as the trail records it."""
    now = utcnow()
    message_id = new_message_id(sender)
    session.add(
        MailOutboxRow(
            message_id=message_id,
            meeting_id=meeting_id,
            kind=message.kind,
            recipient_name=message.to.name,
            recipient_email=message.to.email,
            subject=message.subject(),
            text=message.text(),
            html=message.html(),
            queued_at=now,
            next_attempt_at=now,
            attempts=0,
        )
    )
    return message_id


def retry_delay(attempts: int) -> dt.timedelta:
    """How long a message waits after its ``attempts``-th attempt failed."""
    delay: dt.timedelta = RETRY_FIRST * (2 ** min(max(attempts - 1, 0), 16))
    return min(delay, RETRY_LONGEST)


@dataclass(frozen=True)
class _Claimed:
    row_id: int
    message_id: str
    queued_at: dt.datetime
    attempts: int
    message: QueuedMessage


def send_due(
    ledger: Ledger, notifier: Notifier, *, meeting_id: str | None = None, limit: int = 200
) -> OutboxReport:
    """Send every queued message that is due (of ``meeting_id``, or of all meetings),
    at most ``limit``, oldest first, each claimed so that no other sender sends it
    meanwhile. Never raises for a message that could not be sent: the attempt is
    recorded and the message waits :func:`retry_delay`."""
    holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(6)}"
    sent: list[str] = []
    failed: list[str] = []
    in_a_row = 0
    while len(sent) + len(failed) < limit and in_a_row < FAILURES_PER_PASS:
        claimed = _claim_next(ledger, holder, meeting_id)
        if claimed is None:
            break
        try:
            notifier.send(claimed.message, message_id=claimed.message_id, date=claimed.queued_at)
        except Exception as error:  # whatever it was, the message stays queued
            reason = error.diagnostics() if isinstance(error, JusteringError) else repr(error)
            wait = _record_failure(ledger, claimed, holder, reason)
            log.warning(
                "message %s to %s not sent (attempt %d), tried again in %s: %s",
                claimed.message_id,
                claimed.message.to.email,
                claimed.attempts,
                wait,
                reason,
            )
            failed.append(f"{claimed.message_id}: {reason}")
            in_a_row += 1
            continue
        in_a_row = 0
        _record_sent(ledger, claimed)
        sent.append(claimed.message_id)
    return OutboxReport(tuple(sent), tuple(failed))


def _claim_next(ledger: Ledger, holder: str, meeting_id: str | None) -> _Claimed | None:
    now = utcnow()
    with ledger.transaction() as session:
        query = (
            select(MailOutboxRow)
            .where(
                MailOutboxRow.sent_at.is_(None),
                MailOutboxRow.next_attempt_at <= now,
                or_(MailOutboxRow.claimed_until.is_(None), MailOutboxRow.claimed_until < now),
            )
            .order_by(MailOutboxRow.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if meeting_id is not None:
            query = query.where(MailOutboxRow.meeting_id == meeting_id)
        row = session.execute(query).scalar_one_or_none()
        if row is None:
            return None
        row.claimed_by, row.claimed_until = holder, now + CLAIM_TTL
        row.attempts += 1
        return _Claimed(
            row.id,
            row.message_id,
            aware_utc(row.queued_at),
            row.attempts,
            QueuedMessage(
                Person(row.recipient_name, row.recipient_email),
                row.kind,
                row.subject,
                row.text or "",
                row.html or "",
            ),
        )


def _record_sent(ledger: Ledger, claimed: _Claimed) -> None:
    """Mark the message sent (whoever holds its claim now: it left) and forget its
    text, which may hold a signer's link."""
    with ledger.transaction() as session:
        session.execute(
            update(MailOutboxRow)
            .where(MailOutboxRow.id == claimed.row_id, MailOutboxRow.sent_at.is_(None))
            .values(
                sent_at=utcnow(),
                claimed_by=None,
                claimed_until=None,
                text=None,
                html=None,
            )
        )


def _record_failure(ledger: Ledger, claimed: _Claimed, holder: str, reason: str) -> dt.timedelta:
    wait = retry_delay(claimed.attempts)
    with ledger.transaction() as session:
        session.execute(
            update(MailOutboxRow)
            .where(MailOutboxRow.id == claimed.row_id, MailOutboxRow.claimed_by == holder)
            .values(
                last_error=reason[:2000],
                next_attempt_at=utcnow() + wait,
                claimed_by=None,
                claimed_until=None,
            )
        )
    return wait
