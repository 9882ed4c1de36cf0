"""Where a meeting's paragraphs stand (``workflow.meeting_view``), on SQLite and on
PostgreSQL: who has signed the current version, who is waiting and since when,
the decline comments, the deadline, the announcement; read only."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from justering import workflow
from justering.cli.status import describe_meeting
from justering.config import BodyRules
from justering.errors import NotFoundError
from justering.model.calendar import local_today
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Role
from justering.model.trail import EventKind, TrailEvent
from justering.workflow import redraft
from justering.workflow.deadlines import send_due_reminders
from justering.workflow.declining import decline_with_link
from justering.workflow.meeting_view import MeetingView, ParagraphView, meeting_view
from justering.workflow.services import Services
from support.workflow import (
    KEPT_AT,
    SECOND_ADJUSTER,
    SHORT_PARAGRAPH,
    extract_rows,
    newest_token,
    sign_as,
    sign_through,
    small_meeting,
    snapshot,
    start,
    trail,
)

TWO = (94, SHORT_PARAGRAPH)
COMMENT = "Beloppet i andra stycket är fel.\nSe bilaga 2."


def _today_meeting(sample: Meeting, *, adjusters: int = 2) -> Meeting:
    """The sample cut to two paragraphs, dated today (its deadline ahead)."""
    meeting = small_meeting(sample, paragraphs=TWO, adjusters=adjusters, meeting_id="ksau-vy")
    return replace(meeting, date=local_today())


def _paragraph(view: MeetingView, number: int) -> ParagraphView:
    return next(p for p in view.paragraphs if p.number == number)


def _notified(events: tuple[TrailEvent, ...], email: str, version: int) -> list[dt.datetime]:
    return [
        e.at
        for e in events
        if e.kind is EventKind.NOTIFIED and e.actor_email == email and e.version == version
    ]


def _ids(services: Services, meeting: Meeting) -> dict[int, int]:
    return {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}


def test_a_recorded_meeting_not_yet_drafted(services: Services, sample_meeting: Meeting) -> None:
    meeting = _today_meeting(sample_meeting)
    workflow.record_meeting(services, meeting)
    view = meeting_view(services, meeting.meeting_id)
    assert [p.number for p in view.paragraphs] == list(TWO)
    for p in view.paragraphs:
        assert p.extract is None and p.status is None
        assert p.status_swedish == "inte upprättat ännu"
        assert (p.signatures, p.waiting, p.declines) == ((), (), ())
        assert p.title == meeting.paragraph(p.number).title  # type: ignore[union-attr]
    assert view.count(None) == 2
    document = view.to_json()
    assert [(p["drafted"], p["version"], p["status"]) for p in document["paragraphs"]] == [
        (False, None, None),
        (False, None, None),
    ]


def test_who_signed_who_waits_since_when_and_the_decline_comment(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _today_meeting(sample_meeting)
    start(services, meeting)
    ids = _ids(services, meeting)

    chair_asked = meeting_view(services, meeting.meeting_id)
    for p in chair_asked.paragraphs:
        assert p.status is ExtractStatus.AWAITING_CHAIR
        assert p.signatures == ()
        (waiting,) = p.waiting
        assert (waiting.name, waiting.email, waiting.role) == (
            meeting.chair.name,
            meeting.chair.email,
            Role.CHAIR,
        )
        assert [waiting.notified_at] == _notified(
            trail(services, ids[p.number]), meeting.chair.email, 1
        )

    sign_as(services, meeting.chair.email)
    workflow.advance_meeting(services, meeting.meeting_id)
    first, second = meeting.adjusters
    sign_as(services, first.email)
    token = newest_token(services, second.email)
    decline_with_link(services, token, ids[94], COMMENT)

    before = snapshot(services)
    view = meeting_view(services, meeting.meeting_id)
    assert snapshot(services) == before  # read only

    declined, waiting_one = _paragraph(view, 94), _paragraph(view, SHORT_PARAGRAPH)
    assert declined.status is ExtractStatus.DECLINED
    assert declined.status_swedish == "avböjt, åter hos sekreteraren"
    assert declined.waiting == ()  # back with the secretary: no signer is waited for
    assert [(d.name, d.role, d.comment) for d in declined.declines] == [
        (second.name, Role.ADJUSTER, COMMENT)
    ]
    for p in (declined, waiting_one):
        assert [(s.name, s.role) for s in p.signatures] == [
            (meeting.chair.name, Role.CHAIR),
            (first.name, Role.ADJUSTER),
        ]
        chair_signed = next(e for e in trail(services, ids[p.number]) if e.kind is EventKind.SIGNED)
        assert p.signatures[0].at == chair_signed.at
    (waiting,) = waiting_one.waiting
    assert (waiting.name, waiting.role) == (second.name, Role.ADJUSTER)
    asked = _notified(trail(services, ids[SHORT_PARAGRAPH]), second.email, 1)
    assert waiting.notified_at == waiting.last_notified_at == asked[0]
    assert not waiting_one.overdue and not view.deadline_passed

    document = json.loads(json.dumps(view.to_json()))
    entry = document["paragraphs"][0]
    assert entry["status"] == "declined" and entry["version"] == 1
    assert entry["declines"] == [
        {
            "name": second.name,
            "email": second.email,
            "role": "adjuster",
            "comment": COMMENT,
            "declined_at": declined.declines[0].at.astimezone(dt.UTC).isoformat(),
        }
    ]
    stamp = document["paragraphs"][1]["waiting"][0]["notified_at"]
    assert stamp.endswith("+00:00") and dt.datetime.fromisoformat(stamp) == asked[0]


def test_a_redraft_starts_the_view_of_the_paragraph_afresh(
    services: Services, sample_meeting: Meeting
) -> None:
    """Signatures and declines of an older version no longer count."""
    meeting = _today_meeting(sample_meeting, adjusters=1)
    start(services, meeting)
    ids = _ids(services, meeting)
    decline_with_link(services, newest_token(services, meeting.chair.email), ids[94], COMMENT)
    redraft.redraft_extract(
        services, meeting.meeting_id, 94, text="Ny text.", title="Ny rubrik", actor="Lena"
    )

    p = _paragraph(meeting_view(services, meeting.meeting_id), 94)
    assert p.extract is not None and p.extract.version == 2
    assert p.status is ExtractStatus.AWAITING_CHAIR
    assert p.title == "Ny rubrik"
    assert p.declines == () and p.signatures == ()
    (waiting,) = p.waiting
    assert waiting.role is Role.CHAIR and waiting.notified_at is None  # not asked for v2 yet

    workflow.advance_meeting(services, meeting.meeting_id)
    (waiting,) = _paragraph(meeting_view(services, meeting.meeting_id), 94).waiting
    assert [waiting.notified_at] == _notified(trail(services, ids[94]), meeting.chair.email, 2)


def test_the_deadline_is_the_bodys_and_a_reminder_shows_as_the_latest_notice(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _today_meeting(sample_meeting, adjusters=1)
    rules = BodyRules(justering_days=5, reminder_days=(2,), kept_at="Kansliet")
    services = replace(
        services,
        settings=replace(services.settings, bodies={meeting.body.code: rules}),
    )
    start(services, meeting)
    deadline = meeting.date + dt.timedelta(days=5)

    on_the_day = meeting_view(services, meeting.meeting_id, today=deadline)
    assert on_the_day.deadline == deadline
    assert not on_the_day.deadline_passed
    assert not any(p.overdue for p in on_the_day.paragraphs)
    assert on_the_day.to_json()["justering_deadline"] == deadline.isoformat()

    send_due_reminders(services, today=deadline - dt.timedelta(days=2))
    reminded = {p.number: p.waiting for p in meeting_view(services, meeting.meeting_id).paragraphs}
    for (waiting,) in reminded.values():
        assert waiting.notified_at is not None and waiting.last_notified_at is not None
        assert waiting.last_notified_at > waiting.notified_at

    after = deadline + dt.timedelta(days=1)
    send_due_reminders(services, today=after)  # the secretary's notice: not a signer's
    late = meeting_view(services, meeting.meeting_id, today=after)
    assert late.deadline_passed
    for p in late.paragraphs:
        assert p.overdue
        assert p.waiting == reminded[p.number]


def test_an_archived_meeting_shows_every_signature_and_the_announcement(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=(SHORT_PARAGRAPH,), adjusters=2)
    sign_through(services, meeting)
    view = meeting_view(services, meeting.meeting_id)  # dated 2014: long past its deadline
    (p,) = view.paragraphs
    assert view.deadline_passed and not p.overdue  # archived: nothing is late
    assert p.status is ExtractStatus.ARCHIVED and p.waiting == ()
    assert [(s.name, s.role) for s in p.signatures] == [
        (meeting.chair.name, Role.CHAIR),
        (meeting.adjusters[0].name, Role.ADJUSTER),
        (SECOND_ADJUSTER.name, Role.ADJUSTER),
        (meeting.certifier.name, Role.CERTIFIER),
    ]
    assert p.announced_on is not None and p.appeal_deadline is not None
    assert p.appeal_deadline >= p.announced_on + dt.timedelta(weeks=3)
    entry = view.to_json()["paragraphs"][0]
    assert entry["archive_uri"] == p.extract.archive_uri  # type: ignore[union-attr]
    assert entry["announced_on"] == p.announced_on.isoformat()
    # The protocol: justered today, long after its last day, announced, kept where the
    # config says; and so in `justering status`.
    (protocol,) = view.protocols
    assert protocol.justered_on == protocol.announced_on == local_today()
    assert protocol.late and protocol.kept_at == KEPT_AT
    text = describe_meeting(view)
    assert f"    justerat:   {local_today().isoformat()} (efter sista dagen)\n" in text
    assert f"    anslaget:   {local_today().isoformat()}, överklagande senast " in text
    assert f"    förvaras:   {KEPT_AT}\n" in text


def _statements(action: Callable[[], object]) -> int:
    """How many SQL statements ``action`` runs (on any engine)."""
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    event.listen(Engine, "before_cursor_execute", counted)
    try:
        action()
    finally:
        event.remove(Engine, "before_cursor_execute", counted)
    return count


def test_the_number_of_queries_does_not_grow_with_the_meeting(
    services: Services, sample_meeting: Meeting
) -> None:
    small = small_meeting(sample_meeting, paragraphs=(SHORT_PARAGRAPH,), meeting_id="liten")
    start(services, small)
    start(services, sample_meeting)  # four paragraphs
    for meeting in (small, sample_meeting):
        meeting_view(services, meeting.meeting_id)  # the manifest read once and kept
    one = _statements(lambda: meeting_view(services, small.meeting_id))
    four = _statements(lambda: meeting_view(services, sample_meeting.meeting_id))
    assert one == four <= 6


def test_an_unknown_meeting_is_not_found(services: Services) -> None:
    with pytest.raises(NotFoundError) as caught:
        meeting_view(services, "ingen-sådan")
    assert (caught.value.what, caught.value.key) == ("meeting", "ingen-sådan")
