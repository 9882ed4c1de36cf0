"""Notifications to signers: what they say and how they are delivered.

The default transport writes each message as an RFC 5322 ``.eml`` file to the
outbox folder; an SMTP transport plugs in behind the same :class:`Notifier`
protocol.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from justering.roles import Role

SENDER = "justering <noreply@justering.invalid>"


@dataclass(frozen=True)
class ExtractLine:
    paragraph: int
    dnr: str | None
    title: str
    immediate: bool = False

    def describe(self) -> str:
        dnr = f"  {self.dnr}" if self.dnr else ""
        flag = "  (omedelbart justerad)" if self.immediate else ""
        return f"§ {self.paragraph}{dnr}  {self.title}{flag}"


@dataclass(frozen=True)
class SigningRequest:
    """Asks one signer to sign the extracts behind one link."""

    to_name: str
    to_email: str
    role: Role
    municipality: str
    body_name: str
    meeting_date: dt.date
    link: str
    expires_at: dt.datetime
    deadline: dt.date
    extracts: tuple[ExtractLine, ...]

    def subject(self) -> str:
        count = len(self.extracts)
        noun = "protokollsutdrag" if count == 1 else f"{count} protokollsutdrag"
        return (
            f"Att signera som {self.role.swedish.lower()}: {noun}, "
            f"{self.body_name} {self.meeting_date.isoformat()}"
        )

    def text(self) -> str:
        lines = [
            f"Hej {self.to_name},",
            "",
            f"{self.body_name}, {self.municipality}, sammanträdde {self.meeting_date.isoformat()}.",
            f"Följande protokollsutdrag väntar på din signatur som {self.role.swedish.lower()}:",
            "",
            *(f"  {extract.describe()}" for extract in self.extracts),
            "",
            "Öppna länken för att läsa utdragen och signera:",
            self.link,
            "",
            f"Sista dag för justering: {self.deadline.isoformat()}.",
            f"Länken är personlig, kan användas en gång och gäller till "
            f"{self.expires_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC.",
            "Vidarebefordra den inte.",
            "",
            "(English: extracts from the meeting above are waiting for your signature; "
            "open the link to read and sign them.)",
        ]
        return "\n".join(lines) + "\n"


class Notifier(Protocol):
    def send(self, request: SigningRequest) -> str:
        """Deliver ``request``; returns an identifier of the delivered message."""
        ...


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "x"


class OutboxNotifier:
    """Writes each message as an ``.eml`` file into ``directory`` (atomically)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, request: SigningRequest) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        message = build_message(request)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{request.role.value}-{_safe_name(request.to_email)}.eml"
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(message.as_bytes())
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.directory / name)
        return str(message["Message-ID"])


def build_message(request: SigningRequest, sender: str = SENDER) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = f"{request.to_name} <{request.to_email}>"
    message["Subject"] = request.subject()
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain="justering.invalid")
    message.set_content(request.text())
    return message


def outbox_messages(directory: Path) -> Sequence[Path]:
    """The delivered messages in the outbox, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*.eml"))
