"""Findings 1, 2 and 10 of the attack review: only registered meeting systems
start a justering or read one, a cross-site post cannot, no one squats another's
meeting id, and the API shows no server paths. Each refusal leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from justering import workflow
from justering.ledger.clients import add_client, revoke_client, scoped_meeting_id
from justering.ledger.schema import ExtractRow, MeetingRow
from justering.model.meeting import Meeting, meeting_to_dict
from justering.web.app import Hooks, create_app
from justering.workflow.services import Services
from support.workflow import (
    small_meeting,
    sqlite_ledger,  # noqa: F401
)


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    started: list[str] = []
    with TestClient(create_app(services, Hooks(started.append, started.append))) as client:
        client.started = started  # type: ignore[attr-defined]
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def meetings(services: Services) -> int:
    with services.ledger.reading() as session:
        return int(session.execute(select(func.count()).select_from(MeetingRow)).scalar_one())


@pytest.fixture
def forged(sample_meeting: Meeting) -> Meeting:
    """The outsider's manifest: the real chair's name with the outsider's address."""
    meeting = small_meeting(sample_meeting)
    chair = replace(meeting.chair, email="attacker@evil.example")
    return replace(meeting, chair=chair)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic bWF0czpnZXJkYXU="},
        {"Authorization": "Bearer jst_guessed-token-that-was-never-issued"},
        {"Authorization": "Bearer not-even-the-prefix"},
    ],
)
def test_without_a_valid_token_nothing_is_started_or_read(
    app: TestClient, services: Services, forged: Meeting, headers: dict[str, str]
) -> None:
    posted = app.post("/api/meetings", json=meeting_to_dict(forged), headers=headers)
    assert posted.status_code == 401
    assert posted.headers["www-authenticate"].startswith("Bearer")
    assert "token" in posted.json()["error"]
    read = app.get(f"/api/meetings/{forged.meeting_id}", headers=headers)
    assert read.status_code == 401
    assert meetings(services) == 0 and app.started == []  # type: ignore[attr-defined]


def test_a_revoked_token_is_refused(app: TestClient, services: Services, forged: Meeting) -> None:
    token = add_client(services.ledger, "nacka-ns", ["KSAU"]).token
    revoke_client(services.ledger, "nacka-ns")
    answer = app.post("/api/meetings", json=meeting_to_dict(forged), headers=bearer(token))
    assert answer.status_code == 401
    assert meetings(services) == 0


def test_a_cross_site_text_plain_post_is_refused(
    app: TestClient, services: Services, forged: Meeting
) -> None:
    """What a form on another web page can make a visitor's browser send: a "simple"
    request, text/plain, no Authorization header, no preflight."""
    import json

    simple = {"Content-Type": "text/plain", "Origin": "https://evil.example"}
    body = json.dumps(meeting_to_dict(forged))
    assert app.post("/api/meetings", content=body, headers=simple).status_code == 401
    # Even a holder of a real token cannot send a non-JSON body.
    token = add_client(services.ledger, "nacka-ns", ["KSAU"]).token
    typed = {**simple, **bearer(token)}
    refused = app.post("/api/meetings", content=body, headers=typed)
    assert refused.status_code == 415
    assert "application/json" in refused.json()["error"]
    assert meetings(services) == 0


def test_a_client_may_start_only_its_own_bodies_and_municipality(
    app: TestClient, services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    other_body = add_client(services.ledger, "bun-system", ["BUN"]).token
    answer = app.post("/api/meetings", json=meeting_to_dict(meeting), headers=bearer(other_body))
    assert answer.status_code == 403
    assert "'KSAU'" in answer.json()["error"] and "BUN" in answer.json()["error"]
    elsewhere = add_client(services.ledger, "varmdo", ["KSAU"], municipality="Värmdö kommun")
    answer = app.post(
        "/api/meetings", json=meeting_to_dict(meeting), headers=bearer(elsewhere.token)
    )
    assert answer.status_code == 403
    assert "Nacka kommun" in answer.json()["error"]
    assert meetings(services) == 0


def test_no_one_can_squat_another_clients_meeting_id(
    app: TestClient, services: Services, forged: Meeting, sample_meeting: Meeting
) -> None:
    """The outsider registered as a client of its own posts first, under the real
    meeting id; the real meeting system's post is still a new meeting."""
    outsider = add_client(services.ledger, "outsider", ["KSAU"]).token
    real = add_client(services.ledger, "nacka-ns", ["KSAU"]).token
    first = app.post("/api/meetings", json=meeting_to_dict(forged), headers=bearer(outsider))
    assert first.status_code == 202
    genuine = small_meeting(sample_meeting)
    second = app.post("/api/meetings", json=meeting_to_dict(genuine), headers=bearer(real))
    assert second.status_code == 202 and second.json()["created"] is True
    kept = workflow.get_meeting(services, scoped_meeting_id("nacka-ns", genuine.meeting_id))
    assert kept.chair == genuine.chair
    # Each reads its own meeting under the same id, and the other's not at all.
    mine = app.get(f"/api/meetings/{genuine.meeting_id}", headers=bearer(real))
    assert mine.status_code == 200
    workflow.advance_meeting(services, scoped_meeting_id("outsider", forged.meeting_id))
    theirs = app.get(f"/api/meetings/{genuine.meeting_id}", headers=bearer(outsider))
    assert theirs.status_code == 200 and len(theirs.json()["extracts"]) == 1
    assert mine.json()["extracts"] == []  # the real meeting was not advanced: not shared


def test_a_client_reads_only_its_own_meetings_and_no_server_paths(
    app: TestClient, services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    owner = add_client(services.ledger, "nacka-ns", ["KSAU"]).token
    stranger = add_client(services.ledger, "stranger", ["KSAU"]).token
    assert app.post("/api/meetings", json=meeting_to_dict(meeting), headers=bearer(owner))
    workflow.advance_meeting(services, scoped_meeting_id("nacka-ns", meeting.meeting_id))
    assert app.get(f"/api/meetings/{meeting.meeting_id}", headers=bearer(stranger)).status_code == (
        404
    )
    shown = app.get(f"/api/meetings/{meeting.meeting_id}", headers=bearer(owner))
    assert shown.status_code == 200
    assert "file:" not in shown.text and str(services.settings.home) not in shown.text
    [extract] = shown.json()["extracts"]
    [protocol] = shown.json()["protocols"]
    for document in (extract, protocol):
        assert set(document) == {
            "kind",
            "paragraph",
            "dnr",
            "title",
            "version",
            "status",
            "sha256",
            "immediate",
            "archived",
        }


def test_too_many_paragraphs_are_refused_before_anything_is_stored(
    app: TestClient, services: Services, sample_meeting: Meeting
) -> None:
    """Finding 6: a 10 000-paragraph manifest would take the chair's one POST far past
    any proxy's timeout."""
    token = add_client(services.ledger, "nacka-ns", ["KSAU"]).token
    [paragraph] = small_meeting(sample_meeting).paragraphs
    limit = services.settings.max_paragraphs
    many = replace(
        sample_meeting,
        paragraphs=tuple(replace(paragraph, number=n) for n in range(1, limit + 2)),
    )
    answer = app.post("/api/meetings", json=meeting_to_dict(many), headers=bearer(token))
    assert answer.status_code == 422
    assert answer.json()["field"] == "paragraphs"
    assert f"at most {limit}" in answer.json()["error"]
    with services.ledger.reading() as session:
        assert session.execute(select(func.count()).select_from(ExtractRow)).scalar_one() == 0
    assert meetings(services) == 0
