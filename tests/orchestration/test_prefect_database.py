"""A new home's Prefect database is a copy of a template migrated once per Prefect
version: at Prefect's newest revision before its server starts (nothing left to
migrate), a copy of its own per home, never over a database a home has, and not
where the server's database is configured elsewhere."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from justering.errors import ConfigError
from justering.orchestration.prefect_database import (
    DATABASE_FILE,
    ensure_template,
    seed_database,
    seed_from_template,
    template_folder,
    template_path,
)


def _newest_revision() -> str:
    """The head of Prefect's SQLite migrations, from its own migration scripts."""
    import prefect.server.database
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    folder = Path(prefect.server.database.__file__).parent
    config = Config(folder / "alembic.ini")
    config.set_main_option("version_locations", str(folder / "_migrations/versions/sqlite"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head
    return head


def _revision(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    return str(revision)


def _flows(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        names = [row[0] for row in connection.execute("SELECT name FROM flow ORDER BY name")]
    connection.close()
    return names


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template made here, as ``make .venv`` makes the environment's."""
    return ensure_template(tmp_path_factory.mktemp("templates"))


def test_the_template_is_migrated_to_prefects_newest_revision_and_keyed_by_its_version(
    template: Path,
) -> None:
    from importlib.metadata import version

    assert _revision(template) == _newest_revision()
    assert template == template_path(template.parent.parent)
    assert template.parent.name == f"prefect-{version('prefect')}"
    assert template_path(template.parent.parent, "0.0.1") != template
    # Asked again, it is the same file: made once per version.
    made = template.stat().st_mtime_ns
    assert ensure_template(template.parent.parent) == template
    assert template.stat().st_mtime_ns == made


def test_a_new_home_gets_a_migrated_database_of_its_own(template: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first" / "prefect", tmp_path / "second" / "prefect"
    assert seed_database(first, template)
    assert seed_database(second, template)
    for home in (first, second):
        database = home / DATABASE_FILE
        # Nothing left for the server to migrate.
        assert _revision(database) == _newest_revision()
        assert database.stat().st_mode & 0o777 == 0o600
        assert database.stat().st_ino != template.stat().st_ino
        assert [p.name for p in home.iterdir()] == [DATABASE_FILE]  # no copy left beside it
    # One home's writes are its own: not the other's, not the template's.
    with sqlite3.connect(first / DATABASE_FILE) as connection:
        connection.execute("INSERT INTO flow (id, name) VALUES ('a', 'only-in-first')")
    connection.close()
    assert _flows(first / DATABASE_FILE) == ["only-in-first"]
    assert _flows(second / DATABASE_FILE) == []
    assert _flows(template) == []


def test_a_home_that_has_a_database_keeps_it(template: Path, tmp_path: Path) -> None:
    home = tmp_path / "prefect"
    assert seed_database(home, template)
    with sqlite3.connect(home / DATABASE_FILE) as connection:
        connection.execute("INSERT INTO flow (id, name) VALUES ('a', 'kept')")
    connection.close()
    assert not seed_database(home, template)
    assert _flows(home / DATABASE_FILE) == ["kept"]
    # Nor over a database whose journal is all there is of it yet.
    other = tmp_path / "other"
    other.mkdir()
    (other / f"{DATABASE_FILE}-wal").write_bytes(b"")
    assert not seed_database(other, template)
    assert not (other / DATABASE_FILE).exists()


def test_a_template_that_is_not_a_migrated_database_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    sqlite3.connect(broken).close()
    with pytest.raises(ConfigError, match="not a migrated Prefect database"):
        seed_database(tmp_path / "prefect", broken)
    assert not (tmp_path / "prefect" / DATABASE_FILE).exists()


def test_a_configured_database_is_not_seeded(template: Path, tmp_path: Path) -> None:
    folder = template.parent.parent
    environ = {
        "JUSTERING_PREFECT_TEMPLATES": str(folder),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://127.0.0.1/prefect",
    }
    assert not seed_from_template(tmp_path / "configured", environ)
    assert not (tmp_path / "configured" / DATABASE_FILE).exists()
    assert seed_from_template(tmp_path / "default", {"JUSTERING_PREFECT_TEMPLATES": str(folder)})
    assert _revision(tmp_path / "default" / DATABASE_FILE) == _newest_revision()


def test_templates_are_kept_where_asked_else_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert template_folder({"JUSTERING_PREFECT_TEMPLATES": str(tmp_path)}) == tmp_path
    cache = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    venv = tmp_path / "venv"
    venv.mkdir()
    monkeypatch.setattr(sys, "prefix", str(venv))
    assert template_folder(cache) == venv / "var" / "cache" / "justering"
    # Not in a virtualenv (a system Python's, not the user's): the user's cache.
    monkeypatch.setattr(sys, "base_prefix", str(venv))
    assert template_folder(cache) == tmp_path / "cache" / "justering"


def test_the_server_process_seeds_its_home_then_becomes_the_server(
    template: Path, tmp_path: Path
) -> None:
    """How local_prefect_server starts Prefect: the seeding in the server's own process
    (whoever started it goes on), which then becomes the server, keeping its id."""
    home = tmp_path / "prefect"
    server = [sys.executable, "-c", "import os; print(os.getpid())"]
    seeding = ["-m", "justering.orchestration.prefect_database", "--seed", str(home)]
    process = subprocess.Popen(
        [sys.executable, *seeding, "--", *server],
        env={**os.environ, "JUSTERING_PREFECT_TEMPLATES": str(template.parent.parent)},
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert out.split()[0] == str(process.pid)
    assert _revision(home / DATABASE_FILE) == _newest_revision()
