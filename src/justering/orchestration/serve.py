"""``justering serve``: the web app, the task worker for ``advance-meeting``, the
``meeting-ended`` flow runs of the meetings it records (in threads of this process),
the Prefect runner for the deployments (:mod:`justering.orchestration.deployments`:
the scheduled deadline pass, and ``meeting-ended`` runs started by the command
line), in one long-running process, with worker processes that render, sign and
archive (:mod:`justering.workflow.workers`).

Scale-out runs more of these against one Prefect server and one PostgreSQL
ledger; every step checks the ledger, so they never step on each other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import uvicorn

from justering import workflow
from justering.config import Settings
from justering.errors import ConfigError
from justering.orchestration import listening
from justering.orchestration.deployments import (
    deadline_passes_paused,
    drop_missed_passes,
    served_deployments,
)
from justering.orchestration.prefect_server import wait_for_prefect
from justering.workflow.mailing import send_queued_mail
from justering.workflow.services import Services, Workers, open_services
from justering.workflow.status import meetings_needing_work
from justering.workflow.workers import start_workers

__all__ = [
    "FLOW_RUNS_AT_ONCE",
    "RECONCILE_SECONDS",
    "WORKER_START_SECONDS",
    "Handover",
    "listen",
    "reconcile_seconds",
    "run_service",
    "schedule_advance",
    "warn_unless_parameters_are_shared",
    "worker_count",
]

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 15.0
"""The reconciler's period unless ``JUSTERING_RECONCILE_SECONDS`` says otherwise."""
WORKER_START_SECONDS = 120.0
"""How long the worker processes may take to start before ``serve`` gives up."""
FLOW_RUNS_AT_ONCE = 4
"""``meeting-ended`` flow runs a serve process runs at once (in threads); more wait."""


def listen(host: str, port: int) -> socket.socket:
    """The web app's listening socket, bound before anything else starts, so that a
    port in use is refused at once (and no other process can take it meanwhile)."""
    return listening.listen(
        host,
        port,
        what="serve",
        in_use="is another `justering serve` running? Stop it or choose another --port",
        backlog=2048,
    )


def schedule_advance(meeting_id: str) -> None:
    from justering.orchestration.flows import advance_meeting

    advance_meeting.delay(meeting_id)


def reconcile_seconds(environ: Mapping[str, str] | None = None) -> float:
    """The reconciler's period: ``JUSTERING_RECONCILE_SECONDS`` (seconds, > 0), else
    :data:`RECONCILE_SECONDS`."""
    text = (os.environ if environ is None else environ).get("JUSTERING_RECONCILE_SECONDS", "")
    if not text.strip():
        return RECONCILE_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ConfigError(f"JUSTERING_RECONCILE_SECONDS: expected seconds > 0, got {text!r}")
    return seconds


async def _reconcile(services: Services, period: float) -> None:
    """At start and then every ``period`` seconds, nudge every meeting with work
    recorded since its last complete advance: after a restart or a failed hand-over
    to Prefect this resumes whatever was in flight (the ledger knows); hand the
    webhooks whose back-off has run out to the task worker. Then send the queued
    e-mail that is due: a retry after a failed attempt, or a message whose sender
    died before it was marked sent. Last (every 10 minutes), delete the sent mail and
    delivered webhooks older than their retention."""
    from justering.orchestration.flows import schedule_webhooks
    from justering.workflow.retention import PruneSchedule

    retention = PruneSchedule()

    while True:
        try:
            meetings = await asyncio.to_thread(meetings_needing_work, services)
            for meeting_id in meetings:
                await asyncio.to_thread(schedule_advance, meeting_id)
            await asyncio.to_thread(schedule_webhooks)
        except Exception:  # a reconcile pass must never stop the service
            log.exception("reconcile pass failed")
        try:
            await asyncio.to_thread(send_queued_mail, services)
        except Exception:
            log.exception("sending queued e-mail failed")
        try:  # retention: what left the outboxes long enough ago (workflow.retention)
            await asyncio.to_thread(retention.prune_if_due, services.ledger, services.settings)
        except Exception:
            log.exception("pruning the outboxes failed")
        await asyncio.sleep(period)


def warn_unless_parameters_are_shared(settings: Settings) -> None:
    """With a Prefect server of its own (``PREFECT_API_URL``) there may be other serve
    processes. ``advance_meeting.delay()`` stores the task's parameters where the task
    worker that picks it up reads them: by default this process's own folder, which
    another process's worker cannot read (it then drops the task run, and the meeting
    waits for a reconciler pass). Say so, once, at start."""
    from prefect.settings import get_current_settings

    if (
        settings.prefect_api_url
        and not get_current_settings().tasks.scheduling.default_storage_block
    ):
        log.warning(
            "PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK is not set: advances scheduled "
            "by this process can only run in this process. With several `justering serve` "
            "processes, point it at storage they all share (docs/deploy.md)."
        )


