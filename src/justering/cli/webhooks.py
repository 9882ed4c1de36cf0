"""``justering webhooks``: the webhook deliveries to meeting systems, newest first
(``--client``, ``--limit``, ``--json``), and ``webhooks replay ID``, which sends one
again now. ``clients webhook`` (:mod:`justering.cli.clients`) sets where they go.

Exit codes: 0 listed, or replayed and accepted; 1 the receiver did not accept the
replay (it is retried with back-off); 2 no such delivery, or no home.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from justering.cli.commands import EXIT_INVALID, EXIT_OK, Commands, existing_ledger
from justering.config import Settings
from justering.model.calendar import local_second

if TYPE_CHECKING:
    from justering.ledger.webhooks import Delivery

__all__ = ["register"]


def register(commands: Commands) -> None:
    """``justering webhooks`` and ``justering webhooks replay``."""
    webhooks = commands.add(
        "webhooks",
        help="webhook deliveries to meeting systems, newest first (read-only); "
        "'replay ID' sends one again",
        run=_list,
    )
    webhooks.add_argument("--client", metavar="NAME", help="only this meeting system's")
    webhooks.add_argument(
        "--limit", type=int, default=50, metavar="N", help="at most N deliveries (default 50)"
    )
    webhooks.add_argument("--json", action="store_true", help="print JSON (docs/cli.md)")
    actions = commands.nested(webhooks, "[ACTION]", required=False)
    replay = actions.add(
        "replay",
        help="send a delivery again now (the same message and webhook-id)",
        run=_replay,
    )
    replay.add_argument("delivery_id", metavar="DELIVERY_ID", help="the id, msg_… (as listed)")


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from justering.ledger.webhooks import list_deliveries

    with existing_ledger(settings) as ledger:
        rows = list_deliveries(ledger, client=args.client, limit=max(args.limit, 1))
    if args.json:
        print(
            json.dumps(
                {"deliveries": [_as_json(row) for row in rows]}, indent=2, ensure_ascii=False
            )
        )
        return EXIT_OK
    for row in rows:
        last = "never tried"
        if row.last_attempt_at is not None:
            outcome = row.last_error or f"HTTP {row.last_status}"
            last = f"last {local_second(row.last_attempt_at)}: {outcome}"
        print(
            f"{row.id}\t{row.client}\t{row.event_type}\t{row.meeting_id}\t{row.state}\t"
            f"{row.attempts} attempt(s), {last}"
        )
    return EXIT_OK


def _as_json(delivery: Delivery) -> dict[str, object]:
    """As the API shows it (:meth:`Delivery.to_json`), with the client and the message."""
    return {"client": delivery.client, **delivery.to_json(), "payload": delivery.payload}


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from justering.workflow.webhooks import replay_delivery

    with existing_ledger(settings) as ledger:
        report = replay_delivery(ledger, args.delivery_id)
    if report.delivered:
        print(f"{args.delivery_id} delivered")
        return EXIT_OK
    print(f"{args.delivery_id} not accepted by the receiver; retried with back-off")
    return EXIT_INVALID
