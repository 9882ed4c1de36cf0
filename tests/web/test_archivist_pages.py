"""The archivists' pages (/arkiv) in a real browser against a real server, and
their login rules over plain HTTP.

The server runs ``justering.web.app.create_app`` with the archivist router mounted,
on a copy of the archived sample meeting in which § 97's PDF was altered (its
checksum rewritten, so only the signature check can catch it).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, update

from justering import workflow
from justering.archive.verify import verify_targets
from justering.config import Settings
from justering.errors import ConfigError
from justering.ledger.database import Ledger
from justering.ledger.schema import ExtractRow
from justering.web.app import Hooks, create_app
from justering.web.auth import (
    KEY_FILE,
    SESSION_COOKIE,
    Accounts,
    Sessions,
    hash_password,
    load_accounts,
    session_key,
)
from support.archived import (  # noqa: F401
    ArchivedMeeting,
    archived_meeting_fixture,
    flip_byte,
    inside_first_stream,
    rewrite_file,
)
from support.browser import browser_page_fixture, save_screenshot, serve_app  # noqa: F401

MEETING = "nacka-ksau-2014-08-19"
USER, PASSWORD = "arkivarie", "rätt lösenord 42"
PROXY_HEADER = "X-Remote-User"


@pytest.fixture(scope="module")
def home(archived_meeting: ArchivedMeeting, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A writable copy of the archived home; § 97's archived PDF altered."""
    source = archived_meeting.home
    target = tmp_path_factory.mktemp("arkiv") / "home"
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    settings = dataclasses.replace(
        archived_meeting.settings, home=target, database_url=f"sqlite:///{target / 'justering.db'}"
    )
    ledger = Ledger(settings.database_url)
    with ledger.transaction() as session:
        session.execute(
            update(ExtractRow).values(
                archive_uri=func.replace(ExtractRow.archive_uri, str(source), str(target))
            )
        )
    ledger.dispose()
    bundle = Path(archived_meeting.archive_uris[3].removeprefix("file://")).parent
    bundle = target / bundle.relative_to(source)
    pdf = (bundle / "extract.pdf").read_bytes()
    rewrite_file(bundle, "extract.pdf", flip_byte(pdf, inside_first_stream(pdf)))
    return settings


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "archivists.toml"
    path.write_text(f'[archivists]\n{USER} = "{hash_password(PASSWORD)}"\n', "utf-8")
    return path


def _app(settings: Settings, accounts_file: Path) -> Any:
    services = workflow.open_services(settings)
    environ = {"JUSTERING_ARCHIVISTS": str(accounts_file)}
    return create_app(services, Hooks(lambda _m: None, lambda _m: None), environ=environ)


@pytest.fixture(scope="module")
def server(home: Settings, accounts_file: Path) -> Iterator[str]:
    with serve_app(_app(home, accounts_file)) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def proxy_server(home: Settings, accounts_file: Path) -> Iterator[str]:
    """The same home, with logins left to a reverse proxy's header."""
    settings = dataclasses.replace(home, archivist_header=PROXY_HEADER)
    with serve_app(_app(settings, accounts_file)) as base_url:
        yield base_url


