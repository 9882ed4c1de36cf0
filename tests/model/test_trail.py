"""The signature trail: its hash chain, its JSON form, and its storage in the ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from justering.errors import TrailError
from justering.ledger.database import Ledger
from justering.ledger.extracts import append_event, append_signer_event, event_rows, trail_of
from justering.ledger.schema import ExtractRow, MeetingRow
from justering.model.roles import Person, Role, Signer
from justering.model.trail import (
    GENESIS_HASH,
    EventKind,
    TrailEvent,
    chain_problems,
    trail_from_json,
    trail_to_json,
    with_hash,
)

START = dt.datetime(2014, 8, 19, 14, 30, tzinfo=dt.UTC)
KINDS = (
    EventKind.DRAFTED,
    EventKind.NOTIFIED,
    EventKind.VIEWED,
    EventKind.SIGNED,
    EventKind.CERTIFIED,
    EventKind.ARCHIVED,
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build_chain(kinds: tuple[EventKind, ...] = KINDS) -> list[TrailEvent]:
    """A valid trail, sealed and linked as the ledger does it."""
    events: list[TrailEvent] = []
    previous = GENESIS_HASH
    for seq, kind in enumerate(kinds, start=1):
        event = with_hash(
            TrailEvent(
                extract="nacka-ksau-2014-08-19/94",
                seq=seq,
                kind=kind,
                at=START + dt.timedelta(minutes=seq),
                actor="system" if kind is EventKind.DRAFTED else "Mats Gerdau",
                actor_email=None if kind is EventKind.DRAFTED else "mats.gerdau@nacka.example",
                role=None if kind is EventKind.DRAFTED else "chair",
                version=1,
                document_sha256=sha(f"document {seq}"),
                certificate_sha256=sha(f"certificate {seq}") if kind is EventKind.SIGNED else None,
                detail={"message_id": "<1@justering.invalid>"}
                if kind is EventKind.NOTIFIED
                else {},
                prev_hash=previous,
            )
        )
        events.append(event)
        previous = event.hash
    return events


def relink(events: list[TrailEvent]) -> list[TrailEvent]:
    """Re-seal every event in order so that the chain links again (a forger's rewrite)."""
    out: list[TrailEvent] = []
    previous = GENESIS_HASH
    for event in events:
        out.append(with_hash(replace(event, prev_hash=previous)))
        previous = out[-1].hash
    return out


# --- the chain -------------------------------------------------------------------------


def test_a_fresh_trail_holds() -> None:
    events = build_chain()
    assert chain_problems(events) == []
    assert events[0].prev_hash == GENESIS_HASH
    assert all(len(e.hash) == 64 for e in events)
    assert len({e.hash for e in events}) == len(events)


def test_an_empty_trail_is_a_problem() -> None:
    assert chain_problems([]) == ["the trail has no events"]


@pytest.mark.parametrize("removed", [0, 2, 4])
def test_a_removed_event_is_named(removed: int) -> None:
    events = build_chain()
    del events[removed]
    problems = chain_problems(events)
    assert f"event {removed + 1} ({events[removed].kind.value}) does not link" in "; ".join(
        problems
    )
    assert any("sequence number" in p for p in problems)


def test_reordered_events_are_named() -> None:
    events = build_chain()
    events[2], events[3] = events[3], events[2]
    problems = chain_problems(events)
    assert "event 3 (signed) has sequence number 4, expected 3" in problems
    assert "event 3 (signed) does not link to the event before it" in problems
    assert "event 4 (viewed) does not link to the event before it" in problems


@pytest.mark.parametrize(
    "change",
    [
        {"actor": "Någon Annan"},
        {"actor_email": "someone@else.example"},
        {"role": "certifier"},
        {"document_sha256": sha("another document")},
        {"certificate_sha256": sha("another certificate")},
        {"kind": EventKind.DECLINED},
        {"at": START + dt.timedelta(days=30)},
        {"version": 2},
        {"detail": {"reason": "added later"}},
    ],
    ids=lambda change: next(iter(change)),
)
def test_an_edited_event_is_named(change: dict[str, Any]) -> None:
    events = build_chain()
    events[3] = replace(events[3], **change)
    problems = chain_problems(events)
    assert problems == [
        f"event 4 ({events[3].kind.value}) was altered: its hash does not match its content"
    ]


def test_an_edited_and_rehashed_event_breaks_the_next_link() -> None:
    events = build_chain()
    events[3] = with_hash(replace(events[3], actor="Någon Annan"))
    assert chain_problems(events) == ["event 5 (certified) does not link to the event before it"]


def test_an_edited_rehashed_and_relinked_event_breaks_the_next_hash() -> None:
    events = build_chain()
    events[3] = with_hash(replace(events[3], document_sha256=sha("forged")))
    events[4] = replace(events[4], prev_hash=events[3].hash)
    assert chain_problems(events) == [
        "event 5 (certified) was altered: its hash does not match its content"
    ]


def test_an_event_of_another_extract_is_named() -> None:
    events = build_chain()
    events = relink([*events[:3], replace(events[3], extract="other-meeting/12"), *events[4:]])
    assert chain_problems(events) == [
        "event 4 (signed) belongs to extract other-meeting/12, not nacka-ksau-2014-08-19/94"
    ]


def test_a_forged_first_event_is_named() -> None:
    events = build_chain()
    events[0] = with_hash(replace(events[0], prev_hash=sha("invented")))
    problems = chain_problems(events)
    assert "event 1 (drafted) does not link to the event before it" in problems


def test_the_hash_covers_the_previous_hash() -> None:
    event = build_chain()[1]
    assert replace(event, prev_hash=GENESIS_HASH).computed_hash() != event.hash


def test_the_hash_does_not_depend_on_the_time_zone_of_the_time() -> None:
    event = build_chain()[0]
    stockholm = dt.timezone(dt.timedelta(hours=2))
    assert replace(event, at=event.at.astimezone(stockholm)).computed_hash() == event.hash


# --- naive times -------------------------------------------------------------------------


def test_naive_times_are_refused_when_sealing() -> None:
    event = build_chain()[0]
    with pytest.raises(TrailError, match="timezone-aware"):
        with_hash(replace(event, at=dt.datetime(2014, 8, 19, 14, 30)))


def test_naive_times_are_refused_when_reading_json() -> None:
    document = json.loads(trail_to_json(build_chain()))
    document["events"][0]["at"] = "2014-08-19T14:31:00"
    with pytest.raises(TrailError, match="event 1 has a time without a time zone"):
        trail_from_json(json.dumps(document).encode())


# --- JSON ----------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    stockholm = dt.timezone(dt.timedelta(hours=2))
    events = relink([replace(e, at=e.at.astimezone(stockholm)) for e in build_chain()])
    data = trail_to_json(events)
    document = json.loads(data)
    assert document["format"] == "justering-trail/1"
    assert document["events"][0]["at"] == "2014-08-19T14:31:00.000000+00:00"
    back = trail_from_json(data)
    assert back == tuple(events)
    assert chain_problems(back) == []
    assert trail_to_json(back) == data


def test_json_keeps_non_ascii_text() -> None:
    events = relink([replace(e, actor="Åsa Öberg") for e in build_chain()])
    data = trail_to_json(events)
    assert "Åsa Öberg".encode() in data
    assert trail_from_json(data)[1].actor == "Åsa Öberg"


def _with_event_change(key: str, value: Any) -> bytes:
    document = json.loads(trail_to_json(build_chain()))
    if value is _MISSING:
        del document["events"][1][key]
    else:
        document["events"][1][key] = value
    return json.dumps(document).encode()


_MISSING = object()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[]", "not in format justering-trail/1"),
        (b'{"format": "justering-trail/2", "events": []}', "not in format"),
        (b'{"format": "justering-trail/1"}', "no event list"),
        (b'{"format": "justering-trail/1", "events": {}}', "no event list"),
        (b'{"format": "justering-trail/1", "events": [1]}', "event 1 is not an object"),
        (b'{"format": "justering-trail/1", "events": ["x"]}', "event 1 is not an object"),
        (_with_event_change("hash", _MISSING), "event 2 is malformed"),
        (_with_event_change("kind", "approved"), "event 2 is malformed"),
        (_with_event_change("at", "yesterday"), "event 2 is malformed"),
        (_with_event_change("seq", "two"), "event 2 is malformed"),
        (_with_event_change("detail", None), "event 2 is malformed"),
        (_with_event_change("detail", "text"), "event 2 is malformed"),
    ],
)
def test_malformed_json_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(TrailError, match=message):
        trail_from_json(data)


