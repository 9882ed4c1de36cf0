"""The Prefect flow on a real (temporary) Prefect server: thin, idempotent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from justering import workflow
from justering.mail.delivery import outbox_messages
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def flow_services(
    services: workflow.Services, monkeypatch: pytest.MonkeyPatch, prefect_server: None
) -> Iterator[workflow.Services]:
    """The flows build their services from the environment: point it at ours."""
    from justering.orchestration import flows

    monkeypatch.setenv("JUSTERING_HOME", str(services.settings.home))
    monkeypatch.setenv("JUSTERING_DATABASE_URL", services.settings.database_url)
    monkeypatch.setenv("JUSTERING_PUBLIC_URL", services.settings.public_url)
    monkeypatch.delenv("JUSTERING_ARCHIVE_URL", raising=False)
    flows.install_services(None)
    yield services
    flows.install_services(None)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_meeting_ended_drafts_every_extract_and_notifies_the_chair_once(
    flow_services: workflow.Services, sample_meeting: Meeting
) -> None:
    from justering.orchestration.flows import meeting_ended

    assert workflow.record_meeting(flow_services, sample_meeting)
    report = meeting_ended(sample_meeting.meeting_id)
    assert report["notified"] == ["chair-0:mats.gerdau@nacka.example"]
    states = workflow.meeting_summaries(flow_services, sample_meeting.meeting_id)
    assert [s.paragraph for s in states] == [p.number for p in sample_meeting.paragraphs]
    assert {s.status for s in states} == {ExtractStatus.AWAITING_CHAIR}
    assert len(outbox_messages(flow_services.settings.outbox_dir)) == 1

    again = meeting_ended(sample_meeting.meeting_id)
    assert again["notified"] == [] and again["drafted"] == []
    assert len(outbox_messages(flow_services.settings.outbox_dir)) == 1
    assert workflow.meetings_needing_work(flow_services) == ()
