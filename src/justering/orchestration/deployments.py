"""The Prefect deployments ``justering serve`` serves, and how their runs start.

- ``meeting-ended/justering``: started for each recorded meeting
  (:func:`trigger_meeting`), its run named after the meeting;
- ``deadline-pass/justering``: the deadline pass (reminders before the justering
  deadline, the secretary's notice after it) on a schedule every quarter of an
  hour, visible (and pausable) in Prefect's UI.

A schedule keeps making runs while no ``serve`` is running; a service that comes
back after hours does not run every pass it missed (the pass is idempotent and
looks at today, so one run covers them all): :func:`drop_missed_passes` cancels all
but the newest that are overdue, and that one runs at once.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from justering.errors import ConfigError
from justering.model.calendar import SWEDISH_TIME

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.deployments.runner import RunnerDeployment

__all__ = [
    "DEADLINE_DEPLOYMENT",
    "DEADLINE_PASS_ANCHOR",
    "DEADLINE_PASS_EVERY",
    "DEPLOYMENT_NAME",
    "MEETING_DEPLOYMENT",
    "deadline_passes_paused",
    "drop_missed_passes",
    "served_deployments",
    "trigger_meeting",
]

DEPLOYMENT_NAME = "justering"
MEETING_DEPLOYMENT = f"meeting-ended/{DEPLOYMENT_NAME}"
DEADLINE_DEPLOYMENT = f"deadline-pass/{DEPLOYMENT_NAME}"
DEADLINE_PASS_EVERY = dt.timedelta(minutes=15)
"""Reminders are due per day; a pass every quarter of an hour sends them promptly."""
DEADLINE_PASS_ANCHOR = dt.datetime(2024, 1, 1, tzinfo=SWEDISH_TIME)
"""Passes run on the quarter hours (Swedish time), whenever a service started."""


def deadline_passes_paused(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the deadline pass's schedule starts paused: ``JUSTERING_DEADLINE_PASSES``
    ``paused`` (the demo and the bench: their sample meeting of 2014 is long past its
    deadline, and a pass in the middle of a run would tell its secretary so), else
    ``on`` (the default). Paused, it is still shown in Prefect's UI and may be resumed
    there."""
    text = (os.environ if environ is None else environ).get("JUSTERING_DEADLINE_PASSES", "")
    value = text.strip().lower() or "on"
    if value not in ("on", "paused"):
        raise ConfigError(f"JUSTERING_DEADLINE_PASSES: expected 'on' or 'paused', got {text!r}")
    return value == "paused"


def trigger_meeting(meeting_id: str, *, label: str | None = None) -> None:
    """Start the ``meeting-ended`` flow for a recorded meeting (returns at once);
    ``label`` names the run (:func:`justering.orchestration.flows.meeting_label`)."""
    from prefect.deployments import run_deployment

    run_deployment(
        MEETING_DEPLOYMENT,
        parameters={"meeting_id": meeting_id},
        flow_run_name=label or meeting_id,
        timeout=0,
    )


async def served_deployments(
    *, passes_paused: bool = False
) -> tuple[RunnerDeployment, RunnerDeployment]:
    """The meeting flow's deployment and the deadline pass's, with its schedule
    (created paused with ``passes_paused``: :func:`deadline_passes_paused`)."""
    from prefect.schedules import Interval
    from prefect.types.entrypoint import EntrypointType

    from justering.orchestration.flows import deadline_pass, meeting_ended

    meetings = await meeting_ended.ato_deployment(
        name=DEPLOYMENT_NAME,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description="A recorded meeting: draft its extracts, ask the chair to sign.",
    )
    passes = await deadline_pass.ato_deployment(
        name=DEPLOYMENT_NAME,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description=(
            "Remind signers before the justering deadline; tell the secretary once it "
            "has passed. Idempotent: pausing it delays reminders, running it again "
            "sends nothing twice."
        ),
        schedule=Interval(
            DEADLINE_PASS_EVERY,
            anchor_date=DEADLINE_PASS_ANCHOR,
            timezone=str(SWEDISH_TIME),
            slug="every-quarter-hour",
            active=not passes_paused,
        ),
    )
    return meetings, passes


async def drop_missed_passes(deployment_id: UUID, *, now: dt.datetime | None = None) -> int:
    """Cancel the scheduled runs of the deadline pass that were due before ``now``,
    all but the newest (which then runs at once); how many were cancelled."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Cancelled

    before = now or dt.datetime.now(dt.UTC)
    newest: UUID | None = None
    cancelled = 0
    async with get_client() as client:
        while True:  # a page at a time: a long outage leaves hundreds
            page: list[Any] = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    ),
                    expected_start_time=FlowRunFilterExpectedStartTime.model_validate(
                        {"before_": before}
                    ),
                ),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            )
            if newest is None and page:
                newest = page[0].id
            missed = [run for run in page if run.id != newest]
            if not missed:
                return cancelled
            for run in missed:
                await client.set_flow_run_state(
                    run.id,
                    Cancelled(message="missed while no service ran; a later pass covers it"),
                    force=True,
                )
                cancelled += 1