def test_an_edit_in_the_json_is_found_after_reading() -> None:
    document = json.loads(trail_to_json(build_chain()))
    document["events"][3]["actor"] = "Någon Annan"
    events = trail_from_json(json.dumps(document).encode())
    assert chain_problems(events) == [
        "event 4 (signed) was altered: its hash does not match its content"
    ]


# --- in the ledger --------------------------------------------------------------------------


@pytest.fixture
def ledger(database_url: str) -> Any:
    ledger = Ledger(database_url, trail_key=b"k" * 32)
    yield ledger
    ledger.dispose()


def _extract(ledger: Ledger) -> int:
    with ledger.transaction() as session:
        session.add(
            MeetingRow(meeting_id="m1", manifest={}, manifest_sha256="0" * 64, created_at=START)
        )
        session.flush()
        row = ExtractRow(
            meeting_id="m1",
            paragraph=94,
            dnr=None,
            title="Titel",
            version=1,
            status="awaiting_chair",
            head_sha256="",
            updated_at=START,
        )
        session.add(row)
        session.flush()
        return row.id


def test_the_ledger_chains_events_it_appends(ledger: Ledger) -> None:
    extract_id = _extract(ledger)
    for kind in KINDS:
        with ledger.transaction() as session:
            row = session.get(ExtractRow, extract_id)
            assert row is not None
            append_event(session, row, kind, document_sha256=sha(kind.value))
    with ledger.transaction() as session:
        events = trail_of(session, extract_id)
    assert [e.kind for e in events] == list(KINDS)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[0].extract == "m1/94"
    assert chain_problems(events) == []


