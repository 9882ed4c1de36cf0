"""Sealed trail heads: each extract's ``trail_head`` carries an HMAC under a key of
the home (``HOME/trail-head.key``, :attr:`justering.config.Settings.trail_key_file`).

The hash chain (:mod:`justering.model.trail`) shows that events were changed,
removed or reordered, and ``trail_head`` shows that the chain's end was cut; but
whoever can write the database can rewrite the events, recompute every hash and
set ``trail_head`` to match. The MAC over (extract reference, head) is what they
cannot recompute without the key, which lives in the home's files, not in the
database. It is set in the same transaction as every event appended
(:func:`justering.ledger.extracts.append_event`), checked before each append (so
that no legitimate step re-seals a rewritten trail), when an extract is archived,
and by the audit.

What it does not catch: a rollback of an extract to an earlier state together
with the head and MAC it had then (a replay by someone who copied them); and
anything done by someone who also holds the key. docs/decisions.md says more.

The key reaches the functions here through the session: :class:`Ledger` puts it
in ``Session.info`` (:data:`TRAIL_KEY_INFO`); a ledger opened without it can read
but not append.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from justering.errors import ConfigError, TrailError
from justering.ledger.schema import ExtractRow, extract_ref

__all__ = [
    "HEAD_MAC_COLUMN",
    "TRAIL_KEY_INFO",
    "UNSEALED_HEAD",
    "head_mac",
    "head_problem",
    "seal_existing_heads",
    "seal_head",
    "trail_key",
]

TRAIL_KEY_INFO = "justering.trail_key"
"""The ``Session.info`` entry that holds the trail key."""
HEAD_MAC_COLUMN = "trail_head_mac"
_PURPOSE = "justering-trail-head/1"
UNSEALED_HEAD = (
    "the trail's end is not the one the ledger sealed: its events and head were "
    "rewritten in the database (or this home's trail key is not the one the ledger "
    "was sealed with)"
)
"""The problem :func:`head_problem` names; the audit and archiving report it."""

_log = logging.getLogger(__name__)


def head_mac(key: bytes, extract_ref: str, head: str) -> str:
    """HMAC-SHA256 (hex) of the extract's reference and its trail head."""
    message = json.dumps([_PURPOSE, extract_ref, head], ensure_ascii=False).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def trail_key(session: Session) -> bytes:
    """The trail key of the ledger this session belongs to."""
    key = session.info.get(TRAIL_KEY_INFO)
    if not isinstance(key, bytes):
        raise TrailError(
            "this ledger was opened without the home's trail key: it can read the "
            "trail but neither append to it nor check its seal"
        )
    return key


def seal_head(session: Session, extract: ExtractRow, head: str) -> None:
    """Make ``head`` the extract's trail head, sealed."""
    extract.trail_head = head
    extract.trail_head_mac = head_mac(trail_key(session), extract.ref, head)


def head_problem(session: Session, extract: ExtractRow) -> str | None:
    """:data:`UNSEALED_HEAD` when the extract's trail head does not carry the MAC the
    ledger sealed it with; None when it does, or when it has no trail yet."""
    key = trail_key(session)
    if extract.trail_head is None and extract.trail_head_mac is None:
        return None
    if extract.trail_head is None or extract.trail_head_mac is None:
        return UNSEALED_HEAD
    expected = head_mac(key, extract.ref, extract.trail_head)
    return None if hmac.compare_digest(expected, extract.trail_head_mac) else UNSEALED_HEAD


def seal_existing_heads(connection: Connection, key: bytes | None) -> int:
    """Seal every extract's current head, in a ledger that has just been given the
    ``trail_head_mac`` column (:func:`justering.ledger.database.add_missing_columns`);
    the number of extracts sealed. It runs only then: in a ledger that has the
    column, a missing MAC is a broken seal, never sealed afresh.

    This trusts the ledger as it is at the upgrade: a trail rewritten before it is
    sealed as rewritten. Runs in the transaction that upgrades the schema, so a
    ledger opened without the key is refused and left as it was."""
    if key is None:
        raise ConfigError(
            "the ledger predates sealed trail heads and must be upgraded with the home's "
            "trail key: open it once through the home (e.g. `justering audit`) first"
        )
    rows = connection.execute(
        select(
            ExtractRow.id,
            ExtractRow.meeting_id,
            ExtractRow.paragraph,
            ExtractRow.kind,
            ExtractRow.trail_head,
        )
        .where(ExtractRow.trail_head.is_not(None))
        .order_by(ExtractRow.id)
    ).all()
    if rows:
        connection.execute(
            update(ExtractRow)
            .where(ExtractRow.id == bindparam("row_id"))
            .values(trail_head_mac=bindparam("mac")),
            [
                {
                    "row_id": row.id,
                    "mac": head_mac(
                        key, extract_ref(row.meeting_id, row.paragraph, row.kind), head
                    ),
                }
                for row in rows
                if (head := row.trail_head) is not None
            ],
        )
    _log.warning(
        "upgraded the ledger: sealed the trail heads of %d documents as they stand "
        "(trusting the ledger as it was at the upgrade)",
        len(rows),
    )
    return len(rows)
