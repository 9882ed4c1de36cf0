"""The Prefect flows on the local Prefect server ``serve`` and ``demo`` start (its UI
on): thin and idempotent; runs named after their meeting; links to the UI that
resolve, and none where a server has no UI; the deadline pass as a scheduled
deployment that does not make up every pass it missed."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from justering import workflow
from justering.devtools.demo import meeting_flow_runs
from justering.errors import ConfigError
from justering.mail.delivery import outbox_messages
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.orchestration.deployments import (
    DEADLINE_DEPLOYMENT,
    DEADLINE_PASS_ANCHOR,
    DEADLINE_PASS_EVERY,
    deadline_passes_paused,
    drop_missed_passes,
    served_deployments,
)
from justering.orchestration.prefect_server import (
    free_port,
    local_prefect_server,
    prefect_environment,
    prefect_ui_url,
)

LABEL = "KSAU 2014-08-19 (nacka-ksau-2014-08-19)"


@dataclass(frozen=True)
class PrefectAt:
    api_url: str
    ui_url: str | None


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectAt]:
    """The local Prefect server as ``serve`` starts it, this process pointed at it."""
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW,
        PREFECT_UI_URL,
        temporary_settings,
    )

    folder = tmp_path_factory.mktemp("prefect")
    with local_prefect_server(folder / "prefect", folder / "prefect-server.log") as api_url:
        ui_url = prefect_ui_url(api_url)
        updates: dict[Any, Any] = {
            PREFECT_API_URL: api_url,
            PREFECT_UI_URL: ui_url or "",
            PREFECT_LOCAL_STORAGE_PATH: folder / "storage",
            PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore",
        }
        with (
            temporary_settings(updates=updates),
            _temporary_global_settings_context(get_settings_context()),
        ):
            yield PrefectAt(api_url, ui_url)


@pytest.fixture
def flow_services(
    services: workflow.Services, monkeypatch: pytest.MonkeyPatch, prefect_server: PrefectAt
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


def _page(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", "")


def _flow_run(run_id: uuid.UUID) -> Any:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_demo_finds_a_meetings_completed_flow_run_in_prefect(
    flow_services: workflow.Services, sample_meeting: Meeting, prefect_server: PrefectAt
) -> None:
    """What the demo checks before it is done: Prefect ran the meeting's flow."""
    from justering.orchestration.flows import meeting_ended

    meeting = replace(sample_meeting, meeting_id=f"demo-{uuid.uuid4().hex[:8]}")
    key = meeting.meeting_id
    assert workflow.record_meeting(flow_services, meeting)
    assert meeting_flow_runs(prefect_server.api_url, key) == []
    meeting_ended(key)
    assert meeting_flow_runs(prefect_server.api_url, key) == ["COMPLETED"]
    assert meeting_flow_runs(prefect_server.api_url, f"{key}-another") == []


# --- names: the UI as a list of meetings ----------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_flow_and_task_runs_are_named_after_the_meeting(
    flow_services: workflow.Services, sample_meeting: Meeting
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from justering.orchestration.flows import meeting_ended

    workflow.record_meeting(flow_services, sample_meeting)
    state = meeting_ended(sample_meeting.meeting_id, return_state=True)
    run = _flow_run(state.state_details.flow_run_id)
    assert run.name == LABEL
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        )
    assert sorted(task.name for task in tasks) == [f"advance {LABEL}", f"draft {LABEL}"]


