"""Declining a paragraph: a signer who finds it wrong declines it with a comment,
on its extract or, reading the protocol, on the protocol's copy of it.

The paragraph's extract goes back to the secretary (its status ``declined``), the
signatures on that version no longer count, every protocol that shows the paragraph
is held until the redraft (:mod:`justering.workflow.protocols`), and every link
that no longer lets anyone do anything is revoked; the meeting's other extracts
carry on. The secretary gets an e-mail with the comment and a link to the redraft
page (:mod:`justering.workflow.redraft`); the chair and the adjusters hear from the
next advance that the protocol waits.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from justering.errors import Refusal, WorkflowError
from justering.ledger.database import utcnow
from justering.ledger.extracts import (
    append_signer_event,
    get_extract,
    lock_extract,
    lock_meeting,
)
from justering.ledger.links import SECRETARY, grants_of, issue_secretary_link
from justering.ledger.schema import ExtractRow, LinkGrantRow, LinkTokenRow
from justering.mail.compose import ExtractLine, MeetingHeader
from justering.mail.notices import DeclineNotice
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Person, Signer
from justering.model.trail import EventKind
from justering.workflow.advance import request_work
from justering.workflow.identity import identified_signer
from justering.workflow.mailing import queue_mail, send_queued_mail
from justering.workflow.meetings import drafted_extract, secretary_of
from justering.workflow.protocols import (
    JUSTERED_STATUSES,
    hold_protocols,
    justering_kind,
    protocols_of,
    shown_in,
)
from justering.workflow.services import Services
from justering.workflow.signer_links import (
    GrantState,
    check_turn,
    close_if_done,
    grant_for,
    grant_state,
    signer_of,
)

__all__ = [
    "MAX_COMMENT_LENGTH",
    "DeclineReceipt",
    "clean_comment",
    "decline_with_link",
    "revoke_dead_links",
]

MAX_COMMENT_LENGTH = 2000


def clean_comment(comment: str) -> str:
    """The decline comment as recorded: required, bounded, line breaks kept, no
    control characters."""
    text = comment.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise WorkflowError(Refusal.COMMENT_MISSING)
    if len(text) > MAX_COMMENT_LENGTH:
        raise WorkflowError(
            Refusal.COMMENT_TOO_LONG, detail=f"{len(text)} characters, at most {MAX_COMMENT_LENGTH}"
        )
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise WorkflowError(Refusal.COMMENT_CONTROL_CHARACTERS)
    return text


@dataclass(frozen=True)
class DeclineReceipt:
    signer: Signer
    meeting_id: str
    paragraph: int
    dnr: str | None
    title: str
    version: int
    comment: str
    secretary: Person
    remaining: int = 0
    """Extracts the link still offers this signer."""


def decline_with_link(
    services: Services,
    token: str,
    extract_id: int,
    comment: str,
    *,
    paragraph: int | None = None,
    login: str | None = None,
    send_mail: bool = True,
) -> DeclineReceipt:
    """Decline, as the link's signer and with a required comment, one extract the link
    grants, or (``extract_id`` a protocol the link grants) § ``paragraph`` of it.

    In one transaction: the ``declined`` event (with the comment), the extract back
    to the secretary, the protocols that show the paragraph held, links that now
    grant nothing revoked, and the e-mail to the secretary with a redraft link,
    queued; with ``send_mail`` it is sent once that has committed (else the caller
    sends it; one that cannot leave now is retried, the decline stands). Refused
    when it is not the signer's turn on what they decline, and once the paragraph's
    protocol is justered. Where the body signs with e-legitimation, ``login`` must be
    the signer's login on this link, as for signing."""
    text = clean_comment(comment)
    with services.ledger.transaction() as session:
        who = identified_signer(session, services.settings, token, login)
        link, meeting, signer = who.link, who.meeting, who.signer
        lock_meeting(session, meeting.meeting_id)  # before the extract: one lock order
        grant = grant_for(session, link, extract_id)
        granted = lock_extract(session, extract_id)
        check_turn(session, granted, grant.version, signer)
        extract = _declined_extract(session, meeting, granted, paragraph)
        append_signer_event(session, extract, EventKind.DECLINED, signer, detail={"comment": text})
        extract.status = ExtractStatus.DECLINED
        extract.updated_at = utcnow()
        for protocol in hold_protocols(session, meeting, extract.paragraph, signer, utcnow()):
            revoke_dead_links(session, meeting, protocol.id, protocol.version)
        remaining = close_if_done(session, link, signer)
        revoke_dead_links(session, meeting, extract.id, extract.version)
        request_work(session, meeting.meeting_id)
        secretary = secretary_of(meeting, services.settings)
        _tell_secretary(session, services, meeting, extract, signer, text, secretary)
        receipt = DeclineReceipt(
            signer,
            meeting.meeting_id,
            extract.paragraph,
            extract.dnr,
            extract.title,
            extract.version,
            text,
            secretary,
            remaining,
        )
    if send_mail:
        send_queued_mail(services, meeting.meeting_id)
    return receipt


def _declined_extract(
    session: Session, meeting: Meeting, granted: ExtractRow, paragraph: int | None
) -> ExtractRow:
    """The extract a decline concerns: the granted one, or § ``paragraph`` of a granted
    protocol (locked). Refused when the paragraph's protocol is justered."""
    if granted.kind.is_protocol:
        if paragraph is None or paragraph not in shown_in(meeting, granted.kind):
            raise WorkflowError(
                Refusal.NOT_IN_PROTOCOL,
                detail=f"§ {paragraph}" if paragraph is not None else "no § given",
            )
        extract = lock_extract(session, drafted_extract(session, meeting.meeting_id, paragraph).id)
    else:
        extract = granted
    protocol = protocols_of(session, meeting.meeting_id).get(
        justering_kind(meeting, extract.paragraph)
    )
    justered = protocol is not None and protocol.status in JUSTERED_STATUSES
    if justered or not extract.status.redraftable or extract.status is ExtractStatus.DECLINED:
        refusal = (
            Refusal.DECLINED
            if extract.status is ExtractStatus.DECLINED
            else (Refusal.JUSTERING_COMPLETE)
        )
        raise WorkflowError(refusal, paragraph=extract.paragraph, detail=extract.status.value)
    return extract


def _tell_secretary(
    session: Session,
    services: Services,
    meeting: Meeting,
    extract: ExtractRow,
    signer: Signer,
    comment: str,
    secretary: Person,
) -> None:
    link = issue_secretary_link(
        session,
        meeting_id=meeting.meeting_id,
        secretary=secretary,
        extract=extract,
        ttl=services.settings.link_ttl,
    )
    queue_mail(
        session,
        services,
        DeclineNotice(
            to=secretary,
            meeting=MeetingHeader.of(meeting),
            declined_by=signer.name,
            declined_role=signer.role,
            extract=ExtractLine.of(
                extract.summary(immediate=extract.paragraph in meeting.immediate_numbers)
            ),
            version=extract.version,
            comment=comment,
            redraft_link=f"{services.settings.public_url}/r/{link.token}",
            expires_at=link.expires_at,
        ),
        meeting_id=meeting.meeting_id,
    )


def revoke_dead_links(session: Session, meeting: Meeting, extract_id: int, version: int) -> None:
    """Revoke every open link granting ``version`` of the extract that no longer lets
    anybody do anything (each of its extracts is declined, replaced or done)."""
    now = utcnow()
    links = session.execute(
        select(LinkTokenRow)
        .join(LinkGrantRow, LinkGrantRow.token_hash == LinkTokenRow.token_hash)
        .where(
            LinkGrantRow.extract_id == extract_id,
            LinkGrantRow.version == version,
            LinkTokenRow.used_at.is_(None),
            LinkTokenRow.revoked_at.is_(None),
        )
    ).scalars()
    for link in links:
        if link.role == SECRETARY:
            link.revoked_at = now
            continue
        signer = signer_of(meeting, link)
        alive = False
        for grant in grants_of(session, link.token_hash):
            extract = get_extract(session, grant.extract_id)
            alive |= grant_state(session, extract, grant.version, signer) is GrantState.PENDING
        if not alive:
            link.revoked_at = now
