"""Notifications: how messages (:mod:`justering.mail.messages`) are delivered.

Each message is plain text with an HTML alternative. The default transport
writes it as an RFC 5322 ``.eml`` file to the outbox folder;
:class:`SmtpNotifier` sends it to an SMTP server instead (``JUSTERING_SMTP_URL``).
:func:`notifier_for` chooses between them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from justering.errors import ConfigError, JusteringError
from justering.mail.compose import Message

__all__ = [
    "SENDER",
    "NotificationError",
    "Notifier",
    "OutboxNotifier",
    "SmtpNotifier",
    "SmtpServer",
    "build_message",
    "message_domain",
    "new_message_id",
    "notifier_for",
    "outbox_messages",
]

SENDER = "justering <noreply@justering.invalid>"


class Notifier(Protocol):
    def send(
        self, message: Message, *, message_id: str | None = None, date: dt.datetime | None = None
    ) -> str:
        """Deliver ``message``; returns its ``Message-ID``. ``message_id`` and ``date``
        (set when the message was queued, :mod:`justering.mail.outbox`) make a resend
        the same message to its recipient; without them the message gets new ones."""
        ...


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "x"


class OutboxNotifier:
    """Writes each message as an ``.eml`` file into ``directory`` (atomically)."""

    def __init__(self, directory: Path, *, sender: str = SENDER) -> None:
        self.directory = directory
        self.sender = sender

    def send(
        self, message: Message, *, message_id: str | None = None, date: dt.datetime | None = None
    ) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        mail = build_message(message, sender=self.sender, message_id=message_id, date=date)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{message.kind}-{_safe_name(message.to.email)}.eml"
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(mail.as_bytes())
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.directory / name)
        return str(mail["Message-ID"])


def message_domain(sender: str) -> str:
    """The domain of a sender's address, for the ``Message-ID`` of what it sends."""
    return parseaddr(sender)[1].rpartition("@")[2] or "justering.invalid"


def new_message_id(sender: str) -> str:
    """A fresh, globally unique ``Message-ID`` (RFC 5322) in the sender's domain."""
    return make_msgid(domain=message_domain(sender))


