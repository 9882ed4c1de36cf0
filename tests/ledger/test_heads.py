"""Sealed trail heads: every append seals the new head under the home's trail key, an
append on a rewritten trail is refused, and a ledger made before the seal is
upgraded at start (both databases)."""

from __future__ import annotations

import dataclasses
import logging
import stat

import pytest
from sqlalchemy import inspect, select, text, update

from justering import workflow
from justering.errors import ConfigError, TrailError
from justering.ledger.database import Ledger
from justering.ledger.extracts import append_event, checked_trail, last_event
from justering.ledger.heads import UNSEALED_HEAD, head_mac
from justering.ledger.schema import ExtractRow
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind
from justering.model.trail import EventKind
from justering.workflow.audit import extract_timeline
from justering.workflow.services import Services
from support.workflow import (
    extract_rows,
    rewrite_ledger_trail,
    sign_as,
    small_meeting,
    snapshot,
    start,
    start_at_adjusters,
)


def _key(services: Services) -> bytes:
    return services.settings.trail_key_file.read_bytes()


def _heads(services: Services) -> dict[str, tuple[str | None, str | None]]:
    with services.ledger.reading() as session:
        return {
            row.ref: (row.trail_head, row.trail_head_mac)
            for row in session.execute(select(ExtractRow)).scalars()
        }


def test_the_trail_key_is_a_secret_of_the_home_0600(services: Services) -> None:
    path = services.settings.trail_key_file
    assert path.parent == services.settings.home
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(_key(services)) == 32
    again = workflow.open_services(services.settings)
    try:
        assert path.read_bytes() == _key(services)  # made once, read ever after
    finally:
        again.ledger.dispose()


def test_every_append_seals_the_new_head(services: Services, sample_meeting: Meeting) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    sign_as(services, meeting.chair.email)
    heads = _heads(services)
    number = meeting.paragraphs[0].number
    assert set(heads) == {f"{meeting.meeting_id}/{number}", f"{meeting.meeting_id}/protokoll"}
    for ref, (head, mac) in heads.items():  # the extract's, and its protocol's
        assert head is not None and mac == head_mac(_key(services), ref, head)
        assert mac != head_mac(b"x" * 32, ref, head)
        assert mac != head_mac(_key(services), ref + "0", head)  # bound to the document


def test_an_append_on_a_rewritten_trail_is_refused_and_records_nothing(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start_at_adjusters(services, meeting)
    [extract] = extract_rows(services, meeting.meeting_id)
    rewrite_ledger_trail(
        services,
        extract.id,
        lambda e: (
            dataclasses.replace(e, actor_email="mallory@evil.example")
            if e.actor_email == meeting.chair.email
            else e
        ),
    )
    before = snapshot(services)
    with pytest.raises(TrailError, match=r"not the one the ledger sealed.*nothing was recorded"):
        sign_as(services, meeting.adjusters[0].email)
    assert snapshot(services) == before


def test_an_append_after_events_were_cut_is_refused(
    services: Services, sample_meeting: Meeting
) -> None:
    """The head and its MAC untouched, the last event deleted: the head is no longer
    the last event's."""
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    [extract] = extract_rows(services, meeting.meeting_id)
    with services.ledger.transaction() as session:
        last = last_event(session, extract.id)
        assert last is not None and last.seq > 1
        session.delete(last)
    refused = pytest.raises(TrailError, match="not the head the ledger recorded")
    with refused, services.ledger.transaction() as session:
        row = session.get(ExtractRow, extract.id)
        assert row is not None
        append_event(session, row, EventKind.VIEWED)


def test_a_ledger_opened_without_the_key_reads_but_cannot_append(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    [extract] = extract_rows(services, meeting.meeting_id)
    keyless = Ledger(services.settings.database_url)
    try:
        with keyless.reading() as session:
            row = session.get(ExtractRow, extract.id)
            assert row is not None
            with pytest.raises(TrailError, match="without the home's trail key"):
                checked_trail(session, row)
        refused = pytest.raises(TrailError, match="without the home's trail key")
        with refused, keyless.transaction() as session:
            row = session.get(ExtractRow, extract.id)
            assert row is not None
            append_event(session, row, EventKind.VIEWED)
    finally:
        keyless.dispose()
    assert extract_timeline(services, meeting.meeting_id, meeting.paragraphs[0].number).chain_ok


def _drop_the_column(services: Services) -> None:
    """Make the ledger as an earlier version left it."""
    with services.ledger.engine.begin() as connection:
        connection.execute(text("ALTER TABLE extracts DROP COLUMN trail_head_mac"))
    services.ledger.dispose()


def test_an_older_ledger_is_upgraded_at_start_trusting_its_heads(
    services: Services, sample_meeting: Meeting, caplog: pytest.LogCaptureFixture
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=(96, 97))
    start(services, meeting)
    heads = {ref: head for ref, (head, _mac) in _heads(services).items()}
    _drop_the_column(services)
    key = _key(services)
    with caplog.at_level(logging.WARNING, logger="justering.ledger.heads"):
        upgraded = Ledger(services.settings.database_url, trail_key=key)
    upgraded.dispose()
    # two extracts, the protocol and the small one of the omedelbar justering (§ 97)
    assert "sealed the trail heads of 4 documents" in caplog.text
    services = workflow.open_services(services.settings)
    try:
        with services.ledger.reading() as session:
            names = {c["name"] for c in inspect(session.connection()).get_columns("extracts")}
        assert "trail_head_mac" in names
        assert _heads(services) == {
            ref: (head, head_mac(key, ref, head)) for ref, head in heads.items() if head
        }
        for paragraph in meeting.paragraphs:
            timeline = extract_timeline(services, meeting.meeting_id, paragraph.number)
            assert timeline.chain_ok, timeline.chain_problems
        for kind in (DocumentKind.PROTOCOL, DocumentKind.IMMEDIATE_PROTOCOL):
            timeline = extract_timeline(services, meeting.meeting_id, 0, kind)
            assert timeline.chain_ok, timeline.chain_problems
        sign_as(services, meeting.chair.email)  # appends go on as before
    finally:
        services.ledger.dispose()


def test_the_upgrade_runs_once_a_missing_mac_later_is_a_broken_seal(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    with services.ledger.transaction() as session:
        session.execute(update(ExtractRow).values(trail_head_mac=None))
    services.ledger.dispose()
    services = workflow.open_services(services.settings)  # the column is there: no upgrade
    try:
        assert len(_heads(services)) == 2  # the extract and its protocol
        for head, mac in _heads(services).values():
            assert head is not None and mac is None
        timeline = extract_timeline(services, meeting.meeting_id, meeting.paragraphs[0].number)
        assert timeline.chain_problems == (UNSEALED_HEAD,)
        timeline = extract_timeline(services, meeting.meeting_id, 0, DocumentKind.PROTOCOL)
        assert timeline.chain_problems == (UNSEALED_HEAD,)
    finally:
        services.ledger.dispose()


def test_an_older_ledger_is_not_upgraded_without_the_key(services: Services) -> None:
    _drop_the_column(services)
    with pytest.raises(ConfigError, match="predates sealed trail heads"):
        Ledger(services.settings.database_url)
    with services.ledger.engine.connect() as connection:
        names = {c["name"] for c in inspect(connection).get_columns("extracts")}
    assert "trail_head_mac" not in names
