"""Abuse through the web app as an attacker would try it: many concurrent POSTs of
one link on PostgreSQL, and documents altered in the ledger after a signature.
Each attempt is refused clearly and leaves the ledger as it was. (Links that are
expired, reused, altered, another signer's, another extract's, out of turn or
revoked are covered by test_links.py and test_redraft.py.)"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from justering import workflow
from justering.devtools.signer_client import SIGN_FORM, read_forms
from justering.errors import Refusal
from justering.ledger.extracts import load_document
from justering.ledger.schema import DocumentRow, ExtractRow
from justering.model.meeting import Meeting
from justering.web.app import Hooks, create_app
from justering.web.auth import session_key
from justering.web.signer import form_token
from justering.workflow.services import Services
from support.browser import serve_app
from support.workflow import (
    assert_chair_signed_once,
    extract_rows,
    newest_token,
    raises_refusal,
    run_in_threads,
    small_meeting,
    snapshot,
    start,
    start_at_adjusters,
)

CONCURRENT_POSTS = 50


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_fifty_concurrent_posts_of_one_link_sign_once(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    token = newest_token(services, meeting.chair.email)
    app = create_app(services, Hooks(lambda _: None, lambda _: None))
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=120) as client:
        page = client.get(f"/s/{token}")
        assert page.status_code == 200
        forms = read_forms(page.text)
        data = dict(forms.fields[SIGN_FORM])
        before = snapshot(services)

        def post() -> httpx.Response:
            with httpx.Client(base_url=base, timeout=120) as own:
                return own.post(forms.actions[SIGN_FORM], data=data)

        results = run_in_threads(CONCURRENT_POSTS, post)
    statuses = sorted(r.status_code if isinstance(r, httpx.Response) else -1 for r in results)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409, 410}, statuses
    refusals = [r for r in results if isinstance(r, httpx.Response) and r.status_code != 200]
    assert all("Det gick inte" in r.text for r in refusals)
    assert_chair_signed_once(services, meeting.meeting_id, before)


def _refused_signing(services: Services, client: Any, token: str) -> httpx.Response:
    """Open the page (which records a view), then sign: refused, the ledger unchanged."""
    forms = read_forms(client.get(f"/s/{token}").text)
    before = snapshot(services)
    response = client.post(forms.actions[SIGN_FORM], data=dict(forms.fields[SIGN_FORM]))
    assert snapshot(services) == before
    return response


def _adjusters_turn(services: Services, sample_meeting: Meeting) -> tuple[Meeting, ExtractRow]:
    meeting = small_meeting(sample_meeting)
    start_at_adjusters(services, meeting)
    [extract] = extract_rows(services, meeting.meeting_id)
    return meeting, extract


def _client(services: Services) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(create_app(services, Hooks(lambda _: None, lambda _: None)))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_document_row_altered_after_the_chair_signed_is_not_signed(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting, extract = _adjusters_turn(services, sample_meeting)
    with services.ledger.transaction() as session:
        row = session.get(DocumentRow, extract.head_sha256)
        assert row is not None
        row.content = row.content.replace(b"/Type /Page", b"/Type /Page ", 1)
    token = newest_token(services, meeting.adjusters[0].email)
    before = snapshot(services)
    with _client(services) as client:
        page = client.get(f"/s/{token}")
        csrf = form_token(session_key(services.settings.home), token)
        response = client.post(f"/s/{token}", data={"csrf": csrf, "extract": str(extract.id)})
    for refused in (page, response):
        assert refused.status_code == 409
        assert "har ändrats efter att det sparades eller signerades" in refused.text
    assert snapshot(services).documents == before.documents
    assert snapshot(services).extracts == before.extracts


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_pdf_altered_after_the_chair_signed_with_its_hash_rewritten_is_not_signed(
    services: Services, sample_meeting: Meeting
) -> None:
    """The attacker changes the signed PDF and stores it under its own hash as the
    extract's head: the hash checks pass, the chair's signature does not."""
    meeting, extract = _adjusters_turn(services, sample_meeting)
    with services.ledger.transaction() as session:
        signed = load_document(session, extract.head_sha256)
        marker = signed.index(b"stream", signed.index(b"/Contents"))
        altered = bytearray(signed)
        altered[marker + 20] ^= 0x01  # a byte of the first page's content, inside the range
        forged = bytes(altered)
        digest = hashlib.sha256(forged).hexdigest()
        session.add(
            DocumentRow(
                sha256=digest,
                extract_id=extract.id,
                version=extract.version,
                content=forged,
                created_at=extract.updated_at,
            )
        )
        row = session.execute(select(ExtractRow).where(ExtractRow.id == extract.id)).scalar_one()
        row.head_sha256 = digest
    token = newest_token(services, meeting.adjusters[0].email)
    with _client(services) as client:
        response = _refused_signing(services, client, token)
    assert response.status_code == 409
    assert "signeras inte" in response.text
    with raises_refusal(Refusal.TAMPERED):
        workflow.sign_with_link(services, newest_token(services, meeting.adjusters[0].email))