def build_message(
    request: Message,
    sender: str = SENDER,
    *,
    message_id: str | None = None,
    date: dt.datetime | None = None,
) -> EmailMessage:
    """The e-mail for ``request``: multipart/alternative, plain text first, then HTML.
    ``message_id`` and ``date``: those fixed when it was queued (else new ones)."""
    message = EmailMessage()
    message["From"] = sender
    # An address object, never a formatted string: a name with a comma, quotes or
    # angle brackets stays one display name of exactly one recipient.
    message["To"] = Address(display_name=request.to.name, addr_spec=request.to.email)
    message["Subject"] = request.subject()
    message["Date"] = format_datetime((date or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
    message["Message-ID"] = message_id or new_message_id(sender)
    message.set_content(request.text())
    message.add_alternative(request.html(), subtype="html")
    return message


def outbox_messages(directory: Path) -> Sequence[Path]:
    """The delivered messages in the outbox, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.eml"))


class NotificationError(JusteringError):
    """A message could not be delivered (server down, login or recipient refused).

    Raised by the outbox's sender (:mod:`justering.mail.outbox`), after the
    transaction that queued the message: the message stays queued, and is tried
    again after a back-off.
    """


_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to reach the SMTP server, parsed from ``JUSTERING_SMTP_URL``."""

    host: str
    port: int
    implicit_tls: bool
    """``smtps://``: TLS from the first byte; ``smtp://``: STARTTLS where offered."""
    username: str | None = None
    password: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str, environ: Mapping[str, str] | None = None) -> SmtpServer:
        """Parse ``smtp[s]://[user[:password]@]host[:port]``.

        Credentials in the URL are percent-decoded; where absent they come from
        ``JUSTERING_SMTP_USER`` / ``JUSTERING_SMTP_PASSWORD`` in ``environ``.
        """
        env = os.environ if environ is None else environ
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ConfigError(
                f"JUSTERING_SMTP_URL: expected smtp://host[:port] or smtps://host[:port], "
                f"got scheme {parts.scheme!r}"
            )
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise ConfigError(f"JUSTERING_SMTP_URL: bad port in {parts.netloc!r}") from None
        if not parts.hostname:
            raise ConfigError("JUSTERING_SMTP_URL: no host name")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        username = username or env.get("JUSTERING_SMTP_USER") or None
        password = password or env.get("JUSTERING_SMTP_PASSWORD") or None
        if not f"{username or ''}{password or ''}".isascii():
            raise ConfigError(
                "JUSTERING_SMTP_URL: the SMTP user name and password must be ASCII "
                "(Python's smtplib sends them as ASCII)"
            )
        if password and not username:
            raise ConfigError(
                "JUSTERING_SMTP_PASSWORD is set but no user: put it in the URL "
                "(smtp://user@host) or set JUSTERING_SMTP_USER"
            )
        return cls(parts.hostname, port, scheme == "smtps", username, password)


class SmtpNotifier:
    """Sends each message to an SMTP server: one connection per message.

    ``smtps://`` uses implicit TLS; ``smtp://`` upgrades with STARTTLS whenever the
    server offers it. Credentials are never sent over an unencrypted connection.
    ``ssl_context`` defaults to the system's trust store with host name checks.
    """

    def __init__(
        self,
        url: str,
        *,
        sender: str,
        timeout: float = 30,
        environ: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.server = SmtpServer.parse(url, environ)
        address = parseaddr(sender)[1]
        if "@" not in address or address.endswith(".invalid"):
            raise ConfigError(
                f"JUSTERING_MAIL_FROM: sending over SMTP needs a real sender address, "
                f"got {sender!r} (e.g. 'Justering <justering@kommun.se>')"
            )
        self.sender = sender
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(
        self, request: Message, *, message_id: str | None = None, date: dt.datetime | None = None
    ) -> str:
        message = build_message(request, sender=self.sender, message_id=message_id, date=date)
        where = f"SMTP server {self.server.address}"
        try:
            with self._connect() as client:
                self._secure_and_login(client)
                client.send_message(message)
        except smtplib.SMTPAuthenticationError as error:
            raise NotificationError(
                f"{where} refused the login as {self.server.username!r}: {_reply(error)}"
            ) from None
        except smtplib.SMTPRecipientsRefused as error:
            reasons = "; ".join(f"{to}: {_reply(r)}" for to, r in error.recipients.items())
            raise NotificationError(f"{where} refused the recipient ({reasons})") from None
        except smtplib.SMTPSenderRefused as error:
            raise NotificationError(
                f"{where} refused the sender {self.sender!r}: {_reply(error)}"
            ) from None
        except smtplib.SMTPResponseException as error:
            raise NotificationError(f"{where}: {_reply(error)}") from None
        except (smtplib.SMTPException, OSError) as error:
            cause = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise NotificationError(f"{where}: {cause or type(error).__name__}") from None
        return str(message["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        host, port = self.server.host, self.server.port
        if self.server.implicit_tls:
            return smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=self.ssl_context)
        return smtplib.SMTP(host, port, timeout=self.timeout)

    def _secure_and_login(self, client: smtplib.SMTP) -> None:
        client.ehlo()
        if not self.server.implicit_tls:
            if client.has_extn("starttls"):
                client.starttls(context=self.ssl_context)
                client.ehlo()
            elif self.server.username:
                raise ConfigError(
                    f"SMTP server {self.server.address} does not offer STARTTLS: refusing to "
                    "send the SMTP password unencrypted (use smtps:// or a server with STARTTLS)"
                )
        if self.server.username and self.server.password:
            client.login(self.server.username, self.server.password)


def _reply(error: smtplib.SMTPResponseException | tuple[int, bytes]) -> str:
    """An SMTP reply as ``code text``."""
    code, text = (
        (error.smtp_code, error.smtp_error)
        if isinstance(error, smtplib.SMTPResponseException)
        else error
    )
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {decoded}".strip()


def notifier_for(
    smtp_url: str | None,
    *,
    outbox: Path,
    sender: str,
    environ: Mapping[str, str] | None = None,
) -> Notifier:
    """SMTP when ``smtp_url`` is set, otherwise the outbox folder."""
    if smtp_url:
        return SmtpNotifier(smtp_url, sender=sender, environ=environ)
    return OutboxNotifier(outbox, sender=sender)
