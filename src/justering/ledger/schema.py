"""The ledger: the legal record of every meeting, extract, document version,
signer link and trail event, in one SQL database (SQLAlchemy).

SQLite under the home folder by default; PostgreSQL in production through
``JUSTERING_DATABASE_URL``. Write transactions serialise per extract: row
locks on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

from justering.errors import ConfigError, TrailError
from justering.model.trail import GENESIS_HASH, EventKind, TrailEvent, seal


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class MeetingRow(Base):
    __tablename__ = "meetings"

    meeting_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The canonical manifest (``meeting_to_dict``), paragraphs inline."""
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    advanced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    work_requested: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every event that may let the meeting move (a signature)."""
    work_done: Mapped[int] = mapped_column(Integer, default=0)
    """The ``work_requested`` value the last complete advance started from."""


class ExtractRow(Base):
    __tablename__ = "extracts"
    __table_args__ = (UniqueConstraint("meeting_id", "paragraph"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.meeting_id"), index=True)
    paragraph: Mapped[int] = mapped_column(Integer)
    dnr: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(32), index=True)
    head_sha256: Mapped[str] = mapped_column(String(64))
    """The newest document of the current version (each signature makes a new one)."""
    archive_uri: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    trail_head: Mapped[str | None] = mapped_column(String(64))
    """The hash of the extract's last trail event: anchors the chain's end, so that
    events cut from the end of the trail are noticed (a chain alone cannot tell)."""

    @property
    def ref(self) -> str:
        return f"{self.meeting_id}/{self.paragraph}"


class DocumentRow(Base):
    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    extract_id: Mapped[int] = mapped_column(ForeignKey("extracts.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class TrailEventRow(Base):
    __tablename__ = "trail_events"
    __table_args__ = (UniqueConstraint("extract_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    extract_id: Mapped[int] = mapped_column(ForeignKey("extracts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(Text)
    actor_email: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(16))
    slot: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, str]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    extract_ref: Mapped[str] = mapped_column(Text)

    def to_event(self) -> TrailEvent:
        return TrailEvent(
            extract=self.extract_ref,
            seq=self.seq,
            kind=EventKind(self.kind),
            at=aware(self.at),
            actor=self.actor,
            actor_email=self.actor_email,
            role=self.role,
            version=self.version,
            document_sha256=self.document_sha256,
            certificate_sha256=self.certificate_sha256,
            detail=dict(self.detail),
            prev_hash=self.prev_hash,
            hash=self.hash,
        )


class LinkTokenRow(Base):
    __tablename__ = "link_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.meeting_id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    slot: Mapped[str] = mapped_column(String(32))
    signer_name: Mapped[str] = mapped_column(Text)
    signer_email: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LinkGrantRow(Base):
    """One extract version a link lets its signer sign."""

    __tablename__ = "link_grants"

    token_hash: Mapped[str] = mapped_column(ForeignKey("link_tokens.token_hash"), primary_key=True)
    extract_id: Mapped[int] = mapped_column(ForeignKey("extracts.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class LeaseRow(Base):
    """Who is doing a piece of work that must not be done twice at once (drafting a
    meeting, archiving an extract), until when. A holder that dies lets its lease run
    out, and the work passes to whoever asks next."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def aware(moment: dt.datetime) -> dt.datetime:
    """A stored time in UTC: SQLite hands back naive datetimes (stored as UTC),
    PostgreSQL aware ones in the session's time zone."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sqlite_transactions(engine: Engine, begin: str) -> None:
    """Let SQLAlchemy, not pysqlite, start SQLite transactions, with ``begin``:
    ``BEGIN IMMEDIATE`` takes the write lock at once, so that a read-then-write
    never fails half-way with 'database is locked'; readers use a plain ``BEGIN``
    (a consistent snapshot that, in WAL mode, never waits for a writer)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


class Ledger:
    """A handle on the ledger database; creates the schema on first use."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        try:
            if database_url.startswith("sqlite"):
                self.engine = create_engine(database_url, poolclass=NullPool)
                _sqlite_transactions(self.engine, "BEGIN IMMEDIATE")
                self._read_engine = create_engine(database_url, poolclass=NullPool)
                _sqlite_transactions(self._read_engine, "BEGIN")
            else:
                self.engine = create_engine(database_url, pool_pre_ping=True, pool_size=10)
                # A reader sees one snapshot, as SQLite's deferred BEGIN gives in WAL mode.
                self._read_engine = self.engine.execution_options(isolation_level="REPEATABLE READ")
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    # Processes starting together on an empty database: one at a time.
                    connection.execute(text("SELECT pg_advisory_xact_lock(7411)"))
                Base.metadata.create_all(connection)
        except OperationalError as error:
            raise ConfigError(
                f"cannot open the ledger database {database_url}: {error.orig}"
            ) from None
        except ModuleNotFoundError as error:
            raise ConfigError(
                f"the database driver for {database_url} is not installed ({error.name})"
            ) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(self._read_engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed at the end, or rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reading only: it never takes a write lock and is rolled back."""
        with self._readers() as session:
            try:
                yield session
            finally:
                session.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()


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
        raise TrailError(f"no extract with id {extract_id}")
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


