"""Delivering the webhook outbox: claim what is due, post each (outside any
transaction and any meeting's lock, with a short timeout), log the attempt and
back off on failure (:mod:`justering.ledger.webhooks`). Orchestration runs
:func:`deliver_webhooks` right after the steps that queue deliveries and on every
reconciler pass; running it in several processes at once posts nothing twice at
the same time, and a sender that dies leaves its claims due again (at least once:
a receiver dedupes by ``webhook-id``)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from justering.errors import InputError
from justering.ledger.database import Ledger, utcnow
from justering.ledger.webhooks import (
    DELIVERED,
    FAILED,
    PENDING,
    RETRY_DELAYS,
    Delivery,
    claim_due,
    defer,
    list_deliveries,
    record_attempt,
    replay,
)
from justering.webhooks.sender import Attempt, post_webhook

__all__ = [
    "MAX_PAGE",
    "STATES",
    "DeliveryPage",
    "Post",
    "WebhookReport",
    "deliver_webhooks",
    "delivery_page",
    "replay_delivery",
]

log = logging.getLogger(__name__)

Post = Callable[[str, str, str, Mapping[str, Any]], Attempt]
"""How a delivery is posted: url, secret, delivery id, payload (:func:`post_webhook`)."""

_PAUSE = dt.timedelta(minutes=1)
"""How long a silent receiver's other deliveries wait, with no back-off given."""
_NO_URL = "the client has no webhook URL (removed, or the client revoked): not sent"


@dataclass(frozen=True)
class WebhookReport:
    """What one :func:`deliver_webhooks` did, by delivery id."""

    delivered: tuple[str, ...] = ()
    retrying: tuple[str, ...] = ()
    """Not accepted; due again after the back-off."""
    failed: tuple[str, ...] = ()
    """Given up (every retry used, or no URL to post to)."""


def deliver_webhooks(
    ledger: Ledger,
    *,
    now: dt.datetime | None = None,
    limit: int = 20,
    only: str | None = None,
    delays: Sequence[dt.timedelta] = RETRY_DELAYS,
    post: Post = post_webhook,
) -> WebhookReport:
    """Post up to ``limit`` due deliveries (``only``: that one), one at a time. A
    receiver that does not answer (a timeout, no connection) is tried once per pass:
    its other deliveries are given back untried, due after the first back-off, so a
    hanging receiver costs one timeout, not one per message."""
    delivered: list[str] = []
    retrying: list[str] = []
    failed: list[str] = []
    silent: set[str] = set()
    """Receivers that did not answer in this pass: the rest of theirs wait, untried."""
    for claimed in claim_due(ledger, now=now, limit=limit, only=only):
        retries = delays
        if claimed.url is None or claimed.secret is None:
            attempt, retries = Attempt(None, _NO_URL, 0), ()
        elif claimed.url in silent:
            defer(ledger, claimed.id, until=(now or utcnow()) + min(delays, default=_PAUSE))
            retrying.append(claimed.id)
            continue
        else:
            attempt = post(claimed.url, claimed.secret, claimed.id, claimed.payload)
            if attempt.status_code is None:
                silent.add(claimed.url)
        state = record_attempt(
            ledger,
            claimed.id,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
            now=now,
            delays=retries,
        )
        if state == DELIVERED:
            delivered.append(claimed.id)
        elif state == FAILED:
            log.warning("webhook %s given up: %s", claimed.id, attempt.error)
            failed.append(claimed.id)
        else:
            log.info("webhook %s not delivered (%s); retried later", claimed.id, attempt.error)
            retrying.append(claimed.id)
    return WebhookReport(tuple(delivered), tuple(retrying), tuple(failed))


def replay_delivery(
    ledger: Ledger, delivery_id: str, *, post: Post = post_webhook
) -> WebhookReport:
    """Send a delivery again now (the same message and ``webhook-id``), whatever its
    state; if this attempt fails, it is retried with a fresh back-off."""
    replay(ledger, delivery_id)
    return deliver_webhooks(ledger, only=delivery_id, limit=1, post=post)


MAX_PAGE = 100
"""The most deliveries one page lists (``GET /api/webhooks/deliveries?limit=``)."""
STATES = (PENDING, DELIVERED, FAILED)


@dataclass(frozen=True)
class DeliveryPage:
    """One page of a client's deliveries, newest first; ``after`` is where the next
    page starts (an opaque cursor), None on the last page."""

    deliveries: tuple[Delivery, ...]
    after: str | None


def delivery_page(
    ledger: Ledger, client: str, *, state: str | None, limit: int, after: str | None
) -> DeliveryPage:
    """A page of ``client``'s deliveries (in ``state``), at most ``limit`` (1 to
    :data:`MAX_PAGE`), after the cursor ``after`` of the page before. ``InputError``
    naming the parameter (``status``, ``limit``, ``after``) for an unknown state, a
    limit out of range or a cursor that is not one this gave."""
    if state is not None and state not in STATES:
        raise InputError("status", f"must be one of {', '.join(STATES)}, not {state!r}")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError("limit", f"must be from 1 to {MAX_PAGE}, not {limit}")
    before = None if after is None else _read_cursor(after)
    rows = list_deliveries(ledger, client=client, state=state, limit=limit + 1, before=before)
    shown = rows[:limit]
    more = len(rows) > limit
    return DeliveryPage(shown, _cursor(shown[-1]) if more else None)


def _cursor(delivery: Delivery) -> str:
    moment = delivery.created_at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    raw = f"{moment}|{delivery.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_MAX_CURSOR = 200


def _read_cursor(text: str) -> tuple[dt.datetime, str]:
    problem = InputError("after", "must be the cursor 'next' of the page before")
    if not text or len(text) > _MAX_CURSOR:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        moment, _, delivery_id = raw.partition("|")
        created_at = dt.datetime.fromisoformat(moment)
        if created_at.tzinfo is None:
            raise problem
        created_at = created_at.astimezone(dt.UTC)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise problem from None
    if not delivery_id.isascii() or not delivery_id.isprintable():
        raise problem
    return created_at, delivery_id
