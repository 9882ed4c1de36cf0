"""The meeting's protocols: which paragraphs each shows and justers, drafting and
re-rendering them from the paragraphs' current texts, holding them while a paragraph
is declined, and what follows their justering.

Every meeting has **the protocol** (``DocumentKind.PROTOCOL``): every paragraph, in
order. A meeting with paragraphs under omedelbar justering also has **the small
protocol** of those (``IMMEDIATE_PROTOCOL``), justered on its own right after the
meeting (5 kap. 70 § kommunallagen). A paragraph is *justered by* the small protocol
when it is under omedelbar justering, else by the protocol; it is *shown in* the
protocol either way (the protocol is the whole record of the meeting).

A protocol is a row of the ``extracts`` table, so its versions, trail, links and
signatures are an extract's. What is particular to it:

- a declined paragraph *holds* every protocol that shows it (``held``): nobody signs
  a protocol with a paragraph that is being corrected;
- a redraft makes the next version of every protocol that shows the paragraph,
  rendered from the paragraphs' current texts; signing restarts from the chair
  (a signature on the old version says nothing of the new text), unless another
  paragraph it shows is still declined;
- once justered, the protocol is announced (:mod:`justering.workflow.noticeboard`)
  and every extract of a paragraph it justers, signed by the chair and the
  adjusters, goes on to the certifier, its trail naming the justered protocol
  (:func:`settle_justering`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from justering.archive.keys import protocol_prefix
from justering.config import Settings
from justering.documents.rendering import protocol_title, render_protocol
from justering.ledger.extracts import append_event, lock_extract, store_document
from justering.ledger.schema import ExtractRow, TrailEventRow
from justering.mail.compose import ExtractLine
from justering.model.extract import ExtractSummary
from justering.model.meeting import Meeting
from justering.model.minutes import Paragraph, parse_sections
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Signer
from justering.model.trail import EventKind
from justering.workflow.noticeboard import announce, announcement_of

__all__ = [
    "JUSTERED_STATUSES",
    "current_paragraphs",
    "declined_paragraphs",
    "document_line",
    "documents_of",
    "hold_protocols",
    "justering_kind",
    "new_protocol_row",
    "protocol_archive_key",
    "protocol_kinds",
    "protocols_of",
    "redraw_protocol",
    "render_protocol_version",
    "settle_justering",
    "shown_in",
    "span",
    "under_immediate",
]

JUSTERED_STATUSES = frozenset({ExtractStatus.JUSTERED, ExtractStatus.ARCHIVED})
"""A protocol in these is justered (and announced)."""


def protocol_kinds(meeting: Meeting) -> tuple[DocumentKind, ...]:
    """The protocols the meeting signs: the small one of the omedelbar justering
    when it has such paragraphs, and the protocol."""
    immediate = (DocumentKind.IMMEDIATE_PROTOCOL,) if meeting.immediate_numbers else ()
    return (*immediate, DocumentKind.PROTOCOL)


def shown_in(meeting: Meeting, kind: DocumentKind) -> tuple[int, ...]:
    """The § numbers a protocol shows, in the meeting's order."""
    immediate_only = kind is DocumentKind.IMMEDIATE_PROTOCOL
    return tuple(p.number for p in meeting.paragraphs if p.immediate or not immediate_only)


def justering_kind(meeting: Meeting, paragraph: int) -> DocumentKind:
    """The protocol that justers § ``paragraph``."""
    if paragraph in meeting.immediate_numbers:
        return DocumentKind.IMMEDIATE_PROTOCOL
    return DocumentKind.PROTOCOL


def span(numbers: Iterable[int]) -> str:
    """The paragraphs as a reader writes them: ``§ 94–97``, ``§ 94–96, 98``."""
    runs: list[list[int]] = []
    for number in sorted(numbers):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return "§ " + ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in runs)


def document_line(meeting: Meeting, row: ExtractRow | ExtractSummary) -> ExtractLine:
    """How a message lists the document: an extract by its §, dnr and title, a
    protocol by the paragraphs it shows."""
    summary = (
        row.summary(immediate=row.paragraph in meeting.immediate_numbers)
        if isinstance(row, ExtractRow)
        else row
    )
    if not summary.is_protocol:
        return ExtractLine.of(summary)
    shown = span(shown_in(meeting, summary.kind))
    return ExtractLine(0, None, shown, summary.immediate, summary.kind)


