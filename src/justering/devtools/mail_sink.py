"""A local SMTP sink: receives the e-mails justering sends and keeps them as files.

For development and evaluation on one machine. ``justering serve`` with
``JUSTERING_SMTP_URL=smtp://127.0.0.1:1025`` sends its messages (signing requests
with their links, receipts, notices to the secretary) to this sink, which
``justering mailbox`` runs in another terminal. Nothing leaves the machine.

:class:`MailSink` is an aiosmtpd server in a background thread. It accepts any
sender and any recipient, and writes each message atomically (temporary file,
``fsync``, ``os.replace``) as an RFC 5322 ``.eml`` file into its folder, named by
the time of arrival (UTC) and the first recipient. Like a real mail delivery agent it
puts trace headers in front of the message as received: ``Return-Path`` (the
envelope sender), one ``Delivered-To`` per envelope recipient and ``Received``
(when), so that :func:`parse_received` can read the envelope back from the file.
Messages over :data:`MAX_MESSAGE_BYTES` are refused with ``552``; a message that
cannot be stored is refused with ``451`` so that the sender tries again.

:class:`ReceivedMail` (read back by :mod:`justering.devtools.received_mail`) is
what a person needs to click through: sender, recipients, the decoded subject and the
http(s) links of the plain-text part (quoted-printable and base64 decoded).
:func:`summary_line` formats one for the terminal and :func:`run_mailbox` is the
whole ``justering mailbox`` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import signal
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from email.header import Header
from email.utils import format_datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from justering.devtools.received_mail import ReceivedMail, parse_received, parse_stored
from justering.errors import ConfigError
from justering.orchestration.listening import listen

__all__ = [
    "DEFAULT_PORT",
    "MAX_MESSAGE_BYTES",
    "MailSink",
    "ReceivedMail",
    "parse_received",
    "run_mailbox",
    "summary_line",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 1025
"""The sink's usual port: unprivileged, the one the README tells users to use."""

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
"""Larger messages are refused with ``552`` (announced as ``SIZE`` in the EHLO reply)."""

_SERVER_NAME = "justering-mailbox"


# --- storing a message -------------------------------------------------------------------


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "x"


def _header_line(name: str, value: str) -> bytes:
    """One trace header; non-ASCII (SMTPUTF8 addresses) as an RFC 2047 encoded word."""
    value = " ".join("".join(c for c in value if c.isprintable()).split())
    if value.isascii():
        return f"{name}: {value}\r\n".encode("ascii")
    return f"{name}: {Header(value, 'utf-8').encode()}\r\n".encode("ascii")


def _trace_headers(envelope: Envelope, session: Session, now: dt.datetime) -> bytes:
    sender = envelope.mail_from or ""
    lines = [_header_line("Return-Path", f"<{sender}>")]
    lines.extend(_header_line("Delivered-To", rcpt) for rcpt in envelope.rcpt_tos)
    peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else "unknown"
    helo = session.host_name or "unknown"
    lines.append(
        _header_line(
            "Received",
            f"from {helo} ([{peer}]) by {_SERVER_NAME} (justering mailbox) with "
            f"{'UTF8SMTP' if envelope.smtp_utf8 else 'ESMTP'}; {format_datetime(now)}",
        )
    )
    return b"".join(lines)


class _Store:
    """Writes messages into ``folder``, one ``.eml`` file each, never overwriting one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def write(self, data: bytes, recipient: str, now: dt.datetime) -> Path:
        stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        stem = f"{stamp}-{_safe_name(recipient)}"
        self.folder.mkdir(parents=True, exist_ok=True)  # someone may have cleared it away
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".incoming-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            with self._lock:
                target = self.folder / f"{stem}.eml"
                count = 1
                while target.exists():
                    count += 1
                    target = self.folder / f"{stem}-{count}.eml"
                os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _fsync_folder(self.folder)
        return target


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


class _Handler:
    """The aiosmtpd handler: stores every message it is given and reports it."""

    def __init__(self, store: _Store, report: Callable[[ReceivedMail], None]) -> None:
        self.store = store
        self.report = report

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = dt.datetime.now().astimezone()
        content = envelope.original_content or b""
        data = _trace_headers(envelope, session, now) + content
        first = envelope.rcpt_tos[0] if envelope.rcpt_tos else "unknown"
        try:
            path = self.store.write(data, first, now)
        except OSError as error:
            log.error("cannot store a message in %s: %s", self.store.folder, error)
            return "451 4.3.0 Requested action aborted: cannot store the message"
        try:
            mail = parse_stored(path, data)
        except Exception:  # stored is stored: a message we cannot read is still accepted
            log.exception("cannot read the stored message %s", path)
            mail = ReceivedMail(path, envelope.mail_from or "", tuple(envelope.rcpt_tos), "", ())
        self.report(mail)
        return f"250 2.0.0 OK: stored as {path.name}"


# --- the server --------------------------------------------------------------------------


class _BoundController(Controller):
    """An aiosmtpd Controller serving on a socket bound beforehand in the caller's thread.

    Binding first makes "address in use" an immediate error of :meth:`MailSink.start`
    (aiosmtpd would report it only after its start timeout) and makes port 0 work:
    the Controller's start-up probe connects to ``self.port``, which must be the real one.
    """

    def __init__(
        self, handler: _Handler, sock: socket.socket, probe_host: str, **smtp: Any
    ) -> None:
        self._listening = sock
        super().__init__(handler, hostname=probe_host, port=sock.getsockname()[1], **smtp)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(
            self._factory_invoker, sock=self._listening, ssl=self.ssl_context
        )


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; :class:`ConfigError` naming it otherwise."""
    return listen(
        host,
        port,
        what="mailbox",
        in_use="is another mailbox or SMTP server running there? Stop it or choose another port",
        backlog=100,
    )


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"


