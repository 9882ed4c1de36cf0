"""Webhooks as a meeting system sees them: which trail events it hears of (the event
types), what each message says (no personnummer, no server paths, no tokens), the
receiver URLs that may be registered and the per-client signing secret.

No I/O here: :mod:`justering.ledger.webhooks` keeps the outbox, and
:mod:`justering.webhooks.sender` signs (Standard Webhooks) and posts.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from justering.errors import ConfigError
from justering.model.process import DocumentKind
from justering.model.trail import EventKind

__all__ = [
    "EVENT_TYPES",
    "MEETING_RECORDED",
    "OVERDUE_DETAIL",
    "SECRET_PREFIX",
    "check_webhook_url",
    "event_type",
    "new_webhook_secret",
    "webhook_payload",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
"""Standard Webhooks: a secret is ``whsec_`` and the base64 of its bytes."""
_SECRET_BYTES = 32
MEETING_RECORDED = "meeting.recorded"
OVERDUE_DETAIL = "overdue"
"""The detail key of the ``notified`` event that records the secretary's overdue
notice (:mod:`justering.workflow.deadlines`): that event is ``deadline.overdue``."""

_VERBS: Mapping[EventKind, str] = {
    EventKind.SIGNED: "signed",
    EventKind.DECLINED: "declined",
    EventKind.REDRAFTED: "redrafted",
    EventKind.HELD: "held",
    EventKind.ANNOUNCED: "justered",
    EventKind.CERTIFIED: "certified",
    EventKind.ARCHIVED: "archived",
}
"""The trail events a meeting system hears of, on an extract (``extract.<verb>``) or a
protocol (``protocol.<verb>``). A protocol is announced in the transaction that
justers it: its ``announced`` event is ``protocol.justered``."""

EVENT_TYPES: tuple[str, ...] = (
    MEETING_RECORDED,
    "extract.signed",
    "extract.declined",
    "extract.redrafted",
    "extract.certified",
    "extract.archived",
    "protocol.signed",
    "protocol.redrafted",
    "protocol.held",
    "protocol.justered",
    "protocol.archived",
    "deadline.overdue",
)
"""Every type a delivery may have (docs/api.md lists them)."""


def event_type(kind: EventKind, document: DocumentKind, detail: Mapping[str, str]) -> str | None:
    """The webhook type of a trail event on a document of ``document`` kind; None for
    events a meeting system is not told of (drafted, viewed, a signing request)."""
    if kind is EventKind.NOTIFIED:
        return "deadline.overdue" if OVERDUE_DETAIL in detail else None
    verb = _VERBS.get(kind)
    if verb is None:
        return None
    found = f"{'protocol' if document.is_protocol else 'extract'}.{verb}"
    return found if found in EVENT_TYPES else None


def webhook_payload(event: str, at: dt.datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a delivery (Standard Webhooks' ``type``, ``timestamp``, ``data``)."""
    if event not in EVENT_TYPES:
        raise ValueError(f"unknown webhook type {event!r}")
    return {
        "type": event,
        "timestamp": at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "data": dict(data),
    }


def new_webhook_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


_LOOPBACK_NAMES = frozenset({"localhost"})
_MAX_URL = 2000


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str) -> str:
    """``url`` if a receiver may be registered at it, else ``ConfigError`` naming what
    is wrong: ``https`` (plain ``http`` only to a loopback address, for a receiver on
    the same machine), a host, no user name or password in it (they would be sent and
    logged), no fragment, at most 2000 characters."""
    text = url.strip()
    if not text or len(text) > _MAX_URL or any(c.isspace() for c in text):
        raise ConfigError(
            f"webhook URL {url!r}: expected one https:// URL of at most {_MAX_URL} characters"
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as error:
        raise ConfigError(f"webhook URL {url!r}: {error}") from None
    if parts.scheme not in ("https", "http"):
        raise ConfigError(f"webhook URL {url!r}: the scheme must be https")
    if not host:
        raise ConfigError(f"webhook URL {url!r}: it names no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"webhook URL {url!r}: no user name or password in the URL; the receiver "
            "verifies the signature instead"
        )
    if parts.fragment:
        raise ConfigError(f"webhook URL {url!r}: no #fragment (it is never sent)")
    if parts.scheme == "http" and not _loopback(host):
        raise ConfigError(
            f"webhook URL {url!r}: the scheme must be https (http only to a loopback "
            "address such as 127.0.0.1, for a receiver on this machine)"
        )
    return text
