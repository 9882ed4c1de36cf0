"""The ledger database: SQLite under the home folder by default, PostgreSQL in
production (``JUSTERING_DATABASE_URL``). Write transactions serialise per row:
row locks on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from justering.errors import ConfigError
from justering.ledger.heads import HEAD_MAC_COLUMN, TRAIL_KEY_INFO, seal_existing_heads
from justering.ledger.schema import Base

__all__ = ["Ledger", "add_missing_columns", "utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


def add_missing_columns(connection: Connection) -> list[str]:
    """Bring a ledger made by an earlier version up to the schema: every column the
    tables declare and the database lacks is added (new columns are nullable, so an
    existing row simply has none). Idempotent; returns what was added, as
    ``table.column``. Columns are never dropped or changed here."""
    inspector = inspect(connection)
    added: list[str] = []
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise ConfigError(
                    f"the ledger lacks {table.name}.{column.name}, which cannot be added "
                    "to existing rows (not nullable): upgrade the ledger by hand"
                )
            kind = column.type.compile(dialect=connection.dialect)
            # The names and type come from our own metadata, never from input.
            statement = f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'
            connection.execute(text(statement))
            added.append(f"{table.name}.{column.name}")
    return added


class Ledger:
    """A handle on the ledger database; creates the schema on first use, and upgrades
    a ledger made by an earlier version (:func:`add_missing_columns`; the trail heads
    of a ledger that had no seals are sealed as they stand, :func:`seal_existing_heads`).

    ``trail_key``: the home's key that seals the trail heads
    (:mod:`justering.ledger.heads`). Without it the ledger can be read and written,
    but no trail event appended and no seal checked.
    """

    def __init__(self, database_url: str, *, trail_key: bytes | None = None) -> None:
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
                if f"extracts.{HEAD_MAC_COLUMN}" in add_missing_columns(connection):
                    seal_existing_heads(connection, trail_key)
        except OperationalError as error:
            raise ConfigError(
                f"cannot open the ledger database {database_url}: {error.orig}"
            ) from None
        except ModuleNotFoundError as error:
            raise ConfigError(
                f"the database driver for {database_url} is not installed ({error.name})"
            ) from None
        info = {TRAIL_KEY_INFO: trail_key} if trail_key is not None else {}
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._readers = sessionmaker(self._read_engine, expire_on_commit=False, info=info)

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
