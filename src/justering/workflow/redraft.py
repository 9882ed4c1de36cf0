"""Declining and redrafting an extract.

A signer who finds an extract wrong declines it with a comment. That extract goes
back to the secretary (its status ``declined``), the signatures on that version no
longer count, and every link that only granted it is revoked; the meeting's other
extracts carry on. The secretary gets an e-mail with the comment and a link to
the redraft page (or uses ``justering redraft``). The corrected text becomes the
next version, drafted anew, and signing restarts from the chair. The trail keeps
every version, the comment and the corrected text.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from justering.documents.rendering import render_extract
from justering.errors import ManifestError, WorkflowError
from justering.ledger.links import SECRETARY, claim_link, find_link, grants_of, issue_secretary_link
from justering.ledger.schema import (
    ExtractRow,
    LinkGrantRow,
    LinkTokenRow,
    append_event,
    aware,
    event_rows,
    lock_extract,
    lock_meeting,
    store_document,
    utcnow,
)
from justering.mail.messages import DeclineNotice, ExtractLine
from justering.model.manifest import Meeting, meeting_to_dict, parse_manifest, refuse_unprintable
from justering.model.minutes import Paragraph
from justering.model.roles import Person, Signer
from justering.model.trail import EventKind
from justering.workflow.core import (
    ExtractStatus,
    GrantState,
    Services,
    append_signer_event,
    check_turn,
    close_if_done,
    grant_for,
    grant_state,
    link_signer,
    load_meeting,
    request_work,
    secretary_of,
    signer_of,
)

MAX_COMMENT_LENGTH = 2000
REDRAFTABLE = frozenset(
    {ExtractStatus.DECLINED, ExtractStatus.AWAITING_CHAIR, ExtractStatus.AWAITING_ADJUSTERS}
)
"""A justering that is complete (announced) is not redrafted: that is a new decision."""


def clean_comment(comment: str) -> str:
    """The decline comment as recorded: required, bounded, line breaks kept, no
    control characters."""
    text = comment.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise WorkflowError(
            "Skriv en kommentar om vad som behöver ändras. (A comment is required.)",
            status_code=400,
        )
    if len(text) > MAX_COMMENT_LENGTH:
        raise WorkflowError(
            f"Kommentaren är för lång: {len(text)} tecken, högst {MAX_COMMENT_LENGTH}. "
            f"(The comment is too long.)",
            status_code=400,
        )
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise WorkflowError(
            "Kommentaren innehåller otillåtna styrtecken. (Control characters.)",
            status_code=400,
        )
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
    services: Services, token: str, extract_id: int, comment: str
) -> DeclineReceipt:
    """Decline one extract the link grants, as its signer, with a required comment.

    In one transaction: the ``declined`` event (with the comment), the extract back
    to the secretary, links that now grant nothing revoked, and the e-mail to the
    secretary with a redraft link (a failed delivery rolls it all back)."""
    text = clean_comment(comment)
    with services.ledger.transaction() as session:
        link, meeting, signer = link_signer(session, token)
        lock_meeting(session, meeting.meeting_id)  # before the extract: one lock order
        grant = grant_for(session, link, extract_id)
        extract = lock_extract(session, extract_id)
        check_turn(session, extract, grant.version, signer)
        append_signer_event(session, extract, EventKind.DECLINED, signer, detail={"comment": text})
        extract.status = ExtractStatus.DECLINED.value
        extract.updated_at = utcnow()
        remaining = close_if_done(session, link, signer)
        _revoke_dead_links(session, meeting, extract.id, extract.version)
        secretary = secretary_of(meeting, services.settings)
        _tell_secretary(session, services, meeting, extract, signer, text, secretary)
        return DeclineReceipt(
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
    services.notifier.send(
        DeclineNotice(
            to_name=secretary.name,
            to_email=secretary.email,
            declined_by=signer.name,
            declined_role=signer.role,
            municipality=meeting.municipality,
            body_name=meeting.body.name,
            meeting_date=meeting.date,
            meeting_id=meeting.meeting_id,
            extract=ExtractLine(extract.paragraph, extract.dnr, extract.title),
            version=extract.version,
            comment=comment,
            redraft_link=f"{services.settings.public_url}/r/{link.token}",
            expires_at=link.expires_at,
        )
    )


def _revoke_dead_links(session: Session, meeting: Meeting, extract_id: int, version: int) -> None:
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
            extract = session.get(ExtractRow, grant.extract_id)
            assert extract is not None
            alive |= grant_state(session, extract, grant.version, signer) is GrantState.PENDING
        if not alive:
            link.revoked_at = now


# --- redrafting ---------------------------------------------------------------------------


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


def _drafted(session: Session, meeting_id: str, paragraph_number: int) -> ExtractRow:
    row = session.execute(
        select(ExtractRow).where(
            ExtractRow.meeting_id == meeting_id, ExtractRow.paragraph == paragraph_number
        )
    ).scalar_one_or_none()
    if row is None:
        raise WorkflowError(f"§ {paragraph_number} of {meeting_id} is not drafted", 404)
    return row


def current_text(session: Session, meeting: Meeting, extract: ExtractRow) -> tuple[str, str]:
    """The (title, text) the extract's current version was drafted from."""
    for row in reversed(event_rows(session, extract.id)):
        if row.kind == EventKind.REDRAFTED.value and "text" in row.detail:
            return row.detail.get("title", extract.title), row.detail["text"]
    paragraph = _paragraph(meeting, extract.paragraph)
    return paragraph.title, paragraph.text


