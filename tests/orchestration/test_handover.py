"""``serve`` serves before Prefect answers (a new home's Prefect server takes seconds
longer to start than the service): a recorded meeting is drafted and its chair
notified at once, in the service; its flow run waits for Prefect and then finds the
work done; once Prefect answers, advances are Prefect task runs again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from justering import workflow
from justering.mail.delivery import outbox_messages
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.orchestration import serve
from justering.orchestration.serve import Handover


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f} s"
        time.sleep(0.05)


class _Prefect:
    """Stands in for what needs Prefect: the flow runs and the task runs asked for."""

    def __init__(self) -> None:
        self.flow_runs: list[str] = []
        self.task_runs: list[str] = []
        self.lock = threading.Lock()

    def flow_run(self, meeting_id: str) -> None:
        with self.lock:
            self.flow_runs.append(meeting_id)

    def task_run(self, meeting_id: str) -> None:
        with self.lock:
            self.task_runs.append(meeting_id)


@pytest.fixture
def prefect(monkeypatch: pytest.MonkeyPatch) -> _Prefect:
    stand_in = _Prefect()
    monkeypatch.setattr(serve, "_run_meeting_flow", stand_in.flow_run)
    monkeypatch.setattr(serve, "schedule_advance", stand_in.task_run)
    return stand_in


@pytest.fixture
def handover(services: workflow.Services) -> Iterator[Handover]:
    handover = Handover(services)
    yield handover
    handover.close()


def _statuses(services: workflow.Services, meeting_id: str) -> set[ExtractStatus]:
    return {s.status for s in workflow.meeting_summaries(services, meeting_id)}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_meeting_is_drafted_and_its_chair_notified_before_prefect_answers(
    services: workflow.Services, sample_meeting: Meeting, handover: Handover, prefect: _Prefect
) -> None:
    meeting_id = sample_meeting.meeting_id
    assert workflow.record_meeting(services, sample_meeting)
    # What the web app does with a recorded meeting.
    handover.meeting_recorded(meeting_id)
    handover.schedule_advance(meeting_id)

    _wait_for(
        "drafting and the chair's message",
        lambda: len(outbox_messages(services.settings.outbox_dir)) == 1,
    )
    assert _statuses(services, meeting_id) == {ExtractStatus.AWAITING_CHAIR}
    assert [s.paragraph for s in workflow.meeting_summaries(services, meeting_id)] == [
        p.number for p in sample_meeting.paragraphs
    ]
    # Nothing was asked of Prefect meanwhile; the flow run waits for it.
    time.sleep(0.3)
    assert prefect.flow_runs == [] and prefect.task_runs == []
    assert not handover.prefect_answers

    handover.prefect_answered()
    _wait_for("the meeting's flow run", lambda: prefect.flow_runs == [meeting_id])
    # From now on an advance (a signature's) is a Prefect task run.
    handover.schedule_advance(meeting_id)
    assert prefect.task_runs == [meeting_id]
    # The chair was told once, by the advance here.
    assert len(outbox_messages(services.settings.outbox_dir)) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_flow_runs_waiting_for_prefect_are_dropped_when_the_service_stops(
    services: workflow.Services, sample_meeting: Meeting, prefect: _Prefect
) -> None:
    handover = Handover(services)
    for _ in range(serve.FLOW_RUNS_AT_ONCE + 2):  # more than run at once: some queue
        handover.meeting_recorded(sample_meeting.meeting_id)
    stopping = threading.Thread(target=handover.close)
    stopping.start()
    stopping.join(timeout=10)
    assert not stopping.is_alive()
    # The threads that waited for Prefect end (a stopping process is not held up).
    _wait_for(
        "the flow-run threads to end",
        lambda: not [t for t in threading.enumerate() if t.name.startswith("meeting-ended")],
        10,
    )
    assert prefect.flow_runs == []
