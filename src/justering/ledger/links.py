"""Signer links: opaque random tokens, stored only as hashes, bound to a signer,
a role and the extract versions they may sign; expiring and single-use.

Order is enforced by the workflow when a link is used (see
:mod:`justering.workflow.signer_links`), so a forwarded or early link cannot sign out of turn.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from justering.errors import LinkError, LinkProblem
from justering.ledger.database import utcnow
from justering.ledger.schema import ExtractRow, LinkGrantRow, LinkTokenRow, aware_utc
from justering.model.roles import Person, Signer

__all__ = [
    "SECRETARY",
    "IssuedLink",
    "SecretaryLink",
    "claim_link",
    "find_link",
    "grants_of",
    "hash_token",
    "issue_link",
    "issue_secretary_link",
]

TOKEN_BYTES = 32
"""256 bits of randomness, URL-safe base64 encoded."""

SECRETARY = "secretary"
"""The ``role`` of a secretary's link: it opens the redraft page of a declined
extract, and is refused wherever a signer's link is expected (and vice versa)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedLink:
    """A fresh link. ``token`` exists only here and in the notification it is sent in."""

    token: str
    signer: Signer
    meeting_id: str
    expires_at: dt.datetime
    extract_ids: tuple[int, ...]


def issue_link(
    session: Session,
    *,
    meeting_id: str,
    signer: Signer,
    extracts: Sequence[ExtractRow],
    ttl: dt.timedelta,
    now: dt.datetime | None = None,
) -> IssuedLink:
    """Create a link for ``signer`` to sign the current version of ``extracts``."""
    moment = now or utcnow()
    token = _issue(
        session, meeting_id, signer.role.value, signer.slot, signer.person, extracts, moment, ttl
    )
    return IssuedLink(
        token=token,
        signer=signer,
        meeting_id=meeting_id,
        expires_at=moment + ttl,
        extract_ids=tuple(extract.id for extract in extracts),
    )


@dataclass(frozen=True)
class SecretaryLink:
    """A fresh link to the redraft page of one extract version."""

    token: str
    expires_at: dt.datetime


def issue_secretary_link(
    session: Session,
    *,
    meeting_id: str,
    secretary: Person,
    extract: ExtractRow,
    ttl: dt.timedelta,
    now: dt.datetime | None = None,
) -> SecretaryLink:
    """Create a link for the secretary to redraft the current version of ``extract``."""
    moment = now or utcnow()
    token = _issue(session, meeting_id, SECRETARY, SECRETARY, secretary, [extract], moment, ttl)
    return SecretaryLink(token, moment + ttl)


def _issue(
    session: Session,
    meeting_id: str,
    role: str,
    slot: str,
    person: Person,
    extracts: Sequence[ExtractRow],
    moment: dt.datetime,
    ttl: dt.timedelta,
) -> str:
    if not extracts:
        raise ValueError("a link must grant at least one extract")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = hash_token(token)
    session.add(
        LinkTokenRow(
            token_hash=digest,
            meeting_id=meeting_id,
            role=role,
            slot=slot,
            signer_name=person.name,
            signer_email=person.email,
            created_at=moment,
            expires_at=moment + ttl,
        )
    )
    session.flush()
    for extract in extracts:
        session.add(LinkGrantRow(token_hash=digest, extract_id=extract.id, version=extract.version))
    session.flush()
    return token


def _looks_like_token(token: str) -> bool:
    return 20 <= len(token) <= 100 and all(c.isalnum() or c in "-_" for c in token)


def find_link(
    session: Session, token: str, *, now: dt.datetime | None = None, secretary: bool = False
) -> LinkTokenRow:
    """The link behind ``token`` if it can still be used; else ``LinkError`` saying why.
    A signer's link by default; with ``secretary`` a secretary's link."""
    if not _looks_like_token(token):
        raise LinkError(LinkProblem.INVALID)
    row = session.get(LinkTokenRow, hash_token(token))
    if row is None or (row.role == SECRETARY) != secretary:
        raise LinkError(LinkProblem.INVALID)
    moment = now or utcnow()
    if row.revoked_at is not None:
        raise LinkError(LinkProblem.REVOKED)
    if row.used_at is not None:
        raise LinkError(LinkProblem.USED)
    if aware_utc(row.expires_at) <= moment:
        raise LinkError(LinkProblem.EXPIRED)
    return row


def grants_of(session: Session, token_hash: str) -> list[LinkGrantRow]:
    query = select(LinkGrantRow).where(LinkGrantRow.token_hash == token_hash)
    return list(session.scalars(query.order_by(LinkGrantRow.extract_id)))


def claim_link(session: Session, link: LinkTokenRow, *, now: dt.datetime | None = None) -> None:
    """Mark the link used, atomically: of concurrent claims exactly one succeeds."""
    moment = now or utcnow()
    claimed = session.execute(
        update(LinkTokenRow)
        .where(LinkTokenRow.token_hash == link.token_hash, LinkTokenRow.used_at.is_(None))
        .values(used_at=moment)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkError(LinkProblem.USED)
