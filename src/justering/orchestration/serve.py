"""``justering serve``: the web app, the Prefect runner for the ``meeting-ended``
flow and the scheduled deadline pass (:mod:`justering.orchestration.deployments`)
and the task worker for ``advance-meeting``, in one long-running process.

Scale-out runs more of these against one Prefect server and one PostgreSQL
ledger; every step checks the ledger, so they never step on each other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import uvicorn

from justering.config import Settings
from justering.documents.rendering import render_extract
from justering.errors import ConfigError
from justering.model.manifest import load_sample_meeting
from justering.model.roles import Role
from justering.orchestration import listening
from justering.orchestration.deployments import (
    deadline_passes_paused,
    drop_missed_passes,
    served_deployments,
    trigger_meeting,
)
from justering.pades.ca import SigningCA
from justering.pades.sign import sign_extract
from justering.web.app import Hooks, create_app
from justering.workflow.archiving import start_archive_workers
from justering.workflow.mailing import send_queued_mail
from justering.workflow.services import Services, open_services
from justering.workflow.status import meetings_needing_work

__all__ = [
    "RECONCILE_SECONDS",
    "archive_workers",
    "listen",
    "reconcile_seconds",
    "run_service",
    "schedule_advance",
    "warm_up",
    "warn_unless_parameters_are_shared",
]

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 15.0
"""The reconciler's period unless ``JUSTERING_RECONCILE_SECONDS`` says otherwise."""


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
    died before it was marked sent."""
    from justering.orchestration.flows import schedule_webhooks

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


def archive_workers() -> int:
    """Worker processes for archiving: ``JUSTERING_ARCHIVE_WORKERS``, else one per core."""
    value = os.environ.get("JUSTERING_ARCHIVE_WORKERS", "")
    if value.isdigit() and int(value) >= 1:
        return int(value)
    return max(1, os.cpu_count() or 1)


def warm_up() -> None:
    """Render and sign a throwaway extract, so that the first signer of the day does
    not wait for fonts and pyHanko to load (about half a second per process). The
    certificate comes from a throwaway CA: the real one issues only for real signers."""
    with tempfile.TemporaryDirectory() as directory:
        meeting = load_sample_meeting()
        signer = meeting.signers(Role.CHAIR)[0]
        ca = SigningCA.create(Path(directory) / "ca", organisation="uppvärmning")
        sign_extract(
            render_extract(meeting, meeting.paragraphs[0]),
            ca.issue(signer, organisation="uppvärmning"),
            signer,
            adjuster_count=len(meeting.adjusters),
        )


async def _serve(settings: Settings, listener: socket.socket) -> None:
    from prefect.runner import Runner
    from prefect.task_worker import aserve

    from justering.orchestration.flows import (
        advance_meeting,
        deliver_webhooks,
        install_services,
        meeting_label_of,
    )

    period = reconcile_seconds()
    passes_paused = deadline_passes_paused()
    warn_unless_parameters_are_shared(settings)
    pool = start_archive_workers(settings, archive_workers())
    svc = replace(open_services(settings), archive_pool=pool)
    install_services(svc)
    await asyncio.to_thread(warm_up)

    def meeting_recorded(meeting_id: str) -> None:
        trigger_meeting(meeting_id, label=meeting_label_of(meeting_id, svc))

    app = create_app(
        svc, Hooks(meeting_recorded=meeting_recorded, schedule_advance=schedule_advance)
    )
    # Several serve processes share one Prefect server: a schedule paused by one that
    # stops would stop the deadline passes of all.
    runner = Runner(name="justering", query_seconds=1, limit=4, pause_on_shutdown=False)
    meetings, passes = await served_deployments(passes_paused=passes_paused)
    await runner.aadd_deployment(meetings)
    dropped = await drop_missed_passes(await runner.aadd_deployment(passes))
    if dropped:
        log.info("%d deadline passes missed while no service ran were cancelled", dropped)
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
    background = [
        asyncio.create_task(runner.start(), name="prefect-runner"),
        asyncio.create_task(aserve(advance_meeting, deliver_webhooks, limit=4), name="task-worker"),
        asyncio.create_task(_reconcile(svc, period), name="reconciler"),
    ]
    # Let Prefect's runner and task worker start (and install their SIGTERM handlers)
    # before uvicorn starts serving; on SIGTERM the task worker then raises
    # StopTaskWorker out of the loop, which run_service takes as the stop (observed:
    # without this, uvicorn logged the stop as an error with a traceback).
    await asyncio.sleep(0)
    log.info("justering serving on http://%s:%d (public %s)", host, port, settings.public_url)
    ui_url = os.environ.get("PREFECT_UI_URL")
    if ui_url:
        log.info("Prefect UI: %s (flow runs by meeting; the deadline pass)", ui_url)
    try:
        await server.serve(sockets=[listener])
    finally:
        for job in background:
            job.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        install_services(None)
        pool.shutdown(wait=False, cancel_futures=True)


def run_service(settings: Settings, listener: socket.socket) -> None:
    """Serve on ``listener`` (:func:`listen`) until SIGINT/SIGTERM. The environment
    must already point at Prefect.

    Prefect's task worker takes over SIGTERM and stops by raising; every step
    is one ledger transaction, so stopping anywhere loses nothing.
    """
    from prefect.task_worker import StopTaskWorker

    try:
        asyncio.run(_serve(settings, listener))
    except (StopTaskWorker, KeyboardInterrupt):
        log.info("justering stopped")
