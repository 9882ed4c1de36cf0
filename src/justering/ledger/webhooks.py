"""The webhook outbox: one row per message to a meeting system, written in the
transaction that records the event it reports (so a rolled-back step sends nothing,
and a committed one is never forgotten), delivered after the commit by whoever
claims it (:func:`claim_due`), each attempt logged.

The one hook is :func:`queue_trail_event`, called by
:func:`justering.ledger.extracts.append_event` for every trail event; the table of
which events a client hears of is :func:`justering.model.webhooks.event_type`. A
meeting started from the operator's command line has no client and no webhooks.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from justering.errors import NotFoundError
from justering.ledger.database import Ledger, utcnow
from justering.ledger.schema import (
    ClientRow,
    ExtractRow,
    MeetingRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    aware_utc,
)
from justering.model.trail import TrailEvent
from justering.model.webhooks import OVERDUE_DETAIL, event_type, webhook_payload

__all__ = [
    "CLAIM_SECONDS",
    "DELIVERED",
    "FAILED",
    "PENDING",
    "RETRY_DELAYS",
    "Claimed",
    "Delivery",
    "claim_due",
    "client_delivery",
    "defer",
    "has_due",
    "list_deliveries",
    "queue_trail_event",
    "queue_webhook",
    "record_attempt",
    "redeliver",
    "replay",
]

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
RETRY_DELAYS: tuple[dt.timedelta, ...] = tuple(
    dt.timedelta(seconds=s) for s in (5, 60, 300, 1800, 7200, 18000, 36000, 36000)
)
"""After the n-th failed attempt the next is due this much later; after the last, the
delivery is ``failed`` (about 28 hours of trying; ``justering webhooks replay`` sends
it again)."""
CLAIM_SECONDS = 60
"""A claimed delivery is due again this long after the claim, should its sender die
before it records the attempt (longer than any attempt takes)."""

_DETAIL_KEYS: Mapping[str, tuple[str, ...]] = {
    "extract.declined": ("comment",),
    "protocol.held": ("paragraph",),
    "protocol.justered": (
        "justered_on",
        "justering_deadline",
        "late",
        "announced_on",
        "appeal_deadline",
        "paragraphs",
    ),
}
"""What of an event's detail a client is told, per type (never identities or paths)."""


@dataclass(frozen=True)
class Claimed:
    """A delivery a sender has claimed: what to post, where, signed with what."""

    id: str
    url: str | None
    """None: the client has no webhook URL any more (removed, or the client revoked)."""
    secret: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """A delivery as ``justering webhooks`` lists it, with its latest attempt."""

    id: str
    client: str
    event_type: str
    meeting_id: str
    created_at: dt.datetime
    state: str
    attempts: int
    """Attempts logged in all (replays included)."""
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    payload: dict[str, Any]
    delivered_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The delivery as its meeting system reads it through the API (docs/api.md):
        what was sent when, and how it went; never the secret, the URL, the server's
        meeting key or the message itself (``justering webhooks --json`` adds the
        client and the message)."""

        def time(moment: dt.datetime | None) -> str | None:
            return None if moment is None else moment.isoformat(timespec="seconds")

        return {
            "id": self.id,
            "type": self.event_type,
            "meeting_id": self.meeting_id,
            "status": self.state,
            "created_at": time(self.created_at),
            "attempts": self.attempts,
            "last_attempt_at": time(self.last_attempt_at),
            "last_http_status": self.last_status,
            "last_error": self.last_error,
            "next_attempt_at": time(self.next_attempt_at),
            "delivered_at": time(self.delivered_at),
        }


def queue_webhook(
    session: Session,
    *,
    client: str,
    meeting_id: str,
    event: str,
    at: dt.datetime,
    data: Mapping[str, Any],
) -> str | None:
    """Queue ``event`` for ``client`` in the caller's transaction, if the client has a
    webhook URL; the delivery's id, else None."""
    hooked = session.execute(
        select(ClientRow.name).where(
            ClientRow.name == client,
            ClientRow.webhook_url.is_not(None),
            ClientRow.revoked_at.is_(None),
        )
    ).scalar_one_or_none()
    if hooked is None:
        return None
    delivery_id = f"msg_{uuid.uuid4().hex}"
    session.add(
        WebhookDeliveryRow(
            id=delivery_id,
            client=client,
            meeting_id=meeting_id,
            event_type=event,
            payload=webhook_payload(event, at, data),
            created_at=utcnow(),
            state=PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
        )
    )
    return delivery_id


