"""The signer's and the secretary's pages in a real browser (and the front page,
which leads to the anslagstavla and the archive).

Debian's Chromium, driven by Playwright, at a desktop and at a phone viewport,
against the real app (``justering.web.app.create_app``) served by uvicorn on
loopback. The app's notifier speaks real SMTP to a :class:`MailSink`; every test
opens the links from the e-mails the sink received, as a person would, and
``schedule_advance`` runs ``workflow.advance_meeting`` for real, so the next
e-mails go out as in production.

Every page is checked with axe-core (vendored in ``tests/vendor``) for WCAG 2
A/AA violations; every test fails if the browser requested anything outside
127.0.0.1 or logged a console error (a Content-Security-Policy violation among
them). With ``JUSTERING_SCREENSHOTS=1`` the tests refresh the screenshots in
``docs/screenshots/`` that ``docs/signing.md`` shows.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pypdf import PdfReader
from sqlalchemy import select

from justering import workflow
from justering.devtools.mail_sink import MailSink, ReceivedMail
from justering.ledger.links import issue_link
from justering.ledger.schema import ExtractRow
from justering.mail.delivery import SmtpNotifier
from justering.model.manifest import load_sample_meeting
from justering.model.meeting import Meeting
from justering.model.minutes import Paragraph
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Role
from justering.web.app import Hooks, create_app
from justering.workflow.services import Services
from support.browser import (
    Tab,
    Viewport,
    base_url_of,
    browser_fixture,  # noqa: F401
    in_thread,
    loopback_listener,
    open_tab,
    run_axe,
    save_screenshot,
    serve_app,
    tab_fixture,  # noqa: F401
)
from support.workflow import (
    recording,
    small_meeting,
    sqlite_ledger,  # noqa: F401  # SQLite only: the pages do not depend on it
)

SENDER = "Justering <justering@nacka.example>"
DESKTOP = Viewport("desktop", 1280, 900)
PHONE = Viewport("phone", 390, 844, mobile=True)
SCREENSHOT_HEIGHT = 3000
"""Screenshots stop here (CSS pixels): the page images would make them very tall."""
CONTACT = "Kontakta nämndens sekreterare"
MIN_FOCUS_CONTRAST = 3.0
"""WCAG 2.1 SC 1.4.11: a focus indicator contrasts 3:1 with what is around it."""


@pytest.fixture(params=[DESKTOP, PHONE], ids=lambda v: v.name)
def viewport(request: pytest.FixtureRequest) -> Viewport:
    """A wide desktop and a phone of today."""
    chosen: Viewport = request.param
    return chosen


# --- the site: the app, its e-mail, one Chromium ------------------------------------------


@dataclass
class Site:
    base_url: str
    services: Services
    sink: MailSink
    failures: list[BaseException] = field(default_factory=list)
    """Exceptions of ``schedule_advance`` (the app logs them and carries on)."""


@pytest.fixture
def site(services: Services, tmp_path: Path) -> Iterator[Site]:
    """The real app on a free loopback port, its e-mail going over SMTP to a MailSink."""
    with MailSink(tmp_path / "mailbox", port=0) as sink:
        listener = loopback_listener()
        base_url = base_url_of(listener)
        settings = replace(
            services.settings, public_url=base_url, smtp_url=sink.smtp_url, mail_from=SENDER
        )
        live = replace(
            services, settings=settings, notifier=SmtpNotifier(sink.smtp_url, sender=SENDER)
        )
        site = Site(base_url, live, sink)
        advance = recording(site.failures, lambda m: workflow.advance_meeting(live, m))
        app = create_app(live, Hooks(lambda m: _pipeline(live, m), advance))
        with serve_app(app, listener=listener):
            yield site
    assert site.failures == [], "schedule_advance failed"


def _pipeline(services: Services, meeting_id: str) -> None:
    """What the ``meeting-ended`` flow does: draft every extract, then advance."""
    workflow.draft_meeting(services, meeting_id)
    workflow.advance_meeting(services, meeting_id)


def start_meeting(site: Site, paragraphs: tuple[int, ...], meeting_id: str) -> Meeting:
    """Record a cut-down sample meeting and run the pipeline: the chair gets an e-mail."""
    meeting = small_meeting(load_sample_meeting(), paragraphs=paragraphs, meeting_id=meeting_id)

    def record() -> None:
        workflow.record_meeting(site.services, meeting)
        _pipeline(site.services, meeting.meeting_id)

    in_thread(record)
    return meeting


def signing_order(meeting: Meeting) -> list[Paragraph]:
    """The extracts as a signer's page lists them: omedelbart justerade first."""
    return sorted(meeting.paragraphs, key=lambda p: (not p.immediate, p.number))


