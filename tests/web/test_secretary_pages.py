"""The secretaries' pages (/sekreterare) in a real browser, at a desktop and at a
phone viewport (axe-clean, nothing scrolling sideways), and their rules over plain
HTTP as an attacker would try them: another body's meeting, forged or foreign
cookies and forms, the other staff area's accounts.

The app is ``justering.web.app.create_app`` served by uvicorn on loopback, on a
ledger where § 94 of a KSAU meeting was declined by its adjuster (the protocol is
held, § 96 waits for the adjuster) and a KS meeting waits for its chair. Messages go
to the outbox folder, where the tests read the links as the signers would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from justering.model.calendar import local_today
from justering.model.meeting import Body, Meeting
from justering.model.trail import EventKind
from justering.web.app import Hooks, create_app
from justering.web.auth import SESSION_COOKIE as ARCHIVE_COOKIE
from justering.web.auth import hash_password
from justering.web.secretary import SESSION_COOKIE
from justering.workflow.declining import decline_with_link
from justering.workflow.services import Services
from support.browser import (  # noqa: F401
    browser_page_fixture,
    run_axe,
    save_screenshot,
    serve_app,
)
from support.workflow import (
    KEPT_AT,
    SHORT_PARAGRAPH,
    extract_rows,
    newest_token,
    outbox,
    sign_through,
    small_meeting,
    snapshot,
    start,
    start_at_adjusters,
    trail,
)

LENA, LENA_PASSWORD = "lena", "sekreterare i KSAU 7"
KARL, KARL_PASSWORD = "karl", "sekreterare i KS 9"
ARKIVARIE, ARKIVARIE_PASSWORD = "arkivarie", "arkivets lösen 3"
COMMENT = "Beloppet i andra stycket är fel.\nSe bilaga 2."
SECRET_TITLE = "Hemlig rubrik <script>alert(1)</script> i kommunstyrelsen"
PROXY_HEADER = "X-Remote-User"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite: the pages do not depend on the database (the workflow tests cover
    PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@dataclass(frozen=True)
class Site:
    base_url: str
    services: Services
    ksau: Meeting
    ks: Meeting
    environ: dict[str, str]


def _accounts(path: Path) -> Path:
    path.write_text(
        f'[archivists]\n{ARKIVARIE} = "{hash_password(ARKIVARIE_PASSWORD)}"\n\n'
        "[secretaries]\n"
        f'{LENA} = {{ password = "{hash_password(LENA_PASSWORD)}", bodies = ["KSAU"] }}\n'
        f'{KARL} = {{ password = "{hash_password(KARL_PASSWORD)}", bodies = ["KS"] }}\n',
        "utf-8",
    )
    return path


@pytest.fixture
def site(services: Services, sample_meeting: Meeting, tmp_path: Path) -> Iterator[Site]:
    today = local_today()
    ksau = replace(
        small_meeting(sample_meeting, paragraphs=(94, SHORT_PARAGRAPH), meeting_id="ksau-1"),
        date=today,
    )
    start_at_adjusters(services, ksau)
    declined = extract_rows(services, ksau.meeting_id)[0]
    decline_with_link(
        services, newest_token(services, ksau.adjusters[0].email), declined.id, COMMENT
    )
    ks_paragraph = replace(small_meeting(sample_meeting).paragraphs[0], title=SECRET_TITLE)
    ks = replace(
        small_meeting(sample_meeting, meeting_id="ks-1"),
        body=Body("KS", "Kommunstyrelsen"),
        paragraphs=(ks_paragraph,),
        date=today,
    )
    start(services, ks)
    environ = {"JUSTERING_ARCHIVISTS": str(_accounts(tmp_path / "konton.toml"))}
    with serve_app(_app(services, environ)) as base_url:
        yield Site(base_url, services, ksau, ks, environ)


def _app(services: Services, environ: dict[str, str]) -> Any:
    return create_app(services, Hooks(lambda _m: None, lambda _m: None), environ=environ)


# --- in the browser ---------------------------------------------------------------------------


def _fits_the_screen(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], "the page scrolls sideways"


def _clean(page: Any) -> None:
    assert run_axe(page) == []
    _fits_the_screen(page)


def test_the_secretary_follows_the_meeting_and_sends_a_new_link(
    site: Site, browser_page: Any, tmp_path: Path
) -> None:
    page, base = browser_page, site.base_url
    name = "desktop" if page.viewport_size["width"] > 600 else "phone"
    adjuster = site.ksau.adjusters[0]
    old_link = newest_token(site.services, adjuster.email)

    page.goto(f"{base}/")
    page.get_by_role("link", name="Sammanträden").click()
    page.wait_for_url(f"{base}/sekreterare/logga-in?next=%2Fsekreterare%2F")
    assert page.get_by_role("heading", level=1).inner_text() == "Logga in – sekreterare"
    _clean(page)
    page.get_by_label("Användarnamn").fill(LENA)
    page.get_by_label("Lösenord").fill(LENA_PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url(f"{base}/sekreterare/")

    # the list: the KSAU meeting, not the KS one
    assert page.get_by_role("heading", level=1).inner_text() == "Sammanträden"
    rows = page.locator("#moten tbody tr")
    assert rows.count() == 1
    assert "Kommunstyrelsens arbetsutskott" in rows.first.inner_text()
    assert "vilande" in rows.first.inner_text()
    assert "1 avböjt, åter hos sekreteraren" in rows.first.inner_text()
    assert "ks-1" not in page.content() and SECRET_TITLE not in page.content()
    _clean(page)
    if name == "desktop":
        save_screenshot(page, "sekreterare-moten", tmp_path)

    # the meeting
    page.get_by_role("link", name=site.ksau.date.isoformat()).click()
    page.wait_for_url(f"{base}/sekreterare/moten/ksau-1")
    declined = page.locator("#p94")
    assert "avböjt, åter hos sekreteraren" in declined.inner_text()
    assert f"Avböjd av {adjuster.name}, justerare" in declined.inner_text()
    assert declined.locator("blockquote").inner_text() == COMMENT
    assert f"{site.ksau.chair.name}, ordförande" in declined.inner_text()
    waiting = page.locator("#p96")
    since = rf"{adjuster.name}, justerare: underrättad \d{{4}}-\d\d-\d\d \d\d:\d\d"
    assert re.search(since, waiting.inner_text())
    assert "Väntar på att § 94 rättas och signeras." in page.content()
    assert page.get_by_text("Justeras senast").first.is_visible()
    _clean(page)
    save_screenshot(page, f"sekreterare-mote-{name}", tmp_path)

    # a new link for the adjuster; the old one is revoked
    page.get_by_role("button", name=f"Skicka ny länk till {adjuster.name}").click()
    page.wait_for_url(f"{base}/sekreterare/moten/ksau-1?skickad=adjuster-0")
    assert page.get_by_role("status").inner_text() == (
        f"En ny länk har skickats till {adjuster.name} ({adjuster.email}). "
        "De tidigare länkarna gäller inte längre."
    )
    _clean(page)
    new_link = newest_token(site.services, adjuster.email)
    assert new_link != old_link
    resent = [
        e
        for e in trail(site.services, extract_rows(site.services, "ksau-1")[1].id)
        if e.kind is EventKind.NOTIFIED and e.detail.get("resent_by")
    ]
    assert [(e.actor_email, e.detail["resent_by"]) for e in resent] == [(adjuster.email, LENA)]

    # the chair has nothing to sign: refused in Swedish, nothing sent
    mail = len(outbox(site.services))
    page.goto(f"{base}/sekreterare/moten/ksau-1")
    chair = site.ksau.chair.name
    assert page.get_by_role("button", name=f"Skicka ny länk till {chair}").count() == 0

    # the redraft page, from the secretary's
    page.get_by_role("button", name="Rätta § 94").click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/r/[A-Za-z0-9_-]+$"))
    assert page.get_by_role("heading", level=1).inner_text().startswith("Rätta § 94")
    assert COMMENT.splitlines()[0] in page.content()
    assert len(outbox(site.services)) == mail

    # the old link, as the adjuster opens it
    response = page.goto(f"{base}/s/{old_link}")
    assert response is not None and response.status == 410
    assert "Länken har återkallats" in page.content()
    assert "har du fått en ny länk i ett senare e-postmeddelande" in page.content()
    _clean(page)


# --- over HTTP --------------------------------------------------------------------------------


@contextmanager
def _client(site: Site, user: str, password: str) -> Iterator[httpx.Client]:
    """A client logged in to the secretaries' pages as ``user``."""
    with httpx.Client(base_url=site.base_url, follow_redirects=False, timeout=30) as client:
        response = client.post(
            "/sekreterare/logga-in", data={"anvandare": user, "losenord": password}
        )
        assert response.status_code == 303, response.text
        yield client


