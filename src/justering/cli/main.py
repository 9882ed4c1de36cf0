"""The ``justering`` command line: a parser made of each command module's
registration (:class:`justering.cli.commands.Commands`), and the one place that
turns what happened into an exit code.

Exit codes, and no others (docs/cli.md): 0 success, 1 the thing checked is bad,
2 usage or environment error. An interrupted command (Ctrl-C, SIGTERM) stops what
it started and exits 2; a service that is stopped that way (``serve``,
``mailbox``) has done its job and exits 0. A reader that closes the output early
(``| head``) ends the command quietly, exit 2 (it did not run to its end).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from justering import __version__
from justering.cli import (
    audit,
    ca,
    clients,
    meetings,
    outbox,
    service,
    status,
    verify,
    webhooks,
)
from justering.cli.ca import DEFAULT_CA_ORGANISATION, ensure_ca
from justering.cli.commands import EXIT_ERROR, EXIT_OK, Commands, global_options
from justering.config import load_settings
from justering.errors import JusteringError
from justering.home import PRIVATE_UMASK

__all__ = [
    "DEFAULT_CA_ORGANISATION",
    "REGISTRATIONS",
    "build_parser",
    "ensure_ca",
    "main",
]


REGISTRATIONS: tuple[Callable[[Commands], None], ...] = (
    service.register,  # demo, serve, mailbox, bench
    meetings.register,  # meeting-ended, redraft
    status.register,
    verify.register,
    audit.register,
    clients.register,
    webhooks.register,
    outbox.register,
    ca.register,
)
"""Every command module's registration, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    options = global_options()
    parser = argparse.ArgumentParser(
        prog="justering",
        description="Protocol extracts from meeting to certified, archived PDF.",
        epilog="Exit codes: 0 success, 1 the thing checked is bad, 2 usage or environment "
        "error. Every command takes --home before or after its name.",
        parents=[options],
    )
    parser.add_argument("--version", action="version", version=f"justering {__version__}")
    commands = Commands(parser, options)
    for register in REGISTRATIONS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors: exit 2, from argparse
    # What this process and its children (SQLite, Prefect's server) create is private.
    previous = os.umask(PRIVATE_UMASK)
    try:
        return _run(args)
    finally:
        os.umask(previous)


def _run(args: argparse.Namespace) -> int:
    with _terminate_as_interrupt():
        try:
            settings = load_settings(getattr(args, "home", None))
            code: int = args.run(args, settings)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
        except BrokenPipeError as error:
            if _output_closed():  # the reader had enough (| head): no message
                _discard_output()
            else:  # a connection of the command's own
                print(f"justering: {error}", file=sys.stderr)
            return EXIT_ERROR
        except JusteringError as error:
            print(f"justering: {error.diagnostics()}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("justering: interrupted", file=sys.stderr)
            return EXIT_ERROR
        except SystemExit as stop:  # a library giving up (a server that cannot start)
            if stop.code in (None, 0):
                return EXIT_OK
            if isinstance(stop.code, str):
                print(f"justering: {stop.code}", file=sys.stderr)
            return EXIT_ERROR
        except Exception:
            traceback.print_exc()
            print(
                "justering: stopped by an unexpected error (a bug: please report it)",
                file=sys.stderr,
            )
            return EXIT_ERROR


def _output_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def _discard_output() -> None:
    """After the reader closed standard output: send what is still buffered nowhere,
    so that Python's own flush at exit does not fail with a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a command as Ctrl-C does, so that what it started (a Prefect
    server, a service in a session of its own) is stopped on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