def test_a_run_for_a_meeting_the_ledger_does_not_know_is_named_by_its_id(
    flow_services: workflow.Services,
) -> None:
    from justering.orchestration.flows import meeting_label_of

    assert meeting_label_of("okänt-möte") == "okänt-möte"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_background_advance_is_named_and_the_link_logged_to_it_resolves(
    flow_services: workflow.Services,
    sample_meeting: Meeting,
    prefect_server: PrefectAt,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What a signature schedules in ``serve``: the task run the UI lists, and the
    "View it in the UI" link Prefect logs for it, which must lead to a page."""
    from prefect import get_client
    from prefect.task_worker import TaskWorker
    from prefect.utilities.urls import url_for

    from justering.orchestration.flows import advance_meeting

    assert prefect_server.ui_url == prefect_server.api_url.removesuffix("/api")
    workflow.record_meeting(flow_services, sample_meeting)
    with _prefect_records(caplog):
        future = advance_meeting.delay(sample_meeting.meeting_id)
    link = url_for(future)
    assert link == f"{prefect_server.ui_url}/runs/task-run/{future.task_run_id}"
    assert f"View it in the UI at {link!r}" in caplog.text
    status, kind = _page(link)
    assert (status, "html" in kind) == (200, True)

    async def work_until_done() -> None:
        worker = asyncio.create_task(TaskWorker(advance_meeting).astart())
        try:
            await asyncio.to_thread(future.wait, 90)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    asyncio.run(work_until_done())
    assert future.state.is_completed(), future.state
    with get_client(sync_client=True) as client:
        assert client.read_task_run(future.task_run_id).name == f"advance {LABEL}"
    assert workflow.meetings_needing_work(flow_services) == ()


class _NoUI(BaseHTTPRequestHandler):
    """What a Prefect server started with ``PREFECT_UI_ENABLED=false`` answers."""

    def do_GET(self) -> None:
        body = b'{"detail":"Not Found"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_where_a_server_has_no_ui_no_link_is_logged(
    flow_services: workflow.Services,
    sample_meeting: Meeting,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from prefect.settings import PREFECT_UI_URL, temporary_settings
    from prefect.utilities.urls import url_for

    from justering.orchestration.flows import advance_meeting

    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoUI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert prefect_ui_url(f"http://127.0.0.1:{server.server_port}/api") is None
    finally:
        server.shutdown()
    assert prefect_ui_url(f"http://127.0.0.1:{free_port()}/api") is None  # no answer
    environment = prefect_environment(flow_services.settings.prefect_home, "http://x/api")
    assert environment["PREFECT_UI_URL"] == ""

    workflow.record_meeting(flow_services, sample_meeting)
    with temporary_settings(updates={PREFECT_UI_URL: environment["PREFECT_UI_URL"]}):
        with _prefect_records(caplog):
            future = advance_meeting.delay(sample_meeting.meeting_id)
        assert url_for(future) is None
    assert "View it in the UI" not in caplog.text
    assert "/runs/task-run/" not in caplog.text


class _prefect_records:
    """Prefect's loggers do not propagate to the root logger: let ``caplog`` see them."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.logger = logging.getLogger("prefect")

    def __enter__(self) -> None:
        self.caplog.clear()
        self.logger.addHandler(self.caplog.handler)
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)

    def __exit__(self, *_exc: object) -> None:
        self.logger.removeHandler(self.caplog.handler)
        self.logger.setLevel(self.level)


# --- the deadline pass ----------------------------------------------------------------------


def _deadline_deployment(*, paused: bool = False) -> Any:
    from prefect import get_client
    from prefect.runner import Runner

    async def register() -> uuid.UUID:
        _meetings, passes = await served_deployments(passes_paused=paused)
        return await Runner(name="test", pause_on_shutdown=False).aadd_deployment(passes)

    deployment_id = asyncio.run(register())
    with get_client(sync_client=True) as client:
        return client.read_deployment(deployment_id)


