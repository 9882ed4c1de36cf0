"""Signer links: opaque random tokens, stored only as hashes, bound to a signer,
a role and the extract versions they may sign; expiring and single-use.

Order is enforced by the workflow when a link is used (see
:mod:`justering.workflow`), so a forwarded or early link cannot sign out of turn.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from justering.errors import LinkError
from justering.ledger import ExtractRow, LinkGrantRow, LinkTokenRow, aware, utcnow
from justering.roles import Signer

TOKEN_BYTES = 32
"""256 bits of randomness, URL-safe base64 encoded."""


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
    if not extracts:
        raise ValueError("a link must grant at least one extract")
    moment = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = hash_token(token)
    session.add(
        LinkTokenRow(
            token_hash=digest,
            meeting_id=meeting_id,
            role=signer.role.value,
            slot=signer.slot,
            signer_name=signer.name,
            signer_email=signer.email,
            created_at=moment,
            expires_at=moment + ttl,
        )
    )
    session.flush()
    for extract in extracts:
        session.add(LinkGrantRow(token_hash=digest, extract_id=extract.id, version=extract.version))
    session.flush()
    return IssuedLink(
        token=token,
        signer=signer,
        meeting_id=meeting_id,
        expires_at=moment + ttl,
        extract_ids=tuple(extract.id for extract in extracts),
    )


def _looks_like_token(token: str) -> bool:
    return 20 <= len(token) <= 100 and all(c.isalnum() or c in "-_" for c in token)


def find_link(session: Session, token: str, *, now: dt.datetime | None = None) -> LinkTokenRow:
    """The link behind ``token`` if it can still be used; else ``LinkError`` saying why."""
    if not _looks_like_token(token):
        raise LinkError("Länken är ogiltig. (The link is not valid.)", status_code=404)
    row = session.get(LinkTokenRow, hash_token(token))
    if row is None:
        raise LinkError("Länken är ogiltig. (The link is not valid.)", status_code=404)
    moment = now or utcnow()
    if row.revoked_at is not None:
        raise LinkError(
            "Länken har återkallats eftersom underlaget har ändrats. "
            "(The link was revoked because the document changed.)",
            status_code=410,
        )
    if row.used_at is not None:
        raise LinkError(
            "Länken har redan använts. (The link has already been used.)", status_code=410
        )
    if aware(row.expires_at) <= moment:
        raise LinkError("Länken har gått ut. (The link has expired.)", status_code=410)
    return row


def grants_of(session: Session, token_hash: str) -> list[LinkGrantRow]:
    return list(
        session.execute(
            select(LinkGrantRow)
            .where(LinkGrantRow.token_hash == token_hash)
            .order_by(LinkGrantRow.extract_id)
        ).scalars()
    )


def claim_link(session: Session, link: LinkTokenRow, *, now: dt.datetime | None = None) -> None:
    """Mark the link used, atomically: of concurrent claims exactly one succeeds."""
    moment = now or utcnow()
    claimed = session.execute(
        update(LinkTokenRow)
        .where(LinkTokenRow.token_hash == link.token_hash, LinkTokenRow.used_at.is_(None))
        .values(used_at=moment)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkError(
            "Länken har redan använts. (The link has already been used.)", status_code=410
        )
