"""How a ``justering`` subcommand is declared, and what every command shares.

A module of commands has a ``register(commands: Commands)`` function that adds
its subcommands, each with a ``run(args, settings) -> int`` handler;
:mod:`justering.cli.main` lists the modules. Every subcommand (and every nested
one) accepts the global options too, so ``justering --home DIR demo`` and
``justering demo --home DIR`` are the same.

Exit codes: :data:`EXIT_OK` success, :data:`EXIT_INVALID` the thing checked is
bad, :data:`EXIT_ERROR` usage or environment error (docs/cli.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from justering.config import Settings
from justering.errors import ConfigError

if TYPE_CHECKING:
    from justering.ledger.database import Ledger
    from justering.workflow.services import Services

__all__ = [
    "EXIT_ERROR",
    "EXIT_INVALID",
    "EXIT_OK",
    "Commands",
    "Run",
    "existing_ledger",
    "existing_services",
    "global_options",
]

EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2

Run = Callable[[argparse.Namespace, Settings], int]
"""A subcommand's handler: its arguments and the settings; the exit code."""


def global_options() -> argparse.ArgumentParser:
    """The options every command accepts, before or after its name. Their default
    is to be absent, so one given before the command is not undone after it."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--home",
        type=Path,
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="folder for all state (default: $JUSTERING_HOME or ~/.justering)",
    )
    return options


class Commands:
    """The subcommands of one parser; :meth:`add` is a command's registration."""

    def __init__(
        self,
        parser: argparse.ArgumentParser,
        options: argparse.ArgumentParser,
        metavar: str = "COMMAND",
        *,
        required: bool = True,
    ) -> None:
        self._options = options
        self._subparsers = parser.add_subparsers(
            dest=f"{parser.prog.replace(' ', '_')}_command", required=required, metavar=metavar
        )

    def add(self, name: str, *, help: str, run: Run | None = None) -> argparse.ArgumentParser:
        """A subcommand ``name`` that ``run`` carries out (None: it has subcommands
        of its own, :meth:`nested`). Add its arguments to the parser returned."""
        parser = self._subparsers.add_parser(
            name, help=help, description=help, parents=[self._options]
        )
        if run is not None:
            parser.set_defaults(run=run)
        return parser

    def nested(
        self, parser: argparse.ArgumentParser, metavar: str = "ACTION", *, required: bool = True
    ) -> Commands:
        """The subcommands of ``parser`` (``justering ca init``); not ``required``: the
        command runs on its own too (``justering webhooks``, ``webhooks replay ID``)."""
        return Commands(parser, self._options, metavar, required=required)


@contextmanager
def existing_services(settings: Settings) -> Iterator[Services]:
    """The services of an existing home, for a command about what it has recorded
    (``audit``, ``status``, ``redraft``): a home or ledger that does not exist is
    refused (exit 2), never created."""
    from justering.workflow.services import open_services

    _check_existing(settings)
    services = open_services(settings)
    try:
        yield services
    finally:
        services.ledger.dispose()


@contextmanager
def existing_ledger(settings: Settings) -> Iterator[Ledger]:
    """The ledger of an existing home alone (no CA needed), for a command that reads
    or changes no trail (``webhooks``, ``clients webhook``); refused as
    :func:`existing_services` refuses, never created."""
    from justering.ledger.database import Ledger

    _check_existing(settings)
    ledger = Ledger(settings.database_url)
    try:
        yield ledger
    finally:
        ledger.dispose()


def _check_existing(settings: Settings) -> None:
    from sqlalchemy.engine import make_url

    if not settings.home.is_dir():
        raise ConfigError(
            f"no justering home at {settings.home}: give the home with --home DIR or "
            "JUSTERING_HOME (nothing was created)"
        )
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        ledger = Path(url.database)
        if not ledger.is_file():
            raise ConfigError(f"no ledger at {ledger}: nothing has been recorded in this home")
