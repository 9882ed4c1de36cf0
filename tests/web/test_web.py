"""The web app: the meeting system's API and the signers' pages (FastAPI's
TestClient over the real app, a real ledger and the outbox)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select

from justering import workflow
from justering.config import Settings, load_settings
from justering.devtools.signer_client import SIGN_FORM, read_forms
from justering.ledger.clients import add_client, scoped_meeting_id
from justering.ledger.links import issue_link
from justering.ledger.schema import ExtractRow, LinkTokenRow, aware_utc
from justering.model.calendar import local_minute
from justering.model.manifest import MAX_MANIFEST_BYTES, load_sample_meeting
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Role
from justering.pades.ca import SigningCA
from justering.web.app import Hooks, create_app
from justering.web.auth import session_key
from justering.web.signer import form_token
from justering.workflow.services import Services
from support.workflow import (
    KEPT_AT,
    SHORT_PARAGRAPH,
    newest_token,
    outbox,
    small_meeting,
    sqlite_ledger,  # noqa: F401  # SQLite only: the web layer does not depend on it
)

HOSTILE_TITLE = 'Bygglov <script>alert("x")</script> & "citat"'
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@dataclass
class Calls:
    recorded: list[str] = field(default_factory=list)
    scheduled: list[str] = field(default_factory=list)


@pytest.fixture
def calls() -> Calls:
    return Calls()


CLIENT = "nacka-ns"
"""The meeting system the tests post as (registered with a token for KSAU)."""


def key(meeting_id: str) -> str:
    """Where the ledger keeps the test client's meeting ``meeting_id``."""
    return scoped_meeting_id(CLIENT, meeting_id)


@pytest.fixture
def client(services: Services, calls: Calls) -> Iterator[TestClient]:
    """The web app, called as the registered meeting system (its bearer token on
    every request; the signer pages ignore it)."""
    token = add_client(services.ledger, CLIENT, ["KSAU"]).token
    app = create_app(services, Hooks(calls.recorded.append, calls.scheduled.append))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _sample_document() -> dict[str, Any]:
    """The bundled sample manifest with its protocol text inline, as the web API takes it."""
    samples = resources.files("justering").joinpath("samples")
    document: dict[str, Any] = json.loads(samples.joinpath("meeting.json").read_text("utf-8"))
    del document["protocol_text"]
    document["protocol_text_inline"] = samples.joinpath("protocol.txt").read_text("utf-8")
    return document


def _hostile_meeting(sample_meeting: Meeting) -> Meeting:
    meeting = small_meeting(sample_meeting, meeting_id="hostile-title")
    [paragraph] = meeting.paragraphs
    return replace(
        meeting, paragraphs=(replace(paragraph, title=HOSTILE_TITLE, dnr="KS 2014/1 <b>"),)
    )


@pytest.fixture
def signer_token(
    client: TestClient, services: Services, sample_meeting: Meeting, calls: Calls
) -> str:
    """The chair's link for a one-paragraph meeting whose title and dnr hold HTML."""
    meeting = _hostile_meeting(sample_meeting)
    assert client.post("/api/meetings", json=meeting_to_dict(meeting)).status_code == 202
    assert calls.scheduled == [key(meeting.meeting_id)]  # drafting starts at once
    calls.scheduled.clear()
    workflow.advance_meeting(services, key(meeting.meeting_id))
    return newest_token(services, meeting.chair.email)


