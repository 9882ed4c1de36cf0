"""Browser tests: Debian's Chromium driven by Playwright's sync API, and a real
uvicorn server on a free loopback port.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``.
Use from a test module::

    from support.browser import Viewport, browser_page_fixture, serve_app  # noqa: F401

then ask for ``browser_page`` (a fresh profile per test) and serve the app
with ``with serve_app(app) as base_url: ...``.

For many tests against one browser: ``with chromium() as browser`` (one Chromium
process, e.g. per module) and ``with open_tab(browser, viewport) as tab`` (a fresh
context per test that records every request and every console error); or import
``browser_fixture``, ``viewport_fixture`` and ``tab_fixture`` (``# noqa: F401``) and
ask for ``tab``. ``run_axe``
checks a page with the vendored axe-core (``tests/vendor/axe.min.js``), never
fetched at run time.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import uvicorn

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe.min.js"
"""axe-core (MPL-2.0, from the npm registry; see tests/vendor/README.md)."""
WCAG_A_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
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


def save_screenshot(page: Any, name: str, tmp_path: Path, *, max_height: int | None = None) -> Path:
    """A PNG of the whole page (its top ``max_height`` CSS pixels when it is taller)
    in ``tmp_path``; also copied to docs/screenshots/ when ``JUSTERING_SCREENSHOTS=1``
    (how the documentation's pictures are made)."""
    path = tmp_path / f"{name}.png"
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    if max_height is not None and height > max_height:
        width = int(page.evaluate("document.documentElement.scrollWidth"))
        clip = {"x": 0, "y": 0, "width": width, "height": max_height}
        page.screenshot(path=str(path), full_page=True, clip=clip)
    else:
        page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    if os.environ.get("JUSTERING_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        _compact_png(path, SCREENSHOTS / path.name)
    return path


def _compact_png(source: Path, target: Path) -> None:
    """A copy with a 256-colour palette (no dithering): a third of the size, and
    pages of text look the same."""
    from PIL import Image

    with Image.open(source) as image:
        palette = image.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        palette.save(target, optimize=True)


def loopback_listener() -> socket.socket:
    """A socket bound to a free 127.0.0.1 port, for :func:`serve_app`: the app's
    address is known (``base_url_of``) before the app is built."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    return listener


def base_url_of(listener: socket.socket) -> str:
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


@contextmanager
def serve_app(app: Any, *, listener: socket.socket | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port (or on ``listener``);
    yields its base URL."""
    listener = listener or loopback_listener()
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


# --- one Chromium, a fresh context per test -------------------------------------------------


@contextmanager
def chromium() -> Iterator[Any]:
    """The system Chromium, headless, driven by Playwright's sync API: a ``Browser``."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


IGNORED_CONSOLE = "Failed to load resource: the server responded with a status of"
"""Chromium logs every 4xx page as a console error; the tests check those statuses."""


@dataclass
class Tab:
    """A page in a fresh browser context, and what it did."""

    page: Any
    viewport: Viewport
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, URL) of every request the page made: documents, images, downloads,
    form posts."""
    problems: list[str] = field(default_factory=list)
    """Console errors (CSP violations among them) and uncaught page errors."""

    @property
    def phone(self) -> bool:
        return self.viewport.mobile


@contextmanager
def open_tab(browser: Any, viewport: Viewport) -> Iterator[Tab]:
    """A page at ``viewport`` (a phone: mobile and touch) in a fresh context with
    Swedish locale; requests and console errors are recorded on the :class:`Tab`."""
    context = browser.new_context(
        viewport={"width": viewport.width, "height": viewport.height},
        is_mobile=viewport.mobile,
        has_touch=viewport.mobile,
        locale="sv-SE",
        accept_downloads=True,
    )
    context.set_default_timeout(20_000)
    tab = Tab(context.new_page(), viewport)
    context.on("request", lambda request: tab.requests.append((request.method, request.url)))

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith(IGNORED_CONSOLE):
            tab.problems.append(f"console: {message.text}")

    tab.page.on("console", console)
    tab.page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    try:
        yield tab
    finally:
        context.close()


@contextmanager
def loopback_tab(browser: Any, viewport: Viewport) -> Iterator[Tab]:
    """:func:`open_tab`, then checks that the test requested something, nothing
    outside 127.0.0.1, and that the console stayed free of errors."""
    with open_tab(browser, viewport) as tab:
        yield tab
    assert tab.requests, "the test made no request"
    foreign = [url for _, url in tab.requests if urlsplit(url).hostname != "127.0.0.1"]
    assert foreign == [], "requests left the machine"
    assert tab.problems == []


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Any]:
    """One Chromium for a module's tests (:func:`chromium`)."""
    with chromium() as running:
        yield running


@pytest.fixture(params=[DESKTOP, PHONE], ids=lambda v: v.name, name="viewport")
def viewport_fixture(request: pytest.FixtureRequest) -> Viewport:
    """A desktop and a phone; a module may define its own ``viewport`` fixture."""
    viewport: Viewport = request.param
    return viewport


@pytest.fixture(name="tab")
def tab_fixture(browser: Any, viewport: Viewport) -> Iterator[Tab]:
    """A fresh page at each ``viewport`` (:func:`loopback_tab`). Afterwards: nothing
    was requested outside 127.0.0.1, and the console stayed free of errors."""
    with loopback_tab(browser, viewport) as tab:
        yield tab


def in_thread(call: Callable[..., T], *args: Any) -> T:
    """Run library code outside the test's thread, where Playwright's sync API keeps
    an event loop running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call, *args).result()


def run_axe(page: Any, tags: tuple[str, ...] = WCAG_A_AA) -> list[dict[str, Any]]:
    """The axe-core violations of the page's rules tagged ``tags``: dicts with ``id``,
    ``impact``, ``help`` and the offending ``nodes`` (their HTML).

    axe is evaluated through the DevTools protocol rather than added as a
    ``<script>``: the pages' Content-Security-Policy (``default-src 'none'``)
    rightly refuses any script element, and the test must not weaken it."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text("utf-8"))
    result: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.html + " :: " + n.failureSummary),
            }));
        }""",
        list(tags),
    )
    return result
