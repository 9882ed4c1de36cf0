"""The anslagstavla: the announcement of a justered protocol in its trail (with the
förvaringsplats and the late marking), what the board shows and for how long, and
the public page and feed (FastAPI's TestClient over the router in a small app).
(The date arithmetic is tests/model/test_calendar.py.)"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import event, insert, update
from sqlalchemy.orm import Session

from justering import workflow
from justering.errors import Refusal
from justering.ledger.database import utcnow
from justering.ledger.extracts import append_event, lock_extract
from justering.ledger.schema import ExtractRow, MeetingRow, TrailEventRow
from justering.model.calendar import SWEDISH_TIME, appeal_deadline, local_today
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Role
from justering.model.trail import EventKind, TrailEvent, chain_problems
from justering.web.noticeboard import FEED_FORMAT, noticeboard_router
from justering.workflow import signatures
from justering.workflow.noticeboard import Notice, announce, current_notices
from justering.workflow.protocols import settle_justering
from justering.workflow.services import Services
from support.workflow import (
    KEPT_AT,
    SHORT_PARAGRAPH,
    extract_rows,
    newest_token,
    outbox,
    protocol_row,
    raises_refusal,
    sign_as,
    small_meeting,
    start,
    start_at_adjusters,
    trail,
    trail_kinds,
)

HOSTILE_TITLE = 'Bygglov <script>alert("x")</script> & "citat"'
UTC = dt.UTC


# --- announcing -------------------------------------------------------------------------------


def _announce(
    services: Services, meeting: Meeting, protocol_id: int, now: dt.datetime
) -> TrailEvent:
    """What the workflow does once the last adjuster has signed the protocol."""
    with services.ledger.transaction() as session:
        protocol = lock_extract(session, protocol_id)
        return announce(session, protocol, meeting, services.settings, now=now)


@pytest.fixture
def hostile_meeting(sample_meeting: Meeting) -> Meeting:
    meeting = small_meeting(sample_meeting, meeting_id="anslag-hostile")
    [paragraph] = meeting.paragraphs
    return replace(meeting, paragraphs=(replace(paragraph, title=HOSTILE_TITLE, dnr="KS <b>1"),))


@pytest.fixture
def justered(services: Services, hostile_meeting: Meeting) -> int:
    """A one-paragraph meeting whose protocol its chair and its adjuster signed: justered
    but, unlike in the workflow, not yet announced, so that the tests call ``announce``
    with the times they need. The protocol's id."""
    start_at_adjusters(services, hostile_meeting)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(signatures, "settle_justering", lambda *_args, **_kwargs: [])
        sign_as(services, hostile_meeting.adjusters[0].email)
    protocol = protocol_row(services, hostile_meeting.meeting_id)
    assert protocol.status == ExtractStatus.JUSTERED.value
    [extract] = extract_rows(services, hostile_meeting.meeting_id)
    assert extract.status == ExtractStatus.AWAITING_PROTOCOL.value
    return protocol.id


# Thu 10 Jan 2030 00:30 in Stockholm (UTC+1): still the 9th in UTC.
AFTER_MIDNIGHT = dt.datetime(2030, 1, 9, 23, 30, tzinfo=UTC)
ANNOUNCED_ON = dt.date(2030, 1, 10)
DEADLINE = dt.date(2030, 1, 31)  # Thu 10 Jan + 3 weeks = Thu 31 Jan: no holiday.


def test_announce_records_the_dates_in_swedish_time(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    signed_at = trail(services, justered)[-1].at
    event = _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT)
    protocol = protocol_row(services, hostile_meeting.meeting_id)
    assert event.kind is EventKind.ANNOUNCED
    assert event.at == AFTER_MIDNIGHT
    assert event.document_sha256 == protocol.head_sha256
    assert event.version == protocol.version
    assert event.actor_email is None
    justered_on = signed_at.astimezone(SWEDISH_TIME).date()
    assert dict(event.detail) == {
        "announced_on": "2030-01-10",
        "announce_by": event.detail["announce_by"],
        "appeal_deadline": "2030-01-31",
        "justered_on": justered_on.isoformat(),
        "justering_deadline": "2014-09-02",
        "late": "true",  # a meeting of 2014, justered today
        "body": "Kommunstyrelsens arbetsutskott",
        "meeting_date": "2014-08-19",
        "municipality": "Nacka kommun",
        "kept_at": KEPT_AT,
        "paragraphs": str(SHORT_PARAGRAPH),
        "immediate_paragraphs": "",
    }
    assert dt.date.fromisoformat(event.detail["announce_by"]) >= justered_on + dt.timedelta(days=2)
    events = trail(services, justered)
    assert events[-1] == event
    assert chain_problems(events) == []


