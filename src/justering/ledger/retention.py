"""Retention of the two outboxes: what has left is deleted once it is old enough.

- ``mail_outbox``: a row whose message was sent (``sent_at`` set) before the cutoff.
  Its text was erased when it was sent; what is left (recipient's name and address,
  subject) is needed by no reader, and the trail's ``notified`` event keeps the
  ``Message-ID``. A message not yet sent, or failing, is never deleted.
- ``webhook_deliveries`` (and their ``webhook_attempts``): a delivery the receiver
  accepted (``delivered``) before the cutoff. A ``pending`` one (due, retrying,
  being sent) or a ``failed`` one (its client may still ask for it again) is never
  deleted.

Each pass deletes in batches of :data:`BATCH` rows, each batch in a transaction of
its own, its rows locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a row another
transaction holds, such as a delivery being replayed, is left for the next pass)
and checked again under the lock, so a row that changed meanwhile is not deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from justering.ledger.database import Ledger
from justering.ledger.schema import (
    MailOutboxRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    aware_utc,
)

__all__ = ["BATCH", "Pruned", "prune_delivered_webhooks", "prune_sent_mail"]

BATCH = 500
"""Rows deleted per transaction (a short lock, whatever the backlog)."""
_DELIVERED = "delivered"  # justering.ledger.webhooks.DELIVERED (no import cycle)


@dataclass(frozen=True)
class Pruned:
    """What one pass deleted (or, in a dry run, would delete)."""

    rows: int
    oldest: dt.datetime | None
    """When the oldest of them was sent or delivered; None when there was none."""


def prune_sent_mail(ledger: Ledger, *, before: dt.datetime, dry_run: bool = False) -> Pruned:
    """Delete every ``mail_outbox`` row sent before ``before`` (never an unsent one)."""
    eligible = (MailOutboxRow.sent_at.is_not(None), MailOutboxRow.sent_at < before)
    return _prune(ledger, MailOutboxRow.id, MailOutboxRow.sent_at, eligible, _delete_mail, dry_run)


def prune_delivered_webhooks(
    ledger: Ledger, *, before: dt.datetime, dry_run: bool = False
) -> Pruned:
    """Delete every webhook delivery delivered before ``before``, with its attempts
    (never a pending or failed one)."""
    eligible = (
        WebhookDeliveryRow.state == _DELIVERED,
        WebhookDeliveryRow.delivered_at.is_not(None),
        WebhookDeliveryRow.delivered_at < before,
    )
    return _prune(
        ledger,
        WebhookDeliveryRow.id,
        WebhookDeliveryRow.delivered_at,
        eligible,
        _delete_deliveries,
        dry_run,
    )


_Eligible = tuple[ColumnElement[bool], ...]
_Delete = Callable[[Session, list[Any], _Eligible], int]


def _prune(
    ledger: Ledger,
    key: InstrumentedAttribute[Any],
    moment: InstrumentedAttribute[Any],
    eligible: _Eligible,
    delete_rows: _Delete,
    dry_run: bool,
) -> Pruned:
    """Count (``dry_run``) or delete, batch by batch, the rows that are ``eligible``;
    ``moment`` is when each was sent or delivered."""
    if dry_run:
        with ledger.reading() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(moment)).where(*eligible)
            ).one()
            return Pruned(int(count), _earliest(oldest))
    total, oldest = 0, None
    while True:
        with ledger.transaction() as session:
            rows = session.execute(
                select(key, moment)
                .where(*eligible)
                .order_by(moment, key)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                total += delete_rows(session, [row[0] for row in rows], eligible)
        oldest = _earliest(oldest, *(row[1] for row in rows))
        if len(rows) < BATCH:
            return Pruned(total, oldest)


def _delete_mail(session: Session, ids: list[Any], eligible: _Eligible) -> int:
    """Delete these (locked) sent messages that are still eligible."""
    result = session.execute(delete(MailOutboxRow).where(MailOutboxRow.id.in_(ids), *eligible))
    assert isinstance(result, CursorResult)  # a DELETE's result counts its rows
    return result.rowcount


def _delete_deliveries(session: Session, ids: list[Any], eligible: _Eligible) -> int:
    """Delete these (locked) deliveries that are still delivered and old enough, and
    their attempts."""
    still = list(
        session.scalars(
            select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.id.in_(ids), *eligible)
        )
    )
    session.execute(delete(WebhookAttemptRow).where(WebhookAttemptRow.delivery_id.in_(still)))
    session.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.id.in_(still)))
    return len(still)


def _earliest(*moments: dt.datetime | None) -> dt.datetime | None:
    known = [aware_utc(m) for m in moments if m is not None]
    return min(known, default=None)