def test_the_ledger_keeps_the_chain_for_a_time_in_another_zone(ledger: Ledger) -> None:
    extract_id = _extract(ledger)
    stockholm = dt.timezone(dt.timedelta(hours=2))
    with ledger.transaction() as session:
        row = session.get(ExtractRow, extract_id)
        assert row is not None
        append_event(session, row, EventKind.DRAFTED, at=START.astimezone(stockholm))
    with ledger.transaction() as session:
        events = trail_of(session, extract_id)
    assert events[0].at == START
    assert chain_problems(events) == []


def test_the_ledger_gives_back_every_fact_of_a_signer_event(ledger: Ledger) -> None:
    """A signer's event, read back from its row, is the event appended: who (name,
    e-mail, role, slot), what (the extract's document unless another is named, the
    certificate, the detail) and when; a change to any of them breaks the chain."""
    extract_id = _extract(ledger)
    adjuster = Signer(Person("Rolf Berg", "rolf@example.se"), Role.ADJUSTER, index=1)
    stockholm = dt.timezone(dt.timedelta(hours=2))
    with ledger.transaction() as session:
        row = session.get(ExtractRow, extract_id)
        assert row is not None
        row.head_sha256 = sha("current")
        signed = append_signer_event(
            session,
            row,
            EventKind.SIGNED,
            adjuster,
            certificate_sha256=sha("certificate"),
            detail={"assurance": "loa3"},
            at=START.astimezone(stockholm),
        )
        declined = append_signer_event(
            session, row, EventKind.DECLINED, adjuster, document_sha256=sha("earlier")
        )
    with ledger.transaction() as session:
        events = trail_of(session, extract_id)
        slots = [r.slot for r in event_rows(session, extract_id)]
    assert events == (signed, declined)
    assert slots == ["adjuster-1", "adjuster-1"]
    assert (signed.actor, signed.actor_email, signed.role) == (
        "Rolf Berg",
        "rolf@example.se",
        "adjuster",
    )
    assert (signed.document_sha256, signed.certificate_sha256) == (
        sha("current"),
        sha("certificate"),
    )
    assert (signed.at, dict(signed.detail)) == (START, {"assurance": "loa3"})
    assert declined.document_sha256 == sha("earlier")
    assert chain_problems(events) == []


def test_the_ledger_refuses_a_naive_time(ledger: Ledger) -> None:
    extract_id = _extract(ledger)
    with pytest.raises(TrailError, match="timezone-aware"), ledger.transaction() as session:
        row = session.get(ExtractRow, extract_id)
        assert row is not None
        append_event(session, row, EventKind.DRAFTED, at=dt.datetime(2014, 8, 19, 14, 30))
    with ledger.transaction() as session:
        assert trail_of(session, extract_id) == ()


def test_the_expected_head_catches_a_cut_tail() -> None:
    events = build_chain()
    assert chain_problems(events, expected_head=events[-1].hash) == []
    cut = events[:-1]
    assert chain_problems(cut) == []  # a chain alone cannot tell
    [problem] = chain_problems(cut, expected_head=events[-1].hash)
    assert "does not end where the ledger says" in problem


def test_the_ledger_anchors_the_end_of_each_trail(services: Any, sample_meeting: Any) -> None:
    from sqlalchemy import delete, select

    from justering.ledger.schema import TrailEventRow
    from justering.workflow.audit import extract_timeline
    from support.workflow import sign_as, small_meeting, start

    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    sign_as(services, meeting.chair.email)
    timeline = extract_timeline(services, meeting.meeting_id, meeting.paragraphs[0].number)
    assert timeline.chain_problems == ()
    with services.ledger.transaction() as session:
        last = session.execute(
            select(TrailEventRow)
            .where(
                TrailEventRow.extract_ref == f"{meeting.meeting_id}/{meeting.paragraphs[0].number}"
            )
            .order_by(TrailEventRow.id.desc())
            .limit(1)
        ).scalar_one()
        session.execute(delete(TrailEventRow).where(TrailEventRow.id == last.id))
    timeline = extract_timeline(services, meeting.meeting_id, meeting.paragraphs[0].number)
    assert any("does not end where the ledger says" in p for p in timeline.chain_problems)
