"""Leases: who is doing a piece of work that must not be done twice at once
(drafting a meeting, archiving an extract), until when. A holder that dies lets
its lease run out, and the work passes to whoever asks next."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from justering.ledger.database import Ledger, utcnow
from justering.ledger.schema import LeaseRow

__all__ = ["LEASE_TTL", "WorkLease", "release_lease", "take_lease"]


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
