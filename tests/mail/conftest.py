"""The outbox tests' ledger (SQLite, or PostgreSQL with ``database_url``'s
parameter) and their SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from justering.devtools.mail_sink import MailSink
from justering.ledger.database import Ledger
from justering.orchestration.prefect_server import free_port


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    ledger = Ledger(database_url)
    yield ledger
    ledger.dispose()


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mailbox", port=free_port()) as server:
        yield server
