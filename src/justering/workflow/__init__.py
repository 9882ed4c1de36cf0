"""The workflow: the rules that move a meeting's protocol and extracts from drafting
through the chair and the adjusters (the justering, announced on the anslagstavla)
and the certifier to the archive.

The ledger is the authority: every step reads the extract's state from it,
checks that the step is allowed, and records what it did, in one transaction.
Orchestration (:mod:`justering.orchestration`) only decides *when* steps run;
running one twice does nothing new.

This package's public surface is what this module names; the modules behind it
are one step each (meetings, drafting, the protocols, advance, signer links,
signatures, declining, redraft, archiving, deadlines, the anslagstavla) or a
read-only view (a meeting's state, audit queries).
"""

from justering.workflow.advance import AdvanceReport, advance_meeting
from justering.workflow.archiving import archive_extract
from justering.workflow.declining import DeclineReceipt, decline_with_link
from justering.workflow.drafting import draft_extract, draft_meeting
from justering.workflow.meeting_view import MeetingView, meeting_view
from justering.workflow.meetings import deadline_of, get_meeting, record_meeting, secretary_of
from justering.workflow.redraft import RedraftResult, redraft_extract, redraft_with_link
from justering.workflow.services import Services, open_services
from justering.workflow.signatures import SigningReceipt, sign_with_link
from justering.workflow.signer_links import (
    GrantState,
    LinkView,
    link_contact,
    link_document,
    view_link,
)
from justering.workflow.status import (
    meeting_summaries,
    meetings_needing_work,
    protocol_summaries,
    unfinished_meetings,
)
from justering.workflow.workers import Workers, start_workers

__all__ = [
    "AdvanceReport",
    "DeclineReceipt",
    "GrantState",
    "LinkView",
    "MeetingView",
    "RedraftResult",
    "Services",
    "SigningReceipt",
    "Workers",
    "advance_meeting",
    "archive_extract",
    "deadline_of",
    "decline_with_link",
    "draft_extract",
    "draft_meeting",
    "get_meeting",
    "link_contact",
    "link_document",
    "meeting_summaries",
    "meeting_view",
    "meetings_needing_work",
    "open_services",
    "protocol_summaries",
    "record_meeting",
    "redraft_extract",
    "redraft_with_link",
    "secretary_of",
    "sign_with_link",
    "start_workers",
    "unfinished_meetings",
    "view_link",
]