def _assert_security_headers(response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy


# --- the meeting API -------------------------------------------------------------------


def test_posting_a_manifest_with_inline_text_starts_the_meeting_once(
    client: TestClient, calls: Calls, sample_meeting: Meeting
) -> None:
    document = _sample_document()
    response = client.post("/api/meetings", json=document)
    assert response.status_code == 202
    assert response.json() == {"meeting_id": sample_meeting.meeting_id, "created": True}
    assert calls.recorded == [key(sample_meeting.meeting_id)]

    again = client.post("/api/meetings", json=document)
    assert again.status_code == 200
    assert again.json() == {"meeting_id": sample_meeting.meeting_id, "created": False}
    assert calls.recorded == [key(sample_meeting.meeting_id)]
    assert calls.scheduled == [key(sample_meeting.meeting_id)]  # once, for the new meeting


def test_posting_a_manifest_with_paragraphs(
    client: TestClient, calls: Calls, services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, meeting_id="with-paragraphs")
    response = client.post("/api/meetings", json=meeting_to_dict(meeting))
    assert response.status_code == 202
    assert calls.recorded == [key("with-paragraphs")]
    stored = workflow.get_meeting(services, key("with-paragraphs"))
    assert stored == replace(meeting, meeting_id=key("with-paragraphs"))


def _broken(change: str) -> bytes:
    document = _sample_document()
    if change == "not-json":
        return b'{"meeting_id": "x",'
    if change == "no-chair":
        del document["chair"]
    elif change == "bad-email":
        document["chair"]["email"] = "mats.gerdau"
    elif change == "bad-date":
        document["date"] = "2014-02-30"
    elif change == "file-path":
        document["protocol_text"] = "protocol.txt"
        del document["protocol_text_inline"]
    elif change == "no-adjusters":
        document["adjusters"] = []
    elif change == "unknown-field":
        document["secret"] = True
    elif change == "paragraph-number":
        document = meeting_to_dict(small_meeting(load_sample_meeting()))
        document["paragraphs"][0]["number"] = "96"
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ("not-json", "(manifest)"),
        ("no-chair", "chair"),
        ("bad-email", "chair.email"),
        ("bad-date", "date"),
        ("file-path", "protocol_text"),
        ("no-adjusters", "adjusters"),
        ("unknown-field", "secret"),
        ("paragraph-number", "paragraphs[0].number"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_the_field(
    client: TestClient, calls: Calls, change: str, field_name: str
) -> None:
    response = client.post(
        "/api/meetings", content=_broken(change), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == field_name
    assert f"'{field_name}'" in body["error"]
    assert calls.recorded == []
    assert client.get("/api/meetings/nacka-ksau-2014-08-19").status_code == 404


def test_a_different_manifest_under_a_known_id_is_a_conflict(
    client: TestClient, calls: Calls
) -> None:
    document = _sample_document()
    assert client.post("/api/meetings", json=document).status_code == 202
    document["place"] = "Fisksätra"
    response = client.post("/api/meetings", json=document)
    assert response.status_code == 409
    assert response.json()["field"] == "meeting_id"
    assert len(calls.recorded) == 1


def test_an_oversized_body_is_refused(client: TestClient, calls: Calls) -> None:
    response = client.post(
        "/api/meetings",
        content=b" " * (MAX_MANIFEST_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert str(MAX_MANIFEST_BYTES) in response.json()["error"]
    assert calls.recorded == []


def test_meeting_status(client: TestClient, services: Services, sample_meeting: Meeting) -> None:
    meeting = small_meeting(sample_meeting)
    client.post("/api/meetings", json=meeting_to_dict(meeting))
    assert client.get(f"/api/meetings/{meeting.meeting_id}").json() == {
        "meeting_id": meeting.meeting_id,
        "extracts": [],
        "protocols": [],
    }
    workflow.advance_meeting(services, key(meeting.meeting_id))
    [extract] = client.get(f"/api/meetings/{meeting.meeting_id}").json()["extracts"]
    assert extract["paragraph"] == SHORT_PARAGRAPH
    assert extract["status"] == "awaiting_chair"
    assert extract["version"] == 1 and extract["archived"] is False
    assert "archive_uri" not in extract  # where the server keeps files is its own business
    assert re.fullmatch(r"[0-9a-f]{64}", extract["sha256"])
    [protocol] = client.get(f"/api/meetings/{meeting.meeting_id}").json()["protocols"]
    assert (protocol["kind"], protocol["paragraph"], protocol["status"]) == (
        "protocol",
        None,
        "awaiting_chair",
    )
    assert "archive_uri" not in protocol and protocol["archived"] is False
    sign_on_page(client, newest_token(services, meeting.chair.email))
    state = client.get(f"/api/meetings/{meeting.meeting_id}").json()
    assert [d["status"] for d in (*state["extracts"], *state["protocols"])] == [
        "awaiting_adjusters"
    ] * 2


def test_an_unknown_meeting_is_not_found(client: TestClient) -> None:
    response = client.get("/api/meetings/no-such-meeting")
    assert response.status_code == 404
    assert "no-such-meeting" in response.json()["error"]


# --- the signer's pages -------------------------------------------------------------------


def test_the_signer_page_shows_who_signs_what_escaped(
    client: TestClient, signer_token: str, sample_meeting: Meeting
) -> None:
    response = client.get(f"/s/{signer_token}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<html lang="sv">' in page
    assert "Signera som ordförande" in page
    assert f"Hej {sample_meeting.chair.name}!" in page
    assert f">§ {SHORT_PARAGRAPH} · KS 2014/1 &lt;b&gt;</h2>" in page
    assert escape(HOSTILE_TITLE) in page
    assert "KS 2014/1 &lt;b&gt;" in page
    assert "<script" not in page and "<b>" not in page
    # the protocol and the extract of its paragraph are signed together, in one action
    assert "Signera protokollet och utdragen" in page
    assert "du signerar protokollet och utdragen ur det på en gång" in " ".join(page.split())
    assert "PAdES" not in page and "din elektroniska underskrift" in page
    # the paragraph's text is on the page (as the PDF has it), escaped
    wording = re.findall(r'<div class="wording" lang="sv">(.*?)</div>', page, flags=re.DOTALL)
    assert len(wording) == 2  # in the protocol and in the extract
    assert all(escape(HOSTILE_TITLE) in text and "Beslut" in text for text in wording)
    _assert_security_headers(response)


def test_the_pdf_behind_the_link(client: TestClient, signer_token: str) -> None:
    page = client.get(f"/s/{signer_token}").text
    protocol_pdf, href = re.findall(r'href="(/s/[^"]+\.pdf)"', page)
    assert client.get(protocol_pdf).content.startswith(b"%PDF-")
    images = re.findall(r'<img src="(/s/[^"]+\.png\?w=\d+)"', page)
    assert images
    for src in images:
        image = client.get(src)
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert client.get(images[0].replace("w=1000", "w=123")).status_code == 400
    response = client.get(href)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("referrer-policy") == "no-referrer"
    assert client.get(re.sub(r"/\d+\.pdf$", "/999999.pdf", href)).status_code == 404


def sign_on_page(client: TestClient, token: str, **changes: str) -> Any:
    """Submit the signing form as the page offers it (``changes`` replace fields)."""
    forms = read_forms(client.get(f"/s/{token}").text)
    data: dict[str, Any] = {}
    for name, value in forms.fields[SIGN_FORM]:
        data.setdefault(name, []).append(value)
    data.update(changes)
    return client.post(forms.actions[SIGN_FORM], data=data)


def test_signing_needs_the_form_token_and_a_choice(
    client: TestClient, calls: Calls, services: Services, signer_token: str
) -> None:
    home_key = session_key(services.settings.home)
    another_links = form_token(home_key, signer_token[:-1] + "x")
    other_homes = form_token(b"another home's key", signer_token)
    for changes in (
        {"csrf": ""},
        {"csrf": "0" * 64},
        {"csrf": another_links},
        {"csrf": other_homes},
    ):
        response = sign_on_page(client, signer_token, **changes)
        assert response.status_code == 403
        assert "Formuläret kom inte från den här sidan" in response.text
    genuine = sign_on_page(client, signer_token)
    assert genuine.status_code == 200
    assert calls.scheduled == [key("hostile-title")]


def test_a_foreign_site_cannot_post_the_form(
    client: TestClient, calls: Calls, signer_token: str
) -> None:
    forms = read_forms(client.get(f"/s/{signer_token}").text)
    data = dict(forms.fields[SIGN_FORM])
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = client.post(f"/s/{signer_token}", data=data, headers=headers)
        assert response.status_code == 403
    assert {k: v for k, v in data.items() if k != "extract"} == {"csrf": data["csrf"]}
    nothing = client.post(f"/s/{signer_token}", data={"csrf": data["csrf"]})
    assert nothing.status_code == 400 and "Markera minst ett utdrag" in nothing.text
    assert calls.scheduled == []
    assert client.get(f"/s/{signer_token}").status_code == 200


def test_signing_shows_the_receipt_and_the_link_is_then_used(
    client: TestClient, calls: Calls, services: Services, signer_token: str
) -> None:
    forms = read_forms(client.get(f"/s/{signer_token}").text)
    response = sign_on_page(client, signer_token)
    assert response.status_code == 200
    page = response.text
    assert "Klart – du har signerat" in page
    assert "Mats Gerdau, som ordförande" in page
    assert "Protokollet" in page and "<summary>Kontrollsummor</summary>" in page
    assert escape(HOSTILE_TITLE) in page and "<script" not in page
    [state] = workflow.meeting_summaries(services, key("hostile-title"))
    assert state.status is ExtractStatus.AWAITING_ADJUSTERS
    assert f"<code>{state.document_sha256}</code>" in page
    assert calls.scheduled == [key("hostile-title")]
    _assert_security_headers(response)

    again = client.post(f"/s/{signer_token}", data=dict(forms.fields[SIGN_FORM]))
    assert again.status_code == 410
    assert "Länken har redan använts" in again.text
    assert "Kontakta nämndens sekreterare Lena Sekreterare" in again.text
    assert 'href="mailto:lena.sekreterare@nacka.example"' in again.text
    _assert_security_headers(again)
    assert client.get(f"/s/{signer_token}").status_code == 410
    assert calls.scheduled == [key("hostile-title")]
    assert workflow.meeting_summaries(services, key("hostile-title")) == (state,)


@pytest.mark.parametrize("token", ["A" * 43, "nope", "x" * 200])
def test_an_unknown_link_is_not_found(client: TestClient, services: Services, token: str) -> None:
    key = session_key(services.settings.home)
    forged = client.post(f"/s/{token}", data={"csrf": "x", "extract": "1"})
    assert forged.status_code == 403
    for response in (
        client.get(f"/s/{token}"),
        client.post(f"/s/{token}", data={"csrf": form_token(key, token), "extract": "1"}),
        client.get(f"/s/{token}/utdrag/1.pdf"),
    ):
        assert response.status_code == 404
        assert "Länken är ogiltig" in response.text
        _assert_security_headers(response)


def test_an_out_of_turn_link_gets_a_conflict_page(
    client: TestClient, calls: Calls, services: Services, signer_token: str
) -> None:
    meeting = workflow.get_meeting(services, key("hostile-title"))
    with services.ledger.transaction() as session:
        extracts = list(
            session.execute(
                select(ExtractRow).where(ExtractRow.kind == DocumentKind.EXTRACT)
            ).scalars()
        )
        token = issue_link(
            session,
            meeting_id=meeting.meeting_id,
            signer=meeting.signers(Role.CERTIFIER)[0],
            extracts=extracts,
            ttl=dt.timedelta(days=1),
        ).token
    page = client.get(f"/s/{token}")
    assert page.status_code == 200 and "Inte din tur ännu" in page.text
    assert SIGN_FORM not in read_forms(page.text).actions
    [extract] = extracts
    csrf = form_token(session_key(services.settings.home), token)
    response = client.post(f"/s/{token}", data={"csrf": csrf, "extract": extract.id})
    assert response.status_code == 409
    assert "tur att signera" in response.text
    assert calls.scheduled == []


# --- times on the page ------------------------------------------------------------------------


def test_the_expiry_is_shown_in_swedish_time_whatever_the_database_zone(
    postgres_url: str,
    tmp_path: Path,
    sample_meeting: Meeting,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PostgreSQL session in another zone (PGTZ) must not shift the times shown."""
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")
    settings: Settings = replace(_settings(tmp_path), database_url=postgres_url)
    settings.home.mkdir(parents=True)
    SigningCA.create(settings.ca_dir, organisation=sample_meeting.municipality)
    services = workflow.open_services(settings)
    try:
        meeting = small_meeting(sample_meeting)
        workflow.record_meeting(services, meeting)
        workflow.advance_meeting(services, meeting.meeting_id)
        token = newest_token(services, meeting.chair.email)
        with TestClient(create_app(services, Hooks(print, print))) as client:
            page = client.get(f"/s/{token}").text
        [notice] = [m.text for m in outbox(services)]
        with services.ledger.reading() as session:
            [link] = session.execute(select(LinkTokenRow)).scalars()
            expected = local_minute(aware_utc(link.expires_at))
    finally:
        services.ledger.dispose()
    minute = r"gäller till\s+(?:<[^>]+>)?(\d{4}-\d\d-\d\d \d\d:\d\d)"
    assert re.findall(minute, page) == re.findall(minute, notice) == [expected]


def _settings(tmp_path: Path) -> Settings:
    return replace(
        load_settings(tmp_path / "home", environ={}),
        public_url="http://justering.test",
        kept_at=KEPT_AT,
    )


def test_a_tsa_that_does_not_answer_leaves_the_link_usable(
    services: Services, calls: Calls, signer_token: str
) -> None:
    from justering.pades.timestamps import timestamper_for
    from support.tsa import refused_url

    with_tsa = replace(services, timestamper=timestamper_for(refused_url(), timeout=2))
    app = create_app(with_tsa, Hooks(calls.recorded.append, calls.scheduled.append))
    before = workflow.meeting_summaries(services, key("hostile-title"))
    with TestClient(app) as client:
        response = sign_on_page(client, signer_token)
        assert response.status_code == 503
        assert "Försök igen om en stund" in response.text
        assert "inget har sparats" in response.text
        assert client.get(f"/s/{signer_token}").status_code == 200
    assert workflow.meeting_summaries(services, key("hostile-title")) == before
    assert calls.scheduled == []


def test_the_app_serves_the_anslagstavla_and_guards_the_archive(client: TestClient) -> None:
    board = client.get("/anslagstavla")
    assert board.status_code == 200
    assert "Anslagstavla" in board.text
    assert client.get("/anslagstavla/feed.json").json()["notices"] == []
    archive = client.get("/arkiv/", follow_redirects=False)
    assert archive.status_code in (302, 303, 307)
    assert "/arkiv/logga-in" in archive.headers["location"]


def test_the_front_page_says_what_the_service_is_and_where_to_go(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<html lang="sv">' in page and 'name="viewport"' in page
    assert "<h1>Justering av protokoll</h1>" in page
    assert "Använd länken i e-postmeddelandet som du har fått." in page
    links = dict(re.findall(r'<a href="([^"]+)">([^<]+)</a>', page))
    assert links == {
        "/anslagstavla": "Anslagstavlan",
        "/sekreterare/": "Sammanträden",
        "/arkiv/": "Arkivet",
    }
    assert client.get("/anslagstavla").status_code == 200
    assert "/arkiv/logga-in" in client.get("/arkiv/", follow_redirects=False).headers["location"]
    secretary = client.get("/sekreterare/", follow_redirects=False)
    assert "/sekreterare/logga-in" in secretary.headers["location"]
    board = client.get("/anslagstavla")
    for name in ("cache-control", "referrer-policy", "x-content-type-options"):
        assert response.headers[name] == board.headers[name], name
    assert response.headers["content-security-policy"] == board.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere
