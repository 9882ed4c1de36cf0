"""The anslagstavla: appeal deadlines (KL 13 kap. 5 §, lagen 1930:173), the
announcement in the trail, what the board shows and for how long, and the public
page and feed (FastAPI's TestClient over the router in a small app)."""

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
from dateutil.easter import easter
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import event, insert, update
from sqlalchemy.orm import Session

from justering import workflow
from justering.errors import ConfigError, Refusal, WorkflowError
from justering.ledger.database import utcnow
from justering.ledger.extracts import append_event, lock_extract
from justering.ledger.schema import ExtractRow, MeetingRow, TrailEventRow
from justering.model.calendar import SWEDISH_TIME, appeal_deadline
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.process import ExtractStatus
from justering.model.roles import Role
from justering.model.trail import EventKind, TrailEvent, chain_problems
from justering.web.noticeboard import FEED_FORMAT, noticeboard_router
from justering.workflow import signatures
from justering.workflow.noticeboard import announce, current_notices
from justering.workflow.services import Services
from support.workflow import (
    SHORT_PARAGRAPH,
    extract_rows,
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

# --- appeal deadlines ---------------------------------------------------------------------

# Each case computed by hand from a calendar: announcement day + 21 days, then moved
# past Saturdays, Sundays, public holidays, midsommarafton, julafton and nyårsafton.
HAND_COMPUTED = [
    # Tue 9 Jan 2024 + 3 weeks = Tue 30 Jan: an ordinary weekday.
    ("2024-01-09", "2024-01-30", "weekday"),
    # Sat 3 Feb + 3 weeks = Sat 24 Feb → Sun 25 → Mon 26 Feb.
    ("2024-02-03", "2024-02-26", "saturday"),
    # Sun 4 Feb + 3 weeks = Sun 25 Feb → Mon 26 Feb.
    ("2024-02-04", "2024-02-26", "sunday"),
    # Easter 2024 is 31 March: Fri 8 Mar + 3 weeks = långfredag 29 Mar → Sat 30,
    # påskdagen 31, annandag påsk Mon 1 Apr → Tue 2 Apr.
    ("2024-03-08", "2024-04-02", "easter-2024"),
    # Easter 2025 is 20 April: långfredag Fri 18 Apr → … → Tue 22 Apr.
    ("2025-03-28", "2025-04-22", "easter-2025"),
    # Skärtorsdagen (Thu 28 Mar 2024) is an ordinary weekday.
    ("2024-03-07", "2024-03-28", "maundy-thursday"),
    # Kristi himmelsfärds dag 2024 = Easter + 39 = Thu 9 May → Fri 10 May.
    ("2024-04-18", "2024-05-10", "ascension"),
    # Annandag pingst (Mon 20 May 2024) stopped being a holiday in 2005.
    ("2024-04-29", "2024-05-20", "whit-monday"),
    # Första maj 2024 is a Wednesday → Thu 2 May.
    ("2024-04-10", "2024-05-02", "first-of-may"),
    # Nationaldagen 2024 is a Thursday → Fri 7 June.
    ("2024-05-16", "2024-06-07", "national-day"),
    # Midsommarafton Fri 21 June 2024, midsommardagen Sat 22 → Mon 24 June.
    ("2024-05-31", "2024-06-24", "midsummer-2024"),
    # 2026: 19 June is the Friday (the earliest possible midsommarafton) → Mon 22 June.
    ("2026-05-29", "2026-06-22", "midsummer-2026"),
    # Julafton Tue 24 Dec 2024, juldagen 25, annandag jul 26 → Fri 27 Dec.
    ("2024-12-03", "2024-12-27", "christmas-2024"),
    # Julafton Wed 24 Dec 2025 → 25, 26, Sat 27, Sun 28 → Mon 29 Dec.
    ("2025-12-03", "2025-12-29", "christmas-2025"),
    # Julafton Sat 24 Dec 2022 → Sun 25, annandag jul Mon 26 → Tue 27 Dec.
    ("2022-12-03", "2022-12-27", "christmas-2022"),
    # Nyårsafton Tue 31 Dec 2024, nyårsdagen Wed 1 Jan 2025 → Thu 2 Jan 2025.
    ("2024-12-10", "2025-01-02", "new-year"),
    # Trettondedag jul Mon 6 Jan 2025 → Tue 7 Jan.
    ("2024-12-16", "2025-01-07", "epiphany"),
]


@pytest.mark.parametrize(
    ("announced", "deadline"),
    [case[:2] for case in HAND_COMPUTED],
    ids=[case[2] for case in HAND_COMPUTED],
)
def test_appeal_deadline_for_known_dates(announced: str, deadline: str) -> None:
    assert appeal_deadline(dt.date.fromisoformat(announced)) == dt.date.fromisoformat(deadline)


def _friday_from(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=(4 - day.weekday()) % 7)


@pytest.mark.parametrize("year", range(1990, 2101))
def test_movable_holidays_every_year(year: int) -> None:
    """Checked against dateutil's Easter and the definition of midsommarafton
    (the Friday from 19 to 25 June)."""
    three_weeks = dt.timedelta(weeks=3)
    good_friday = easter(year) - dt.timedelta(days=2)
    # långfredag, Saturday, påskdagen, annandag påsk: the Tuesday after Easter.
    assert appeal_deadline(good_friday - three_weeks) == easter(year) + dt.timedelta(days=2)
    ascension = easter(year) + dt.timedelta(days=39)
    assert appeal_deadline(ascension - three_weeks) == ascension + dt.timedelta(days=1)
    midsummer_eve = _friday_from(dt.date(year, 6, 19))
    assert appeal_deadline(midsummer_eve - three_weeks) == midsummer_eve + dt.timedelta(days=3)
    # The Thursday before midsommarafton is a working day.
    thursday = midsummer_eve - dt.timedelta(days=1)
    if thursday != dt.date(year, 6, 6):
        assert appeal_deadline(thursday - three_weeks) == thursday


def test_appeal_period_of_other_lengths() -> None:
    assert appeal_deadline(dt.date(2024, 1, 9), weeks=1) == dt.date(2024, 1, 16)
    # Tue 9 Jan + 2 weeks = Tue 23 Jan.
    assert appeal_deadline(dt.date(2024, 1, 9), weeks=2) == dt.date(2024, 1, 23)
    for weeks in (0, -1):
        with pytest.raises(ConfigError, match="appeal_weeks"):
            appeal_deadline(dt.date(2024, 1, 9), weeks=weeks)


# --- announcing -------------------------------------------------------------------------------


def _announce(
    services: Services,
    meeting: Meeting,
    extract_id: int,
    now: dt.datetime,
    appeal_weeks: int = 3,
) -> TrailEvent:
    """What workflow does once the last adjuster has signed."""
    with services.ledger.transaction() as session:
        extract = lock_extract(session, extract_id)
        return announce(session, extract, meeting, now=now, appeal_weeks=appeal_weeks)


@pytest.fixture
def hostile_meeting(sample_meeting: Meeting) -> Meeting:
    meeting = small_meeting(sample_meeting, meeting_id="anslag-hostile")
    [paragraph] = meeting.paragraphs
    return replace(meeting, paragraphs=(replace(paragraph, title=HOSTILE_TITLE, dnr="KS <b>1"),))


@pytest.fixture
def justered(services: Services, hostile_meeting: Meeting) -> int:
    """A one-paragraph meeting signed by its chair and its adjuster: awaiting the
    certifier, its justering complete but, unlike in the workflow, not yet
    announced, so that the tests call ``announce`` with the times they need.
    The extract's id."""
    start_at_adjusters(services, hostile_meeting)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(signatures, "announce", lambda *_args, **_kwargs: None)
        sign_as(services, hostile_meeting.adjusters[0].email)
    [row] = extract_rows(services, hostile_meeting.meeting_id)
    assert row.status == ExtractStatus.AWAITING_CERTIFIER.value
    return row.id


# Thu 10 Jan 2030 00:30 in Stockholm (UTC+1): still the 9th in UTC.
AFTER_MIDNIGHT = dt.datetime(2030, 1, 9, 23, 30, tzinfo=UTC)
ANNOUNCED_ON = dt.date(2030, 1, 10)
DEADLINE = dt.date(2030, 1, 31)  # Thu 10 Jan + 3 weeks = Thu 31 Jan: no holiday.


def test_announce_records_the_dates_in_swedish_time(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    signed_at = trail(services, justered)[-1].at
    event = _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT)
    [extract] = extract_rows(services, hostile_meeting.meeting_id)
    assert event.kind is EventKind.ANNOUNCED
    assert event.at == AFTER_MIDNIGHT
    assert event.document_sha256 == extract.head_sha256
    assert event.version == extract.version
    assert event.actor_email is None
    assert dict(event.detail) == {
        "announced_on": "2030-01-10",
        "appeal_deadline": "2030-01-31",
        "justered_on": signed_at.astimezone(SWEDISH_TIME).date().isoformat(),
        "body": "Kommunstyrelsens arbetsutskott",
        "meeting_date": "2014-08-19",
        "municipality": "Nacka kommun",
        "kept_at": "Nacka stadshus",
    }
    events = trail(services, justered)
    assert events[-1] == event
    assert chain_problems(events) == []


def test_announce_is_idempotent_per_version(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    first = _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT)
    again = _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT + dt.timedelta(days=5))
    assert again == first
    events = trail(services, justered)
    assert [e.kind for e in events].count(EventKind.ANNOUNCED) == 1
    assert chain_problems(events) == []