def _probe_host(bound: str) -> str:
    """Where a client on this machine reaches a socket bound to ``bound``."""
    wildcards = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 (compared)
    return wildcards.get(bound, bound)


class MailSink:
    """An SMTP server on ``host:port`` that stores every message as ``.eml`` in ``folder``.

    Use as a context manager, or :meth:`start` and :meth:`stop`. ``port=0`` picks a
    free port; :attr:`port` tells which. ``on_mail`` is called (in the server's thread)
    with each stored message; an exception it raises is logged, not sent to the client.
    """

    def __init__(
        self,
        folder: Path,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        on_mail: Callable[[ReceivedMail], None] | None = None,
        *,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.folder = Path(folder)
        self.host = host
        self._requested_port = port
        self.on_mail = on_mail
        self.max_bytes = max_bytes
        self._controller: _BoundController | None = None
        self._received: list[ReceivedMail] = []
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port the server listens on (the requested one while it is not running)."""
        server = self._controller.server if self._controller else None
        if isinstance(server, asyncio.Server) and server.sockets:
            return int(server.sockets[0].getsockname()[1])
        return self._requested_port

    @property
    def address(self) -> str:
        """``host:port`` as a client would connect to it."""
        return _address(_probe_host(self.host), self.port)

    @property
    def smtp_url(self) -> str:
        """The ``JUSTERING_SMTP_URL`` that sends justering's messages here."""
        return f"smtp://{self.address}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def received(self) -> list[ReceivedMail]:
        """The messages this sink has stored since it was created, oldest first."""
        with self._lock:
            return list(self._received)

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the mail sink is already running")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"mailbox: cannot create the folder {self.folder}: {error.strerror or error}"
            ) from None
        if not os.access(self.folder, os.W_OK):
            raise ConfigError(f"mailbox: cannot write into the folder {self.folder}")
        sock = _listen(self.host, self._requested_port)
        handler = _Handler(_Store(self.folder), self._deliver)
        controller = _BoundController(
            handler,
            sock,
            _probe_host(sock.getsockname()[0]),
            data_size_limit=self.max_bytes,
            server_hostname=_SERVER_NAME,
            ident="justering mailbox (local SMTP sink)",
        )
        try:
            controller.start()
        except BaseException:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            sock.close()
            raise
        self._controller = controller

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _deliver(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._received.append(mail)
        if self.on_mail is not None:
            try:
                self.on_mail(mail)
            except Exception:
                log.exception("the on_mail callback failed for %s", mail.path)


# --- the command -------------------------------------------------------------------------


def summary_line(mail: ReceivedMail) -> str:
    """``12:03:04  till rolf@…  «subject»``, then one indented line per link."""
    when = mail.received_at.astimezone() if mail.received_at else None
    clock = when.strftime("%H:%M:%S") if when else "--:--:--"
    to = ", ".join(mail.recipients) or "(ingen mottagare)"
    subject = mail.subject or "(utan ämne)"
    lines = [f"{clock}  till {to}  «{subject}»"]
    lines.extend(f"    {link}" for link in mail.links)
    return "\n".join(lines)


def run_mailbox(
    folder: Path,
    host: str,
    port: int,
    *,
    out: TextIO,
    stop: threading.Event | None = None,
) -> int:
    """``justering mailbox``: receive until Ctrl-C, SIGTERM or ``stop`` is set; returns 0.

    Prints where it listens and what to set, then a :func:`summary_line` per message.
    """
    stop = stop or threading.Event()
    printing = threading.Lock()

    def say(text: str) -> None:
        # a closed or broken terminal must not stop the receiving
        with printing, contextlib.suppress(OSError, ValueError):
            print(text, file=out, flush=True)

    def show(mail: ReceivedMail) -> None:
        say(summary_line(mail))

    sink = MailSink(folder, host, port, on_mail=show)
    sink.start()
    try:
        with _stop_on_sigterm(stop):
            say(
                f"justering mailbox: tar emot e-post på {sink.address}, sparar i {sink.folder} "
                f"(receiving e-mail on {sink.address}, storing it in {sink.folder})"
            )
            say("Starta justering med (start justering with):")
            say(f"    JUSTERING_SMTP_URL={sink.smtp_url}")
            say("    JUSTERING_MAIL_FROM='Justering <justering@kommun.example>'")
            say("Avsluta med Ctrl-C (stop with Ctrl-C).")
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    count = len(sink.received())
    got = "1 meddelande mottaget" if count == 1 else f"{count} meddelanden mottagna"
    say(f"justering mailbox: stoppad, {got} (stopped, {count} received)")
    return 0


@contextlib.contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM sets ``stop`` (only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