def queue_trail_event(session: Session, extract: ExtractRow, event: TrailEvent) -> str | None:
    """Queue the webhook a trail event makes, if any (the caller is appending it)."""
    kind = event_type(event.kind, extract.kind, event.detail)
    if kind is None:
        return None
    client, external_id = _owner(session, extract.meeting_id)
    if client is None:
        return None
    data: dict[str, Any] = {
        "meeting_id": external_id,
        "kind": extract.kind.value,
        "paragraph": None if extract.kind.is_protocol else extract.paragraph,
        "version": event.version,
        "document_sha256": event.document_sha256,
        "role": event.role,
    }
    if kind == "deadline.overdue":
        data["deadline"] = event.detail.get(OVERDUE_DETAIL)
    data.update({k: event.detail[k] for k in _DETAIL_KEYS.get(kind, ()) if k in event.detail})
    return queue_webhook(
        session,
        client=client,
        meeting_id=extract.meeting_id,
        event=kind,
        at=event.at,
        data=data,
    )


def has_due(ledger: Ledger, *, now: dt.datetime | None = None) -> bool:
    """Whether a delivery is due (a cheap look before scheduling a sender)."""
    with ledger.reading() as session:
        found = session.execute(
            select(WebhookDeliveryRow.id)
            .where(
                WebhookDeliveryRow.state == PENDING,
                WebhookDeliveryRow.next_attempt_at <= (now or utcnow()),
            )
            .limit(1)
        ).scalar_one_or_none()
        return found is not None


_OWNERS = "justering.webhook_owners"


def _owner(session: Session, meeting_id: str) -> tuple[str | None, str | None]:
    """The meeting's client and its own id for the meeting, read once per transaction
    (a signature records events on many documents of one meeting; a meeting's client
    never changes)."""
    known: dict[str, tuple[str | None, str | None]] = session.info.setdefault(_OWNERS, {})
    if meeting_id not in known:
        row = session.execute(
            select(MeetingRow.client, MeetingRow.external_id).where(
                MeetingRow.meeting_id == meeting_id
            )
        ).one_or_none()
        known[meeting_id] = (None, None) if row is None else (row.client, row.external_id)
    return known[meeting_id]


