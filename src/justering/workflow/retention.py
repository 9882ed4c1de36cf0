"""Retention of what has left the outboxes: sent e-mail older than the settings'
``mail_retention_days`` and webhook deliveries delivered longer ago than
``webhook_retention_days`` are deleted (:mod:`justering.ledger.retention`; never a
message not yet sent nor a delivery pending or failed). The reconciler of
``justering serve`` asks its :class:`PruneSchedule` on every pass, which prunes at
its first pass and then at most once per :data:`PRUNE_EVERY`; ``justering outbox
prune`` runs :func:`prune_outboxes` by hand."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from justering.config import Settings
from justering.ledger.database import Ledger, utcnow
from justering.ledger.retention import Pruned, prune_delivered_webhooks, prune_sent_mail

__all__ = ["PRUNE_EVERY", "PruneSchedule", "RetentionReport", "prune_outboxes"]

PRUNE_EVERY = dt.timedelta(minutes=10)
"""How often the reconciler prunes (its passes come every 15 s)."""


@dataclass(frozen=True)
class RetentionReport:
    """What one pass deleted (or, in a dry run, would delete), and the cutoffs."""

    mail: Pruned
    mail_before: dt.datetime
    webhooks: Pruned
    webhooks_before: dt.datetime
    dry_run: bool

    def to_json(self) -> dict[str, Any]:
        def part(pruned: Pruned, before: dt.datetime) -> dict[str, Any]:
            oldest = pruned.oldest
            return {
                "rows": pruned.rows,
                "before": before.isoformat(timespec="seconds"),
                "oldest": None if oldest is None else oldest.isoformat(timespec="seconds"),
            }

        return {
            "dry_run": self.dry_run,
            "mail": part(self.mail, self.mail_before),
            "webhooks": part(self.webhooks, self.webhooks_before),
        }


def prune_outboxes(
    ledger: Ledger,
    settings: Settings,
    *,
    older_than_days: int | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> RetentionReport:
    """Delete sent mail and delivered webhooks older than the settings' retention
    (``older_than_days``: this many days for both, instead)."""
    if older_than_days is not None and older_than_days < 1:
        raise ValueError(f"keep at least 1 day, not {older_than_days}")
    now = now or utcnow()
    mail_days = settings.mail_retention_days if older_than_days is None else older_than_days
    webhook_days = settings.webhook_retention_days if older_than_days is None else older_than_days
    mail_before = now - dt.timedelta(days=mail_days)
    webhooks_before = now - dt.timedelta(days=webhook_days)
    return RetentionReport(
        mail=prune_sent_mail(ledger, before=mail_before, dry_run=dry_run),
        mail_before=mail_before,
        webhooks=prune_delivered_webhooks(ledger, before=webhooks_before, dry_run=dry_run),
        webhooks_before=webhooks_before,
        dry_run=dry_run,
    )


class PruneSchedule:
    """When a reconciler prunes: on its first pass, then at most once per ``every``
    (``clock``: seconds, monotonic). One per reconciler loop, asked from it alone."""

    def __init__(
        self, every: dt.timedelta = PRUNE_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self._clock = clock
        self._last: float | None = None

    def prune_if_due(self, ledger: Ledger, settings: Settings) -> RetentionReport | None:
        """:func:`prune_outboxes` when due; None (nothing done) otherwise."""
        now = self._clock()
        if self._last is not None and now - self._last < self.every.total_seconds():
            return None
        self._last = now
        return prune_outboxes(ledger, settings)
