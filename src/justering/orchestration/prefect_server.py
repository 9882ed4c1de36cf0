"""A local Prefect server on loopback, for embedded defaults (``serve``, ``demo``).

Started only when ``PREFECT_API_URL`` is not set. Its state lives under the
justering home folder, like everything else.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from justering.errors import ConfigError

__all__ = [
    "STARTUP_SECONDS",
    "free_port",
    "local_prefect_server",
    "prefect_environment",
    "stop_process",
    "wait_until_healthy",
]

STARTUP_SECONDS = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_environment(prefect_home: Path, api_url: str | None) -> dict[str, str]:
    """Environment variables every justering process shares with Prefect."""
    env = {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(prefect_home / "storage"),
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


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


def _prefect_executable() -> str:
    beside = Path(sys.executable).with_name("prefect")
    found = str(beside) if beside.exists() else shutil.which("prefect")
    if not found:
        raise ConfigError("the prefect command is not installed in this environment")
    return found


@contextmanager
def local_prefect_server(
    prefect_home: Path, log_file: Path, *, database_url: str | None = None
) -> Iterator[str]:
    """Start ``prefect server start`` on a free loopback port; yields its API URL.
    Its database is SQLite under ``prefect_home``, or ``database_url`` (e.g.
    ``postgresql+asyncpg://…``, as in a scale-out deployment)."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        **prefect_environment(prefect_home, None),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [_prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
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