def test_a_justering_within_its_deadline_is_not_late(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = replace(
        small_meeting(sample_meeting, meeting_id="held-yesterday"),
        date=local_today() - dt.timedelta(days=1),
    )
    start_at_adjusters(services, meeting)
    sign_as(services, meeting.adjusters[0].email)
    [announced] = [
        e for e in trail(services, protocol_row(services, meeting.meeting_id).id)
        if e.kind is EventKind.ANNOUNCED
    ]  # fmt: skip
    assert announced.detail["late"] == "false"
    assert announced.detail["justering_deadline"] == (meeting.date + dt.timedelta(14)).isoformat()


def test_announce_is_idempotent_per_version(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    first = _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT)
    again = _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT + dt.timedelta(days=5))
    assert again == first
    events = trail(services, justered)
    assert [e.kind for e in events].count(EventKind.ANNOUNCED) == 1
    assert chain_problems(events) == []


def test_announce_refuses_an_unfinished_justering(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2, meeting_id="two-adjusters")
    start_at_adjusters(services, meeting)
    sign_as(services, meeting.adjusters[0].email)
    protocol = protocol_row(services, meeting.meeting_id)
    assert protocol.status == ExtractStatus.AWAITING_ADJUSTERS.value
    before = trail_kinds(services, protocol.id)
    unsigned = meeting.adjusters[1].name
    with raises_refusal(Refusal.JUSTERING_INCOMPLETE) as refused:
        _announce(services, meeting, protocol.id, utcnow())
    assert f"not signed by {unsigned}" in str(refused.value)
    assert trail_kinds(services, protocol.id) == before


def test_announce_refuses_an_extract_a_naive_time_and_another_meeting(
    services: Services, hostile_meeting: Meeting, sample_meeting: Meeting, justered: int
) -> None:
    with pytest.raises(ValueError, match="without a time zone"):
        _announce(services, hostile_meeting, justered, dt.datetime(2030, 1, 10, 12))
    with pytest.raises(ValueError, match="not from meeting"):
        _announce(services, sample_meeting, justered, AFTER_MIDNIGHT)
    [extract] = extract_rows(services, hostile_meeting.meeting_id)
    with pytest.raises(ValueError, match="only a protocol is announced"):
        _announce(services, hostile_meeting, extract.id, AFTER_MIDNIGHT)
    assert EventKind.ANNOUNCED.value not in trail_kinds(services, justered)


