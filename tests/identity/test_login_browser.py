"""Logging in with e-legitimation in a real browser: Debian's Chromium (Playwright)
at a desktop and at a phone viewport follows the link in the chair's e-mail, is
asked to log in, logs in at the loopback provider, comes back to the link and
signs. Someone else's login gets a page that says so. Every page of ours is
axe-clean (WCAG 2 A/AA); nothing is fetched outside 127.0.0.1, and the console
stays free of errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from justering.model.meeting import Meeting
from justering.model.trail import EventKind
from justering.workflow.services import Services
from support.browser import (
    Tab,
    browser_fixture,  # noqa: F401
    in_thread,
    run_axe,
    save_screenshot,
    tab_fixture,  # noqa: F401
    viewport_fixture,  # noqa: F401
)
from support.eid import (
    EidSite,
    eid_site,
)
from support.oidc_provider import LoopbackProvider
from support.workflow import (
    extract_rows,
    newest_token,
    sqlite_ledger,  # noqa: F401
    start,
    trail,
)


@pytest.fixture
def site(services: Services, provider: LoopbackProvider) -> Iterator[EidSite]:
    with eid_site(services, provider) as running:
        yield running


def accessible(page: Any, what: str) -> None:
    violations = run_axe(page)
    assert violations == [], f"{what}: {violations}"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{what} scrolls sideways"


def chair_link(site: EidSite, meeting: Meeting) -> str:
    in_thread(start, site.services, meeting)
    return site.link(newest_token(site.services, meeting.chair.email))


def test_from_the_email_link_through_the_login_to_the_signature(
    tab: Tab, site: EidSite, eid_meeting: Meeting, tmp_path: Path
) -> None:
    page = tab.page
    link = chair_link(site, eid_meeting)
    assert page.goto(link).status == 200
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading == "Logga in för att signera som ordförande"
    assert "tillitsnivå 3 eller högre" in page.inner_text("main")
    accessible(page, "login page")
    save_screenshot(page, f"login-{tab.viewport.name}", tmp_path)

    page.get_by_role("link", name="Logga in med Test-e-legitimation").click()
    page.wait_for_url(f"{site.provider.issuer}/authorize**")
    page.get_by_role("button", name=f"Logga in som {eid_meeting.chair.name}").click()
    page.wait_for_url(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Signera som ordförande"
    accessible(page, "signer page after the login")

    with page.expect_navigation():
        page.get_by_role("button", name="Signera protokollet och utdragen").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Klart – du har signerat"
    accessible(page, "receipt")
    (extract,) = in_thread(extract_rows, site.services, eid_meeting.meeting_id)
    events = in_thread(trail, site.services, extract.id)
    (signed,) = [e for e in events if e.kind is EventKind.SIGNED]
    assert signed.detail["assurance"] == "loa3"
    assert signed.detail["identification"] == "e-legitimation"


def test_someone_elses_login_gets_a_page_that_says_so(
    tab: Tab, site: EidSite, eid_meeting: Meeting
) -> None:
    page = tab.page
    link = chair_link(site, eid_meeting)
    page.goto(link)
    page.get_by_role("link", name="Logga in med Test-e-legitimation").click()
    page.get_by_role("button", name="Logga in som Sven Främling").click()
    page.wait_for_url(f"{site.base_url}/inloggning/retur**")
    alert = page.get_by_role("alert")
    assert "någon annan än den som länken skickades till" in alert.inner_text()
    assert "Försöket har antecknats" in alert.inner_text()
    accessible(page, "refused login")
    page.get_by_role("link", name="Tillbaka till utdragen").click()
    page.wait_for_url(link)
    assert page.get_by_role("heading", level=1).inner_text().startswith("Logga in")


def test_a_provider_that_is_down(tab: Tab, site: EidSite, eid_meeting: Meeting) -> None:
    page = tab.page
    link = chair_link(site, eid_meeting)
    page.goto(link)
    with site.provider.unavailable():
        page.get_by_role("link", name="Logga in med Test-e-legitimation").click()
        page.wait_for_url(f"{link}/logga-in")
        assert "svarar inte just nu" in page.get_by_role("alert").inner_text()
        accessible(page, "provider down")
    page.get_by_role("link", name="Tillbaka till utdragen").click()
    page.get_by_role("link", name="Logga in med Test-e-legitimation").click()
    page.get_by_role("button", name=f"Logga in som {eid_meeting.chair.name}").click()
    page.wait_for_url(link)
    assert page.get_by_role("button", name="Signera protokollet och utdragen").is_visible()