def heading_of(paragraph: Paragraph) -> str:
    return f"§ {paragraph.number}" + (f" · {paragraph.dnr}" if paragraph.dnr else "")


def extract_ids(site: Site, meeting: Meeting) -> dict[int, int]:
    """paragraph → extract id."""

    def read() -> dict[int, int]:
        with site.services.ledger.reading() as session:
            rows = session.execute(
                select(ExtractRow.paragraph, ExtractRow.id).where(
                    ExtractRow.meeting_id == meeting.meeting_id,
                    ExtractRow.kind == DocumentKind.EXTRACT,
                )
            ).all()
            return {paragraph: extract_id for paragraph, extract_id in rows}

    return in_thread(read)


def heads(site: Site, meeting: Meeting) -> dict[str, str]:
    """label (``§ 94``, ``Protokollet`` …) → SHA-256 of the document's current
    version, from the ledger."""
    states = in_thread(workflow.meeting_summaries, site.services, meeting.meeting_id)
    protocols = in_thread(workflow.protocol_summaries, site.services, meeting.meeting_id)
    return {state.label: state.document_sha256 for state in (*protocols, *states)}


def card_order(meeting: Meeting) -> list[str]:
    """The headings of the cards on the chair's first page: the omedelbar justering
    (its small protocol, its paragraphs), the protocol, the other paragraphs."""
    immediate = [heading_of(p) for p in signing_order(meeting) if p.immediate]
    others = [heading_of(p) for p in signing_order(meeting) if not p.immediate]
    small = [IMMEDIATE_PROTOCOL] if immediate else []
    return [*small, *immediate, "Protokollet", *others]


IMMEDIATE_PROTOCOL = "Protokollet över omedelbart justerade paragrafer"


# --- e-mail ----------------------------------------------------------------------------------


def mails_to(site: Site, address: str, subject: str) -> list[ReceivedMail]:
    """The messages the sink received for ``address`` whose subject contains ``subject``."""
    return [
        mail
        for mail in site.sink.received()
        if address in mail.recipients and subject in mail.subject
    ]


def newest_mail(site: Site, address: str, subject: str, *, count: int = 1) -> ReceivedMail:
    """The newest such message once there are ``count`` of them (SMTP delivery is
    synchronous; the wait only guards against a slow machine)."""
    deadline = time.monotonic() + 10
    while len(found := mails_to(site, address, subject)) < count:
        assert time.monotonic() < deadline, f"no mail «{subject}» to {address}: {found}"
        time.sleep(0.05)
    assert len(found) == count, [mail.subject for mail in found]
    return found[-1]


def link_in(site: Site, mail: ReceivedMail, kind: str) -> str:
    """The one link of ``kind`` (``s``: signer, ``r``: secretary) in a message."""
    (link,) = [url for url in mail.links if url.startswith(f"{site.base_url}/{kind}/")]
    return link


