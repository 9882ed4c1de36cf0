"""Meeting-system clients: the registered callers that may start a justering.

A client has a name, the body codes (and optionally the municipality) it may
start meetings for, and a bearer token that is shown once, when the client is
added, and stored only as its SHA-256. The meetings a client starts are kept
under a key scoped to the client (:func:`scoped_meeting_id`), so that no client
can take another's meeting id, and a client reads only its own meetings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from justering.errors import ConfigError, NotFoundError
from justering.ledger.database import Ledger, utcnow
from justering.ledger.schema import ClientRow, aware_utc
from justering.model.webhooks import check_webhook_url, new_webhook_secret

__all__ = [
    "TOKEN_PREFIX",
    "Client",
    "NewClient",
    "add_client",
    "client_for_token",
    "client_meeting_id",
    "list_clients",
    "revoke_client",
    "scoped_meeting_id",
    "set_webhook",
]

TOKEN_PREFIX = "jst_"  # noqa: S105 (a prefix, not a secret)
"""Tokens start with this, so that a leaked one is recognisable (secret scanners)."""
_TOKEN_BYTES = 32
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
_BODY_CODE = re.compile(r"[^\W_](?:(?:[^\W_]|[ -]){0,18}[^\W_])?")
_SCOPE = ":"
"""Between a client's name and its meeting id in the ledger's key (a manifest's
``meeting_id`` cannot contain it, a client's name neither)."""


@dataclass(frozen=True)
class Client:
    """A registered meeting system."""

    name: str
    bodies: tuple[str, ...]
    municipality: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    webhook_url: str | None = None
    """Where its webhooks go (:func:`set_webhook`); None: it has none."""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def refusal(self, body_code: str, municipality: str) -> str | None:
        """Why this client may not start a meeting of ``body_code`` in
        ``municipality``; None if it may."""
        if body_code not in self.bodies:
            allowed = ", ".join(self.bodies)
            return (
                f"client {self.name!r} may not start meetings for body {body_code!r} "
                f"(allowed: {allowed})"
            )
        if self.municipality is not None and municipality != self.municipality:
            return (
                f"client {self.name!r} may not start meetings for {municipality!r} "
                f"(only for {self.municipality!r})"
            )
        return None


@dataclass(frozen=True)
class NewClient:
    """A client just added, with the only copy of its token."""

    client: Client
    token: str


def scoped_meeting_id(client: str | None, meeting_id: str) -> str:
    """The ledger's key for a meeting a client started (``client:meeting_id``);
    the meeting id itself for one started from the operator's command line."""
    return meeting_id if client is None else f"{client}{_SCOPE}{meeting_id}"


def client_meeting_id(key: str) -> str:
    """The ``meeting_id`` as its client gave it, from the ledger's key
    (:func:`scoped_meeting_id` undone; a command line meeting's key is its id)."""
    return key.rsplit(_SCOPE, 1)[-1]


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _client(row: ClientRow) -> Client:
    return Client(
        name=row.name,
        bodies=tuple(row.bodies),
        municipality=row.municipality,
        created_at=aware_utc(row.created_at),
        revoked_at=aware_utc(row.revoked_at) if row.revoked_at else None,
        webhook_url=row.webhook_url,
    )


def add_client(
    ledger: Ledger, name: str, bodies: list[str], municipality: str | None = None
) -> NewClient:
    """Register a client; its token is in the result and nowhere else."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"client name {name!r}: use 1 to 40 of a-z 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    if not bodies:
        raise ConfigError(f"client {name!r}: name at least one body code (--body KSAU)")
    for code in bodies:
        if not _BODY_CODE.fullmatch(code):
            raise ConfigError(f"client {name!r}: {code!r} is not a body code like 'KSAU'")
    if municipality is not None and not municipality.strip():
        raise ConfigError(f"client {name!r}: the municipality must not be empty")
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    row = ClientRow(
        name=name,
        token_sha256=_token_sha256(token),
        bodies=sorted(set(bodies)),
        municipality=municipality.strip() if municipality else None,
        created_at=utcnow(),
    )
    try:
        with ledger.transaction() as session:
            if session.get(ClientRow, name) is not None:
                raise ConfigError(f"a client named {name!r} exists already")
            session.add(row)
            session.flush()
            client = _client(row)
    except IntegrityError:
        raise ConfigError(f"a client named {name!r} exists already") from None
    return NewClient(client, token)


def list_clients(ledger: Ledger) -> tuple[Client, ...]:
    with ledger.reading() as session:
        rows = session.execute(select(ClientRow).order_by(ClientRow.name)).scalars()
        return tuple(_client(row) for row in rows)


def revoke_client(ledger: Ledger, name: str) -> Client:
    """Revoke a client's token (for good: add the client under a new name to
    issue another)."""
    with ledger.transaction() as session:
        row = session.get(ClientRow, name)
        if row is None:
            raise NotFoundError("client", name)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        session.flush()
        return _client(row)


def set_webhook(ledger: Ledger, name: str, url: str | None) -> str | None:
    """Send the client's webhooks to ``url`` (checked: :func:`check_webhook_url`),
    signed with a new secret, which is returned (shown once, to give to the meeting
    system); ``url`` None stops its webhooks (and returns None). Deliveries still
    pending go to the new URL, signed with the new secret."""
    checked = None if url is None else check_webhook_url(url)
    secret = None if checked is None else new_webhook_secret()
    with ledger.transaction() as session:
        row = session.get(ClientRow, name)
        if row is None:
            raise NotFoundError("client", name)
        if row.revoked_at is not None and checked is not None:
            raise ConfigError(f"client {name!r} is revoked; it gets no webhooks")
        row.webhook_url, row.webhook_secret = checked, secret
    return secret


def client_for_token(ledger: Ledger, token: str) -> Client | None:
    """The active client whose token this is; None for an unknown or revoked token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with ledger.reading() as session:
        row = session.execute(
            select(ClientRow).where(ClientRow.token_sha256 == _token_sha256(token))
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        return _client(row)
