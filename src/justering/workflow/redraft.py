"""Redrafting a declined extract: the corrected text becomes the next version,
drafted anew, and signing restarts from the chair. The trail keeps every
version, the comments and the corrected text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from justering.documents.fonts import refuse_unprintable
from justering.documents.rendering import render_extract
from justering.errors import ManifestError, NotFoundError, Refusal, WorkflowError
from justering.ledger.clients import client_meeting_id
from justering.ledger.database import utcnow
from justering.ledger.extracts import (
    append_event,
    event_rows,
    get_extract,
    lock_extract,
    lock_meeting,
    store_document,
)
from justering.ledger.links import claim_link, find_link, grants_of
from justering.ledger.schema import ExtractRow, LinkTokenRow, aware_utc
from justering.model.calendar import local_minute
from justering.model.manifest import parse_manifest
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.minutes import Paragraph
from justering.model.process import ExtractStatus
from justering.model.trail import EventKind
from justering.workflow.advance import request_work
from justering.workflow.declining import revoke_dead_links
from justering.workflow.meetings import drafted_extract, load_meeting
from justering.workflow.protocols import (
    JUSTERED_STATUSES,
    current_paragraphs,
    protocols_of,
    redraw_protocol,
    render_protocol_version,
    shown_in,
)
from justering.workflow.services import Services

__all__ = [
    "RedraftResult",
    "RedraftView",
    "current_text",
    "describe_current",
    "redraft_extract",
    "redraft_with_link",
    "view_redraft",
]


@dataclass(frozen=True)
class RedraftView:
    """What the secretary's redraft page shows."""

    meeting: Meeting
    extract_id: int
    paragraph: int
    dnr: str | None
    title: str
    text: str
    version: int
    status: ExtractStatus
    declines: tuple[tuple[str, str, dt.datetime], ...]
    """(who, comment, when) of every decline of the current version."""
    secretary_name: str
    expires_at: dt.datetime


def current_text(session: Session, meeting: Meeting, extract: ExtractRow) -> tuple[str, str]:
    """The (title, text) the extract's current version was drafted from."""
    for row in reversed(event_rows(session, extract.id)):
        if row.kind == EventKind.REDRAFTED and "text" in row.detail:
            return row.detail.get("title", extract.title), row.detail["text"]
    paragraph = meeting.paragraph(extract.paragraph)
    if paragraph is None:
        raise NotFoundError("paragraph", f"§ {extract.paragraph} of {meeting.meeting_id}")
    return paragraph.title, paragraph.text


def view_redraft(services: Services, token: str) -> RedraftView:
    with services.ledger.reading() as session:
        link = find_link(session, token, secretary=True)
        meeting = load_meeting(session, link.meeting_id)
        grant = grants_of(session, link.token_hash)[0]
        extract = get_extract(session, grant.extract_id)
        _check_redraftable(extract, grant.version)
        title, text = current_text(session, meeting, extract)
        declines = tuple(
            (row.actor, row.detail.get("comment", ""), aware_utc(row.at))
            for row in event_rows(session, extract.id)
            if row.kind == EventKind.DECLINED and row.version == extract.version
        )
        return RedraftView(
            meeting,
            extract.id,
            extract.paragraph,
            extract.dnr,
            title,
            text,
            extract.version,
            extract.status,
            declines,
            link.signer_name,
            aware_utc(link.expires_at),
        )


def describe_current(services: Services, meeting_id: str, paragraph_number: int) -> tuple[str, str]:
    """What ``justering redraft --show`` prints: a header (status, title, the
    declines' comments) and the current text, ready to edit and send back."""
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        extract = drafted_extract(session, meeting_id, paragraph_number)
        title, text = current_text(session, meeting, extract)
        comments = [
            f"# {row.actor} ({local_minute(aware_utc(row.at), zone=True)}): "
            + row.detail.get("comment", "").replace("\n", "\n#   ")
            for row in event_rows(session, extract.id)
            if row.kind == EventKind.DECLINED and row.version == extract.version
        ]
        header = [
            f"# § {extract.paragraph}{' ' + extract.dnr if extract.dnr else ''}, "
            f"version {extract.version}: {extract.status.swedish}",
            f"# rubrik: {title}",
            *comments,
        ]
    return "\n".join(header) + "\n", text.rstrip("\n") + "\n"


