"""``justering clients``: the meeting systems that may start a justering.

``clients add NAME --body CODE …`` prints the new client's token once, alone on the
last line of standard output (so that a script can take it with ``tail -n 1``);
only its hash is kept. ``clients list`` and ``clients revoke NAME`` manage them.
``clients webhook NAME URL`` sends its webhooks to URL, and prints their signing
secret once, in the same way (``--remove`` stops them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from justering.cli.commands import EXIT_OK, Commands, existing_ledger
from justering.config import Settings
from justering.errors import ConfigError

if TYPE_CHECKING:
    from justering.ledger.database import Ledger

__all__ = ["register"]


def register(commands: Commands) -> None:
    """``justering clients`` and its actions."""
    clients = commands.add(
        "clients", help="the meeting systems that may start a justering (API tokens)"
    )
    actions = commands.nested(clients)
    add = actions.add("add", help="register a meeting system; prints its token once", run=_add)
    add.add_argument("name", help="a short name: a-z, 0-9 and '-' (e.g. nacka-ns)")
    add.add_argument(
        "--body",
        dest="bodies",
        action="append",
        required=True,
        metavar="CODE",
        help="a body code it may start meetings for (repeatable), e.g. KSAU",
    )
    add.add_argument(
        "--municipality", help="the only municipality its manifests may name (default: any)"
    )
    actions.add("list", help="the registered meeting systems (read-only)", run=_list)
    revoke = actions.add("revoke", help="revoke a meeting system's token for good", run=_revoke)
    revoke.add_argument("name", help="the client's name")
    webhook = actions.add(
        "webhook",
        help="send a meeting system's webhooks to URL; prints their signing secret once",
        run=_webhook,
    )
    webhook.add_argument("name", help="the client's name")
    webhook.add_argument(
        "url",
        nargs="?",
        metavar="URL",
        help="the receiver: https://… (http:// only to a loopback address)",
    )
    webhook.add_argument(
        "--remove", action="store_true", help="stop its webhooks (instead of a URL)"
    )


@contextmanager
def _ledger(settings: Settings) -> Iterator[Ledger]:
    from justering.ledger.database import Ledger

    ledger = Ledger(settings.database_url)
    try:
        yield ledger
    finally:
        ledger.dispose()


def _add(args: argparse.Namespace, settings: Settings) -> int:
    from justering.ledger.clients import add_client

    settings.home.mkdir(parents=True, exist_ok=True)
    with _ledger(settings) as ledger:
        new = add_client(ledger, args.name, args.bodies, args.municipality)
    print(
        f"client {new.client.name} added for {', '.join(new.client.bodies)}; "
        "its token (shown only now; give it to the meeting system):",
        file=sys.stderr,
    )
    print(new.token)
    return EXIT_OK


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from justering.ledger.clients import list_clients

    with existing_ledger(settings) as ledger:
        clients = list_clients(ledger)
    for client in clients:
        state = "revoked" if client.revoked_at else "active"
        where = f" in {client.municipality}" if client.municipality else ""
        hook = f"\twebhooks to {client.webhook_url}" if client.webhook_url else ""
        print(f"{client.name}\t{state}\t{','.join(client.bodies)}{where}{hook}")
    return EXIT_OK


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    from justering.ledger.clients import revoke_client

    with existing_ledger(settings) as ledger:
        client = revoke_client(ledger, args.name)
    print(f"client {client.name} revoked; its token no longer works")
    return EXIT_OK


def _webhook(args: argparse.Namespace, settings: Settings) -> int:
    from justering.ledger.clients import set_webhook

    if (args.url is None) == (not args.remove):
        raise ConfigError("clients webhook: give either a URL or --remove")
    with existing_ledger(settings) as ledger:
        secret = set_webhook(ledger, args.name, None if args.remove else args.url)
    if secret is None:
        print(f"client {args.name} gets no more webhooks")
        return EXIT_OK
    print(
        f"webhooks of {args.name} go to {args.url.strip()}, signed with this secret "
        "(shown only now; give it to the meeting system):",
        file=sys.stderr,
    )
    print(secret)
    return EXIT_OK
