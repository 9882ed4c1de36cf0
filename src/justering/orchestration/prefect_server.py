"""A local Prefect server on loopback, for embedded defaults (``serve``, ``demo``),
and where its UI is.

Started only when ``PREFECT_API_URL`` is not set. Its state lives under the
justering home folder, like everything else; it serves Prefect's UI beside its API,
so an operator sees the meetings' flow runs and the deadline pass's schedule.

Prefect logs links to its UI ("View it in the UI at …"). A link must lead somewhere:
:func:`prefect_ui_url` asks the server whether it serves its UI, and
:func:`prefect_environment` sets ``PREFECT_UI_URL`` to that address, or to nothing
(no links) when there is no UI.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from justering.errors import ConfigError
from justering.orchestration.prefect_database import database_configured, prefect_executable

__all__ = [
    "STARTUP_SECONDS",
    "free_port",
    "local_prefect_server",
    "prefect_environment",
    "prefect_ui_url",
    "stop_process",
    "wait_for_prefect",
    "wait_until_healthy",
]

STARTUP_SECONDS = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_environment(
    prefect_home: Path, api_url: str | None, *, ui_url: str | None = None
) -> dict[str, str]:
    """Environment variables every justering process shares with Prefect. With an
    ``api_url``, ``PREFECT_UI_URL`` is ``ui_url``, or empty where there is no UI: Prefect
    then logs no links to it."""
    env = {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(prefect_home / "storage"),
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
        env["PREFECT_UI_URL"] = ui_url or ""
    return env


def prefect_ui_url(api_url: str, timeout: float = 3.0) -> str | None:
    """The address of the UI of the Prefect server at ``api_url``, if it serves one
    (its root answers with a page); None if it does not (``PREFECT_UI_ENABLED=false``,
    a proxy that hides it, no answer)."""
    base = api_url.rstrip("/").removesuffix("/api")
    if not base.startswith(("http://", "https://")):
        return None
    request = urllib.request.Request(f"{base}/", headers={"Accept": "text/html"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            page = response.status == 200 and "html" in response.headers.get("content-type", "")
    except (OSError, ValueError):
        return None
    return base if page else None


def wait_until_healthy(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ConfigError(f"{url} stopped while starting (exit code {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise ConfigError(f"{url} did not answer within {timeout:.0f} s")


def wait_for_prefect(api_url: str, timeout: float = STARTUP_SECONDS) -> None:
    """Return once the Prefect server at ``api_url`` answers its health check (at once
    when it is up); ``ConfigError`` after ``timeout`` seconds."""
    wait_until_healthy(f"{api_url.rstrip('/')}/health", None, timeout)


@contextmanager
def local_prefect_server(
    prefect_home: Path, log_file: Path, *, database_url: str | None = None, wait: bool = True
) -> Iterator[str]:
    """Start ``prefect server start`` on a free loopback port, with its UI; yields its
    API URL (the UI is at the same address without ``/api``: :func:`prefect_ui_url`).
    Its database is SQLite under ``prefect_home`` (a new one copied from the migrated
    template: :mod:`justering.orchestration.prefect_database`), or ``database_url``
    (e.g. ``postgresql+asyncpg://…``, as in a scale-out deployment). With ``wait`` false it
    yields at once, while the server starts: whoever uses it waits for it
    (:func:`wait_for_prefect`), so that other start-up work runs meanwhile."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        **prefect_environment(prefect_home, None),
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    command = [prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    if not database_configured(env):
        # A new home's database is copied from the migrated template first, in the
        # server's process: this caller goes on meanwhile (prefect_database.main).
        seeding = ["--seed", str(prefect_home), "--"]
        command = [
            sys.executable,
            "-m",
            "justering.orchestration.prefect_database",
            *seeding,
            *command,
        ]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        if wait:
            wait_until_healthy(f"{api_url}/health", process, STARTUP_SECONDS)
        yield api_url
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
