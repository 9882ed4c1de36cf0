"""The flows' old home, kept so that flow runs scheduled on a shared Prefect
server before the move (entrypoint ``justering_flows.pipeline:…``) still load.
The flows live in :mod:`justering.orchestration.flows`."""

from justering.orchestration.flows import advance_meeting, draft_extracts, meeting_ended

__all__ = ["advance_meeting", "draft_extracts", "meeting_ended"]
