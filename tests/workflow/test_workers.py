"""The service's worker processes render, sign and archive: a meeting goes through
every step with its CPU work done in them (the parent's own rendering, signing and
certificate of completion are made to fail, so work done here would show), the
results recorded in order; errors come back from a worker with their typed fields."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import pytest

from justering import workflow
from justering.errors import NotFoundError, Refusal, WorkflowError
from justering.ledger.schema import ExtractRow, LeaseRow
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind, ExtractStatus
from justering.orchestration.serve import worker_count
from justering.pades.validate import validate_extract
from justering.workflow import archiving, drafting, signatures
from justering.workflow.archiving import archive_extract
from justering.workflow.services import Services
from justering.workflow.workers import chunked, spread
from support.workflow import IMMEDIATE_PARAGRAPH, sign_as, small_meeting, start

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def with_workers(services: Services) -> Iterator[Services]:
    workers = workflow.start_workers(services.settings, 2, warm=False)
    try:
        yield replace(services, workers=workers)
    finally:
        workers.executor.shutdown(wait=True)


def _not_here(*_args: object, **_kwargs: object) -> NoReturn:
    raise AssertionError("this work belongs in a worker process")


@sqlite_only
def test_a_meeting_is_drafted_signed_and_archived_in_the_worker_processes(
    with_workers: Services, sample_meeting: Meeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = with_workers
    meeting = small_meeting(sample_meeting, paragraphs=(94, 95, 96, IMMEDIATE_PARAGRAPH))
    for module, name in (
        (drafting, "render_extract"),
        (drafting, "render_protocol_version"),
        (signatures, "sign_extract"),
        (archiving, "render_completion"),
    ):
        monkeypatch.setattr(module, name, _not_here)
    report = start(services, meeting)
    assert report.notified, report
    with services.ledger.reading() as session:
        rows = session.query(ExtractRow).order_by(ExtractRow.id).all()
        drafted = [(row.kind, row.paragraph) for row in rows]
    # Recorded in the order drafting promises: omedelbar justering first, then the
    # other paragraphs, then the protocols (the omedelbar justering's first).
    assert drafted == [
        (DocumentKind.EXTRACT, IMMEDIATE_PARAGRAPH),
        (DocumentKind.EXTRACT, 94),
        (DocumentKind.EXTRACT, 95),
        (DocumentKind.EXTRACT, 96),
        (DocumentKind.IMMEDIATE_PROTOCOL, 0),
        (DocumentKind.PROTOCOL, 0),
    ]
    for person in (meeting.chair, meeting.adjusters[0], meeting.certifier):
        receipt = sign_as(services, person.email)
        assert receipt.items
        workflow.advance_meeting(services, meeting.meeting_id)
    states = workflow.meeting_summaries(services, meeting.meeting_id)
    assert {s.status for s in states} == {ExtractStatus.ARCHIVED}
    assert len(states) == 4
    for state in states:  # each extract: the chair's, the adjuster's, the certifier's
        assert state.archive_uri is not None
        pdf = Path(state.archive_uri.removeprefix("file://")).read_bytes()
        validation = validate_extract(pdf, services.trust_roots, expected_adjusters=1)
        assert validation.ok and len(validation.signatures) == 3, validation.problems
    with services.ledger.reading() as session:
        assert session.query(LeaseRow).count() == 0  # every lease released


@sqlite_only
def test_spread_runs_jobs_in_other_processes_and_keeps_their_order(
    with_workers: Services,
) -> None:
    jobs = list(range(1, 14))
    pieces = chunked(jobs, with_workers)
    assert [job for piece in pieces for job in piece] == jobs
    assert len(pieces) > 2  # shared out, not one piece per worker
    missing = [10**9 + n for n in jobs]
    with pytest.raises(NotFoundError) as caught:
        list(spread(with_workers, archive_extract, missing))
    assert caught.value.what == "extract" and caught.value.key == missing[0]


@sqlite_only
def test_without_workers_the_jobs_run_here(services: Services) -> None:
    assert chunked([1, 2, 3], services) == [[1, 2, 3]]
    with pytest.raises(NotFoundError):
        list(spread(services, archive_extract, [10**9]))


def test_a_refusal_crosses_processes_with_its_typed_fields() -> None:
    error = WorkflowError(Refusal.TAMPERED, paragraph=94, detail="the chair's signature")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is WorkflowError
    assert (again.refusal, again.paragraph, again.detail) == (Refusal.TAMPERED, 94, error.detail)
    assert str(again) == str(error)


def test_the_number_of_workers_comes_from_the_environment() -> None:
    assert worker_count({}) == max(1, os.cpu_count() or 1)
    assert worker_count({"JUSTERING_WORKERS": "3"}) == 3
    assert worker_count({"JUSTERING_ARCHIVE_WORKERS": "1"}) == 1  # the older name
    for wrong in ("0", "two", "-1"):
        with pytest.raises(Exception, match="JUSTERING_WORKERS"):
            worker_count({"JUSTERING_WORKERS": wrong})
