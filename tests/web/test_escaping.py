"""What people typed comes out of every family of pages as text, never as markup:
a meeting whose names, titles, diarienummer, place and decline comment all hold
``<script>&"'``, taken through the real app (FastAPI's TestClient) from the
signer's page to the archive's verification."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from justering import workflow
from justering.devtools.signer_client import SIGN_FORM, read_forms
from justering.model.meeting import Meeting
from justering.web.app import Hooks, create_app
from justering.workflow.services import Services
from support.workflow import (
    IMMEDIATE_PARAGRAPH,
    SHORT_PARAGRAPH,
    extract_rows,
    newest_token,
    outbox,
    sign_as,
    small_meeting,
    sqlite_ledger,  # noqa: F401  # SQLite only: the pages do not depend on it
)

HOSTILE = "<script>&\"'"
PROXY_HEADER = "X-Remote-User"


def hostile(text: str) -> str:
    return f"{text} {HOSTILE}"


def assert_escaped(page: str, *values: str) -> None:
    """Each value is on the page, escaped; nothing of it came out as markup."""
    for value in values:
        assert str(escape(value)) in page, value
    assert HOSTILE not in page and "<script" not in page


@pytest.fixture
def meeting(sample_meeting: Meeting) -> Meeting:
    """Every free text of the meeting holds markup (the secretary is the certifier)."""
    small = small_meeting(
        sample_meeting, paragraphs=(SHORT_PARAGRAPH, IMMEDIATE_PARAGRAPH), meeting_id="hostile"
    )
    return replace(
        small,
        municipality=hostile("Nacka kommun"),
        body=replace(small.body, name=hostile("Kommunstyrelsens arbetsutskott")),
        place=hostile("Nacka stadshus"),
        chair=replace(small.chair, name=hostile("Mats Gerdau")),
        adjusters=tuple(replace(a, name=hostile(a.name)) for a in small.adjusters),
        certifier=replace(small.certifier, name=hostile(small.certifier.name)),
        paragraphs=tuple(
            replace(p, title=hostile(p.title), dnr=hostile(f"KS {p.number}"))
            for p in small.paragraphs
        ),
    )


def _client(services: Services) -> Iterator[TestClient]:
    app = create_app(services, Hooks(lambda _m: None, lambda _m: None), environ={})
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    yield from _client(services)


def _paragraph(meeting: Meeting, number: int) -> Any:
    paragraph = meeting.paragraph(number)
    assert paragraph is not None
    return paragraph


def test_the_signer_and_secretary_pages(
    client: TestClient, services: Services, meeting: Meeting
) -> None:
    workflow.record_meeting(services, meeting)
    workflow.advance_meeting(services, meeting.meeting_id)
    token = newest_token(services, meeting.chair.email)
    signed, declined = (_paragraph(meeting, n) for n in (SHORT_PARAGRAPH, IMMEDIATE_PARAGRAPH))
    ids = {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}
    secretary = meeting.certifier

    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    texts = (signed.title, signed.dnr, declined.title, declined.dnr)
    place = (meeting.body.name, meeting.municipality, meeting.place)
    assert_escaped(page.text, meeting.chair.name, secretary.name, *texts, *place)
    csrf = dict(read_forms(page.text).fields[SIGN_FORM])["csrf"]

    # Declined first: signing anything while the protocol waits signs it all together.
    comment = hostile("Fel belopp")
    decline = {"csrf": csrf, "extract": str(ids[declined.number]), "comment": comment}
    answer = client.post(f"/s/{token}/avbojning", data=decline)
    assert answer.status_code == 200
    assert_escaped(answer.text, declined.title, comment, secretary.name)

    receipt = client.post(f"/s/{token}", data={"csrf": csrf, "extract": str(ids[signed.number])})
    assert receipt.status_code == 200
    assert_escaped(receipt.text, meeting.chair.name, signed.title, signed.dnr)

    used = client.get(f"/s/{token}")
    assert used.status_code == 410
    assert_escaped(used.text, secretary.name, secretary.email)

    [*_, redraft] = [m.token for m in outbox(services, "r") if m.to == secretary.email]
    form = client.get(f"/r/{redraft}")
    assert form.status_code == 200
    assert_escaped(form.text, declined.title, declined.dnr, comment, meeting.chair.name)
    fields = dict(read_forms(form.text).fields["form-1"])
    assert fields["title"] == declined.title  # the form holds the title as it was typed
    redraft_csrf = fields["csrf"]
    sent = {"csrf": redraft_csrf, "title": hostile("Ny rubrik"), "text": hostile("Text") + "\x07"}
    refused = client.post(f"/r/{redraft}", data=sent)  # a control character: refused
    assert refused.status_code == 422
    assert_escaped(refused.text, sent["title"], sent["text"], meeting.body.name)


def test_the_anslagstavla_and_the_archive(services: Services, meeting: Meeting) -> None:
    kept_at = hostile("Kansliet")
    services = replace(services, settings=replace(services.settings, kept_at=kept_at))
    one = replace(meeting, paragraphs=meeting.paragraphs[:1])
    [paragraph] = one.paragraphs
    workflow.record_meeting(services, one)
    workflow.advance_meeting(services, one.meeting_id)
    for person in (one.chair, *one.adjusters):
        sign_as(services, person.email)
        workflow.advance_meeting(services, one.meeting_id)

    with TestClient(create_app(services, Hooks(lambda _m: None, lambda _m: None))) as client:
        board = client.get("/anslagstavla")
    assert board.status_code == 200
    assert_escaped(board.text, one.body.name, one.municipality, kept_at, paragraph.title)
    assert_escaped(board.text, paragraph.dnr)

    sign_as(services, one.certifier.email)
    workflow.advance_meeting(services, one.meeting_id)  # archives the certified extract
    [state] = workflow.meeting_summaries(services, one.meeting_id)
    assert state.archive_uri is not None

    archivist = hostile("Anna Arkivarie")
    behind_proxy = replace(
        services, settings=replace(services.settings, archivist_header=PROXY_HEADER)
    )
    signers = (one.chair.name, *(a.name for a in one.adjusters), one.certifier.name)
    for proxied in _client(behind_proxy):
        proxied.headers[PROXY_HEADER] = archivist
        search = proxied.get("/arkiv/", params={"dnr": "KS"})
        assert search.status_code == 200
        assert_escaped(search.text, archivist, paragraph.title, paragraph.dnr, *signers)
        echoed = proxied.get("/arkiv/", params={"undertecknare": HOSTILE})
        assert echoed.status_code == 200
        assert f'value="{escape(HOSTILE)}"' in echoed.text
        assert_escaped(echoed.text)

        path = f"/arkiv/utdrag/{one.meeting_id}/{paragraph.number}"
        timeline = proxied.get(path)
        assert timeline.status_code == 200
        assert_escaped(timeline.text, archivist, paragraph.title, one.body.name, *signers)
        forms = read_forms(timeline.text)
        [(form, action)] = [(f, a) for f, a in forms.actions.items() if a.endswith("/verifiera")]
        csrf = dict(forms.fields[form])["csrf"]
        verified = proxied.post(action, data={"csrf": csrf})
        assert verified.status_code == 200
        assert "Giltigt: alla kontroller godkända." in verified.text
        assert_escaped(verified.text, archivist, paragraph.title, paragraph.dnr, *signers)


def test_the_archive_login_echoes_where_to_go_as_text(client: TestClient) -> None:
    login = client.get("/arkiv/logga-in", params={"next": f"/arkiv/{HOSTILE}"})
    assert login.status_code == 200
    assert f'name="next" value="/arkiv/{escape(HOSTILE)}"' in login.text
    assert_escaped(login.text)
