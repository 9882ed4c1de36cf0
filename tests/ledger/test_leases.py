"""Leases in the ledger keep two processes from doing the same work at once
(drafting a meeting, archiving an extract), and pass the work on when a holder
dies (both databases)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest

from justering import workflow
from justering.ledger.database import utcnow
from justering.ledger.leases import WorkLease, release_lease, take_lease
from justering.ledger.schema import LeaseRow
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.workflow import archiving
from justering.workflow.services import Services
from support.workflow import run_in_threads, sign_to_certified, small_meeting

TTL = dt.timedelta(seconds=30)


def test_one_holder_at_a_time_until_it_releases_or_expires(services: Services) -> None:
    ledger = services.ledger
    assert take_lease(ledger, "draft:m", "a", TTL)
    assert take_lease(ledger, "draft:m", "a", TTL)  # renewal by the holder
    assert not take_lease(ledger, "draft:m", "b", TTL)
    assert take_lease(ledger, "draft:other", "b", TTL)
    release_lease(ledger, "draft:m", "b")  # not b's: nothing happens
    assert not take_lease(ledger, "draft:m", "b", TTL)
    release_lease(ledger, "draft:m", "a")
    assert take_lease(ledger, "draft:m", "b", TTL)
    with ledger.transaction() as session:  # b dies: its lease runs out
        row = session.get(LeaseRow, "draft:m")
        assert row is not None
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    assert take_lease(ledger, "draft:m", "c", TTL)


def test_concurrent_takers_get_one_lease(services: Services) -> None:
    results = run_in_threads(8, lambda: WorkLease(services.ledger, "archive:1").__enter__().held)
    assert results.count(True) == 1, results


def test_a_meeting_being_drafted_elsewhere_is_left_to_that_process(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    workflow.record_meeting(services, meeting)
    with WorkLease(services.ledger, f"draft:{meeting.meeting_id}") as elsewhere:
        assert elsewhere.held
        assert workflow.draft_meeting(services, meeting.meeting_id) is None
        report = workflow.advance_meeting(services, meeting.meeting_id)
        assert not report.complete and report.drafted == () and report.notified == ()
        assert workflow.meetings_needing_work(services) == (meeting.meeting_id,)
    report = workflow.advance_meeting(services, meeting.meeting_id)
    assert report.complete and len(report.drafted) == 2 and report.notified  # and the protocol
    assert workflow.meetings_needing_work(services) == ()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_concurrent_advances_archive_each_extract_once(
    services: Services, sample_meeting: Meeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=(94, 96, 97))
    sign_to_certified(services, meeting)  # all three certified, none archived yet
    writes: Counter[str] = Counter()
    original = archiving.write_bundle

    def counting(store: Any, prefix: str, files: Any) -> Any:
        writes[prefix] += 1
        return original(store, prefix, files)

    monkeypatch.setattr(archiving, "write_bundle", counting)
    reports = run_in_threads(3, lambda: workflow.advance_meeting(services, meeting.meeting_id))
    assert all(isinstance(r, workflow.AdvanceReport) for r in reports), reports
    assert len(writes) == 3 and set(writes.values()) == {1}, writes
    states = workflow.meeting_summaries(services, meeting.meeting_id)
    assert {s.status for s in states} == {ExtractStatus.ARCHIVED}
    # whoever skipped left the meeting marked; the next advance finds nothing to do
    workflow.advance_meeting(services, meeting.meeting_id)
    assert workflow.meetings_needing_work(services) == ()