def plain_text(mail: ReceivedMail) -> str:
    message = email.message_from_bytes(mail.path.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


# --- in the page -----------------------------------------------------------------------------


def assert_accessible(page: Any, what: str) -> None:
    """No serious or critical WCAG 2 A/AA violation, as axe-core finds them."""
    violations = run_axe(page)
    grave = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert grave == [], f"{what}: {grave}"
    assert violations == [], f"{what}: {violations}"  # nothing lesser either, so far


def screenshot(tab: Tab, name: str, tmp_path: Path) -> None:
    """``name``-desktop or ``name``-phone, without the focus left by the last click."""
    tab.page.evaluate("document.activeElement && document.activeElement.blur()")
    save_screenshot(tab.page, f"{name}-{tab.viewport.name}", tmp_path, max_height=SCREENSHOT_HEIGHT)


def fits_the_screen(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], "the page scrolls sideways"


def extract_card(page: Any, paragraph: Paragraph) -> Any:
    return card_of(page, heading_of(paragraph))


def card_of(page: Any, heading: str) -> Any:
    """The card whose own heading (its h2, not a § in a protocol's text) is ``heading``."""
    return page.locator("section.extract").filter(
        has=page.locator("h2").filter(has_text=re.compile(f"^{re.escape(heading)}$"))
    )


def open_and_check_pages(page: Any, card: Any) -> int:
    """Open the card's page images ("Sidorna som i PDF-filen") and wait until every
    one has loaded; how many there are."""
    card.locator("details.pages > summary").click()
    images = card.locator("details.pages img")
    for image in images.all():
        image.scroll_into_view_if_needed()
        image.evaluate(
            """img => img.complete && img.naturalWidth > 0 ? true : new Promise((ok, fail) => {
                img.addEventListener("load", () => ok(true));
                img.addEventListener("error", () => fail(new Error("image failed")));
            })"""
        )
        assert image.evaluate("img => img.naturalWidth") > 0
    return images.count()


def download(page: Any, card: Any, label: str) -> bytes:
    with page.expect_download() as info:
        card.get_by_role(
            "link", name=f"Ladda ned PDF-filen ({label}): originalet som signeras"
        ).click()
    path = info.value.path()
    assert path is not None
    return Path(path).read_bytes()


def submit(page: Any, button: Any) -> Any:
    """Press a submit button; the response of the navigation it starts."""
    with page.expect_navigation() as navigation:
        button.click()
    return navigation.value


def shown_digests(page: Any) -> dict[str, str]:
    """label → SHA-256 as the receipt page lists them (behind "Kontrollsummor")."""
    page.get_by_text("Kontrollsummor", exact=True).click()
    found: dict[str, str] = {}
    for item in page.locator("details ul.extracts li").all():
        label, _, digest = item.inner_text().partition(": ")
        found[label] = digest.strip()
    return found


# --- the chair: read on the page, sign the protocol and its extracts together -------------


def test_chair_reads_the_text_and_signs_the_protocol_with_its_extracts(
    tab: Tab, site: Site, tmp_path: Path
) -> None:
    page = tab.page
    meeting = start_meeting(site, (94, 96, 97), f"browser-chair-{tab.viewport.name}")
    request = newest_mail(site, meeting.chair.email, "Att signera som ordförande")
    assert request.sender == "justering@nacka.example"
    assert request.subject.startswith("Omedelbar justering – ")
    assert "2 protokoll och 3 protokollsutdrag" in request.subject
    link = link_in(site, request, "s")

    response = page.goto(link)
    assert response.status == 200
    assert page.get_by_role("heading", level=1).inner_text() == "Signera som ordförande"
    main = page.inner_text("main")
    assert f"Hej {meeting.chair.name}! 2 protokoll och 3 protokollsutdrag väntar" in main
    assert "du signerar protokollet och utdragen ur det på en gång" in main
    cards = page.locator("section.extract")
    assert [h.inner_text() for h in cards.locator("> h2").all()] == card_order(meeting)
    fits_the_screen(page)
    for element in page.locator("time, .nowrap").all():  # dates never break at a hyphen
        assert element.evaluate("e => e.getClientRects().length") == 1, element.inner_text()

    # read: the text of every paragraph on the page, as the PDF has it, readable at
    # phone width without zooming; the protocol shows all of them in order
    long = next(p for p in meeting.paragraphs if p.number == 94)
    card = extract_card(page, long)
    text = card.locator("div.wording")
    assert text.is_visible()
    shown = " ".join(text.inner_text().split())
    for section in long.sections:
        if section.heading:
            assert section.heading in shown
    first_line = long.sections[1].text.split("\n")[0]
    assert " ".join(first_line.split()) in shown
    size = text.locator("p").nth(1).evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 16
    assert text.evaluate("e => e.scrollWidth <= e.clientWidth")
    protocol = card_of(page, "Protokollet")
    labels = [h.inner_text() for h in protocol.locator("div.wording h3").all()]
    assert labels == [f"§ {n}" for n in (94, 96, 97)]
    screenshot(tab, "signer", tmp_path)

    # the faithful copy: the page images, and the PDF that is signed
    before = heads(site, meeting)
    for label in card_order(meeting):
        card = card_of(page, label)
        count = open_and_check_pages(page, card)
        name = label.split(" · ")[0]
        pdf = download(page, card, name)
        assert hashlib.sha256(pdf).hexdigest() == before[name]
        assert len(PdfReader(io.BytesIO(pdf)).pages) == count
    assert_accessible(page, "signer page")

    # one action signs everything: no boxes to tick
    assert page.get_by_role("checkbox").count() == 0
    response = submit(page, page.get_by_role("button", name="Signera protokollet och utdragen"))
    assert response.status == 200
    assert page.get_by_role("heading", level=1).inner_text() == "Klart – du har signerat"
    after = heads(site, meeting)
    assert shown_digests(page) == after
    assert all(after[label] != before[label] for label in after)
    assert "väntar fortfarande" not in page.inner_text("main")
    fits_the_screen(page)
    assert_accessible(page, "receipt page")
    if tab.phone:
        screenshot(tab, "receipt", tmp_path)

    receipt = newest_mail(
        site, meeting.chair.email, "Kvitto: du har signerat 2 protokoll och 3 protokollsutdrag"
    )
    assert all(digest in plain_text(receipt) for digest in after.values())
    # schedule_advance ran: the adjuster has everything, the omedelbar justering first
    adjuster = meeting.adjusters[0]
    notice = newest_mail(
        site, adjuster.email, "Att signera som justerare: 2 protokoll och 3 protokollsutdrag"
    )
    listed = [int(n) for n in re.findall(r"^  § (\d+)", plain_text(notice), flags=re.MULTILINE)]
    assert listed == [97, 94, 96]

    # used up
    response = page.goto(link)
    assert response.status == 410
    main = page.inner_text("main")
    assert "Länken har redan använts" in main and CONTACT in main
    assert page.get_by_role("alert").is_visible()
    fits_the_screen(page)
    assert_accessible(page, "used-link page")
    if tab.phone:
        screenshot(tab, "used-link", tmp_path)


# --- an adjuster declines; the secretary redrafts ------------------------------------------


def _sign_as_chair(site: Site, meeting: Meeting) -> None:
    """The chair signs everything through the link in their e-mail (no browser)."""
    request = newest_mail(site, meeting.chair.email, "Att signera som ordförande")
    token = link_in(site, request, "s").rsplit("/", 1)[1]

    def sign() -> None:
        workflow.view_link(site.services, token)
        workflow.sign_with_link(site.services, token)
        workflow.advance_meeting(site.services, meeting.meeting_id)

    in_thread(sign)


def test_adjuster_declines_with_a_comment_and_the_secretary_redrafts(
    tab: Tab, site: Site, tmp_path: Path
) -> None:
    page = tab.page
    meeting = start_meeting(site, (96, 97), f"browser-decline-{tab.viewport.name}")
    _sign_as_chair(site, meeting)
    adjuster = meeting.adjusters[0]
    request = newest_mail(site, adjuster.email, "Att signera som justerare")
    page.goto(link_in(site, request, "s"))
    assert page.get_by_role("heading", level=1).inner_text() == "Signera som justerare"
    declined = next(p for p in meeting.paragraphs if not p.immediate)
    card = extract_card(page, declined)
    card.locator("details.decline > summary").click()
    comment = card.get_by_label("Vad behöver ändras? (krävs)")
    assert comment.is_visible() and comment.get_attribute("required") is not None
    button = card.get_by_role("button", name=f"Avböj § {declined.number}")

    # empty: the browser refuses to send it
    button.click()
    assert comment.evaluate("e => e.validity.valueMissing && e.validationMessage !== ''")
    assert comment.evaluate("e => e === document.activeElement")
    posts = [url for method, url in tab.requests if method == "POST"]
    assert posts == []

    wrong, right = "dubbelt så många barn", "tre gånger så många barn"
    assert wrong in declined.text
    said = f"Prognosen är {right}, inte {wrong}.\nRätta i stycket om Migrationsverket."
    comment.fill(said)
    response = submit(page, button)
    assert response.status == 200
    assert page.url == f"{link_in(site, request, 's')}/avbojning"
    assert [url for method, url in tab.requests if method == "POST"] == [page.url]
    assert page.get_by_role("heading", level=1).inner_text() == f"Du har avböjt § {declined.number}"
    assert page.locator("blockquote").inner_text() == said
    secretary = workflow.secretary_of(meeting, site.services.settings)
    assert f"sekreteraren {secretary.name}" in page.inner_text("main")
    fits_the_screen(page)
    assert_accessible(page, "decline confirmation")
    if tab.phone:
        screenshot(tab, "decline", tmp_path)

    # the secretary's notice, and the redraft page behind its link
    notice = newest_mail(site, secretary.email, f"Avböjt: § {declined.number} behöver ändras")
    text = plain_text(notice)
    assert said.splitlines()[0] in text and adjuster.name in text
    redraft_link = link_in(site, notice, "r")
    assert page.goto(redraft_link).status == 200
    assert page.get_by_role("heading", level=1).inner_text() == heading_of(declined).replace(
        "§", "Rätta §", 1
    )
    assert page.locator("blockquote").inner_text() == said
    assert adjuster.name in page.inner_text("main")
    field_ = page.get_by_label("Paragrafens text")
    current = field_.input_value()
    assert current.strip() == declined.text.strip()
    assert page.get_by_label("Rubrik").input_value() == declined.title
    fits_the_screen(page)
    assert_accessible(page, "redraft page")
    if not tab.phone:
        screenshot(tab, "redraft", tmp_path)
    field_.fill(current.replace(wrong, right))
    response = submit(page, page.get_by_role("button", name="Skicka rättad version"))
    assert response.status == 200
    main = page.inner_text("main")
    assert f"§ {declined.number} är nu version 2" in main
    assert heads(site, meeting)[f"§ {declined.number}"] in main
    assert_accessible(page, "redraft sent")

    # the chair hears at once (schedule_advance), with a link to version 2
    again = newest_mail(site, meeting.chair.email, "Att signera som ordförande", count=2)
    assert f"§ {declined.number}" in plain_text(again)
    chair_link = link_in(site, again, "s")
    assert page.goto(chair_link).status == 200
    # version 2 of the paragraph, and of the protocol that shows it
    assert [h.inner_text() for h in page.locator("section.extract > h2").all()] == [
        "Protokollet",
        heading_of(declined),
    ]
    assert right in " ".join(card_of(page, "Protokollet").locator("div.wording").all_inner_texts())
    pdf = download(page, extract_card(page, declined), f"§ {declined.number}")
    assert hashlib.sha256(pdf).hexdigest() == heads(site, meeting)[f"§ {declined.number}"]
    words = pdf_text(pdf)
    assert "Version 2" in words and right in words and wrong not in words

    # the secretary's link is used up
    assert page.goto(redraft_link).status == 410
    main = page.inner_text("main")
    assert "Länken har redan använts" in main and CONTACT in main


# --- links that cannot be used -----------------------------------------------------------


def _expired_link(site: Site, meeting: Meeting) -> str:
    """A link issued for the chair 22 days ago with the usual lifetime of 21."""
    ids = extract_ids(site, meeting)

    def issue() -> str:
        with site.services.ledger.transaction() as session:
            extracts = [session.get(ExtractRow, extract_id) for extract_id in ids.values()]
            (chair,) = meeting.signers(Role.CHAIR)
            lifetime = site.services.settings.link_ttl
            link = issue_link(
                session,
                meeting_id=meeting.meeting_id,
                signer=chair,
                extracts=[e for e in extracts if e is not None],
                ttl=lifetime,
                now=dt.datetime.now(dt.UTC) - lifetime - dt.timedelta(days=1),
            )
            return link.token

    return f"{site.base_url}/s/{in_thread(issue)}"


def test_unusable_links_say_what_happened_and_whom_to_contact(
    tab: Tab, site: Site, tmp_path: Path
) -> None:
    page = tab.page
    meeting = start_meeting(site, (96,), f"browser-links-{tab.viewport.name}")
    link = link_in(site, newest_mail(site, meeting.chair.email, "ordförande"), "s")
    secretary = workflow.secretary_of(meeting, site.services.settings)

    # a forwarded link: the page says whose it is and whom to ask
    assert page.goto(link).status == 200
    main = page.inner_text("main")
    assert f"Hej {meeting.chair.name}!" in main
    assert f"Är du inte {meeting.chair.name}, eller har du frågor?" in main
    assert f"Kontakta sekreteraren {secretary.name}" in main
    mail_to = page.get_by_role("link", name=secretary.email)
    assert mail_to.get_attribute("href") == f"mailto:{secretary.email}"

    token = link.rsplit("/", 1)[1]
    cases = [
        (_expired_link(site, meeting), 410, "Länken har gått ut."),
        (f"{site.base_url}/s/{'A' * 43}", 404, "Länken är ogiltig."),
        (f"{site.base_url}/s/{token[:-1]}", 404, "Länken är ogiltig."),
        (f"{site.base_url}/r/{token}", 404, "Länken är ogiltig."),  # a signer's link
    ]
    for url, status, what in cases:
        response = page.goto(url)
        assert response.status == status, url
        alert = page.get_by_role("alert")
        assert alert.get_by_role("heading", level=1).inner_text() == "Det gick inte"
        text = alert.inner_text()
        assert what in text and CONTACT in text and "ny länk" in text, url
        assert alert.locator('[lang="en"]').count() == 0  # Swedish only, no English aside
        fits_the_screen(page)
    assert_accessible(page, "error page")


def test_the_front_page_leads_to_the_anslagstavla_and_the_archive(tab: Tab, site: Site) -> None:
    """Whoever types the service's address learns what it is, that signers use their
    e-mail's link, and where the public notices and the archive are."""
    page = tab.page
    response = page.goto(f"{site.base_url}/")
    assert response.status == 200
    assert page.title() == "Justering av protokoll"
    assert "länken i e-postmeddelandet" in page.inner_text("main")
    fits_the_screen(page)
    assert_accessible(page, "front page")
    with page.expect_navigation():
        page.get_by_role("link", name="Anslagstavlan").click()
    assert urlsplit(page.url).path == "/anslagstavla"
    assert page.get_by_role("heading", level=1).inner_text() == "Anslagstavla"
    fits_the_screen(page)
    assert_accessible(page, "anslagstavla")
    page.go_back()
    with page.expect_navigation():
        page.get_by_role("link", name="Arkivet").click()
    assert urlsplit(page.url).path == "/arkiv/logga-in"
    assert page.get_by_role("heading", level=1).inner_text() == "Logga in – arkivet"


# --- the keyboard ----------------------------------------------------------------------------


_FOCUSED = """() => {
    const e = document.activeElement;
    const style = getComputedStyle(e);
    const label = e.labels && e.labels.length ? e.labels[0].innerText : e.innerText;
    return {
        what: e.tagName.toLowerCase() + (e.type ? ":" + e.type : "") + " " + label.trim(),
        outline: style.outlineStyle,
        width: parseFloat(style.outlineWidth),
        color: style.outlineColor,
        inView: (() => { const r = e.getBoundingClientRect();
                         return r.bottom > 0 && r.top < innerHeight; })(),
    };
}"""


def _luminance(css: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", css)[:3])

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast(first: str, second: str) -> float:
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_keyboard_reaches_everything_in_order_with_a_visible_focus(
    tab: Tab, site: Site
) -> None:
    page = tab.page
    meeting = start_meeting(site, (96, 97), f"browser-keys-{tab.viewport.name}")
    page.goto(link_in(site, newest_mail(site, meeting.chair.email, "ordförande"), "s"))
    expected = []
    for label in card_order(meeting):
        name = label.split(" · ")[0]
        which = "en paragraf" if name.startswith("Protokollet") else name
        expected += [
            f"summary Läs {name}",
            "summary Sidorna som i PDF-filen (…)",
            f"a Ladda ned PDF-filen ({name}): originalet som signeras",
            f"summary Avböj {which} …",
        ]
    expected.append("button:submit Signera protokollet och utdragen")
    backgrounds = [
        page.evaluate("getComputedStyle(document.body).backgroundColor"),
        page.locator(".card").first.evaluate("e => getComputedStyle(e).backgroundColor"),
    ]
    reached = []
    for _ in range(len(expected)):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        reached.append(re.sub(r"\(\d+ sid(a|or)\)", "(…)", focused["what"]))
        assert focused["outline"] == "solid" and focused["width"] >= 2, focused
        assert focused["inView"], focused
        for background in backgrounds:
            assert contrast(focused["color"], background) >= MIN_FOCUS_CONTRAST, focused
    assert reached == expected

    # the decline form of the last paragraph opens with Enter
    page.keyboard.press("Shift+Tab")
    last = signing_order(meeting)[-1]
    assert page.evaluate(_FOCUSED)["what"] == f"summary Avböj § {last.number} …"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate(_FOCUSED)["what"].startswith("textarea:textarea Vad behöver ändras")


# --- forged posts ------------------------------------------------------------------------


def _attacker(action: str, fields: dict[str, str]) -> FastAPI:
    """Another site (another origin) with a form that posts to a signer's link;
    at ``/tyst`` the page sends no referrer, so the browser says ``Origin: null``."""
    app = FastAPI()
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())

    def lure(head: str) -> HTMLResponse:
        return HTMLResponse(
            f'<!doctype html><html lang="sv"><head>{head}<title>Vinst</title></head><body>'
            f'<form method="post" action="{action}">{inputs}'
            "<button>Hämta din vinst</button></form></body></html>"
        )

    app.get("/")(lambda: lure(""))
    app.get("/tyst")(lambda: lure('<meta name="referrer" content="no-referrer">'))
    return app


def test_posts_from_another_origin_are_refused(tab: Tab, site: Site) -> None:
    page = tab.page
    meeting = start_meeting(site, (96,), f"browser-csrf-{tab.viewport.name}")
    link = link_in(site, newest_mail(site, meeting.chair.email, "ordförande"), "s")
    page.goto(link)
    csrf = page.locator('form#sign input[name="csrf"]').input_value()
    (extract_id,) = extract_ids(site, meeting).values()
    fields = {"csrf": csrf, "extract": str(extract_id)}

    # a real cross-origin form post in the browser, even with the right token
    with serve_app(_attacker(link, fields)) as evil:
        assert urlsplit(evil).port != urlsplit(site.base_url).port
        for lure, origin in (("/", evil), ("/tyst", "null")):
            page.goto(evil + lure)
            response = submit(page, page.get_by_role("button", name="Hämta din vinst"))
            assert response.status == 403
            sent = response.request.all_headers()
            assert (sent.get("origin"), sent.get("sec-fetch-site")) == (origin, "same-site")
            alert = page.get_by_role("alert").inner_text()
            assert "Formuläret kom inte från den här sidan" in alert
    assert_accessible(page, "refused post")

    # a foreign Origin header, a missing token, a token of another link
    refused = [
        page.request.post(link, form=fields, headers={"Origin": "http://evil.example"}),
        page.request.post(link, form={"extract": str(extract_id)}),
        page.request.post(link, form={**fields, "csrf": "0" * 64}),
        page.request.post(
            f"{link}/avbojning",
            form={**fields, "comment": "x"},
            headers={"Origin": "http://evil.example"},
        ),
    ]
    assert [r.status for r in refused] == [403] * len(refused)

    # nothing happened: the extract still waits, and the page's own form signs it
    states = in_thread(workflow.meeting_summaries, site.services, meeting.meeting_id)
    assert [s.status for s in states] == [ExtractStatus.AWAITING_CHAIR]
    # the page's own form: no referrer, so Origin null, but Sec-Fetch-Site same-origin
    page.goto(link)
    response = submit(page, page.get_by_role("button", name="Signera protokollet och utdragen"))
    assert response.status == 200
    sent = response.request.all_headers()
    assert (sent.get("origin"), sent.get("sec-fetch-site")) == ("null", "same-origin")
    assert page.get_by_role("heading", level=1).inner_text() == "Klart – du har signerat"


# --- the checker itself ----------------------------------------------------------------------


def test_axe_finds_what_it_should(browser: Any) -> None:
    """The accessibility check is not vacuous: on a page with an unlabelled field,
    an image without alt text and grey-on-grey text, axe reports all three."""
    with open_tab(browser, DESKTOP) as tab:
        tab.page.set_content(
            '<!doctype html><html lang="sv"><title>Fel</title><body><main>'
            '<input type="text"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
            '<p style="color:#bbb;background:#ccc">Otydlig text</p></main></body></html>'
        )
        found = {v["id"]: v["impact"] for v in run_axe(tab.page)}
    assert {"label", "image-alt", "color-contrast"} <= set(found)
    assert {found["label"], found["image-alt"], found["color-contrast"]} <= {"serious", "critical"}