def test_announce_uses_the_appeal_weeks(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    event = _announce(services, hostile_meeting, justered, AFTER_MIDNIGHT, appeal_weeks=4)
    assert event.detail["appeal_deadline"] == "2030-02-07"  # Thu 10 Jan + 4 weeks


def test_announce_refuses_an_unfinished_justering(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2, meeting_id="two-adjusters")
    start_at_adjusters(services, meeting)
    sign_as(services, meeting.adjusters[0].email)
    [row] = extract_rows(services, meeting.meeting_id)
    before = trail_kinds(services, row.id)
    unsigned = meeting.adjusters[1].name
    with pytest.raises(WorkflowError, match=f"not complete \\(not signed by {unsigned}"):
        _announce(services, meeting, row.id, utcnow())
    assert trail_kinds(services, row.id) == before


def test_announce_refuses_a_naive_time_and_another_meeting(
    services: Services, hostile_meeting: Meeting, sample_meeting: Meeting, justered: int
) -> None:
    with pytest.raises(ValueError, match="without a time zone"):
        _announce(services, hostile_meeting, justered, dt.datetime(2030, 1, 10, 12))
    with pytest.raises(ValueError, match="not from meeting"):
        _announce(services, sample_meeting, justered, AFTER_MIDNIGHT)
    assert EventKind.ANNOUNCED.value not in trail_kinds(services, justered)


def test_the_announcement_is_archived_in_the_chain(
    services: Services, hostile_meeting: Meeting, justered: int
) -> None:
    _announce(services, hostile_meeting, justered, utcnow())
    workflow.advance_meeting(services, hostile_meeting.meeting_id)  # notifies the certifier
    sign_as(services, hostile_meeting.certifier.email)
    workflow.advance_meeting(services, hostile_meeting.meeting_id)
    events = trail(services, justered)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.ANNOUNCED) == 1
    assert kinds[-1] is EventKind.ARCHIVED
    assert kinds.index(EventKind.ANNOUNCED) < kinds.index(EventKind.CERTIFIED)
    assert chain_problems(events) == []
    [extract] = extract_rows(services, hostile_meeting.meeting_id)
    with services.ledger.reading() as session:
        [notice] = current_notices(session, today=dt.datetime.now(SWEDISH_TIME).date())
    assert notice.archive_uri == extract.archive_uri is not None


