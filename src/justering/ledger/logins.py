"""Logins with e-legitimation on signers' links, in the ledger (``signer_logins``):
each keyed by the SHA-256 of its ``state``, bound to one link, answered once, and
opening a session whose secret is stored only as a hash.

Every function here runs inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from justering.ledger.database import utcnow
from justering.ledger.schema import SignerLoginRow

__all__ = [
    "ANSWER_WITHIN",
    "KEPT_FOR",
    "add_login",
    "digest",
    "lock_login",
    "login_by_session",
    "prune_logins",
]

ANSWER_WITHIN = dt.timedelta(minutes=10)
"""The provider's answer must come this soon after the login began."""
KEPT_FOR = dt.timedelta(days=1)
"""Logins are deleted this long after they could last be used: their ID tokens have
expired by then, so none can be replayed, and the trail has what is kept."""


def digest(secret: str) -> str:
    """SHA-256 of a ``state`` or a session secret: only this is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def add_login(
    session: Session,
    *,
    token_hash: str,
    state: str,
    nonce: str,
    code_verifier: str,
    now: dt.datetime | None = None,
) -> SignerLoginRow:
    """Record a login begun on the link ``token_hash``."""
    moment = now or utcnow()
    row = SignerLoginRow(
        state_sha256=digest(state),
        token_hash=token_hash,
        nonce=nonce,
        code_verifier=code_verifier,
        started_at=moment,
        expires_at=moment + ANSWER_WITHIN,
    )
    session.add(row)
    session.flush()
    return row


def lock_login(session: Session, state: str) -> SignerLoginRow | None:
    """The login begun with ``state``, locked for this transaction; None if unknown."""
    return session.execute(
        select(SignerLoginRow).where(SignerLoginRow.state_sha256 == digest(state)).with_for_update()
    ).scalar_one_or_none()


def login_by_session(session: Session, secret: str) -> SignerLoginRow | None:
    """The login whose session ``secret`` a browser holds, whatever its state."""
    return session.execute(
        select(SignerLoginRow).where(SignerLoginRow.session_sha256 == digest(secret))
    ).scalar_one_or_none()


def prune_logins(session: Session, now: dt.datetime | None = None) -> None:
    """Delete the logins that can no longer be used, a day after they ended."""
    cutoff = (now or utcnow()) - KEPT_FOR
    session.execute(
        delete(SignerLoginRow).where(
            SignerLoginRow.expires_at < cutoff,
            or_(
                SignerLoginRow.session_expires_at.is_(None),
                SignerLoginRow.session_expires_at < cutoff,
            ),
        )
    )