def under_immediate(meeting: Meeting, row: ExtractRow) -> bool:
    """Whether the document is justered by omedelbar justering (the small protocol,
    or an extract of one of its paragraphs): its deadline is the omedelbar's."""
    if row.kind.is_protocol:
        return row.kind is DocumentKind.IMMEDIATE_PROTOCOL
    return row.paragraph in meeting.immediate_numbers


def documents_of(session: Session, meeting_id: str) -> list[ExtractRow]:
    """Every document of the meeting, the protocols first, then the extracts by §."""
    return list(
        session.execute(
            select(ExtractRow)
            .where(ExtractRow.meeting_id == meeting_id)
            .order_by(ExtractRow.paragraph, ExtractRow.kind)
        ).scalars()
    )


def protocols_of(session: Session, meeting_id: str) -> dict[DocumentKind, ExtractRow]:
    """The meeting's drafted protocols by kind."""
    rows = session.execute(
        select(ExtractRow).where(
            ExtractRow.meeting_id == meeting_id, ExtractRow.kind != DocumentKind.EXTRACT
        )
    ).scalars()
    return {row.kind: row for row in rows}


def current_paragraphs(session: Session, meeting: Meeting) -> dict[int, Paragraph]:
    """Every paragraph of the meeting as its current version reads: the manifest's,
    or the text and title of its last redraft."""
    paragraphs = {p.number: p for p in meeting.paragraphs}
    redrafts = session.execute(
        select(ExtractRow.paragraph, TrailEventRow.detail)
        .join(TrailEventRow, TrailEventRow.extract_id == ExtractRow.id)
        .where(
            ExtractRow.meeting_id == meeting.meeting_id,
            ExtractRow.kind == DocumentKind.EXTRACT,
            TrailEventRow.kind == EventKind.REDRAFTED,
        )
        .order_by(TrailEventRow.extract_id, TrailEventRow.seq)
    )
    for number, detail in redrafts:
        original = paragraphs[number]
        paragraphs[number] = Paragraph(
            number,
            original.dnr,
            detail.get("title", original.title),
            parse_sections(detail["text"]),
            original.immediate,
        )
    return paragraphs


def render_protocol_version(
    meeting: Meeting, kind: DocumentKind, paragraphs: Mapping[int, Paragraph], version: int
) -> bytes:
    """The protocol of ``kind`` at ``version``, from ``paragraphs`` (current texts)."""
    return render_protocol(
        meeting,
        [paragraphs[number] for number in shown_in(meeting, kind)],
        immediate=kind is DocumentKind.IMMEDIATE_PROTOCOL,
        version=version,
    )


def new_protocol_row(meeting: Meeting, kind: DocumentKind, now: dt.datetime) -> ExtractRow:
    """Version 1 of a protocol, before its document is stored."""
    return ExtractRow(
        meeting_id=meeting.meeting_id,
        kind=kind,
        paragraph=0,
        dnr=None,
        title=protocol_title(meeting, immediate=kind is DocumentKind.IMMEDIATE_PROTOCOL),
        version=1,
        status=ExtractStatus.AWAITING_CHAIR,
        head_sha256="",
        updated_at=now,
    )


def protocol_archive_key(meeting: Meeting, protocol: ExtractRow) -> str:
    """Where the protocol's current version is (or will be) archived."""
    return protocol_prefix(
        meeting.body.code,
        meeting.date,
        meeting.meeting_id,
        protocol.kind.ref_suffix,
        protocol.version,
    )


# --- a paragraph declined: the protocols that show it wait -----------------------------


def hold_protocols(
    session: Session, meeting: Meeting, paragraph: int, declined_by: Signer, now: dt.datetime
) -> list[ExtractRow]:
    """Hold every protocol that shows § ``paragraph`` and is not justered: nobody signs
    it until the paragraph is redrafted (a ``held`` event on its trail). Inside the
    caller's transaction, which holds the meeting's lock; the protocols held."""
    held = []
    for kind, row in sorted(protocols_of(session, meeting.meeting_id).items()):
        if paragraph not in shown_in(meeting, kind) or row.status in JUSTERED_STATUSES:
            continue
        protocol = lock_extract(session, row.id)
        if protocol.status is not ExtractStatus.HELD:
            protocol.status = ExtractStatus.HELD
            protocol.updated_at = now
        append_event(
            session,
            protocol,
            EventKind.HELD,
            document_sha256=protocol.head_sha256,
            detail={
                "paragraph": str(paragraph),
                "declined_by": declined_by.name,
                "slot": declined_by.slot,
            },
        )
        held.append(protocol)
    return held


