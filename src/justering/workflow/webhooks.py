"""Delivering the webhook outbox: claim what is due, post each (outside any
transaction and any meeting's lock, with a short timeout), log the attempt and
back off on failure (:mod:`justering.ledger.webhooks`). Orchestration runs
:func:`deliver_webhooks` right after the steps that queue deliveries and on every
reconciler pass; running it in several processes at once posts nothing twice at
the same time, and a sender that dies leaves its claims due again (at least once:
a receiver dedupes by ``webhook-id``)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from justering.ledger.database import Ledger, utcnow
from justering.ledger.webhooks import (
    DELIVERED,
    FAILED,
    RETRY_DELAYS,
    claim_due,
    defer,
    record_attempt,
    replay,
)
from justering.webhooks.sender import Attempt, post_webhook

__all__ = ["Post", "WebhookReport", "deliver_webhooks", "replay_delivery"]

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