def _csrf(client: httpx.Client, path: str = "/sekreterare/") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def _without_tokens(text: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', "", text)


def test_another_bodys_meeting_answers_404_like_none_and_shows_nothing(site: Site) -> None:
    with _client(site, KARL, KARL_PASSWORD) as karl:
        assert karl.get("/sekreterare/moten/ks-1").status_code == 200
        listing = karl.get("/sekreterare/").text
        assert "ks-1" in listing and "ksau-1" not in listing
        own = karl.get("/sekreterare/moten/ks-1").text
        assert "<script>" not in own and "Hemlig rubrik &lt;script&gt;alert(1)" in own
        foreign = karl.get("/sekreterare/moten/ksau-1")
        missing = karl.get("/sekreterare/moten/finns-inte")
        assert foreign.status_code == missing.status_code == 404
        assert _without_tokens(foreign.text) == _without_tokens(missing.text)
        for secret in ("Styrning", "Arbetsutskott", "arbetsutskott", COMMENT.splitlines()[0]):
            assert secret not in foreign.text
        before, mail = snapshot(site.services), len(outbox(site.services))
        csrf = _csrf(karl)
        for path, data in (
            ("/sekreterare/moten/ksau-1/ny-lank", {"csrf": csrf, "slot": "adjuster-0"}),
            ("/sekreterare/moten/ksau-1/ratta/94", {"csrf": csrf}),
        ):
            refused = karl.post(path, data=data)
            assert refused.status_code == 404
            assert _without_tokens(refused.text) == _without_tokens(missing.text)
        assert snapshot(site.services) == before and len(outbox(site.services)) == mail


def test_forms_need_the_secretarys_token_from_this_site(site: Site) -> None:
    adjuster = site.ksau.adjusters[0].email
    old_link = newest_token(site.services, adjuster)
    before = len(outbox(site.services))
    with _client(site, LENA, LENA_PASSWORD) as lena:
        path = "/sekreterare/moten/ksau-1/ny-lank"
        assert lena.post(path, data={"slot": "adjuster-0"}).status_code == 403
        assert lena.post(path, data={"slot": "adjuster-0", "csrf": "1.x"}).status_code == 403
        with _client(site, KARL, KARL_PASSWORD) as karl:  # another secretary's token
            theirs = _csrf(karl)
        assert lena.post(path, data={"slot": "adjuster-0", "csrf": theirs}).status_code == 403
        csrf = _csrf(lena)
        foreign = lena.post(
            path,
            data={"slot": "adjuster-0", "csrf": csrf},
            headers={"Origin": "https://angripare.example"},
        )
        assert foreign.status_code == 403
        assert len(outbox(site.services)) == before
        assert httpx.get(f"{site.base_url}/s/{old_link}").status_code == 200

        sent = lena.post(path, data={"slot": "adjuster-0", "csrf": csrf})
        assert (sent.status_code, sent.headers["location"]) == (
            303,
            "/sekreterare/moten/ksau-1?skickad=adjuster-0",
        )
        revoked = httpx.get(f"{site.base_url}/s/{old_link}")
        assert revoked.status_code == 410 and "Länken har återkallats" in revoked.text
        assert httpx.get(f"{site.base_url}/s/{newest_token(site.services, adjuster)}").is_success

        nothing = lena.post(path, data={"slot": "certifier-0", "csrf": csrf})
        assert nothing.status_code == 409
        assert f"{site.ksau.certifier.name} har inget att signera just nu" in nothing.text
        held = lena.post(path, data={"slot": "chair-0", "csrf": csrf})
        assert held.status_code == 409
        assert f"Ingen ny länk skickades till {site.ksau.chair.name}" in held.text
        assert "väntar på att en avböjd paragraf rättas" in held.text
        not_declined = lena.post("/sekreterare/moten/ksau-1/ratta/96", data={"csrf": csrf})
        assert not_declined.status_code == 409
        assert "§ 96 är inte avböjd, så det finns inget att rätta." in not_declined.text
        unknown = lena.post(path, data={"slot": "secretary", "csrf": csrf})
        assert unknown.status_code == 404


def test_each_staff_area_takes_only_its_own_accounts_and_cookies(site: Site) -> None:
    with httpx.Client(base_url=site.base_url, follow_redirects=False, timeout=30) as client:
        assert client.get("/sekreterare/moten/ksau-1").headers["location"] == (
            "/sekreterare/logga-in?next=%2Fsekreterare%2Fmoten%2Fksau-1"
        )
        archivist = {"anvandare": ARKIVARIE, "losenord": ARKIVARIE_PASSWORD}
        assert client.post("/sekreterare/logga-in", data=archivist).status_code == 401
        secretary = {"anvandare": LENA, "losenord": LENA_PASSWORD}
        assert client.post("/arkiv/logga-in", data=secretary).status_code == 401

        archive = client.post("/arkiv/logga-in", data=archivist)
        archive_cookie = archive.cookies[ARCHIVE_COOKIE]
        mine = client.post("/sekreterare/logga-in", data=secretary)
        assert "Path=/sekreterare" in mine.headers["set-cookie"]
        secretary_cookie = mine.cookies[SESSION_COOKIE]
    with httpx.Client(base_url=site.base_url, follow_redirects=False, timeout=30) as client:
        client.cookies.set(SESSION_COOKIE, archive_cookie)
        assert client.get("/sekreterare/").status_code == 303
    with httpx.Client(base_url=site.base_url, follow_redirects=False, timeout=30) as client:
        client.cookies.set(ARCHIVE_COOKIE, secretary_cookie)
        assert client.get("/arkiv/").status_code == 303
    with httpx.Client(base_url=site.base_url, follow_redirects=False, timeout=30) as client:
        client.cookies.set(SESSION_COOKIE, secretary_cookie)
        page = client.get("/sekreterare/moten/ksau-1")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in page.headers["content-security-policy"]


def test_behind_a_proxy_the_header_names_the_secretary_and_the_file_their_bodies(
    site: Site,
) -> None:
    settings = replace(site.services.settings, archivist_header=PROXY_HEADER)
    services = replace(site.services, settings=settings)
    with (
        serve_app(_app(services, site.environ)) as base_url,
        httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as client,
    ):

        def as_(user: str) -> dict[str, str]:
            return {PROXY_HEADER: user}

        assert "ksau-1" in client.get("/sekreterare/", headers=as_(LENA)).text
        assert client.get("/sekreterare/moten/ksau-1", headers=as_(LENA)).status_code == 200
        assert client.get("/sekreterare/moten/ksau-1", headers=as_(KARL)).status_code == 404
        stranger = client.get("/sekreterare/", headers=as_(ARKIVARIE))
        assert "inte kopplat till något organ" in stranger.text and "ksau-1" not in stranger.text
        assert client.get("/sekreterare/moten/ksau-1", headers=as_(ARKIVARIE)).status_code == 404
        assert client.get("/sekreterare/").status_code == 303
        assert client.get("/sekreterare/logga-in").status_code == 401
        refused = client.post(
            "/sekreterare/logga-in", data={"anvandare": LENA, "losenord": LENA_PASSWORD}
        )
        assert refused.status_code == 401 and "set-cookie" not in refused.headers

        page = client.get("/sekreterare/moten/ksau-1", headers=as_(LENA)).text
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found is not None
        sent = client.post(
            "/sekreterare/moten/ksau-1/ny-lank",
            data={"csrf": found.group(1), "slot": "adjuster-0"},
            headers=as_(LENA),
        )
        assert sent.status_code == 303
        karl = client.post(
            "/sekreterare/moten/ksau-1/ny-lank",
            data={"csrf": found.group(1), "slot": "adjuster-0"},
            headers=as_(KARL),
        )
        assert karl.status_code == 403  # lena's token is not karl's


def test_guessing_at_the_archive_slows_the_secretaries_login_too(site: Site) -> None:
    """One count per address for both staff logins (20 in 15 minutes)."""
    with httpx.Client(base_url=site.base_url, follow_redirects=False, timeout=30) as client:
        for n in range(20):
            guess = {"anvandare": f"gissning{n}", "losenord": "fel"}
            assert client.post("/arkiv/logga-in", data=guess).status_code == 401
        right = {"anvandare": LENA, "losenord": LENA_PASSWORD}
        refused = client.post("/sekreterare/logga-in", data=right)
        assert refused.status_code == 429 and "För många försök" in refused.text
        assert "set-cookie" not in refused.headers


def test_a_justered_meeting_shows_its_announcement(site: Site, sample_meeting: Meeting) -> None:
    done = replace(small_meeting(sample_meeting, meeting_id="ksau-klart"), date=site.ksau.date)
    sign_through(site.services, done)
    with _client(site, LENA, LENA_PASSWORD) as lena:
        page = lena.get("/sekreterare/moten/ksau-klart")
        assert page.status_code == 200
        text = re.sub(r"<[^>]+>", "", page.text)
        today = site.ksau.date.isoformat()
        assert f"Justerat {today}." in text
        assert re.search(rf"Anslaget på anslagstavlan {today}; överklagande senast \d{{4}}-", text)
        assert f"Förvaras: {KEPT_AT}" in text
        assert "Ingen väntar på att få signera just nu." in text
        assert "arkiverat" in text
        csrf = _csrf(lena)
        finished = lena.post(
            "/sekreterare/moten/ksau-klart/ny-lank", data={"csrf": csrf, "slot": "chair-0"}
        )
        assert finished.status_code == 409
        assert "Sammanträdet är färdigsignerat" in finished.text