def _paragraph(meeting: Meeting, number: int) -> Paragraph:
    for paragraph in meeting.paragraphs:
        if paragraph.number == number:
            return paragraph
    raise WorkflowError(f"meeting {meeting.meeting_id} has no § {number}", status_code=404)


def view_redraft(services: Services, token: str) -> RedraftView:
    with services.ledger.reading() as session:
        link = find_link(session, token, secretary=True)
        meeting = load_meeting(session, link.meeting_id)
        grant = grants_of(session, link.token_hash)[0]
        extract = session.get(ExtractRow, grant.extract_id)
        assert extract is not None
        _check_redraftable(extract, grant.version)
        title, text = current_text(session, meeting, extract)
        declines = tuple(
            (row.actor, row.detail.get("comment", ""), aware(row.at))
            for row in event_rows(session, extract.id)
            if row.kind == EventKind.DECLINED.value and row.version == extract.version
        )
        return RedraftView(
            meeting,
            extract.id,
            extract.paragraph,
            extract.dnr,
            title,
            text,
            extract.version,
            ExtractStatus(extract.status),
            declines,
            link.signer_name,
            aware(link.expires_at),
        )


def describe_current(services: Services, meeting_id: str, paragraph_number: int) -> tuple[str, str]:
    """What ``justering redraft --show`` prints: a header (status, title, the
    declines' comments) and the current text, ready to edit and send back."""
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        extract = _drafted(session, meeting_id, paragraph_number)
        title, text = current_text(session, meeting, extract)
        comments = [
            f"# {row.actor} ({aware(row.at):%Y-%m-%d %H:%M} UTC): "
            + row.detail.get("comment", "").replace("\n", "\n#   ")
            for row in event_rows(session, extract.id)
            if row.kind == EventKind.DECLINED.value and row.version == extract.version
        ]
        header = [
            f"# § {extract.paragraph} {extract.dnr or ''} — version {extract.version}, "
            f"status {extract.status}",
            f"# title: {title}",
            *comments,
        ]
    return "\n".join(header) + "\n", text.rstrip("\n") + "\n"


def _check_redraftable(extract: ExtractRow, version: int | None) -> None:
    where = f"§ {extract.paragraph}"
    if version is not None and extract.version != version:
        raise WorkflowError(
            f"{where} har redan fått en ny version ({extract.version}). "
            f"({where} was already redrafted.)",
            status_code=409,
        )
    if ExtractStatus(extract.status) not in REDRAFTABLE:
        raise WorkflowError(
            f"{where} kan inte göras om: justeringen är redan klar (status {extract.status}). "
            f"({where} cannot be redrafted once its justering is complete.)",
            status_code=409,
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
    text as in the manifest's ``paragraphs[].text``) and, optionally, a new title.

    The text is checked as strictly as a manifest's (errors name the line or field);
    signing restarts from the chair, whose new link the next advance sends. Open
    links to the old version are revoked. ``expected_version`` guards against
    redrafting twice from one form; ``using_link`` (a secretary link's hash) is used
    up in the same transaction."""
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        row = _drafted(session, meeting_id, paragraph_number)
        _check_redraftable(row, expected_version)
        old_title, _ = current_text(session, meeting, row)
        extract_id, version = row.id, row.version
    new_title = old_title if title is None or not title.strip() else title.strip()
    paragraph = _corrected_paragraph(meeting, paragraph_number, new_title, text)
    pdf = render_extract(meeting, paragraph, version=version + 1)
    with services.ledger.transaction() as session:
        lock_meeting(session, meeting_id)
        extract = lock_extract(session, extract_id)
        _check_redraftable(extract, version)
        previous = extract.head_sha256
        extract.version = version + 1
        extract.title = paragraph.title
        extract.head_sha256 = store_document(session, extract, pdf)
        extract.status = ExtractStatus.AWAITING_CHAIR.value
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
        if using_link is not None:
            used = session.get(LinkTokenRow, using_link)
            assert used is not None
            claim_link(session, used)
        _revoke_dead_links(session, meeting, extract.id, version)
        request_work(session, meeting_id)
        return RedraftResult(
            meeting_id, extract.id, extract.paragraph, extract.version, extract.head_sha256
        )


def _corrected_paragraph(meeting: Meeting, number: int, title: str, text: str) -> Paragraph:
    """The paragraph with corrected title and text, validated exactly as a manifest's
    paragraph is (so the PDF can show every character)."""
    refuse_unprintable("title", title)
    refuse_unprintable("text", text)
    manifest = meeting_to_dict(meeting)
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
        extract = session.get(ExtractRow, grant.extract_id)
        assert extract is not None
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
