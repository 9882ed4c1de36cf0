"""Findings 5 and 12: a link keeps working for everything else it grants after one
of its extracts is redrafted; a mail scanner that follows a link does not put
"read by the signer" in the legal trail, only that the link was opened, by what."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from justering import workflow
from justering.model.meeting import Meeting
from justering.model.trail import EventKind
from justering.web.app import Hooks, create_app
from justering.workflow.services import Services
from support.workflow import (
    SHORT_PARAGRAPH,
    extract_rows,
    newest_token,
    small_meeting,
    sqlite_ledger,  # noqa: F401
    start_at_adjusters,
    trail,
)

SCANNER = "Mozilla/5.0 (compatible; SafeLinks scanner)"
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Safari/604.1"


@pytest.fixture
def app(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, Hooks(print, print))) as client:
        yield client


def test_after_a_redraft_the_adjusters_links_still_open_for_the_rest(
    app: TestClient, services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=(94, SHORT_PARAGRAPH), adjusters=2)
    start_at_adjusters(services, meeting)
    first, second = (newest_token(services, a.email) for a in meeting.adjusters)
    ids = {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}
    workflow.decline_with_link(services, first, ids[94], "Fel datum i beslutet.")
    workflow.redraft_extract(
        services,
        meeting.meeting_id,
        94,
        text="Beslut\n\nKommunstyrelsens arbetsutskott beslutar enligt förslaget.",
        actor="Lena Sekreterare",
    )
    for token in (first, second):
        page = app.get(f"/s/{token}")
        assert page.status_code == 200, page.text
        assert f"§ {SHORT_PARAGRAPH}" in page.text
    # ... and each adjuster signs what is still theirs, through the same link.
    receipt = workflow.sign_with_link(services, second)
    assert [item.extract.paragraph for item in receipt.items] == [SHORT_PARAGRAPH]


def test_a_scanner_opening_the_link_is_recorded_as_what_it_is(
    app: TestClient, services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start_at_adjusters(services, meeting)
    token = newest_token(services, meeting.adjusters[0].email)
    [row] = extract_rows(services, meeting.meeting_id)
    assert app.get(f"/s/{token}", headers={"User-Agent": SCANNER}).status_code == 200
    assert app.get(f"/s/{token}", headers={"User-Agent": SCANNER}).status_code == 200
    assert app.get(f"/s/{token}", headers={"User-Agent": BROWSER + "\r\nX: y"}).status_code == 200
    opened = [
        e for e in trail(services, row.id) if e.kind is EventKind.VIEWED and e.role == "adjuster"
    ]
    # Once per client (a reload by the same client adds nothing), each named as it came.
    assert [e.detail["user_agent"] for e in opened] == [SCANNER, BROWSER + "X: y"]
    assert EventKind.VIEWED.swedish == "länk öppnad"
    assert not any(
        e.kind is EventKind.SIGNED and e.role == "adjuster" for e in trail(services, row.id)
    )
