"""A fresh home's Prefect database, copied from a migrated template.

A local Prefect server (:mod:`justering.orchestration.prefect_server`) keeps its
SQLite database in the home. On a new database Prefect runs all its migrations
before it answers: about 5 s of CPU, the largest part of a first run's start-up
(docs/benchmarks.md). Instead, a database migrated once per Prefect version (the
*template*, made by ``make .venv``, or by the first server start that lacks it) is
copied into each new home; Prefect finds it at its newest revision and starts as
it does on a database it migrated itself.

- The template is keyed by Prefect's version: another version makes (and uses) its
  own, so a home never starts from a schema its Prefect does not know.
- A home gets a copy of its own, never the template itself: no two homes share a
  live database. A home that already has a database keeps it.
- Only the default database is seeded (SQLite in ``PREFECT_HOME``); a configured
  one (``PREFECT_SERVER_DATABASE_*``, PostgreSQL in scale-out) is Prefect's to
  migrate.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from pathlib import Path

from justering.errors import ConfigError

__all__ = [
    "DATABASE_FILE",
    "database_configured",
    "ensure_template",
    "main",
    "prefect_executable",
    "seed_database",
    "seed_from_template",
    "template_folder",
    "template_path",
]

log = logging.getLogger(__name__)

DATABASE_FILE = "prefect.db"
"""Prefect's SQLite database in ``PREFECT_HOME`` unless it is configured otherwise."""
BUILD_SECONDS = 300.0
_DATABASE_SETTINGS = ("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_")


def prefect_executable() -> str:
    """The ``prefect`` command of this environment."""
    beside = Path(sys.executable).with_name("prefect")
    found = str(beside) if beside.exists() else shutil.which("prefect")
    if not found:
        raise ConfigError("the prefect command is not installed in this environment")
    return found


def database_configured(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` gives Prefect's server a database of its own choosing
    (any ``PREFECT_SERVER_DATABASE_*`` or ``PREFECT_API_DATABASE_*`` setting)."""
    return any(name.startswith(_DATABASE_SETTINGS) for name in environ)


def template_folder(environ: Mapping[str, str] | None = None) -> Path:
    """Where templates are kept: ``JUSTERING_PREFECT_TEMPLATES`` if set; else in this
    Python environment (``var/cache/justering`` under the virtualenv, which holds the
    Prefect they were made by) when it is writable; else the user's cache folder."""
    env = os.environ if environ is None else environ
    if chosen := env.get("JUSTERING_PREFECT_TEMPLATES", "").strip():
        return Path(chosen)
    if sys.prefix != sys.base_prefix and os.access(sys.prefix, os.W_OK):
        return Path(sys.prefix) / "var" / "cache" / "justering"
    cache = env.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache) / "justering"


def template_path(folder: Path, prefect_version: str | None = None) -> Path:
    """The template of ``prefect_version`` (default: the installed Prefect's) in
    ``folder``."""
    return folder / f"prefect-{prefect_version or version('prefect')}" / DATABASE_FILE


def _revision(database: Path) -> str:
    """The Alembic revision ``database`` is at; ``ConfigError`` if it has none."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        try:
            rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.Error as error:
            raise ConfigError(f"{database}: not a migrated Prefect database ({error})") from None
    connection.close()
    if len(rows) != 1:
        raise ConfigError(f"{database}: not a migrated Prefect database (no single revision)")
    return str(rows[0][0])


def ensure_template(folder: Path) -> Path:
    """The migrated template of the installed Prefect in ``folder``, made now if it is
    missing: ``prefect server database upgrade`` on a new database of its own (in a
    folder of its own: it never touches a home's), compacted into one file and put
    in place atomically (two makers at once both put a complete one)."""
    target = template_path(folder)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".making-", dir=target.parent) as making:
        built = Path(making) / DATABASE_FILE
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("PREFECT_")  # this template's settings, no one else's
        }
        env |= {
            "PREFECT_HOME": making,
            "PREFECT_PROFILES_PATH": str(Path(making) / "profiles.toml"),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{built}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        done = subprocess.run(
            [prefect_executable(), "server", "database", "upgrade", "--yes"],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=BUILD_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(
                f"could not migrate a template Prefect database in {target.parent} "
                f"(exit code {done.returncode}: {said[0]})"
            )
        compact = Path(making) / "compact.db"
        with sqlite3.connect(built) as connection:
            connection.execute("VACUUM INTO ?", (str(compact),))
        connection.close()
        _revision(compact)
        compact.chmod(0o644)
        os.replace(compact, target)
    return target


def seed_database(prefect_home: Path, template: Path) -> bool:
    """Copy ``template`` to ``prefect_home``'s database unless it has one (nor a
    journal of one); whether it did. The copy is made beside it and linked into
    place, so a database that appears meanwhile is never overwritten and a server
    never sees half a copy."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    database = prefect_home / DATABASE_FILE
    if any(Path(f"{database}{suffix}").exists() for suffix in ("", "-wal", "-journal")):
        return False
    _revision(template)
    copying = prefect_home / f".{DATABASE_FILE}.{os.getpid()}.copying"
    try:
        shutil.copyfile(template, copying)
        copying.chmod(0o600)
        try:
            os.link(copying, database)
        except FileExistsError:
            return False
    finally:
        copying.unlink(missing_ok=True)
    return True


def seed_from_template(prefect_home: Path, environ: Mapping[str, str]) -> bool:
    """Give a new home the migrated template database, made first if this Prefect
    version has none, unless ``environ`` configures the server's database; whether
    it did. What fails is logged: Prefect then migrates a new database itself (a
    slower start, not a wrong one)."""
    if database_configured(environ):
        return False
    try:
        return seed_database(prefect_home, ensure_template(template_folder(environ)))
    except (ConfigError, OSError, sqlite3.Error, subprocess.SubprocessError) as error:
        log.warning("no template for Prefect's database, Prefect migrates its own: %s", error)
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m justering.orchestration.prefect_database``: make the template of the
    installed Prefect (``make .venv`` does), print where it is.

    ``… --seed PREFECT_HOME -- COMMAND …``: seed ``PREFECT_HOME``
    (:func:`seed_from_template`), then become ``COMMAND`` (the Prefect server, which
    keeps this process's id: whoever started it stops it as before)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--seed"] and len(args) > 3 and args[2] == "--":
        logging.basicConfig(level=logging.INFO, format="justering: %(message)s")
        # Stopped while making the template: its migration process is stopped too
        # (subprocess.run kills it as SystemExit passes), its folder removed.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        seed_from_template(Path(args[1]), os.environ)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        command = args[3:]
        os.execv(command[0], command)  # noqa: S606 (the command local_prefect_server gave)
    if args:
        print(
            "usage: python -m justering.orchestration.prefect_database "
            "[--seed PREFECT_HOME -- COMMAND …]",
            file=sys.stderr,
        )
        return 2
    try:
        print(ensure_template(template_folder()))
    except ConfigError as error:
        print(f"justering: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