def _check_redraftable(extract: ExtractRow, version: int | None) -> None:
    if version is not None and extract.version != version:
        raise WorkflowError(
            Refusal.ALREADY_REDRAFTED,
            paragraph=extract.paragraph,
            detail=f"now version {extract.version}",
        )
    if not extract.status.redraftable:
        raise WorkflowError(
            Refusal.JUSTERING_COMPLETE, paragraph=extract.paragraph, detail=extract.status.value
        )


@dataclass(frozen=True)
class RedraftResult:
    meeting_id: str
    extract_id: int
    paragraph: int
    version: int
    document_sha256: str


def redraft_extract(
    services: Services,
    meeting_id: str,
    paragraph_number: int,
    *,
    text: str,
    title: str | None = None,
    actor: str,
    actor_email: str | None = None,
    expected_version: int | None = None,
    using_link: str | None = None,
) -> RedraftResult:
    """Draft the next version of an extract from corrected ``text`` (the paragraph's
    text as in the manifest's ``paragraphs[].text``) and, optionally, a new title, and
    the next version of every protocol that shows the paragraph.

    The text is checked as strictly as a manifest's (errors name the line or field);
    signing restarts from the chair, whose new link the next advance sends. Open
    links to the old versions are revoked. ``expected_version`` guards against
    redrafting twice from one form; ``using_link`` (a secretary link's hash) is used
    up in the same transaction. Refused once a protocol that shows the paragraph is
    justered. The documents are rendered outside any lock; a protocol re-rendered
    meanwhile (another paragraph redrafted) makes it render again."""
    for _attempt in range(MAX_REDRAFT_ATTEMPTS):
        plan = _plan_redraft(services, meeting_id, paragraph_number, text, title, expected_version)
        try:
            return _record_redraft(services, plan, actor, actor_email, using_link)
        except _ProtocolMoved:
            continue
    raise WorkflowError(Refusal.CHANGED_WHILE_SIGNING, paragraph=paragraph_number)


MAX_REDRAFT_ATTEMPTS = 3


class _ProtocolMoved(Exception):
    """A protocol got a new version between rendering and recording."""


@dataclass(frozen=True)
class _RedraftPlan:
    meeting: Meeting
    extract_id: int
    version: int
    paragraph: Paragraph
    pdf: bytes
    protocols: tuple[tuple[int, int, bytes], ...]
    """(id, current version, the next version's PDF) of each protocol showing it."""


def _plan_redraft(
    services: Services,
    meeting_id: str,
    paragraph_number: int,
    text: str,
    title: str | None,
    expected_version: int | None,
) -> _RedraftPlan:
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        row = drafted_extract(session, meeting_id, paragraph_number)
        _check_redraftable(row, expected_version)
        old_title, _ = current_text(session, meeting, row)
        paragraphs = current_paragraphs(session, meeting)
        protocols = [
            protocol
            for kind, protocol in protocols_of(session, meeting_id).items()
            if paragraph_number in shown_in(meeting, kind)
        ]
        _check_protocols_open(protocols, paragraph_number)
        versions = [(protocol.id, protocol.version, protocol.kind) for protocol in protocols]
        extract_id, version = row.id, row.version
    new_title = old_title if title is None or not title.strip() else title.strip()
    paragraph = _corrected_paragraph(meeting, paragraph_number, new_title, text)
    paragraphs[paragraph_number] = paragraph
    return _RedraftPlan(
        meeting,
        extract_id,
        version,
        paragraph,
        render_extract(meeting, paragraph, version=version + 1),
        tuple(
            (protocol_id, current, render_protocol_version(meeting, kind, paragraphs, current + 1))
            for protocol_id, current, kind in versions
        ),
    )


