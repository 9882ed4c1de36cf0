"""Reading and writing one extract's record: its row under lock, its document
versions (kept and read back by SHA-256) and its hash-chained trail.

Every function here runs inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TypedDict, Unpack

from sqlalchemy import select
from sqlalchemy.orm import Session

from justering.errors import NotFoundError, TrailError
from justering.ledger.database import utcnow
from justering.ledger.heads import head_problem, seal_head
from justering.ledger.schema import DocumentRow, ExtractRow, MeetingRow, TrailEventRow
from justering.ledger.webhooks import queue_trail_event
from justering.model.process import SIGNATURE_EVENTS
from justering.model.roles import Signer
from justering.model.trail import GENESIS_HASH, EventKind, TrailEvent, chain_problems, with_hash

__all__ = [
    "EventFacts",
    "append_event",
    "append_signer_event",
    "checked_trail",
    "event_rows",
    "get_extract",
    "last_event",
    "load_document",
    "lock_extract",
    "lock_meeting",
    "sha256_hex",
    "signed_slots",
    "slots_with",
    "store_document",
    "trail_of",
]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get_extract(session: Session, extract_id: int) -> ExtractRow:
    """The extract row; ``NotFoundError`` if there is none."""
    row = session.get(ExtractRow, extract_id)
    if row is None:
        raise NotFoundError("extract", extract_id)
    return row


def lock_meeting(session: Session, meeting_id: str) -> None:
    """Lock the meeting's row for this transaction. Every transaction that writes
    more than one extract of a meeting, or the meeting and an extract, takes this
    lock first and the extracts' after it: one order, so no deadlock."""
    session.execute(
        select(MeetingRow.meeting_id).where(MeetingRow.meeting_id == meeting_id).with_for_update()
    )


def lock_extract(session: Session, extract_id: int) -> ExtractRow:
    """The extract row, locked for this transaction."""
    row = session.execute(
        select(ExtractRow).where(ExtractRow.id == extract_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("extract", extract_id)
    return row


def store_document(session: Session, extract: ExtractRow, content: bytes) -> str:
    """Keep a document version; returns its SHA-256 (idempotent)."""
    digest = sha256_hex(content)
    if session.get(DocumentRow, digest) is None:
        session.add(
            DocumentRow(
                sha256=digest,
                extract_id=extract.id,
                version=extract.version,
                content=content,
                created_at=utcnow(),
            )
        )
        session.flush()
    return digest


def load_document(session: Session, sha256: str) -> bytes:
    """A stored document, checked against its hash (a row altered in the database
    is refused, not signed or archived)."""
    row = session.get(DocumentRow, sha256)
    if row is None:
        raise TrailError(f"document {sha256} is not in the ledger")
    if sha256_hex(row.content) != sha256:
        raise TrailError(f"document {sha256} was altered in the ledger: its hash differs")
    return row.content


class EventFacts(TypedDict, total=False):
    """What an appended trail event records beyond who did it, all optional."""

    document_sha256: str | None
    """The document the event concerns (by default none; a signer's event: the
    extract's current one)."""
    certificate_sha256: str | None
    detail: dict[str, str] | None
    at: dt.datetime | None
    """When; by default now. Must be timezone-aware."""


def append_event(
    session: Session,
    extract: ExtractRow,
    kind: EventKind,
    *,
    actor: str = "system",
    actor_email: str | None = None,
    role: str | None = None,
    slot: str | None = None,
    **facts: Unpack[EventFacts],
) -> TrailEvent:
    """Append an event to the extract's chain and seal the new head
    (:mod:`justering.ledger.heads`), and queue the webhook it makes for the meeting's
    client, in the same transaction (:mod:`justering.ledger.webhooks`). The caller
    holds the extract's lock.

    Refuses (``TrailError``) to append to a trail whose last event is not the
    sealed head: a trail rewritten in the database is never sealed again by a
    legitimate step on top of it."""
    at = facts.get("at")
    if at is not None and at.tzinfo is None:
        raise TrailError("trail times must be timezone-aware")
    last = last_event(session, extract.id)
    problem = head_problem(session, extract)
    if problem is None and (None if last is None else last.hash) != extract.trail_head:
        problem = "its last event is not the head the ledger recorded"
    if problem is not None:
        raise TrailError(f"extract {extract.ref}: {problem}; nothing was recorded")
    event = with_hash(
        TrailEvent(
            extract=extract.ref,
            seq=1 if last is None else last.seq + 1,
            kind=kind,
            at=(at or utcnow()).astimezone(dt.UTC),
            actor=actor,
            actor_email=actor_email,
            role=role,
            version=extract.version,
            document_sha256=facts.get("document_sha256"),
            certificate_sha256=facts.get("certificate_sha256"),
            detail=facts.get("detail") or {},
            prev_hash=GENESIS_HASH if last is None else last.hash,
        )
    )
    session.add(TrailEventRow.of_event(event, extract_id=extract.id, slot=slot))
    seal_head(session, extract, event.hash)
    queue_trail_event(session, extract, event)  # the meeting system's webhook, if any
    session.flush()
    return event


def trail_of(session: Session, extract_id: int) -> tuple[TrailEvent, ...]:
    return tuple(row.to_event() for row in event_rows(session, extract_id))


def checked_trail(
    session: Session, extract: ExtractRow
) -> tuple[tuple[TrailEvent, ...], list[str]]:
    """The extract's trail and what is wrong with it: its chain, its end against the
    recorded head, and the head against its seal. No problems: the trail is the one
    the ledger's own steps wrote."""
    events = trail_of(session, extract.id)
    problems = chain_problems(events, expected_head=extract.trail_head)
    sealed = head_problem(session, extract)
    return events, problems + ([sealed] if sealed else [])


def last_event(session: Session, extract_id: int) -> TrailEventRow | None:
    """The extract's newest trail event, without reading the others."""
    return session.execute(
        select(TrailEventRow)
        .where(TrailEventRow.extract_id == extract_id)
        .order_by(TrailEventRow.seq.desc())
        .limit(1)
    ).scalar_one_or_none()


def event_rows(session: Session, extract_id: int) -> list[TrailEventRow]:
    query = select(TrailEventRow).where(TrailEventRow.extract_id == extract_id)
    return list(session.scalars(query.order_by(TrailEventRow.seq)))


def append_signer_event(
    session: Session,
    extract: ExtractRow,
    kind: EventKind,
    signer: Signer,
    **facts: Unpack[EventFacts],
) -> TrailEvent:
    """Append an event done by (or to) ``signer`` on the extract's current document
    (or ``document_sha256``)."""
    facts["document_sha256"] = facts.get("document_sha256") or extract.head_sha256
    return append_event(
        session,
        extract,
        kind,
        actor=signer.name,
        actor_email=signer.email,
        role=signer.role.value,
        slot=signer.slot,
        **facts,
    )


def slots_with(session: Session, extract: ExtractRow, kinds: frozenset[EventKind]) -> set[str]:
    """The signer slots with an event of ``kinds`` on the extract's current version."""
    return {
        row.slot
        for row in event_rows(session, extract.id)
        if row.kind in kinds and row.version == extract.version and row.slot
    }


def signed_slots(session: Session, extract: ExtractRow) -> set[str]:
    """The signer slots that signed the extract's current version."""
    return slots_with(session, extract, SIGNATURE_EVENTS)