def worker_count(environ: Mapping[str, str] | None = None) -> int:
    """Worker processes that render, sign and archive: ``JUSTERING_WORKERS`` (the older
    ``JUSTERING_ARCHIVE_WORKERS`` too), else one per core."""
    env = os.environ if environ is None else environ
    for name in ("JUSTERING_WORKERS", "JUSTERING_ARCHIVE_WORKERS"):
        text = env.get(name, "").strip()
        if not text:
            continue
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"{name}: expected a number of processes ≥ 1, got {text!r}")
        return int(text)
    return max(1, os.cpu_count() or 1)


def _run_meeting_flow(meeting_id: str) -> None:
    """The ``meeting-ended`` flow of a recorded meeting, run in this process (its run
    is named after the meeting in Prefect's UI). A failure is logged: the task worker
    was handed the meeting too, and the reconciler comes back to it."""
    from justering.orchestration.flows import meeting_ended

    try:
        meeting_ended(meeting_id)
    except Exception:
        log.exception("the meeting-ended flow of %s failed; the reconciler resumes it", meeting_id)


class Handover:
    """How the web app's meetings reach orchestration, from the moment ``serve``
    serves: its worker processes are all drafting needs, so it serves without
    waiting for Prefect (on a new home, Prefect's server takes seconds more to
    start). Until Prefect answers (:meth:`prefect_answered`), an advance runs here,
    in a thread (it drafts, notifies, archives: :func:`justering.workflow.advance_meeting`),
    and a recorded meeting's flow run waits; then each advance is a Prefect task
    run again, and the flow runs catch up (every step checks the ledger: what the
    advance here did, they find done)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._answered = threading.Event()
        self._stopping = False
        # A recorded meeting's flow run is made here, in this process (a deployment
        # run would start a process of its own per meeting: seconds of start-up and
        # 170 MB).
        self._flow_runs = ThreadPoolExecutor(FLOW_RUNS_AT_ONCE, thread_name_prefix="meeting-ended")
        self._advances = ThreadPoolExecutor(1, thread_name_prefix="advance-before-prefect")

    @property
    def prefect_answers(self) -> bool:
        return self._answered.is_set()

    def prefect_answered(self) -> None:
        self._answered.set()

    def meeting_recorded(self, meeting_id: str) -> None:
        """Run the meeting's flow (once Prefect answers); advance it here meanwhile."""
        self._flow_runs.submit(self._flow_run, meeting_id)

    def schedule_advance(self, meeting_id: str) -> None:
        """A Prefect task run of the advance once Prefect answers; until then, here."""
        if self._answered.is_set():
            schedule_advance(meeting_id)
        else:
            self._advances.submit(self._advance_here, meeting_id)

    def _flow_run(self, meeting_id: str) -> None:
        self._answered.wait()
        if not self._stopping:
            _run_meeting_flow(meeting_id)

    def _advance_here(self, meeting_id: str) -> None:
        try:
            workflow.advance_meeting(self.services, meeting_id)
        except Exception:  # the reconciler comes back to it, as to a failed task run
            log.exception("advancing %s before Prefect answered failed", meeting_id)

    def close(self) -> None:
        """Drop what has not started; flow runs waiting for Prefect give up."""
        self._stopping = True
        self._answered.set()
        self._flow_runs.shutdown(wait=False, cancel_futures=True)
        self._advances.shutdown(wait=False, cancel_futures=True)


