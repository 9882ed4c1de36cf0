"""``justering outbox prune``: delete what has left the ledger's two outboxes once it
is old enough: sent e-mail (``mail_outbox``) after ``mail_retention_days`` and
delivered webhooks (``webhook_deliveries`` with their attempts) after
``webhook_retention_days`` (``--older-than DAYS`` for both instead). A message not
yet sent, or a webhook pending or failed, is never deleted. ``justering serve``
does the same on every reconciler pass; this is for an operator (or a cron job)
who wants it now, or wants to see first what would go (``--dry-run``).

Exit codes: 0 pruned (or nothing to prune); 2 a bad ``--older-than``, or no home.
"""

from __future__ import annotations

import argparse
import json

from justering.cli.commands import EXIT_OK, Commands, existing_ledger
from justering.config import Settings
from justering.errors import ConfigError
from justering.model.calendar import local_second

__all__ = ["register"]


def register(commands: Commands) -> None:
    """``justering outbox prune``."""
    outbox = commands.add(
        "outbox",
        help="the ledger's outboxes of e-mail and webhooks; 'prune' deletes what has "
        "left them, once old enough",
    )
    actions = commands.nested(outbox)
    prune = actions.add(
        "prune",
        help="delete sent e-mail and delivered webhooks older than the retention "
        "(never unsent mail, never a pending or failed webhook)",
        run=_prune,
    )
    prune.add_argument(
        "--older-than",
        type=int,
        metavar="DAYS",
        help="keep this many days of both instead of mail_retention_days and "
        "webhook_retention_days (at least 1)",
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    prune.add_argument("--json", action="store_true", help="print JSON (docs/cli.md)")


def _prune(args: argparse.Namespace, settings: Settings) -> int:
    from justering.workflow.retention import prune_outboxes

    if args.older_than is not None and args.older_than < 1:
        raise ConfigError(f"--older-than: keep at least 1 day, not {args.older_than}")
    with existing_ledger(settings) as ledger:
        report = prune_outboxes(
            ledger, settings, older_than_days=args.older_than, dry_run=args.dry_run
        )
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return EXIT_OK
    verb = "would delete" if report.dry_run else "deleted"
    for what, pruned, before in (
        ("sent e-mail", report.mail, report.mail_before),
        ("delivered webhooks", report.webhooks, report.webhooks_before),
    ):
        oldest = "" if pruned.oldest is None else f", oldest {local_second(pruned.oldest)}"
        print(f"{what}: {verb} {pruned.rows} from before {local_second(before)}{oldest}")
    return EXIT_OK