# --- what the board shows -----------------------------------------------------------------


def _notices(services: Services, today: dt.date) -> list[Any]:
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
    assert (notice.paragraph, notice.dnr, notice.title) == (
        SHORT_PARAGRAPH,
        "KS <b>1",
        HOSTILE_TITLE,
    )
    assert (notice.municipality, notice.body, notice.kept_at) == (
        "Nacka kommun",
        "Kommunstyrelsens arbetsutskott",
        "Nacka stadshus",
    )
    assert notice.meeting_date == dt.date(2014, 8, 19)
    assert notice.archive_uri is None
    assert _notices(services, DEADLINE) == [notice]
    assert _notices(services, DEADLINE + dt.timedelta(days=1)) == []


def test_a_redrafted_extract_leaves_the_board(
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


def _synthetic_extract(
    session: Session,
    meeting: Meeting,
    paragraph: int,
    signed_at: dt.datetime,
    extract_id: int | None = None,
) -> ExtractRow:
    """An extract whose chair and adjusters signed at ``signed_at``, recorded
    through the ledger without rendering or signing PDFs."""
    extract = ExtractRow(
        id=extract_id,
        meeting_id=meeting.meeting_id,
        paragraph=paragraph,
        dnr=f"KS {paragraph}",
        title=f"Ärende {paragraph}",
        version=1,
        status=ExtractStatus.AWAITING_CERTIFIER.value,
        head_sha256="ab" * 32,
        updated_at=signed_at,
    )
    session.add(extract)
    session.flush()
    append_event(session, extract, EventKind.DRAFTED, at=signed_at)
    for signer in meeting.signers(Role.CHAIR) + meeting.signers(Role.ADJUSTER):
        append_event(
            session,
            extract,
            EventKind.SIGNED,
            slot=signer.slot,
            role=signer.role.value,
            at=signed_at,
        )
    return extract


def test_newest_first_then_by_meeting_and_paragraph(
    services: Services, sample_meeting: Meeting
) -> None:
    older = replace(sample_meeting, meeting_id="older", date=dt.date(2024, 1, 2))
    newer = replace(sample_meeting, meeting_id="newer", date=dt.date(2024, 1, 3))
    for meeting in (older, newer):
        workflow.record_meeting(services, meeting)
    justering = dt.datetime(2024, 1, 8, 9, tzinfo=UTC)
    with services.ledger.transaction() as session:
        for meeting, paragraph, day in [
            (newer, 5, 12),
            (older, 2, 10),
            (newer, 4, 12),
            (older, 1, 11),
        ]:
            extract = _synthetic_extract(session, meeting, paragraph, justering)
            announce(
                session,
                extract,
                meeting,
                now=dt.datetime(2024, 1, day, 9, tzinfo=UTC),
                appeal_weeks=3,
            )
    shown = [(n.meeting_id, n.paragraph) for n in _notices(services, dt.date(2024, 1, 12))]
    assert shown == [("newer", 4), ("newer", 5), ("older", 1), ("older", 2)]
    # Announced Wed 10 Jan: deadline Wed 31 Jan; the others on 1 and 2 Feb.
    last_days = [
        (n.paragraph, n.appeal_deadline.isoformat())
        for n in _notices(services, dt.date(2024, 2, 1))
    ]
    assert last_days == [(4, "2024-02-02"), (5, "2024-02-02"), (1, "2024-02-01")]


def test_justered_on_is_the_last_justering_signature_in_swedish_time(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2, meeting_id="late-adjuster")
    workflow.record_meeting(services, meeting)
    chair_at = dt.datetime(2024, 1, 8, 9, tzinfo=UTC)
    last_at = dt.datetime(2024, 1, 9, 23, 30, tzinfo=UTC)  # 10 Jan 00:30 in Stockholm
    with services.ledger.transaction() as session:
        extract = _synthetic_extract(session, meeting, 1, chair_at)
        # The second adjuster signs last; the certifier's event does not count.
        session.execute(
            update(TrailEventRow)
            .where(TrailEventRow.extract_id == extract.id, TrailEventRow.slot == "adjuster-1")
            .values(at=last_at)
        )
        append_event(session, extract, EventKind.CERTIFIED, slot="certifier-0", role="certifier")
        event = announce(session, extract, meeting, now=last_at, appeal_weeks=3)
    assert event.detail["justered_on"] == "2024-01-10"


def test_a_new_version_needs_a_new_justering_and_announcement(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, meeting_id="redrafted")
    workflow.record_meeting(services, meeting)
    signed_at = dt.datetime(2024, 1, 8, 9, tzinfo=UTC)
    with services.ledger.transaction() as session:
        extract = _synthetic_extract(session, meeting, 1, signed_at)
        first = announce(session, extract, meeting, now=signed_at, appeal_weeks=3)
        extract.version += 1
        append_event(session, extract, EventKind.REDRAFTED)
        with raises_refusal(Refusal.JUSTERING_INCOMPLETE):
            announce(session, extract, meeting, now=signed_at, appeal_weeks=3)
        for signer in meeting.signers(Role.CHAIR) + meeting.signers(Role.ADJUSTER):
            append_event(session, extract, EventKind.SIGNED, slot=signer.slot, at=signed_at)
        later = dt.datetime(2024, 1, 15, 9, tzinfo=UTC)
        second = announce(session, extract, meeting, now=later, appeal_weeks=3)
        extract_id = extract.id
    assert (first.version, second.version) == (1, 2)
    assert second.detail["announced_on"] == "2024-01-15"
    assert chain_problems(trail(services, extract_id)) == []
    [notice] = _notices(services, dt.date(2024, 1, 15))
    assert (notice.version, notice.announced_on) == (2, dt.date(2024, 1, 15))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def _add_copies(
    session: Session, extract: ExtractRow, announced: TrailEvent, paragraphs: range
) -> None:
    """More extracts of the same meeting, announced like ``extract``, inserted in
    bulk (the chain does not matter for reading the board). Their ids follow
    ``extract.id`` by paragraph."""
    first_id = extract.id - 1
    session.execute(
        insert(ExtractRow),
        [
            {
                "id": first_id + paragraph,
                "meeting_id": extract.meeting_id,
                "paragraph": paragraph,
                "dnr": f"KS {paragraph}",
                "title": f"Ärende {paragraph}",
                "version": 1,
                "status": extract.status,
                "head_sha256": extract.head_sha256,
                "updated_at": extract.updated_at,
            }
            for paragraph in paragraphs
        ],
    )
    kinds = [EventKind.DRAFTED, EventKind.NOTIFIED, EventKind.VIEWED, EventKind.SIGNED]
    kinds += [EventKind.NOTIFIED, EventKind.VIEWED, EventKind.SIGNED, EventKind.ANNOUNCED]
    session.execute(
        insert(TrailEventRow),
        [
            {
                "extract_id": first_id + paragraph,
                "extract_ref": f"{extract.meeting_id}/{paragraph}",
                "seq": seq,
                "kind": kind.value,
                "at": announced.at,
                "actor": "system",
                "version": 1,
                "detail": dict(announced.detail) if kind is EventKind.ANNOUNCED else {},
                "prev_hash": "0" * 64,
                "hash": "0" * 64,
            }
            for paragraph in paragraphs
            for seq, kind in enumerate(kinds, start=1)
        ],
    )


def test_current_notices_is_one_query_at_thousands_of_extracts(
    services: Services, sample_meeting: Meeting
) -> None:
    """5,000 extracts of 100 meetings, announced over 300 days, each with a
    trail of 8 events: the board is read in one statement, quickly."""
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
            extract = _synthetic_extract(session, meeting, 1, at, extract_id=m * per_meeting + 1)
            announced = announce(session, extract, meeting, now=at, appeal_weeks=3)
            _add_copies(session, extract, announced, range(2, per_meeting + 1))
            if appeal_deadline(announced_on) >= today:
                expected += per_meeting
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
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3  # one per call
    shown_ms = ", ".join(f"{t * 1000:.1f}" for t in timings)
    print(f"current_notices, {meetings * per_meeting} extracts, {len(shown)} shown: {shown_ms} ms")
    assert min(timings) < 0.5


# --- the page and the feed ----------------------------------------------------------------


FEED_KEYS = {
    "id",
    "meeting_id",
    "municipality",
    "body",
    "meeting_date",
    "paragraph",
    "dnr",
    "title",
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
        assert (
            "<dt>Förvaringsplats för protokollet</dt><dd>Nacka stadshus, Nacka kommun</dd>" in page
        )
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
        feed = response.json()
        assert set(feed) == {"format", "today", "notices"}
        assert (feed["format"], feed["today"]) == (FEED_FORMAT, "2030-01-10")
        [item] = feed["notices"]
        assert set(item) == FEED_KEYS
        assert item == {
            "id": f"anslag-hostile/{SHORT_PARAGRAPH}@1",
            "meeting_id": "anslag-hostile",
            "municipality": "Nacka kommun",
            "body": "Kommunstyrelsens arbetsutskott",
            "meeting_date": "2014-08-19",
            "paragraph": SHORT_PARAGRAPH,
            "dnr": "KS <b>1",
            "title": HOSTILE_TITLE,
            "justered_on": item["justered_on"],
            "announced_on": "2030-01-10",
            "appeal_deadline": "2030-01-31",
            "taken_down_on": "2030-02-01",
            "kept_at": "Nacka stadshus",
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


class TestBoardLayout:
    @pytest.fixture
    def database_url(self, sqlite_url: str) -> str:
        return sqlite_url

    def test_extracts_announced_together_share_one_card(
        self, services: Services, sample_meeting: Meeting
    ) -> None:
        meeting = replace(sample_meeting, meeting_id="together")
        other = replace(sample_meeting, meeting_id="apart", date=dt.date(2024, 1, 3))
        signed_at = dt.datetime(2024, 1, 8, 9, tzinfo=UTC)
        for m in (meeting, other):
            workflow.record_meeting(services, m)
        with services.ledger.transaction() as session:
            for m, paragraph in ((meeting, 7), (meeting, 3), (other, 1)):
                extract = _synthetic_extract(session, m, paragraph, signed_at)
                announce(session, extract, m, now=signed_at, appeal_weeks=3)
        app = FastAPI()
        clock = Clock(dt.date(2024, 1, 8))
        app.include_router(noticeboard_router(services, today=clock), prefix="/anslagstavla")
        with TestClient(app) as client:
            page = client.get("/anslagstavla").text
            feed = client.get("/anslagstavla/feed.json")
        cards = page.split("<article")[1:]
        assert len(cards) == 2
        assert "2024-01-03" in cards[0] and "<strong>§ 1</strong>" in cards[0]
        assert cards[1].index("<strong>§ 3</strong>") < cards[1].index("<strong>§ 7</strong>")
        assert [n["id"] for n in feed.json()["notices"]] == [
            "apart/1@1",
            "together/3@1",
            "together/7@1",
        ]
        assert feed.headers["access-control-allow-origin"] == "*"


def _assert_nothing_private(text: str, meeting: Meeting) -> None:
    """No signer's e-mail address or name."""
    for person in (meeting.chair, *meeting.adjusters, meeting.certifier):
        assert person.email not in text
        assert person.name not in text


def test_the_workflow_announces_when_the_last_adjuster_signs(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2, meeting_id="announced-by-workflow")
    start_at_adjusters(services, meeting)
    sign_as(services, meeting.adjusters[0].email)
    [row] = extract_rows(services, meeting.meeting_id)
    assert EventKind.ANNOUNCED.value not in trail_kinds(services, row.id)
    sign_as(services, meeting.adjusters[1].email)
    events = trail(services, row.id)
    assert events[-1].kind is EventKind.ANNOUNCED
    assert events[-2].kind is EventKind.SIGNED
    today = dt.datetime.now(SWEDISH_TIME).date()
    assert events[-1].detail["announced_on"] == today.isoformat()
    assert events[-1].detail["appeal_deadline"] == appeal_deadline(today).isoformat()
    [notice] = _notices(services, today)
    assert notice.paragraph == row.paragraph
