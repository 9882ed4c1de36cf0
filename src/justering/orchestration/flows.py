"""The extract pipeline and the deadline pass as Prefect flows and tasks.

No business rule lives here: each task calls one function of
:mod:`justering.workflow`, which checks the ledger before it acts, so a retry,
a replay or a Prefect UI "Resume" cannot move an extract out of turn.

Waiting for signers costs nothing: no run exists while a signer has not yet
acted. The web app records each signature in the ledger and schedules
``advance_meeting`` as a background task, which a task worker in ``justering
serve`` picks up within milliseconds (no new process, no polling). Prefect's
per-run costs are therefore per meeting and stage, not per extract.

Runs are named after their meeting (``KSAU 2014-08-19 (nacka-ksau-2014-08-19)``,
``advance KSAU 2014-08-19 (…)``), so Prefect's UI reads as a list of meetings.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, cast

__all__ = [
    "advance_meeting",
    "deadline_pass",
    "deliver_webhooks",
    "draft_extracts",
    "install_services",
    "meeting_ended",
    "meeting_label",
    "meeting_label_of",
    "process_services",
    "schedule_webhooks",
]

from prefect import flow, task

from justering import workflow
from justering.config import load_settings
from justering.ledger.webhooks import has_due
from justering.model.calendar import local_minute
from justering.model.meeting import Meeting
from justering.workflow import deadlines, webhooks

if TYPE_CHECKING:
    from prefect.tasks import TaskRunNameCallbackWithParameters

log = logging.getLogger(__name__)


class _ThisProcess:
    services: workflow.Services | None = None


def process_services() -> workflow.Services:
    """The services the tasks of this process act with: those ``justering serve``
    installed (:func:`install_services`), else opened from the environment
    (``JUSTERING_HOME`` …) on first use."""
    if _ThisProcess.services is None:
        _ThisProcess.services = workflow.open_services(load_settings())
    return _ThisProcess.services


def install_services(services: workflow.Services | None) -> None:
    """Make ``services`` (with the archive workers of ``justering serve``) the
    services this process's tasks act with; None forgets them."""
    _ThisProcess.services = services


# --- names in Prefect's UI ------------------------------------------------------------------


def meeting_label(meeting: Meeting) -> str:
    """How a meeting's runs are named: body code, date and meeting id."""
    return f"{meeting.body.code} {meeting.date.isoformat()} ({meeting.meeting_id})"


def meeting_label_of(meeting_id: str, services: workflow.Services | None = None) -> str:
    """:func:`meeting_label` of a recorded meeting, or the bare id when it cannot be
    read: a run's name never stops the run."""
    try:
        return meeting_label(workflow.get_meeting(services or process_services(), meeting_id))
    except Exception:  # unknown meeting, ledger unreachable: the step itself will say
        log.debug("no label for meeting %s", meeting_id, exc_info=True)
        return meeting_id


def _meeting_run_name() -> str:
    from prefect.runtime import flow_run

    return meeting_label_of(str(flow_run.parameters.get("meeting_id", "")))


def _task_run_name(verb: str) -> TaskRunNameCallbackWithParameters:
    """A task run's name from its ``meeting_id`` parameter (Prefect passes the
    parameters to a callable whose argument is called ``parameters``)."""

    def name(parameters: dict[str, Any]) -> str:
        return f"{verb} {meeting_label_of(str(parameters.get('meeting_id', '')))}"

    # Prefect's protocol also lists its own classmethod, which no function has.
    return cast("TaskRunNameCallbackWithParameters", name)


def _deadline_run_name() -> str:
    from prefect.runtime import flow_run

    scheduled = flow_run.scheduled_start_time
    moment = scheduled if isinstance(scheduled, dt.datetime) else dt.datetime.now(dt.UTC)
    return f"deadline pass {local_minute(moment)}"


# --- the pipeline ---------------------------------------------------------------------------


@task(
    name="draft-extracts",
    task_run_name=_task_run_name("draft"),
    retries=2,
    retry_delay_seconds=2,
)
def draft_extracts(meeting_id: str) -> list[int]:
    """Draft every paragraph of the meeting. One task run for all of them keeps
    Prefect's per-run cost off the per-extract path; a retry redrafts nothing
    that was drafted, and a process already drafting the meeting is left to it."""
    return list(workflow.draft_meeting(process_services(), meeting_id) or ())


@task(
    name="advance-meeting",
    task_run_name=_task_run_name("advance"),
    retries=2,
    retry_delay_seconds=[2, 10],
)
def advance_meeting(meeting_id: str) -> dict[str, Any]:
    """Notify whoever's turn has come and archive what is certified (idempotent).

    What fails in a step (a message, an archive write) does not raise: the meeting
    backs off in the ledger and the reconciler comes back to it, so a stuck meeting
    never fills the task worker with retries. Retries here are for the unexpected
    (the ledger unreachable for a moment)."""
    report = workflow.advance_meeting(process_services(), meeting_id)
    schedule_webhooks()  # what the signature that scheduled us, and this advance, queued
    return {
        "drafted": list(report.drafted),
        "notified": list(report.notified),
        "archived": list(report.archived),
        "remaining": report.remaining,
        "complete": report.complete,
        "failed": list(report.failed),
    }


@task(name="deliver-webhooks", task_run_name="deliver webhooks")
def deliver_webhooks() -> dict[str, list[str]]:
    """Post the meeting systems' webhooks that are due, outside any meeting's lock
    (:func:`justering.workflow.webhooks.deliver_webhooks`: safe in several processes
    at once; what fails backs off in the ledger and the reconciler comes back to it,
    so no Prefect retries)."""
    report = webhooks.deliver_webhooks(process_services().ledger)
    return {
        "delivered": list(report.delivered),
        "retrying": list(report.retrying),
        "failed": list(report.failed),
    }


def schedule_webhooks() -> bool:
    """Hand the due webhooks to the task worker (:func:`deliver_webhooks`), if any are
    due; never fails the caller (the reconciler comes back to them). Whether it did."""
    try:
        if not has_due(process_services().ledger):
            return False
        deliver_webhooks.delay()
    except Exception:  # Prefect unreachable for a moment: the reconciler retries
        log.warning("webhook delivery not scheduled; the reconciler will", exc_info=True)
        return False
    return True


@flow(name="meeting-ended", flow_run_name=_meeting_run_name, log_prints=True)
def meeting_ended(meeting_id: str) -> dict[str, Any]:
    """A meeting recorded in the ledger: draft every extract, notify the chair."""
    drafted = draft_extracts(meeting_id)
    print(f"{len(drafted)} extracts drafted for {meeting_id}")
    return advance_meeting(meeting_id)


# --- the deadline pass ----------------------------------------------------------------------


@flow(name="deadline-pass", flow_run_name=_deadline_run_name, log_prints=True)
def deadline_pass() -> dict[str, list[str]]:
    """Remind signers as the justering deadline nears and tell the secretary once it
    has passed (:func:`justering.workflow.deadlines.send_due_reminders`: idempotent,
    safe in several processes at once). ``justering serve`` serves it on a schedule."""
    report = deadlines.send_due_reminders(process_services())
    if report.reminded or report.escalated:
        print(f"reminded {list(report.reminded)}; overdue notices for {list(report.escalated)}")
    if report.failed:
        print(f"not handled now, retried next pass: {list(report.failed)}")
    return {
        "reminded": list(report.reminded),
        "escalated": list(report.escalated),
        "failed": list(report.failed),
    }