def _check_protocols_open(protocols: list[ExtractRow], paragraph: int) -> None:
    for protocol in protocols:
        if protocol.status in JUSTERED_STATUSES:
            raise WorkflowError(
                Refusal.JUSTERING_COMPLETE, paragraph=paragraph, detail=protocol.status.value
            )


def _record_redraft(
    services: Services,
    plan: _RedraftPlan,
    actor: str,
    actor_email: str | None,
    using_link: str | None,
) -> RedraftResult:
    meeting, paragraph = plan.meeting, plan.paragraph
    with services.ledger.transaction() as session:
        lock_meeting(session, meeting.meeting_id)
        extract = lock_extract(session, plan.extract_id)
        _check_redraftable(extract, plan.version)
        protocols = [lock_extract(session, protocol_id) for protocol_id, _, _ in plan.protocols]
        _check_protocols_open(protocols, paragraph.number)
        if [p.version for p in protocols] != [version for _, version, _ in plan.protocols]:
            raise _ProtocolMoved
        previous = extract.head_sha256
        extract.version = plan.version + 1
        extract.title = paragraph.title
        extract.head_sha256 = store_document(session, extract, plan.pdf)
        extract.status = ExtractStatus.AWAITING_CHAIR
        extract.updated_at = utcnow()
        append_event(
            session,
            extract,
            EventKind.REDRAFTED,
            actor=actor,
            actor_email=actor_email,
            document_sha256=extract.head_sha256,
            detail={"previous_sha256": previous, "title": paragraph.title, "text": paragraph.text},
        )
        for protocol, (_, version, pdf) in zip(protocols, plan.protocols, strict=True):
            redraw_protocol(
                session,
                meeting,
                protocol,
                pdf,
                paragraph=paragraph.number,
                actor=actor,
                actor_email=actor_email,
                now=utcnow(),
            )
            revoke_dead_links(session, meeting, protocol.id, version)
        if using_link is not None:
            used = session.get(LinkTokenRow, using_link)
            if used is None:
                raise NotFoundError("link", using_link)
            claim_link(session, used)
        revoke_dead_links(session, meeting, extract.id, plan.version)
        request_work(session, meeting.meeting_id)
        return RedraftResult(
            meeting.meeting_id, extract.id, extract.paragraph, extract.version, extract.head_sha256
        )


def _corrected_paragraph(meeting: Meeting, number: int, title: str, text: str) -> Paragraph:
    """The paragraph with corrected title and text, validated exactly as a manifest's
    paragraph is (so the PDF can show every character)."""
    refuse_unprintable("title", title)
    refuse_unprintable("text", text)
    manifest = meeting_to_dict(meeting)
    manifest["meeting_id"] = client_meeting_id(meeting.meeting_id)  # as it was validated
    index = next(i for i, p in enumerate(manifest["paragraphs"]) if p["number"] == number)
    manifest["paragraphs"][index] = {
        **manifest["paragraphs"][index],
        "title": title,
        "text": text.replace("\r\n", "\n"),
    }
    try:
        corrected = parse_manifest(manifest)
    except ManifestError as error:
        field = error.field.replace(f"paragraphs[{index}].", "")
        raise ManifestError(field, error.problem) from None
    return corrected.paragraphs[index]


def redraft_with_link(
    services: Services, token: str, text: str, title: str | None
) -> RedraftResult:
    """The redraft page's submit: redraft the extract the secretary's link grants,
    then use the link up."""
    with services.ledger.reading() as session:
        link = find_link(session, token, secretary=True)
        grant = grants_of(session, link.token_hash)[0]
        extract = get_extract(session, grant.extract_id)
        meeting_id, paragraph, version = link.meeting_id, extract.paragraph, grant.version
        actor, actor_email, token_hash = link.signer_name, link.signer_email, link.token_hash
    return redraft_extract(
        services,
        meeting_id,
        paragraph,
        text=text,
        title=title,
        actor=actor,
        actor_email=actor_email,
        expected_version=version,
        using_link=token_hash,
    )
