"""Shared fixtures: a real S3 endpoint (moto's server mode over HTTP), a ledger
on SQLite and on the machine's PostgreSQL, and the workflow's services."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from justering import workflow
from justering.config import Settings, load_settings
from justering.model.manifest import load_sample_meeting
from justering.model.meeting import Meeting
from justering.pades.ca import SigningCA
from support.pdfs import ca, steps, unsigned  # noqa: F401
from support.s3 import s3_bucket, s3_endpoint, s3_env, s3_locked_bucket  # noqa: F401
from support.softhsm import softhsm  # noqa: F401
from support.workflow import KEPT_AT

POSTGRES_ADMIN_URL = os.environ.get(
    "JUSTERING_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(
            POSTGRES_ADMIN_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3
        ):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"justering_test_{uuid.uuid4().hex[:12]}"
    admin = postgres_admin_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ledger database: SQLite in the test's folder, or a fresh PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    home = tmp_path / "home"
    base = load_settings(home, environ={})
    return replace(
        base, database_url=database_url, public_url="http://justering.test", kept_at=KEPT_AT
    )


@pytest.fixture
def sample_meeting() -> Meeting:
    return load_sample_meeting()


@pytest.fixture
def services(settings: Settings, sample_meeting: Meeting) -> Iterator[workflow.Services]:
    """Services on a fresh home with a CA (the sample meeting's municipality)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    SigningCA.create(settings.ca_dir, organisation=sample_meeting.municipality)
    services = workflow.open_services(settings)
    yield services
    services.ledger.dispose()
