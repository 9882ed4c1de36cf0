"""What a signer's link grants and shows: the documents it was issued for (the
protocol and extracts), where each stands for its signer, their current text (for
the page to show as text), and the checks every use of a link makes (its version,
the signer's turn)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from justering.errors import (
    LinkError,
    LinkProblem,
    Refusal,
    TrailError,
    WorkflowError,
)
from justering.ledger.extracts import (
    append_signer_event,
    event_rows,
    get_extract,
    last_event,
    load_document,
    lock_extract,
    signed_slots,
)
from justering.ledger.links import claim_link, find_link, grants_of, hash_token
from justering.ledger.schema import ExtractRow, LinkGrantRow, LinkTokenRow, aware_utc
from justering.model.extract import ExtractSummary
from justering.model.meeting import Meeting
from justering.model.minutes import Paragraph
from justering.model.process import SIGNATURE_EVENTS, ExtractStatus
from justering.model.roles import Person, Role, Signer
from justering.model.trail import EventKind
from justering.workflow.meetings import load_meeting, secretary_of
from justering.workflow.protocols import current_paragraphs, shown_in
from justering.workflow.services import Services

__all__ = [
    "MAX_USER_AGENT",
    "GrantState",
    "GrantedExtract",
    "LinkView",
    "check_turn",
    "close_if_done",
    "grant_for",
    "grant_state",
    "link_contact",
    "link_document",
    "link_signer",
    "signer_of",
    "stored_document",
    "view_link",
]

log = logging.getLogger(__name__)


class GrantState(StrEnum):
    """Where one extract a link grants stands, for the link's signer."""

    PENDING = "pending"
    """The signer's turn: it can be signed or declined now."""
    SIGNED = "signed"
    """Signed by this signer (on the version the link grants)."""
    DECLINED = "declined"
    """Declined (by this or another signer): it goes back to the secretary."""
    REPLACED = "replaced"
    """Redrafted since the link was sent; the new version gets a new link."""
    HELD = "held"
    """A protocol waiting for a declined paragraph's redraft: nobody signs it now."""
    NOT_YOUR_TURN = "not_your_turn"

    @property
    def done(self) -> bool:
        """Nothing more for this signer to do on it through this link."""
        return self in (GrantState.SIGNED, GrantState.DECLINED, GrantState.REPLACED)

    @property
    def readable(self) -> bool:
        """The link still shows the document (the version it was issued for)."""
        return self in (
            GrantState.PENDING,
            GrantState.SIGNED,
            GrantState.HELD,
            GrantState.NOT_YOUR_TURN,
        )


@dataclass(frozen=True)
class GrantedExtract:
    """One document behind a link (an extract or a protocol), where it stands for the
    link's signer, and the paragraphs it shows as their current version reads (the
    same text as its PDF, for the page to show as text)."""

    extract: ExtractSummary
    state: GrantState
    paragraphs: tuple[Paragraph, ...] = ()


@dataclass(frozen=True)
class LinkView:
    """What a signer sees behind a link: the documents it grants, what is under
    omedelbar justering first, then the protocol, then the extracts."""

    signer: Signer
    meeting: Meeting
    expires_at: dt.datetime
    extracts: tuple[GrantedExtract, ...]

    @property
    def pending(self) -> tuple[GrantedExtract, ...]:
        return tuple(e for e in self.extracts if e.state is GrantState.PENDING)


def signer_of(meeting: Meeting, link: LinkTokenRow) -> Signer:
    """The signer a (signer's) link was issued to."""
    role = Role(link.role)
    for signer in meeting.signers(role):
        if signer.slot == link.slot:
            return signer
    return Signer(Person(link.signer_name, link.signer_email), role)


def link_signer(session: Session, token: str) -> tuple[LinkTokenRow, Meeting, Signer]:
    """A usable signer link (not a secretary's), its meeting and its signer."""
    link = find_link(session, token)
    meeting = load_meeting(session, link.meeting_id)
    return link, meeting, signer_of(meeting, link)


def grant_state(session: Session, extract: ExtractRow, version: int, signer: Signer) -> GrantState:
    events = [row for row in event_rows(session, extract.id) if row.version == version]
    if any(row.kind in SIGNATURE_EVENTS and row.slot == signer.slot for row in events):
        return GrantState.SIGNED
    if any(row.kind == EventKind.DECLINED for row in events):
        return GrantState.DECLINED
    if extract.version != version:
        return GrantState.REPLACED
    if extract.status is ExtractStatus.HELD:
        return GrantState.HELD
    if extract.status is not ExtractStatus.awaiting(signer.role):
        return GrantState.NOT_YOUR_TURN
    return GrantState.PENDING


MAX_USER_AGENT = 200
"""How much of a client's User-Agent the trail keeps."""