def _expected_checks(home: Settings, paragraph: int) -> list[tuple[str, bool]]:
    """What ``verify_targets`` finds, computed in a thread of its own: Playwright's
    sync API keeps an event loop running in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_verify_directly, home, paragraph).result()


def _verify_directly(home: Settings, paragraph: int) -> list[tuple[str, bool]]:
    services = workflow.open_services(home)
    try:
        states = workflow.meeting_summaries(services, MEETING)
        uri = next(s.archive_uri for s in states if s.paragraph == paragraph)
        (result,) = verify_targets([uri or ""], [services.ca.certificate])
    finally:
        services.ledger.dispose()
    return [(check.name, check.ok) for check in result.checks]


# --- in the browser -----------------------------------------------------------------------


def _login(page: Any, base_url: str, password: str = PASSWORD, user: str = USER) -> Any:
    page.get_by_label("Användarnamn").fill(user)
    page.get_by_label("Lösenord").fill(password)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Logga in").click()
    return navigation.value


def _fits_the_screen(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], "the page scrolls sideways"


def test_search_timeline_and_verify(
    browser_page: Any, server: str, home: Settings, tmp_path: Path
) -> None:
    page = browser_page
    desktop = page.viewport_size["width"] > 600
    page.goto(f"{server}/arkiv/")
    assert page.url == f"{server}/arkiv/logga-in?next=%2Farkiv%2F"
    assert _login(page, server).status == 200
    assert page.url == f"{server}/arkiv/"
    assert page.get_by_role("heading", level=1).inner_text() == "Sök protokoll och utdrag"
    assert page.get_by_text(f"Inloggad som {USER}").is_visible()

    # by diarienummer
    page.get_by_label("Diarienummer").fill("2014/412")
    page.get_by_label("Diarienummer").focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.get_by_role("button", name="Sök", exact=True).click()
    page.wait_for_url(re.compile(r"dnr=2014%2F412"))
    rows = page.locator("#resultat tbody tr")
    assert rows.count() == 1
    assert "KFKS 2014/412-251" in rows.first.inner_text()
    assert "Mats Gerdau" in rows.first.inner_text()
    _fits_the_screen(page)

    # by signer, every extract he signed and both protocols he justered
    page.get_by_label("Diarienummer").fill("")
    page.get_by_label("Undertecknare").fill("WASTESON")
    page.get_by_role("button", name="Sök", exact=True).click()
    page.wait_for_url(re.compile(r"undertecknare=WASTESON"))
    assert page.locator("#resultat tbody tr").count() == 6
    assert page.get_by_text("4 utdrag och 2 protokoll").is_visible()
    assert "Protokoll" in page.locator("#resultat tbody tr").first.inner_text()
    _fits_the_screen(page)
    if desktop:
        save_screenshot(page, "arkiv-sok", tmp_path)

    # the timeline
    page.get_by_role("link", name=re.compile("Markanvisning genom anbud")).click()
    page.wait_for_url(f"{server}/arkiv/utdrag/{MEETING}/95")
    assert page.get_by_role("heading", level=1).inner_text() == "§ 95 · KFKS 2014/412-251"
    assert page.get_by_text("Händelsekedjan är hel (12 händelser i registret;").is_visible()
    assert page.get_by_text("trail.json har de 11 som skedde före arkiveringen").is_visible()
    events = page.locator("table.stack tbody tr")
    assert events.count() == 12
    assert re.search(r"\d\d:\d\d:\d\d CES?T", events.first.inner_text())  # Swedish time
    assert "utkast skapat" in events.first.inner_text()
    assert "arkiverat" in events.last.inner_text()
    assert "Rolf Wasteson" in events.nth(6).inner_text()
    _fits_the_screen(page)
    if desktop:
        save_screenshot(page, "arkiv-handelser", tmp_path)

    # verify: every check shown, every one passed
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Verifiera arkivexemplaret").click()
    assert navigation.value.status == 200
    assert page.get_by_text("Giltigt: alla kontroller godkända.").is_visible()
    checks = page.locator("tr.check")
    expected = _expected_checks(home, 95)
    assert checks.count() == len(expected) >= 5
    for row, (name, _ok) in zip(checks.all(), expected, strict=True):
        text = row.inner_text()
        assert name in text and "Godkänd" in text and "Underkänd" not in text
    assert "Underskrifter" in page.content() and "Kontrollsummor" in page.content()
    assert "Kommunens sigill på händelsekedjan" in page.content()
    _fits_the_screen(page)
    if desktop:
        save_screenshot(page, "arkiv-verifiering", tmp_path)


def test_a_tampered_archive_shows_the_failing_check(
    browser_page: Any, server: str, home: Settings, tmp_path: Path
) -> None:
    page = browser_page
    page.goto(f"{server}/arkiv/utdrag/{MEETING}/97")
    assert page.url.startswith(f"{server}/arkiv/logga-in?next=")
    _login(page, server)
    assert page.url == f"{server}/arkiv/utdrag/{MEETING}/97"
    page.get_by_role("button", name="Verifiera arkivexemplaret").click()
    page.wait_for_url(f"{server}/arkiv/utdrag/{MEETING}/97/verifiera")
    expected = _expected_checks(home, 97)
    failed = [name for name, ok in expected if not ok]
    assert failed == ["signatures", "trail matches PDF"]  # the checksums were rewritten
    assert page.get_by_text(f"Ogiltigt: {len(failed)} kontroll(er) underkända.").is_visible()
    for row, (name, ok) in zip(page.locator("tr.check").all(), expected, strict=True):
        text = row.inner_text()
        assert name in text
        assert ("Underkänd" in text) is (not ok) and ("Godkänd" in text) is ok
    _fits_the_screen(page)


def test_wrong_password_is_refused_and_logout_ends_the_session(
    browser_page: Any, server: str
) -> None:
    page = browser_page
    page.goto(f"{server}/arkiv/logga-in")
    refused = _login(page, server, password="fel lösenord")
    assert refused.status == 401
    assert page.get_by_role("alert").inner_text() == "Fel användarnamn eller lösenord."
    assert page.context.cookies() == []
    assert _login(page, server).status == 200
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
        SESSION_COOKIE,
        True,
        "Strict",
    )
    page.get_by_role("button", name="Logga ut").click()
    page.wait_for_url(f"{server}/arkiv/logga-in")
    assert page.context.cookies() == []
    page.goto(f"{server}/arkiv/utdrag/{MEETING}/95")
    assert page.url.startswith(f"{server}/arkiv/logga-in")


# --- over HTTP: the login's rules -----------------------------------------------------------


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, follow_redirects=False, timeout=30) as client:
        yield client


def _logged_in(client: httpx.Client) -> httpx.Client:
    response = client.post("/arkiv/logga-in", data={"anvandare": USER, "losenord": PASSWORD})
    assert response.status_code == 303
    return client


def _csrf(client: httpx.Client, paragraph: int = 95) -> str:
    page = client.get(f"/arkiv/utdrag/{MEETING}/{paragraph}").text
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize(
    "path", ["/arkiv/", f"/arkiv/utdrag/{MEETING}/95", f"/arkiv/utdrag/{MEETING}/95?x=1"]
)
def test_logged_out_pages_redirect_to_the_login(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert (
        response.headers["location"]
        == "/arkiv/logga-in?" + httpx.QueryParams({"next": path}).__str__()
    )
    posted = client.post(f"/arkiv/utdrag/{MEETING}/95/verifiera", data={"csrf": "x"})
    assert (posted.status_code, posted.headers["location"]) == (303, "/arkiv/logga-in")


def test_the_session_cookie_is_httponly_strict_and_scoped(client: httpx.Client) -> None:
    response = client.post(
        "/arkiv/logga-in",
        data={"anvandare": USER, "losenord": PASSWORD, "next": "/arkiv/?dnr=412"},
    )
    assert (response.status_code, response.headers["location"]) == (303, "/arkiv/?dnr=412")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/arkiv" in cookie
    assert client.get("/arkiv/").status_code == 200


def test_unknown_user_and_wrong_password_get_the_same_answer(client: httpx.Client) -> None:
    wrong = client.post("/arkiv/logga-in", data={"anvandare": USER, "losenord": "x"})
    unknown = client.post("/arkiv/logga-in", data={"anvandare": "okänd", "losenord": "x"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.text == unknown.text
    assert "Fel användarnamn eller lösenord." in wrong.text
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/arkiv/", "/s/x", "/arkiv/../s/x"]
)
def test_login_never_redirects_off_the_archive(client: httpx.Client, target: str) -> None:
    response = client.post(
        "/arkiv/logga-in", data={"anvandare": USER, "losenord": PASSWORD, "next": target}
    )
    assert response.headers["location"] == "/arkiv/"


def test_a_forged_or_foreign_cookie_is_no_session(client: httpx.Client, home: Settings) -> None:
    other = Sessions(b"k" * 32, load_accounts({"JUSTERING_ARCHIVISTS": ""}))
    for value in ("x.y", other.issue(USER), "garbage"):
        client.cookies.set(SESSION_COOKIE, value, path="/arkiv")
        assert client.get("/arkiv/").status_code == 303
        client.cookies.clear()


def test_verify_needs_the_csrf_token_and_the_same_origin(client: httpx.Client) -> None:
    _logged_in(client)
    url = f"/arkiv/utdrag/{MEETING}/95/verifiera"
    assert client.post(url, data={}).status_code == 403
    assert client.post(url, data={"csrf": "1.abc"}).status_code == 403
    token = _csrf(client)
    foreign = client.post(url, data={"csrf": token}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    cross_site = client.post(url, data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    login = {"anvandare": USER, "losenord": PASSWORD}
    null_origin = client.post("/arkiv/logga-in", data=login, headers={"Origin": "null"})
    assert null_origin.status_code == 403 and "set-cookie" not in null_origin.headers
    response = client.post(url, data={"csrf": token})
    assert response.status_code == 200
    assert "Giltigt: alla kontroller godkända." in response.text


def test_bad_filters_and_unknown_extracts(client: httpx.Client) -> None:
    _logged_in(client)
    bad = client.get("/arkiv/", params={"fran": "2014-13-01"})
    assert bad.status_code == 400
    assert "från: expected a date as YYYY-MM-DD" in bad.text
    assert 'value="2014-13-01"' in bad.text  # the form keeps what was typed
    assert client.get("/arkiv/", params={"status": "klar"}).status_code == 400
    assert client.get(f"/arkiv/utdrag/{MEETING}/12").status_code == 404
    assert "<script>" not in client.get("/arkiv/", params={"dnr": "<script>"}).text


def test_pages_are_private_and_self_contained(client: httpx.Client) -> None:
    _logged_in(client)
    pages = [client.get(path) for path in ("/arkiv/", f"/arkiv/utdrag/{MEETING}/95")]
    client.cookies.clear()
    for response in [*pages, client.get("/arkiv/logga-in")]:
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert not re.search(r"(src|href)=\"https?://", response.text)
        assert '<html lang="sv">' in response.text


def test_with_a_proxy_header_the_header_names_the_archivist(proxy_server: str) -> None:
    with httpx.Client(base_url=proxy_server, follow_redirects=False, timeout=30) as client:
        page = client.get("/arkiv/", headers={PROXY_HEADER: "Anna Arkivarie"})
        assert page.status_code == 200
        assert "Inloggad som <strong>Anna Arkivarie</strong>" in page.text
        assert "Logga ut" not in page.text
        assert client.get("/arkiv/").status_code == 303
        login = client.get("/arkiv/logga-in")
        assert login.status_code == 401 and "inloggningstjänst" in login.text
        posted = client.post("/arkiv/logga-in", data={"anvandare": USER, "losenord": PASSWORD})
        assert posted.status_code == 401 and "set-cookie" not in posted.headers
        headers = {PROXY_HEADER: "Anna Arkivarie"}
        token = re.search(
            r'name="csrf" value="([^"]+)"',
            client.get(f"/arkiv/utdrag/{MEETING}/95", headers=headers).text,
        ).group(1)
        other = {PROXY_HEADER: "Bo Annan"}
        url = f"/arkiv/utdrag/{MEETING}/95/verifiera"
        assert client.post(url, data={"csrf": token}, headers=other).status_code == 403
        assert client.post(url, data={"csrf": token}, headers=headers).status_code == 200


# --- accounts, sessions and keys ------------------------------------------------------------


def test_sessions_expire_and_die_with_a_password_change() -> None:
    accounts = Accounts({USER: hash_password(PASSWORD)})
    sessions = Sessions(b"s" * 32, accounts, lifetime=60)
    cookie = sessions.issue(USER, now=1000)
    assert sessions.user_of(cookie, now=1059) == USER
    assert sessions.user_of(cookie, now=1061) is None
    changed = Sessions(b"s" * 32, Accounts({USER: hash_password("nytt")}), lifetime=60)
    assert changed.user_of(cookie, now=1001) is None
    removed = Sessions(b"s" * 32, Accounts({}), lifetime=60)
    assert removed.user_of(cookie, now=1001) is None
    payload, stamp, mac = cookie.split(".")
    assert sessions.user_of(f"{payload}x.{stamp}.{mac}", now=1001) is None


def test_csrf_tokens_are_bound_to_the_archivist_and_expire() -> None:
    sessions = Sessions(b"c" * 32, Accounts({}), lifetime=60)
    token = sessions.csrf_token("anna", now=1000)
    assert sessions.csrf_ok("anna", token, now=1050)
    assert not sessions.csrf_ok("bo", token, now=1050)
    assert not sessions.csrf_ok("anna", token, now=1061)
    assert not sessions.csrf_ok("anna", None)


def test_passwords_are_scrypt_hashed_and_salted() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$32768$8$1$") and first != second
    accounts = Accounts({USER: first})
    assert accounts.authenticate(USER, PASSWORD)
    assert not accounts.authenticate(USER, PASSWORD + " ")
    assert not accounts.authenticate("okänd", PASSWORD)
    with pytest.raises(ConfigError, match="must not be empty"):
        hash_password("")


def test_the_session_key_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    key = session_key(tmp_path / "home")
    assert len(key) == 32
    assert stat.S_IMODE((tmp_path / "home" / KEY_FILE).stat().st_mode) == 0o600
    assert session_key(tmp_path / "home") == key


def test_accounts_come_from_justering_archivists_else_the_config(tmp_path: Path) -> None:
    config = tmp_path / "justering.toml"
    config.write_text(
        f'[justering]\njustering_days = 14\n[archivists]\nanna = "{hash_password("a")}"\n'
    )
    own = tmp_path / "archivists.toml"
    own.write_text(f'[archivists]\nbo = "{hash_password("b")}"\n')
    assert set(load_accounts({"JUSTERING_CONFIG": str(config)}).hashes) == {"anna"}
    both = {"JUSTERING_CONFIG": str(config), "JUSTERING_ARCHIVISTS": str(own)}
    assert set(load_accounts(both).hashes) == {"bo"}
    assert load_accounts({}).hashes == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[archivists]\nanna = "hemligt"\n', "archivist 'anna': the password hash is not"),
        ("[archivists]\nanna = 5\n", "expected a hash string"),
        ("archivists = 3\n", "must be a table"),
        ("[archivists\n", "archivists.toml"),
    ],
)
def test_malformed_accounts_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "archivists.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_accounts({"JUSTERING_ARCHIVISTS": str(path)})
    with pytest.raises(ConfigError, match="No such file"):
        load_accounts({"JUSTERING_ARCHIVISTS": str(tmp_path / "missing.toml")})


def test_the_hash_helper_prints_a_toml_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "justering.web.auth", "hash", "Åsa Öberg"],
        input="hemligt lösen\n",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    ((user, stored),) = tomllib.loads("[archivists]\n" + result.stdout)["archivists"].items()
    assert user == "Åsa Öberg"
    assert Accounts({user: stored}).authenticate(user, "hemligt lösen")
    usage = subprocess.run(
        [sys.executable, "-m", "justering.web.auth"], capture_output=True, text=True
    )
    assert usage.returncode == 2 and "usage:" in usage.stderr