def test_the_deadline_pass_is_a_deployment_on_a_visible_schedule(prefect_server: PrefectAt) -> None:
    from prefect import get_client

    deployment = _deadline_deployment()
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(DEADLINE_DEPLOYMENT).id == deployment.id
    (schedule,) = deployment.schedules
    assert schedule.active and schedule.slug == "every-quarter-hour"
    assert schedule.schedule.interval == DEADLINE_PASS_EVERY == dt.timedelta(minutes=15)
    assert schedule.schedule.anchor_date == DEADLINE_PASS_ANCHOR
    assert schedule.schedule.timezone == "Europe/Stockholm"
    assert not deployment.paused
    assert deployment.entrypoint == "justering.orchestration.flows.deadline_pass"
    assert _deadline_deployment().schedules[0].id == schedule.id  # a restart: the same one


def test_the_demo_and_the_bench_pause_the_deadline_pass(prefect_server: PrefectAt) -> None:
    assert deadline_passes_paused({}) is False
    assert deadline_passes_paused({"JUSTERING_DEADLINE_PASSES": " On "}) is False
    assert deadline_passes_paused({"JUSTERING_DEADLINE_PASSES": "paused"}) is True
    with pytest.raises(ConfigError, match="JUSTERING_DEADLINE_PASSES: expected 'on' or 'paused'"):
        deadline_passes_paused({"JUSTERING_DEADLINE_PASSES": "off"})
    (schedule,) = _deadline_deployment(paused=True).schedules
    assert not schedule.active and schedule.slug == "every-quarter-hour"
    (schedule,) = _deadline_deployment().schedules
    assert schedule.active


def test_missed_passes_are_cancelled_but_the_newest(prefect_server: PrefectAt) -> None:
    from prefect import get_client
    from prefect.states import Scheduled

    deployment = _deadline_deployment()
    now = dt.datetime.now(dt.UTC)
    runs = []
    with get_client(sync_client=True) as client:
        for quarters in (12, 8, 4, -4):  # three missed (the last 1 h ago), one to come
            runs.append(
                client.create_flow_run_from_deployment(
                    deployment.id,
                    state=Scheduled(scheduled_time=now - quarters * DEADLINE_PASS_EVERY),
                ).id
            )
    assert asyncio.run(drop_missed_passes(deployment.id, now=now)) >= 2
    states = [_flow_run(run).state for run in runs]
    assert [s.type.value for s in states] == ["CANCELLED", "CANCELLED", "SCHEDULED", "SCHEDULED"]
    assert "a later pass covers it" in (states[0].message or "")
    assert asyncio.run(drop_missed_passes(deployment.id, now=now)) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_deadline_pass_flow_tells_the_secretary_of_an_overdue_meeting(
    flow_services: workflow.Services, sample_meeting: Meeting
) -> None:
    from justering.orchestration.flows import deadline_pass

    workflow.record_meeting(flow_services, sample_meeting)
    workflow.advance_meeting(flow_services, sample_meeting.meeting_id)
    state = deadline_pass(return_state=True)  # a meeting of 2014: long overdue
    assert state.result() == {
        "reminded": [],
        "escalated": [sample_meeting.meeting_id],
        "failed": [],
    }
    assert _flow_run(state.state_details.flow_run_id).name.startswith("deadline pass 20")
    again = deadline_pass()
    assert again == {"reminded": [], "escalated": [], "failed": []}


# --- the UI ---------------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_ui_lists_the_meetings_runs_by_name(
    flow_services: workflow.Services, sample_meeting: Meeting, prefect_server: PrefectAt
) -> None:
    from justering.orchestration.flows import meeting_ended
    from support.browser import DESKTOP, chromium, open_tab

    workflow.record_meeting(flow_services, sample_meeting)
    state = meeting_ended(sample_meeting.meeting_id, return_state=True)
    run_id = state.state_details.flow_run_id
    with chromium() as browser, open_tab(browser, DESKTOP) as tab:
        tab.page.goto(f"{prefect_server.ui_url}/runs/flow-run/{run_id}")
        tab.page.get_by_text(LABEL).first.wait_for(timeout=60_000)
        tab.page.goto(f"{prefect_server.ui_url}/runs")
        tab.page.get_by_text(LABEL).first.wait_for(timeout=60_000)