def test_the_certifier_waits_for_the_announced_justering(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    """The certifier is asked about the extracts of a justered protocol only once its
    justering is announced, and their trails then name the protocol."""
    workflow.advance_meeting(services, hostile_meeting.meeting_id)
    [extract] = extract_rows(services, hostile_meeting.meeting_id)
    assert extract.status == ExtractStatus.AWAITING_PROTOCOL.value
    assert hostile_meeting.certifier.email not in {m.to for m in outbox(services)}
    # nor is the protocol archived: an archived protocol is an announced one
    assert protocol_row(services, hostile_meeting.meeting_id).status == "justered"
    with raises_refusal(Refusal.JUSTERING_INCOMPLETE):
        workflow.archive_extract(services, justered)
    with services.ledger.transaction() as session:
        settle_justering(session, services.settings, hostile_meeting, now=utcnow())
    [extract] = extract_rows(services, hostile_meeting.meeting_id)
    assert extract.status == ExtractStatus.AWAITING_CERTIFIER.value
    [announced] = [e for e in trail(services, justered) if e.kind is EventKind.ANNOUNCED]
    [named] = [e for e in trail(services, extract.id) if e.kind is EventKind.JUSTERED]
    assert named.detail["protocol"] == "anslag-hostile/protokoll"
    assert named.detail["protocol_sha256"] == announced.document_sha256
    assert named.detail["announced_on"] == announced.detail["announced_on"]
    assert named.detail["protocol_archive_key"] == (
        "KSAU/2014/anslag-hostile/protokoll/2014-08-19-protokoll-v1"
    )
    workflow.advance_meeting(services, hostile_meeting.meeting_id)
    assert outbox(services)[-1].to == hostile_meeting.certifier.email


def test_the_announcement_is_archived_in_the_protocols_chain(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    _announce(services, hostile_meeting, justered, utcnow())
    workflow.advance_meeting(services, hostile_meeting.meeting_id)  # archives the protocol
    events = trail(services, justered)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.ANNOUNCED) == 1
    assert kinds[-1] is EventKind.ARCHIVED
    assert kinds.index(EventKind.SIGNED) < kinds.index(EventKind.ANNOUNCED)
    assert chain_problems(events) == []
    protocol = protocol_row(services, hostile_meeting.meeting_id)
    with services.ledger.reading() as session:
        [notice] = current_notices(session, today=local_today())
    assert notice.archive_uri == protocol.archive_uri is not None


# --- what the board shows -----------------------------------------------------------------


def _notices(services: Services, today: dt.date) -> list[Notice]:
    with services.ledger.reading() as session:
        return current_notices(session, today=today)


def test_a_notice_stays_through_its_last_day(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT)
    [notice] = _notices(services, ANNOUNCED_ON)
    assert notice.appeal_deadline == DEADLINE
    assert notice.taken_down_on == DEADLINE + dt.timedelta(days=1)
    assert notice.announced_on == ANNOUNCED_ON
    assert notice.reference == "anslag-hostile/protokoll" and not notice.immediate
    [paragraph] = notice.paragraphs
    assert (paragraph.number, paragraph.dnr, paragraph.title) == (
        SHORT_PARAGRAPH,
        "KS <b>1",
        HOSTILE_TITLE,
    )
    assert (notice.municipality, notice.body, notice.kept_at) == (
        "Nacka kommun",
        "Kommunstyrelsens arbetsutskott",
        KEPT_AT,
    )
    assert notice.meeting_date == dt.date(2014, 8, 19)
    assert notice.archive_uri is None
    assert _notices(services, DEADLINE) == [notice]
    assert _notices(services, DEADLINE + dt.timedelta(days=1)) == []


def test_nothing_is_announced_for_a_protocol_that_is_not_justered(
    services: Services, sample_meeting: Meeting
) -> None:
    """Extracts signed by everyone do not make an announcement: only their protocol's
    justering does (a paragraph on its own is never announced, unless omedelbar)."""
    meeting = small_meeting(sample_meeting, paragraphs=(94, SHORT_PARAGRAPH), adjusters=2)
    start_at_adjusters(services, meeting)
    rows = {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}
    first, second = meeting.adjusters
    sign_as(services, first.email)
    token = newest_token(services, second.email)
    workflow.decline_with_link(services, token, rows[94], "Fel.")
    workflow.sign_with_link(services, token)  # § 96
    assert extract_rows(services, meeting.meeting_id)[1].status == "awaiting_protocol"
    assert _notices(services, local_today()) == []
    assert all(EventKind.ANNOUNCED.value not in trail_kinds(services, row) for row in rows.values())


def test_a_protocol_with_a_new_version_leaves_the_board(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT)
    with services.ledger.transaction() as session:
        session.execute(
            update(ExtractRow)
            .where(ExtractRow.id == justered)
            .values(version=ExtractRow.version + 1)
        )
    assert _notices(services, ANNOUNCED_ON) == []


def _add_extracts(
    session: Session, meeting: Meeting, status: ExtractStatus, at: dt.datetime
) -> None:
    """The meeting's extracts, version 1 in ``status``, without PDFs."""
    for paragraph in meeting.paragraphs:
        session.add(
            ExtractRow(
                meeting_id=meeting.meeting_id,
                paragraph=paragraph.number,
                dnr=paragraph.dnr,
                title=paragraph.title,
                version=1,
                status=status,
                head_sha256="cd" * 32,
                updated_at=at,
            )
        )


def _synthetic_protocol(
    session: Session,
    meeting: Meeting,
    signed_at: dt.datetime,
    *,
    kind: DocumentKind = DocumentKind.PROTOCOL,
    extract_id: int | None = None,
) -> ExtractRow:
    """A protocol whose chair and adjusters signed at ``signed_at``, and its extracts,
    recorded through the ledger without rendering or signing PDFs."""
    _add_extracts(session, meeting, ExtractStatus.AWAITING_PROTOCOL, signed_at)
    protocol = ExtractRow(
        id=extract_id,
        meeting_id=meeting.meeting_id,
        kind=kind,
        paragraph=0,
        dnr=None,
        title="Protokoll",
        version=1,
        status=ExtractStatus.JUSTERED,
        head_sha256="ab" * 32,
        updated_at=signed_at,
    )
    session.add(protocol)
    session.flush()
    append_event(session, protocol, EventKind.DRAFTED, at=signed_at)
    for signer in meeting.signers(Role.CHAIR) + meeting.signers(Role.ADJUSTER):
        append_event(
            session,
            protocol,
            EventKind.SIGNED,
            slot=signer.slot,
            role=signer.role.value,
            at=signed_at,
        )
    return protocol


def _record(services: Services, meeting: Meeting) -> Meeting:
    workflow.record_meeting(services, meeting)
    return meeting


def test_newest_first_then_by_meeting_the_omedelbar_justering_first(
    services: Services, sample_meeting: Meeting
) -> None:
    older = _record(services, replace(sample_meeting, meeting_id="older", date=dt.date(2024, 1, 2)))
    newer = _record(services, replace(sample_meeting, meeting_id="newer", date=dt.date(2024, 1, 3)))
    justering = dt.datetime(2024, 1, 8, 9, tzinfo=UTC)
    with services.ledger.transaction() as session:
        for meeting, kind, day in [
            (newer, DocumentKind.PROTOCOL, 12),
            (older, DocumentKind.PROTOCOL, 10),
            (newer, DocumentKind.IMMEDIATE_PROTOCOL, 12),
        ]:
            protocol = _synthetic_protocol(
                session, small_meeting(meeting, paragraphs=()), justering, kind=kind
            )
            now = dt.datetime(2024, 1, day, 9, tzinfo=UTC)
            announce(session, protocol, meeting, services.settings, now=now)
    shown = [n.reference for n in _notices(services, dt.date(2024, 1, 12))]
    assert shown == ["newer/protokoll-omedelbar", "newer/protokoll", "older/protokoll"]
    # Announced Wed 10 Jan: the appeal deadline is Wed 31 Jan; the others' Fri 2 Feb.
    last_days = [
        (n.reference, n.appeal_deadline.isoformat())
        for n in _notices(services, dt.date(2024, 2, 1))
    ]
    assert last_days == [
        ("newer/protokoll-omedelbar", "2024-02-02"),
        ("newer/protokoll", "2024-02-02"),
    ]


def test_justered_on_is_the_last_justering_signature_in_swedish_time(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _record(services, small_meeting(sample_meeting, adjusters=2, meeting_id="late"))
    chair_at = dt.datetime(2024, 1, 8, 9, tzinfo=UTC)
    last_at = dt.datetime(2024, 1, 9, 23, 30, tzinfo=UTC)  # 10 Jan 00:30 in Stockholm
    with services.ledger.transaction() as session:
        protocol = _synthetic_protocol(session, replace(meeting, paragraphs=()), chair_at)
        # The second adjuster signs last.
        session.execute(
            update(TrailEventRow)
            .where(TrailEventRow.extract_id == protocol.id, TrailEventRow.slot == "adjuster-1")
            .values(at=last_at)
        )
        event = announce(session, protocol, meeting, services.settings, now=last_at)
    assert event.detail["justered_on"] == "2024-01-10"
    assert event.detail["announce_by"] == "2024-01-12"  # the second day after


def test_a_new_version_needs_a_new_justering_and_announcement(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _record(services, small_meeting(sample_meeting, meeting_id="redrafted"))
    signed_at = dt.datetime(2024, 1, 8, 9, tzinfo=UTC)
    with services.ledger.transaction() as session:
        protocol = _synthetic_protocol(session, small_meeting(meeting, paragraphs=()), signed_at)
        first = announce(session, protocol, meeting, services.settings, now=signed_at)
        protocol.version += 1
        append_event(session, protocol, EventKind.REDRAFTED)
        with raises_refusal(Refusal.JUSTERING_INCOMPLETE):
            announce(session, protocol, meeting, services.settings, now=signed_at)
        for signer in meeting.signers(Role.CHAIR) + meeting.signers(Role.ADJUSTER):
            append_event(session, protocol, EventKind.SIGNED, slot=signer.slot, at=signed_at)
        later = dt.datetime(2024, 1, 15, 9, tzinfo=UTC)
        second = announce(session, protocol, meeting, services.settings, now=later)
        protocol_id = protocol.id
    assert (first.version, second.version) == (1, 2)
    assert second.detail["announced_on"] == "2024-01-15"
    assert chain_problems(trail(services, protocol_id)) == []
    [notice] = _notices(services, dt.date(2024, 1, 15))
    assert (notice.version, notice.announced_on) == (2, dt.date(2024, 1, 15))


def test_current_notices_is_two_queries_at_thousands_of_paragraphs(
    services: Services, sample_meeting: Meeting
) -> None:
    """100 meetings of 50 paragraphs, announced over 300 days: the board is read in
    two statements (the announcements, the paragraphs' titles), quickly."""
    meetings, per_meeting = 100, 50
    start_day = dt.date(2024, 1, 1)
    today = start_day + dt.timedelta(days=280)
    expected = 0
    manifest = meeting_to_dict(sample_meeting)
    with services.ledger.transaction() as session:
        for m in range(meetings):
            meeting = replace(sample_meeting, meeting_id=f"bulk-{m}")
            session.add(
                MeetingRow(
                    meeting_id=meeting.meeting_id,
                    manifest={**manifest, "meeting_id": meeting.meeting_id},
                    manifest_sha256="0" * 64,
                    created_at=utcnow(),
                )
            )
            session.flush()
            announced_on = start_day + dt.timedelta(days=3 * m)
            at = dt.datetime.combine(announced_on, dt.time(12), tzinfo=SWEDISH_TIME)
            protocol = _synthetic_protocol(session, meeting, at)
            announce(session, protocol, meeting, services.settings, now=at)
            _add_paragraphs(session, meeting.meeting_id, range(200, 200 + per_meeting))
            if appeal_deadline(announced_on) >= today:
                expected += 1
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(services.ledger._read_engine, "before_cursor_execute", count)
    try:
        timings = []
        for _ in range(3):
            began = time.perf_counter()
            shown = _notices(services, today)
            timings.append(time.perf_counter() - began)
    finally:
        event.remove(services.ledger._read_engine, "before_cursor_execute", count)
    assert len(shown) == expected > 0
    assert all(n.appeal_deadline >= today for n in shown)
    assert all(len(n.paragraphs) == 3 and n.immediate_paragraphs == (97,) for n in shown)
    assert all(p.title for n in shown for p in n.paragraphs)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2 * 3  # two per call
    shown_ms = ", ".join(f"{t * 1000:.1f}" for t in timings)
    print(f"current_notices, {meetings} meetings, {len(shown)} shown: {shown_ms} ms")
    assert min(timings) < 0.5


def _add_paragraphs(session: Session, meeting_id: str, paragraphs: range) -> None:
    """More extracts of a meeting, inserted in bulk: rows the board's title query
    must not be slowed by."""
    now = utcnow()
    session.execute(
        insert(ExtractRow),
        [
            {
                "meeting_id": meeting_id,
                "paragraph": paragraph,
                "dnr": f"KS {paragraph}",
                "title": f"Ärende {paragraph}",
                "version": 1,
                "status": ExtractStatus.ARCHIVED,
                "head_sha256": "0" * 64,
                "updated_at": now,
            }
            for paragraph in paragraphs
        ],
    )


# --- the page and the feed ----------------------------------------------------------------


FEED_KEYS = {
    "id",
    "meeting_id",
    "municipality",
    "body",
    "meeting_date",
    "immediate",
    "paragraphs",
    "immediate_paragraphs",
    "justered_on",
    "announced_on",
    "appeal_deadline",
    "taken_down_on",
    "kept_at",
    "archived",
}


class Clock:
    def __init__(self, day: dt.date) -> None:
        self.day = day

    def __call__(self) -> dt.date:
        return self.day


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


class TestPublicBoard:
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        """The web layer does not depend on the database: SQLite only."""
        return sqlite_url

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock(ANNOUNCED_ON)

    @pytest.fixture
    def client(self, services: Services, clock: Clock) -> Iterator[TestClient]:
        app = FastAPI()
        app.include_router(noticeboard_router(services, today=clock), prefix="/anslagstavla")
        with TestClient(app) as client:
            yield client

    @pytest.fixture
    def announced(self, services: Services, hostile_meeting: Meeting, justered: int) -> int:
        _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT)
        return justered

    def test_the_page_shows_the_notice_escaped(
        self, client: TestClient, announced: int, hostile_meeting: Meeting
    ) -> None:
        response = client.get("/anslagstavla")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in response.headers["content-security-policy"]
        page = response.text
        assert '<html lang="sv">' in page
        assert 'name="viewport"' in page
        assert "Protokollet är justerat. Justeringen har tillkännagivits genom anslag." in page
        assert "<h2>Kommunstyrelsens arbetsutskott, Nacka kommun</h2>" in page
        assert "<dt>Sammanträdesdatum</dt><dd>2014-08-19</dd>" in page
        assert "<dt>Anslaget sattes upp</dt><dd>2030-01-10</dd>" in page
        assert "<dt>Sista dag för överklagande</dt><dd>2030-01-31</dd>" in page
        assert "<dt>Anslaget tas ned</dt><dd>2030-02-01</dd>" in page
        assert f"<dt>Förvaringsplats för protokollet</dt><dd>{escape(KEPT_AT)}</dd>" in page
        assert f"<strong>§ {SHORT_PARAGRAPH}</strong>" in page
        assert escape(HOSTILE_TITLE) in page and "KS &lt;b&gt;1" in page
        assert "<script" not in page and "<b>" not in page
        assert "inom tre veckor" in page
        assert "http://" not in page and "https://" not in page  # nothing from elsewhere
        _assert_nothing_private(page, hostile_meeting)
        [feed_link] = re.findall(r'<a href="([^"]+)">JSON</a>', page)
        feed = client.get(urljoin(str(response.url), feed_link))
        assert feed.json()["format"] == FEED_FORMAT

    def test_the_feed_has_the_documented_keys(
        self, client: TestClient, announced: int, hostile_meeting: Meeting
    ) -> None:
        response = client.get("/anslagstavla/feed.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["access-control-allow-origin"] == "*"
        feed = response.json()
        assert set(feed) == {"format", "today", "notices"}
        assert (feed["format"], feed["today"]) == (FEED_FORMAT, "2030-01-10")
        [item] = feed["notices"]
        assert set(item) == FEED_KEYS
        assert item == {
            "id": "anslag-hostile/protokoll@1",
            "meeting_id": "anslag-hostile",
            "municipality": "Nacka kommun",
            "body": "Kommunstyrelsens arbetsutskott",
            "meeting_date": "2014-08-19",
            "immediate": False,
            "paragraphs": [
                {"paragraph": SHORT_PARAGRAPH, "dnr": "KS <b>1", "title": HOSTILE_TITLE}
            ],
            "immediate_paragraphs": [],
            "justered_on": item["justered_on"],
            "announced_on": "2030-01-10",
            "appeal_deadline": "2030-01-31",
            "taken_down_on": "2030-02-01",
            "kept_at": KEPT_AT,
            "archived": False,
        }
        dt.date.fromisoformat(item["justered_on"])
        _assert_nothing_private(response.text, hostile_meeting)

    def test_the_notice_leaves_page_and_feed_after_its_last_day(
        self, client: TestClient, clock: Clock, announced: int
    ) -> None:
        clock.day = DEADLINE
        assert "Sista dag för överklagande" in client.get("/anslagstavla").text
        assert len(client.get("/anslagstavla/feed.json").json()["notices"]) == 1
        clock.day = DEADLINE + dt.timedelta(days=1)
        page = client.get("/anslagstavla").text
        assert "Det finns inga anslag just nu." in page
        assert "Sista dag för överklagande" not in page
        assert client.get("/anslagstavla/feed.json").json()["notices"] == []

    def test_an_empty_board(
        self, client: TestClient, services: Services, sample_meeting: Meeting
    ) -> None:
        start(services, small_meeting(sample_meeting))  # drafted, not justered
        assert "Det finns inga anslag just nu." in client.get("/anslagstavla").text
        assert client.get("/anslagstavla/feed.json").json()["notices"] == []

    def test_the_omedelbar_justering_has_its_own_card(
        self, services: Services, sample_meeting: Meeting
    ) -> None:
        meeting = _record(services, replace(sample_meeting, meeting_id="omedelbar"))
        signed_at = dt.datetime(2024, 1, 8, 9, tzinfo=UTC)
        with services.ledger.transaction() as session:
            for kind in (DocumentKind.IMMEDIATE_PROTOCOL, DocumentKind.PROTOCOL):
                protocol = _synthetic_protocol(
                    session, small_meeting(meeting, paragraphs=()), signed_at, kind=kind
                )
                announce(session, protocol, meeting, services.settings, now=signed_at)
            _add_extracts(session, meeting, ExtractStatus.AWAITING_CERTIFIER, signed_at)
        app = FastAPI()
        app.include_router(
            noticeboard_router(services, today=Clock(dt.date(2024, 1, 8))), prefix="/anslagstavla"
        )
        with TestClient(app) as client:
            page = client.get("/anslagstavla").text
            feed = client.get("/anslagstavla/feed.json").json()
        first, second = (" ".join(card.split()) for card in page.split("<article")[1:])
        assert "Paragraferna nedan justerades omedelbart (kommunallagen 5 kap. 70 §)" in first
        assert "<strong>§ 97</strong>" in first and "<strong>§ 94</strong>" not in first
        assert "Protokollet är justerat." in second
        assert all(f"<strong>§ {n}</strong>" in second for n in (94, 95, 96))
        assert "§ 97 justerades omedelbart och har tillkännagivits för sig." in second
        assert [(n["id"], n["immediate_paragraphs"]) for n in feed["notices"]] == [
            ("omedelbar/protokoll-omedelbar@1", []),
            ("omedelbar/protokoll@1", [97]),
        ]
        assert [p["paragraph"] for p in feed["notices"][1]["paragraphs"]] == [94, 95, 96]


def _assert_nothing_private(text: str, meeting: Meeting) -> None:
    """No signer's e-mail address or name."""
    for person in (meeting.chair, *meeting.adjusters, meeting.certifier):
        assert person.email not in text
        assert person.name not in text


def test_the_workflow_announces_when_the_last_adjuster_signs_the_protocol(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2, meeting_id="announced-by-workflow")
    start_at_adjusters(services, meeting)
    sign_as(services, meeting.adjusters[0].email)
    protocol = protocol_row(services, meeting.meeting_id)
    assert EventKind.ANNOUNCED.value not in trail_kinds(services, protocol.id)
    sign_as(services, meeting.adjusters[1].email)
    events = trail(services, protocol.id)
    assert events[-1].kind is EventKind.ANNOUNCED
    assert events[-2].kind is EventKind.SIGNED
    today = local_today()
    assert events[-1].detail["announced_on"] == today.isoformat()
    assert events[-1].detail["appeal_deadline"] == appeal_deadline(today).isoformat()
    [notice] = _notices(services, today)
    [row] = extract_rows(services, meeting.meeting_id)
    assert [p.number for p in notice.paragraphs] == [row.paragraph]
    # the extract's trail names the protocol; it is not announced itself
    kinds = trail_kinds(services, row.id)
    assert "announced" not in kinds and kinds[-1] == "justered"