def declined_paragraphs(session: Session, meeting_id: str) -> set[int]:
    """The § numbers whose extract is declined (back with the secretary)."""
    return set(
        session.execute(
            select(ExtractRow.paragraph).where(
                ExtractRow.meeting_id == meeting_id,
                ExtractRow.kind == DocumentKind.EXTRACT,
                ExtractRow.status == ExtractStatus.DECLINED,
            )
        ).scalars()
    )


def redraw_protocol(
    session: Session,
    meeting: Meeting,
    protocol: ExtractRow,
    pdf: bytes,
    *,
    paragraph: int,
    actor: str,
    actor_email: str | None,
    now: dt.datetime,
) -> None:
    """Make ``pdf`` (rendered with § ``paragraph`` redrafted) the protocol's next version:
    signing restarts from the chair, or the protocol stays held while another paragraph
    it shows is declined. The caller holds the protocol's lock and checked its version."""
    previous = protocol.head_sha256
    protocol.version += 1
    protocol.head_sha256 = store_document(session, protocol, pdf)
    still_declined = declined_paragraphs(session, meeting.meeting_id) - {paragraph}
    waiting = still_declined & set(shown_in(meeting, protocol.kind))
    protocol.status = ExtractStatus.HELD if waiting else ExtractStatus.AWAITING_CHAIR
    protocol.updated_at = now
    detail = {"paragraph": str(paragraph), "previous_sha256": previous}
    if waiting:
        detail["still_declined"] = ",".join(str(number) for number in sorted(waiting))
    append_event(
        session,
        protocol,
        EventKind.REDRAFTED,
        actor=actor,
        actor_email=actor_email,
        document_sha256=protocol.head_sha256,
        detail=detail,
    )


# --- a protocol justered: announce it, send its extracts to the certifier -----------------


def settle_justering(
    session: Session, settings: Settings, meeting: Meeting, *, now: dt.datetime
) -> list[ExtractRow]:
    """Announce every protocol of the meeting that is justered and not yet announced,
    and send every extract waiting for its protocol on to the certifier once that
    protocol is justered, with a ``justered`` event naming it (its reference, the
    SHA-256 of the justered document, its archive key, the dates). Idempotent; inside
    the caller's transaction, which holds the meeting's lock. The protocols announced."""
    protocols = protocols_of(session, meeting.meeting_id)
    announced = []
    for protocol in protocols.values():
        if protocol.status is ExtractStatus.JUSTERED and announcement_of(session, protocol) is None:
            announce(session, lock_extract(session, protocol.id), meeting, settings, now=now)
            announced.append(protocol)
    waiting = session.execute(
        select(ExtractRow.id, ExtractRow.paragraph).where(
            ExtractRow.meeting_id == meeting.meeting_id,
            ExtractRow.kind == DocumentKind.EXTRACT,
            ExtractRow.status == ExtractStatus.AWAITING_PROTOCOL,
        )
    ).all()
    for extract_id, paragraph in waiting:
        justering = protocols.get(justering_kind(meeting, paragraph))
        if justering is None or justering.status not in JUSTERED_STATUSES:
            continue
        _to_certifier(session, meeting, lock_extract(session, extract_id), justering, now)
    return announced


def _to_certifier(
    session: Session, meeting: Meeting, extract: ExtractRow, protocol: ExtractRow, now: dt.datetime
) -> None:
    announcement = announcement_of(session, protocol)
    if announcement is None:  # a justered protocol is announced in the same transaction
        raise ValueError(f"{protocol.ref} is justered but not announced")
    detail = {
        "protocol": protocol.ref,
        "protocol_version": str(protocol.version),
        "protocol_sha256": announcement.document_sha256 or "",
        "protocol_archive_key": protocol_archive_key(meeting, protocol),
    }
    detail.update(_copied(announcement.detail, ("justered_on", "announced_on", "appeal_deadline")))
    detail.update(_copied(announcement.detail, ("justering_deadline", "late", "kept_at")))
    append_event(
        session, extract, EventKind.JUSTERED, document_sha256=extract.head_sha256, detail=detail
    )
    extract.status = ExtractStatus.AWAITING_CERTIFIER
    extract.updated_at = now


def _copied(detail: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    return {key: detail[key] for key in keys if key in detail}