async def _orchestrate(
    services: Services, handover: Handover, server: uvicorn.Server, begun: float
) -> None:
    """Once Prefect answers: the deployments, Prefect's runner and task worker and the
    reconciler (which moves on every meeting with work: what was recorded before
    Prefect answered is handed to it now); then meetings go to Prefect. Runs until
    cancelled; if Prefect never answers, stops the service and raises why."""
    from prefect.runner import Runner
    from prefect.task_worker import aserve

    from justering.orchestration.flows import advance_meeting, deliver_webhooks

    try:
        period = reconcile_seconds()
        api_url = os.environ.get("PREFECT_API_URL")
        if api_url:  # the demo starts its Prefect server beside this process
            await asyncio.to_thread(wait_for_prefect, api_url)
        answered = time.monotonic() - begun
        # Several serve processes share one Prefect server: a schedule paused by one
        # that stops would stop the deadline passes of all.
        runner = Runner(name="justering", query_seconds=1, limit=4, pause_on_shutdown=False)
        meetings, passes = await served_deployments(passes_paused=deadline_passes_paused())
        await runner.aadd_deployment(meetings)
        dropped = await drop_missed_passes(await runner.aadd_deployment(passes))
        if dropped:
            log.info("%d deadline passes missed while no service ran were cancelled", dropped)
    except Exception:
        log.exception("Prefect's part of the service could not start; stopping")
        server.should_exit = True
        raise
    # Prefect's runner and task worker take over SIGTERM as they start; the service
    # stops as it did (uvicorn's graceful stop, or the command's own interruption
    # before it serves), and cancels them.
    stop_signal = signal.getsignal(signal.SIGTERM)
    jobs = [
        asyncio.create_task(runner.start(), name="prefect-runner"),
        asyncio.create_task(aserve(advance_meeting, deliver_webhooks, limit=4), name="task-worker"),
        asyncio.create_task(_reconcile(services, period), name="reconciler"),
    ]
    for job in jobs:
        job.add_done_callback(_log_if_failed)
    await asyncio.sleep(0)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop_signal)
    handover.prefect_answered()
    log.info(
        "Prefect answered after %.1f s; its runner and task worker started after %.1f s",
        answered,
        time.monotonic() - begun,
    )
    ui_url = os.environ.get("PREFECT_UI_URL")
    if ui_url:
        log.info("Prefect UI: %s (flow runs by meeting; the deadline pass)", ui_url)
    try:
        await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)


def _log_if_failed(job: asyncio.Task[None]) -> None:
    if not job.cancelled() and (error := job.exception()) is not None:
        log.error("%s stopped: %r", job.get_name(), error, exc_info=error)


async def _serve(settings: Settings, listener: socket.socket) -> None:
    begun = time.monotonic()
    deadline_passes_paused()  # a wrong setting is refused before anything starts
    reconcile_seconds()
    # The worker processes first: drafting and signing wait for them, while the rest
    # (Prefect's imports, the web app's) is done beside their start.
    workers = start_workers(settings, worker_count())
    try:
        await _serve_with(settings, listener, workers, begun)
    finally:
        workers.shutdown()


async def _serve_with(
    settings: Settings, listener: socket.socket, workers: Workers, begun: float
) -> None:
    from justering.orchestration.flows import install_services
    from justering.web.app import Hooks, create_app

    warn_unless_parameters_are_shared(settings)
    svc = replace(open_services(settings), workers=workers)
    install_services(svc)
    handover = Handover(svc)
    hooks = Hooks(
        meeting_recorded=handover.meeting_recorded, schedule_advance=handover.schedule_advance
    )
    app = create_app(svc, hooks)
    host, port = listener.getsockname()[:2]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,  # link tokens are in the paths: no access log with them
            proxy_headers=False,  # the app trusts only the configured proxies (web.app)
        )
    )
    orchestration = asyncio.create_task(
        _orchestrate(svc, handover, server, begun), name="orchestration"
    )
    try:
        # The worker processes started beside all this; serve once they can work (a
        # request then never waits for their imports and warm-up).
        await asyncio.to_thread(workers.wait_started, WORKER_START_SECONDS)
        log.info(
            "started in %.1f s (%d worker processes ready; Prefect %s)",
            time.monotonic() - begun,
            workers.count,
            "answers" if handover.prefect_answers else "not answering yet: advances run here",
        )
        log.info("justering serving on http://%s:%d (public %s)", host, port, settings.public_url)
        await server.serve(sockets=[listener])
    finally:
        orchestration.cancel()
        await asyncio.gather(orchestration, return_exceptions=True)
        install_services(None)
        handover.close()
    if not orchestration.cancelled() and (error := orchestration.exception()) is not None:
        raise error  # Prefect's part could not start: the service stopped for it


def run_service(settings: Settings, listener: socket.socket) -> None:
    """Serve on ``listener`` (:func:`listen`) until SIGINT/SIGTERM. The environment
    must already point at Prefect.

    SIGTERM stops it as SIGINT does (Prefect's task worker, should it stop by
    raising, too); every step is one ledger transaction, so stopping anywhere loses
    nothing.
    """
    try:
        asyncio.run(_serve(settings, listener))
    except KeyboardInterrupt:
        log.info("justering stopped")
    except Exception as error:
        from prefect.task_worker import StopTaskWorker  # imported by now: no cost

        if not isinstance(error, StopTaskWorker):
            raise
        log.info("justering stopped")
