"""The extract pipeline as Prefect flows and tasks.

No business rule lives here: each task calls one function of
:mod:`justering.workflow`, which checks the ledger before it acts, so a retry,
a replay or a Prefect UI "Resume" cannot move an extract out of turn.

Waiting for signers costs nothing: no run exists while a signer has not yet
acted. The web app records each signature in the ledger and schedules
``advance_meeting`` as a background task, which a task worker in ``justering
serve`` picks up within milliseconds (no new process, no polling). Prefect's
per-run costs are therefore per meeting and stage, not per extract.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "advance_meeting",
    "draft_extracts",
    "install_services",
    "meeting_ended",
    "process_services",
]

from prefect import flow, task

from justering import workflow
from justering.config import load_settings


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


@task(name="draft-extracts", retries=2, retry_delay_seconds=2)
def draft_extracts(meeting_id: str) -> list[int]:
    """Draft every paragraph of the meeting. One task run for all of them keeps
    Prefect's per-run cost off the per-extract path; a retry redrafts nothing
    that was drafted, and a process already drafting the meeting is left to it."""
    return list(workflow.draft_meeting(process_services(), meeting_id) or ())


@task(name="advance-meeting", retries=2, retry_delay_seconds=[2, 10])
def advance_meeting(meeting_id: str) -> dict[str, Any]:
    """Notify whoever's turn has come and archive what is certified (idempotent).

    What fails in a step (a message, an archive write) does not raise: the meeting
    backs off in the ledger and the reconciler comes back to it, so a stuck meeting
    never fills the task worker with retries. Retries here are for the unexpected
    (the ledger unreachable for a moment)."""
    report = workflow.advance_meeting(process_services(), meeting_id)
    return {
        "drafted": list(report.drafted),
        "notified": list(report.notified),
        "archived": list(report.archived),
        "remaining": report.remaining,
        "complete": report.complete,
        "failed": list(report.failed),
    }


@flow(name="meeting-ended", log_prints=True)
def meeting_ended(meeting_id: str) -> dict[str, Any]:
    """A meeting recorded in the ledger: draft every extract, notify the chair."""
    drafted = draft_extracts(meeting_id)
    print(f"{len(drafted)} extracts drafted for {meeting_id}")
    return advance_meeting(meeting_id)
