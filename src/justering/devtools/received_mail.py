"""A stored e-mail read back as a person clicking through it needs it: the envelope
(from the trace headers the mail sink writes in front of a message, or the headers of
an outbox file), the decoded subject, and the http(s) links of its body."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["ReceivedMail", "parse_received", "parse_stored"]

log = logging.getLogger(__name__)

_TRACE_HEADERS = ("return-path", "delivered-to", "received")


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink stored, as a person reading it in a terminal needs it."""

    path: Path
    """The ``.eml`` file."""
    sender: str
    """The envelope sender (``MAIL FROM``), or the ``From`` address for a file without one."""
    recipients: tuple[str, ...]
    """The envelope recipients (``RCPT TO``), or ``To``/``Cc`` for a file without them."""
    subject: str
    """Decoded (RFC 2047), on one line; empty when the message has none."""
    links: tuple[str, ...]
    """The http(s) URLs of the plain-text part, in order, each once."""
    received_at: dt.datetime | None = None
    """When the sink received it (timezone-aware); ``None`` when the file does not say."""
    message_id: str = ""
    """Its ``Message-ID`` (the same on a message sent again); empty when it has none."""


# --- reading a message -------------------------------------------------------------------


def parse_received(path: Path) -> ReceivedMail:
    """Read back a stored ``.eml`` file (also an outbox file of justering)."""
    return parse_stored(path, path.read_bytes())


def parse_stored(path: Path, data: bytes) -> ReceivedMail:
    """``data`` (the bytes stored at ``path``) read as a received mail."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    sender, recipients, received_at = _trace(message)
    if not sender:
        sender = parseaddr(_header(message, "From"))[1]
    if not recipients:
        fields = [_header(message, name) for name in ("To", "Cc")]
        recipients = tuple(address for _, address in getaddresses(fields) if address)
    if received_at is None:
        received_at = _date(_header(message, "Date"))
    return ReceivedMail(
        path=path,
        sender=sender,
        recipients=recipients,
        subject=" ".join(_header(message, "Subject").split()),
        links=_links(message),
        received_at=received_at,
        message_id=_header(message, "Message-ID").strip(),
    )


def _header(message: Message, name: str) -> str:
    """A header's decoded value; empty when absent. Never raises on malformed input."""
    try:
        value = message.get(name)
    except Exception:  # the header parsers of the email package are lenient but not total
        log.debug("cannot parse header %s", name, exc_info=True)
        raw = message.get_all(name, failobj=[])
        return str(raw[0]) if raw else ""
    return "" if value is None else str(value)


def _trace(message: Message) -> tuple[str, tuple[str, ...], dt.datetime | None]:
    """Envelope sender, recipients and arrival time from the sink's own trace headers.

    Only the headers at the very top count (those the sink put there), so trace
    headers the message already carried from elsewhere are not mistaken for ours.
    """
    sender = ""
    recipients: list[str] = []
    received_at: dt.datetime | None = None
    for name, value in message.items():
        key = name.lower()
        if key not in _TRACE_HEADERS:
            break
        text = " ".join(str(value).split())
        if key == "return-path" and not sender:
            sender = text.strip("<>")
        elif key == "delivered-to":
            recipients.append(text)
        elif key == "received":
            received_at = _date(text.rpartition(";")[2])
            break
    return sender, tuple(recipients), received_at


def _date(text: str) -> dt.datetime | None:
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _links(message: EmailMessage) -> tuple[str, ...]:
    """URLs of the text/plain parts; of the text/html parts only if there is no plain text."""
    plain: list[str] = []
    rich: list[str] = []
    for part in _body_parts(message):
        if part.get_content_type() == "text/plain":
            plain.extend(_URL.findall(_text_of(part)))
        elif part.get_content_type() == "text/html":
            rich.extend(_hrefs(_text_of(part)))
    found = (_trim(url) for url in plain) if plain else iter(rich)
    return tuple(dict.fromkeys(url for url in found if _is_web_url(url)))


def _body_parts(message: EmailMessage) -> Iterator[Message]:
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        yield part


def _text_of(part: Message) -> str:
    """The part's text: transfer encoding undone, then decoded by its charset."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    if charset in {"us-ascii", "ascii"}:
        charset = "utf-8"  # a superset; 8-bit text often comes without a charset
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?»›”’"


def _trim(url: str) -> str:
    """Strip punctuation that ends the sentence, not the URL; keep balanced parentheses."""
    while url:
        unbalanced = url[-1] == ")" and url.count(")") > url.count("(")
        if url[-1] not in _TRAILING and not unbalanced:
            break
        url = url[:-1]
    return url


def _is_web_url(url: str) -> bool:
    return re.fullmatch(r"https?://[^/?#\s]+.*", url, re.IGNORECASE | re.DOTALL) is not None


class _HrefCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value.strip() for name, value in attrs if name == "href" and value)


def _hrefs(html: str) -> list[str]:
    collector = _HrefCollector()
    collector.feed(html)
    collector.close()
    return collector.hrefs
