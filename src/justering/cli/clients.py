"""``justering clients``: the meeting systems that may start a justering.

``clients add NAME --body CODE …`` prints the new client's token once, alone on the
last line of standard output (so that a script can take it with ``tail -n 1``);
only its hash is kept. ``clients list`` and ``clients revoke NAME`` manage them.
"""

from __future__ import annotations

import argparse
import sys

from justering.config import Settings

__all__ = ["add_clients_parser", "run_clients"]

EXIT_OK = 0


def add_clients_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``clients`` and its actions on the command line's subcommands."""
    clients = commands.add_parser(
        "clients", help="the meeting systems that may start a justering (API tokens)"
    )
    actions = clients.add_subparsers(dest="clients_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a meeting system; prints its token once")
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
    actions.add_parser("list", help="the registered meeting systems")
    revoke = actions.add_parser("revoke", help="revoke a meeting system's token for good")
    revoke.add_argument("name")


def run_clients(args: argparse.Namespace, settings: Settings) -> int:
    from justering.ledger.clients import add_client, list_clients, revoke_client
    from justering.ledger.database import Ledger

    ledger = Ledger(settings.database_url)
    try:
        if args.clients_command == "add":
            new = add_client(ledger, args.name, args.bodies, args.municipality)
            print(
                f"client {new.client.name} added for {', '.join(new.client.bodies)}; "
                "its token (shown only now; give it to the meeting system):",
                file=sys.stderr,
            )
            print(new.token)
        elif args.clients_command == "revoke":
            client = revoke_client(ledger, args.name)
            print(f"client {client.name} revoked; its token no longer works")
        else:
            for client in list_clients(ledger):
                state = "revoked" if client.revoked_at else "active"
                where = f" in {client.municipality}" if client.municipality else ""
                print(f"{client.name}\t{state}\t{','.join(client.bodies)}{where}")
    finally:
        ledger.dispose()
    return EXIT_OK