def append_event(
    session: Session,
    extract: ExtractRow,
    kind: EventKind,
    *,
    actor: str = "system",
    actor_email: str | None = None,
    role: str | None = None,
    slot: str | None = None,
    document_sha256: str | None = None,
    certificate_sha256: str | None = None,
    detail: dict[str, str] | None = None,
    at: dt.datetime | None = None,
) -> TrailEvent:
    """Append an event to the extract's chain. The caller holds the extract's lock."""
    if at is not None and at.tzinfo is None:
        raise TrailError("trail times must be timezone-aware")
    last = last_event(session, extract.id)
    sealed = seal(
        TrailEvent(
            extract=extract.ref,
            seq=1 if last is None else last.seq + 1,
            kind=kind,
            at=(at or utcnow()).astimezone(dt.UTC),
            actor=actor,
            actor_email=actor_email,
            role=role,
            version=extract.version,
            document_sha256=document_sha256,
            certificate_sha256=certificate_sha256,
            detail=detail or {},
            prev_hash=GENESIS_HASH if last is None else last.hash,
        )
    )
    session.add(
        TrailEventRow(
            extract_id=extract.id,
            extract_ref=sealed.extract,
            seq=sealed.seq,
            kind=sealed.kind.value,
            at=sealed.at,
            actor=sealed.actor,
            actor_email=sealed.actor_email,
            role=sealed.role,
            slot=slot,
            version=sealed.version,
            document_sha256=sealed.document_sha256,
            certificate_sha256=sealed.certificate_sha256,
            detail=dict(sealed.detail),
            prev_hash=sealed.prev_hash,
            hash=sealed.hash,
        )
    )
    extract.trail_head = sealed.hash
    session.flush()
    return sealed


def trail_of(session: Session, extract_id: int) -> tuple[TrailEvent, ...]:
    return tuple(row.to_event() for row in event_rows(session, extract_id))


def last_event(session: Session, extract_id: int) -> TrailEventRow | None:
    """The extract's newest trail event, without reading the others."""
    return session.execute(
        select(TrailEventRow)
        .where(TrailEventRow.extract_id == extract_id)
        .order_by(TrailEventRow.seq.desc())
        .limit(1)
    ).scalar_one_or_none()


def event_rows(session: Session, extract_id: int) -> list[TrailEventRow]:
    return list(
        session.execute(
            select(TrailEventRow)
            .where(TrailEventRow.extract_id == extract_id)
            .order_by(TrailEventRow.seq)
        ).scalars()
    )


# --- leases ---------------------------------------------------------------------------------


LEASE_TTL = dt.timedelta(seconds=30)
"""How long a lease lasts unless renewed: a holder that dies delays its work this long."""


class WorkLease:
    """A lease taken for a ``with`` block (``held`` says whether it was got) and
    released after it; :meth:`renew` extends it during long work."""

    def __init__(self, ledger: Ledger, name: str, ttl: dt.timedelta = LEASE_TTL) -> None:
        self.ledger, self.name, self.ttl = ledger, name, ttl
        self.holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(6)}"
        self.held = False

    def __enter__(self) -> WorkLease:
        self.held = take_lease(self.ledger, self.name, self.holder, self.ttl)
        return self

    def renew(self) -> None:
        if self.held:
            take_lease(self.ledger, self.name, self.holder, self.ttl)

    def __exit__(self, *_exc: object) -> None:
        if self.held:
            release_lease(self.ledger, self.name, self.holder)


def take_lease(ledger: Ledger, name: str, holder: str, ttl: dt.timedelta) -> bool:
    """Take (or renew, for the same holder) the lease ``name`` for ``ttl``; False if
    another holder has it and it has not run out. Atomic: of concurrent takers one wins."""
    now = utcnow()
    with ledger.transaction() as session:
        taken = session.execute(
            update(LeaseRow)
            .where(
                LeaseRow.name == name,
                (LeaseRow.holder == holder) | (LeaseRow.expires_at < now),
            )
            .values(holder=holder, expires_at=now + ttl)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return True
        if session.get(LeaseRow, name) is not None:
            return False
    try:
        with ledger.transaction() as session:
            session.add(LeaseRow(name=name, holder=holder, expires_at=now + ttl))
    except IntegrityError:  # taken by another at the same moment
        return False
    return True


def release_lease(ledger: Ledger, name: str, holder: str) -> None:
    with ledger.transaction() as session:
        session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))