def claim_due(
    ledger: Ledger, *, now: dt.datetime | None = None, limit: int = 20, only: str | None = None
) -> list[Claimed]:
    """Claim up to ``limit`` pending deliveries that are due (``only``: that one, if it
    is): each is due again only :data:`CLAIM_SECONDS` later, so several senders
    (processes) never take the same one at once (PostgreSQL: ``FOR UPDATE SKIP
    LOCKED``; SQLite: one writer at a time)."""
    now = now or utcnow()
    query = select(WebhookDeliveryRow).where(
        WebhookDeliveryRow.state == PENDING, WebhookDeliveryRow.next_attempt_at <= now
    )
    if only is not None:
        query = query.where(WebhookDeliveryRow.id == only)
    with ledger.transaction() as session:
        rows = (
            session.execute(
                query.order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        claimed = []
        for row in rows:
            row.next_attempt_at = now + dt.timedelta(seconds=CLAIM_SECONDS)
            target = session.get(ClientRow, row.client)
            usable = target is not None and target.revoked_at is None
            claimed.append(
                Claimed(
                    id=row.id,
                    url=target.webhook_url if usable and target else None,
                    secret=target.webhook_secret if usable and target else None,
                    payload=dict(row.payload),
                )
            )
        return claimed


def record_attempt(
    ledger: Ledger,
    delivery_id: str,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    now: dt.datetime | None = None,
    delays: Sequence[dt.timedelta] = RETRY_DELAYS,
) -> str:
    """Log an attempt and move the delivery on: ``delivered`` (no error), due again
    after the next of ``delays``, or ``failed`` after the last. Its new state."""
    now = now or utcnow()
    with ledger.transaction() as session:
        row = session.execute(
            select(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id).with_for_update()
        ).scalar_one()
        session.add(
            WebhookAttemptRow(
                delivery_id=delivery_id,
                at=now,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        if row.state == PENDING:  # a slow duplicate of a finished one changes nothing
            if error is None:
                row.state, row.delivered_at = DELIVERED, now
            else:
                row.attempts += 1
                if row.attempts > len(delays):
                    row.state = FAILED
                else:
                    row.next_attempt_at = now + delays[row.attempts - 1]
        return row.state


def defer(ledger: Ledger, delivery_id: str, *, until: dt.datetime) -> None:
    """Give a claimed delivery back, due at ``until``, without an attempt: its receiver
    did not answer another delivery a moment ago (no use waiting for it twice)."""
    with ledger.transaction() as session:
        row = session.execute(
            select(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id).with_for_update()
        ).scalar_one()
        if row.state == PENDING:
            row.next_attempt_at = until


def replay(ledger: Ledger, delivery_id: str, *, client: str | None = None) -> None:
    """Make a delivery due now, with its back-off started afresh (the same message,
    the same ``webhook-id``: a receiver that has it already ignores it).
    ``NotFoundError`` for an unknown id (or one of another client than ``client``)."""
    with ledger.transaction() as session:
        _restart(_locked(session, delivery_id, client))


def redeliver(ledger: Ledger, delivery_id: str, *, client: str) -> str:
    """A meeting system's own request to have its delivery sent again: a ``failed``
    one is replayed (:func:`replay`); a ``pending`` one (due, retrying or being sent)
    or a ``delivered`` one is left as it is, so asking twice sends it once. Its state
    afterwards. ``NotFoundError`` for an unknown id and for another client's alike."""
    with ledger.transaction() as session:
        row = _locked(session, delivery_id, client)
        if row.state == FAILED:
            _restart(row)
        return row.state


def _locked(session: Session, delivery_id: str, client: str | None) -> WebhookDeliveryRow:
    row = session.execute(
        select(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id).with_for_update()
    ).scalar_one_or_none()
    if row is None or (client is not None and row.client != client):
        raise NotFoundError("webhook delivery", delivery_id)
    return row


def _restart(row: WebhookDeliveryRow) -> None:
    row.state, row.attempts, row.next_attempt_at = PENDING, 0, utcnow()
    row.delivered_at = None


def list_deliveries(
    ledger: Ledger,
    *,
    client: str | None = None,
    state: str | None = None,
    limit: int = 50,
    before: tuple[dt.datetime, str] | None = None,
) -> tuple[Delivery, ...]:
    """The deliveries (of ``client``, in ``state``), newest first, at most ``limit``,
    each with its last attempt; ``before``: only those after this ``(created_at, id)``
    in that order (the last one of the page before)."""
    query = select(WebhookDeliveryRow).order_by(
        WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.id.desc()
    )
    if client is not None:
        query = query.where(WebhookDeliveryRow.client == client)
    if state is not None:
        query = query.where(WebhookDeliveryRow.state == state)
    if before is not None:
        created_at, last_id = before
        query = query.where(
            or_(
                WebhookDeliveryRow.created_at < created_at,
                and_(WebhookDeliveryRow.created_at == created_at, WebhookDeliveryRow.id < last_id),
            )
        )
    with ledger.reading() as session:
        return _with_attempts(session, session.execute(query.limit(limit)).scalars().all())


def client_delivery(ledger: Ledger, client: str, delivery_id: str) -> Delivery:
    """One of ``client``'s deliveries; ``NotFoundError`` for an unknown id and for
    another client's alike."""
    with ledger.reading() as session:
        row = session.get(WebhookDeliveryRow, delivery_id)
        if row is None or row.client != client:
            raise NotFoundError("webhook delivery", delivery_id)
        (found,) = _with_attempts(session, [row])
        return found


def _with_attempts(session: Session, rows: Sequence[WebhookDeliveryRow]) -> tuple[Delivery, ...]:
    """``rows`` as :class:`Delivery` values, their attempts counted and their last
    attempt read in two queries for them all."""
    ids = [row.id for row in rows]
    if not ids:
        return ()
    counted = session.execute(
        select(WebhookAttemptRow.delivery_id, func.count(), func.max(WebhookAttemptRow.id))
        .where(WebhookAttemptRow.delivery_id.in_(ids))
        .group_by(WebhookAttemptRow.delivery_id)
    ).all()
    counts = {delivery_id: int(count) for delivery_id, count, _ in counted}
    lasts = {
        attempt.delivery_id: attempt
        for attempt in session.scalars(
            select(WebhookAttemptRow).where(WebhookAttemptRow.id.in_([m for _, _, m in counted]))
        )
    }
    return tuple(_delivery(row, counts.get(row.id, 0), lasts.get(row.id)) for row in rows)


def _delivery(row: WebhookDeliveryRow, count: int, last: WebhookAttemptRow | None) -> Delivery:
    return Delivery(
        id=row.id,
        client=row.client,
        event_type=row.event_type,
        meeting_id=str(row.payload.get("data", {}).get("meeting_id", "")),
        created_at=aware_utc(row.created_at),
        state=row.state,
        attempts=int(count),
        next_attempt_at=aware_utc(row.next_attempt_at) if row.state == PENDING else None,
        last_attempt_at=aware_utc(last.at) if last else None,
        last_status=last.status_code if last else None,
        last_error=last.error if last else None,
        payload=dict(row.payload),
        delivered_at=aware_utc(row.delivered_at) if row.delivered_at else None,
    )
