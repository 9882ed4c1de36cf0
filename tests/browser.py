"""Browser tests: Debian's Chromium driven by Playwright's sync API, and a real
uvicorn server on a free loopback port.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``.
Use from a test module::

    from browser import Viewport, browser_page_fixture, serve_app  # noqa: F401

then ask for ``browser_page`` (a fresh profile per test) and serve the app
with ``with serve_app(app) as base_url: ...``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
WAIT_FOR_CHROMIUM = 300.0


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int
    mobile: bool = False


DESKTOP = Viewport("desktop", 1100, 760)
PHONE = Viewport("phone", 375, 740, mobile=True)


def _chromium() -> Path:
    """The system Chromium; waits while apt is still installing it."""
    deadline = time.monotonic() + WAIT_FOR_CHROMIUM
    while not os.access(CHROMIUM, os.X_OK):
        if time.monotonic() > deadline:
            pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium)")
        time.sleep(2)
    return CHROMIUM


@pytest.fixture(params=[DESKTOP, PHONE], ids=lambda v: v.name, name="browser_page")
def browser_page_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A Playwright ``Page`` in a fresh Chromium profile, at a desktop and at a
    phone viewport (the test runs once for each; ``page.viewport_size`` tells which)."""
    from playwright.sync_api import sync_playwright

    viewport: Viewport = request.param
    profile = tmp_path / "chromium-profile"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(_chromium()),
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": viewport.width, "height": viewport.height},
            is_mobile=viewport.mobile,
            has_touch=viewport.mobile,
            locale="sv-SE",
        )
        try:
            context.set_default_timeout(20_000)
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


def save_screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """A PNG of the whole page in ``tmp_path``; also copied to docs/screenshots/
    when ``JUSTERING_SCREENSHOTS=1`` (how the documentation's pictures are made)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    if os.environ.get("JUSTERING_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)
    return path


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port; yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