def view_link(services: Services, token: str, *, user_agent: str | None = None) -> LinkView:
    """Check a link and record that it was opened, for each extract waiting for its
    signer. The trail says only what is known: the link was opened by a client
    (``user_agent``, e.g. a browser or a mail scanner), not that the signer read it."""
    with services.ledger.transaction() as session:
        link, meeting, signer = link_signer(session, token)
        texts = current_paragraphs(session, meeting)
        extracts = []
        client = _printable(user_agent or "")[:MAX_USER_AGENT] or "okänd"
        for grant in grants_of(session, link.token_hash):
            extract = lock_extract(session, grant.extract_id)
            state = grant_state(session, extract, grant.version, signer)
            summary = extract.summary(immediate=extract.paragraph in meeting.immediate_numbers)
            shown = (
                shown_in(meeting, extract.kind)
                if extract.kind.is_protocol
                else (extract.paragraph,)
            )
            extracts.append(GrantedExtract(summary, state, tuple(texts[n] for n in shown)))
            if state is not GrantState.PENDING:
                continue
            last = last_event(session, extract.id)
            if (
                last
                and last.kind == EventKind.VIEWED
                and last.slot == signer.slot
                and last.detail.get("user_agent") == client
            ):
                continue  # a reload by the same client: the trail already says so
            append_signer_event(
                session, extract, EventKind.VIEWED, signer, detail={"user_agent": client}
            )
        if all(e.state.done for e in extracts):
            # Nothing waits for this signer any more: say why (changed, declined, signed).
            grant = grants_of(session, link.token_hash)[0]
            extract = lock_extract(session, grant.extract_id)
            check_turn(session, extract, grant.version, signer)
        extracts.sort(
            key=lambda e: (not e.extract.immediate, not e.extract.is_protocol, e.extract.paragraph)
        )
        return LinkView(signer, meeting, aware_utc(link.expires_at), tuple(extracts))


def _printable(text: str) -> str:
    """``text`` without control characters (a header is not to be trusted)."""
    return "".join(c for c in text if c.isprintable())


def link_contact(services: Services, token: str) -> Person | None:
    """Whom the holder of ``token`` should contact (the body's secretary), whatever
    state the link is in: an expired or used link's page names them. None for a token
    that is no link at all."""
    with services.ledger.reading() as session:
        row = session.get(LinkTokenRow, hash_token(token)) if len(token) <= 100 else None
        if row is None:
            return None
        return secretary_of(load_meeting(session, row.meeting_id), services.settings)


def link_document(services: Services, token: str, extract_id: int) -> bytes:
    """The current PDF of one extract the link grants (for reading before signing)."""
    with services.ledger.reading() as session:
        link = find_link(session, token)
        grant = grant_for(session, link, extract_id)
        extract = get_extract(session, extract_id)
        check_version(extract, grant.version)
        return stored_document(session, extract)


def grant_for(session: Session, link: LinkTokenRow, extract_id: int) -> LinkGrantRow:
    grant = next(
        (g for g in grants_of(session, link.token_hash) if g.extract_id == extract_id), None
    )
    if grant is None:
        raise LinkError(LinkProblem.NOT_GRANTED)
    return grant


def close_if_done(session: Session, link: LinkTokenRow, signer: Signer) -> int:
    """Mark the link used once nothing it grants waits for its signer any more; how
    many extracts still wait."""
    waiting = 0
    for grant in grants_of(session, link.token_hash):
        extract = get_extract(session, grant.extract_id)
        waiting += grant_state(session, extract, grant.version, signer) is GrantState.PENDING
    if not waiting:
        claim_link(session, link)
    return waiting


def check_version(extract: ExtractRow, version: int) -> None:
    """A link grants the version it was issued for; a redrafted extract needs a new one."""
    if extract.version != version:
        raise LinkError(LinkProblem.REPLACED, paragraph=extract.paragraph)


def check_turn(session: Session, extract: ExtractRow, version: int, signer: Signer) -> None:
    """Refuse unless ``signer`` may sign (or decline) this version of the extract now."""
    check_version(extract, version)
    if extract.status is ExtractStatus.DECLINED:
        raise WorkflowError(Refusal.DECLINED, paragraph=extract.paragraph)
    if extract.status is ExtractStatus.HELD:
        raise WorkflowError(Refusal.PROTOCOL_HELD)
    if signer.slot in signed_slots(session, extract):
        raise WorkflowError(Refusal.ALREADY_SIGNED, paragraph=extract.paragraph)
    if extract.status is not ExtractStatus.awaiting(signer.role):
        raise WorkflowError(
            Refusal.NOT_YOUR_TURN, paragraph=extract.paragraph, detail=extract.status.value
        )


def stored_document(session: Session, extract: ExtractRow) -> bytes:
    """The extract's current document, refused if it was altered in the ledger."""
    try:
        return load_document(session, extract.head_sha256)
    except TrailError as error:
        log.error("§ %s of %s: %s", extract.paragraph, extract.meeting_id, error.diagnostics())
        raise WorkflowError(Refusal.TAMPERED, paragraph=extract.paragraph) from None
