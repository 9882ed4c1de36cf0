"""Signing through a link: the chosen documents, each with its own PAdES signature by
a certificate issued for this signer, recorded all together or not at all.

The chair and the adjusters sign a protocol and the extracts of the paragraphs it
shows in one action: choosing one of them chooses all of them that wait for the
signer. The signature that completes a protocol's justering announces it, in the
same transaction, and sends the extracts of the paragraphs it justers on to the
certifier (:func:`justering.workflow.protocols.settle_justering`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from justering.errors import Refusal, WorkflowError
from justering.ledger.database import utcnow
from justering.ledger.extracts import (
    append_signer_event,
    get_extract,
    lock_extract,
    lock_meeting,
    signed_slots,
    store_document,
)
from justering.ledger.links import find_link, grants_of
from justering.ledger.schema import ExtractRow, LinkGrantRow
from justering.mail.compose import MeetingHeader
from justering.mail.messages import SignedLine, SigningReceiptMail
from justering.model.assurance import SignerIdentity
from justering.model.extract import ExtractSummary
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind, status_after_signature
from justering.model.roles import Role, Signer
from justering.model.trail import EventKind
from justering.pades.sign import SignedExtract, sign_extract
from justering.pades.validate import validate_extract
from justering.workflow.advance import request_work
from justering.workflow.identity import identified_signer
from justering.workflow.mailing import queue_mail, send_queued_mail
from justering.workflow.protocols import document_line, settle_justering, shown_in
from justering.workflow.services import Services
from justering.workflow.signer_links import (
    GrantState,
    check_turn,
    close_if_done,
    grant_for,
    grant_state,
    stored_document,
)
from justering.workflow.workers import chunked, spread

__all__ = ["SignedItem", "SigningReceipt", "sign_with_link"]

log = logging.getLogger(__name__)

MAX_SIGNING_ATTEMPTS = 3


@dataclass(frozen=True)
class SignedItem:
    """One extract signed: its new state and the certificate that signed it."""

    extract: ExtractSummary
    certificate_sha256: str


@dataclass(frozen=True)
class SigningReceipt:
    signer: Signer
    meeting_id: str
    signed_at: dt.datetime
    items: tuple[SignedItem, ...] = ()
    remaining: int = 0
    """Extracts the link still grants that wait for this signer (a subset was signed)."""


@dataclass(frozen=True)
class _PlannedSignature:
    extract_id: int
    version: int
    head_sha256: str
    document: bytes
    paragraph: int
    kind: DocumentKind


@dataclass(frozen=True)
class _SigningPlan:
    meeting: Meeting
    signer: Signer
    items: tuple[_PlannedSignature, ...]
    identity: SignerIdentity


class _ExtractMoved(Exception):
    """An extract changed between planning and committing (another adjuster signed)."""


def sign_with_link(
    services: Services,
    token: str,
    extract_ids: Collection[int] | None = None,
    *,
    login: str | None = None,
    send_mail: bool = True,
) -> SigningReceipt:
    """Sign, as the link's signer, the chosen documents among those the link grants
    (``None``: every one waiting for them), all or nothing; each gets its own
    signature. A protocol and the extracts of the paragraphs it shows go together:
    choosing one that waits for the signer chooses every other one that does. The
    link is used up once nothing it grants waits for its signer. Where the body
    signs with e-legitimation, ``login`` (the session the browser holds) must be a
    valid login of this signer on this link (``IdentityError`` otherwise); the
    certificate and the trail say how the signer was identified.

    The receipt e-mail is queued with the signatures and, with ``send_mail``, sent
    once they are committed; without it the caller sends it
    (:func:`justering.workflow.mailing.send_queued_mail`; the web app does so after
    answering the signer).

    Refuses (and changes nothing) when the link is unknown, used, expired or
    revoked, when a chosen extract is not granted, has a newer version than the
    link was issued for, is already signed or declined, or when it is not this
    role's turn on it.

    The signatures are made outside any database lock; the short transaction
    that records them claims the link and checks that no extract moved in the
    meantime (if one did, because a fellow adjuster signed it, the signing is
    done again on the newer document).
    """
    for _attempt in range(MAX_SIGNING_ATTEMPTS):
        plan = _plan_signing(services, token, extract_ids, login)
        pieces = [replace(plan, items=tuple(items)) for items in chunked(plan.items, services)]
        signed = [done for piece in spread(services, _sign_piece, pieces) for done in piece]
        try:
            receipt = _record_signatures(services, token, plan, signed)
        except _ExtractMoved:
            continue
        if send_mail:
            send_queued_mail(services, plan.meeting.meeting_id)  # the receipt, committed
        return receipt
    raise WorkflowError(Refusal.CHANGED_WHILE_SIGNING)


def _plan_signing(
    services: Services, token: str, extract_ids: Collection[int] | None, login: str | None
) -> _SigningPlan:
    with services.ledger.reading() as session:
        who = identified_signer(session, services.settings, token, login)
        link, meeting, signer = who.link, who.meeting, who.signer
        grants = grants_of(session, link.token_hash)
        pending = [
            grant
            for grant in grants
            if _state(session, grant.extract_id, grant.version, signer) is GrantState.PENDING
        ]
        if extract_ids is None:
            # Nothing waits: try them all, so that the refusal says why.
            chosen = pending or grants
        else:
            chosen = [grant_for(session, link, extract_id) for extract_id in set(extract_ids)]
            chosen = _together(session, meeting, chosen, pending)
        if not chosen:
            raise WorkflowError(Refusal.NOTHING_CHOSEN)
        items = []
        for grant in sorted(chosen, key=lambda g: g.extract_id):
            extract = get_extract(session, grant.extract_id)
            check_turn(session, extract, grant.version, signer)
            items.append(
                _PlannedSignature(
                    extract.id,
                    grant.version,
                    extract.head_sha256,
                    stored_document(session, extract),
                    extract.paragraph,
                    extract.kind,
                )
            )
        return _SigningPlan(meeting, signer, tuple(items), who.identity)


def _state(session: Session, extract_id: int, version: int, signer: Signer) -> GrantState:
    return grant_state(session, get_extract(session, extract_id), version, signer)


def _together(
    session: Session, meeting: Meeting, chosen: list[LinkGrantRow], pending: list[LinkGrantRow]
) -> list[LinkGrantRow]:
    """``chosen`` with every pending protocol that shows a chosen paragraph (or is
    chosen), and every pending extract such a protocol shows: a protocol and the
    extracts of its paragraphs are signed in one action."""
    rows = {grant.extract_id: get_extract(session, grant.extract_id) for grant in pending}
    protocols = [g for g in pending if rows[g.extract_id].kind.is_protocol]
    chosen_ids = {grant.extract_id for grant in chosen}

    def related(protocol: LinkGrantRow, grant: LinkGrantRow) -> bool:
        row = rows[grant.extract_id]
        shown = shown_in(meeting, rows[protocol.extract_id].kind)
        return grant.extract_id == protocol.extract_id or (
            not row.kind.is_protocol and row.paragraph in shown
        )

    joined = list(chosen)
    for protocol in protocols:
        if any(related(protocol, grant) for grant in pending if grant.extract_id in chosen_ids):
            joined += [g for g in pending if related(protocol, g)]
    unique = {grant.extract_id: grant for grant in joined}
    return list(unique.values())


def _check_earlier_signatures(
    services: Services, plan: _SigningPlan, item: _PlannedSignature
) -> None:
    """Refuse to sign a document whose earlier signatures no longer validate (a PDF
    altered after the chair signed, even with its hash rewritten in the ledger)."""
    if plan.signer.role is Role.CHAIR:
        return  # the chair signs the unsigned draft, checked by its hash
    report = validate_extract(
        item.document,
        services.trust_roots,
        expected_adjusters=len(plan.meeting.adjusters),
        complete=False,
        roles=item.kind.roles,
    )
    if not report.ok or not report.signatures:
        log.error("§ %s: earlier signatures do not validate: %s", item.paragraph, report.problems)
        raise WorkflowError(Refusal.TAMPERED, paragraph=item.paragraph)


def _sign_piece(services: Services, plan: _SigningPlan) -> list[SignedExtract]:
    """Sign each document of ``plan`` (a piece of a signer's documents: in a worker
    process when the service has them, :mod:`justering.workflow.workers`)."""
    return [_sign_planned(services, plan, item) for item in plan.items]


def _sign_planned(services: Services, plan: _SigningPlan, item: _PlannedSignature) -> SignedExtract:
    _check_earlier_signatures(services, plan, item)
    credential = services.ca.issue(
        plan.signer,
        organisation=plan.meeting.municipality,
        validity=services.settings.signer_certificate_validity,
        identity=plan.identity,
    )
    return sign_extract(
        item.document,
        credential,
        plan.signer,
        adjuster_count=len(plan.meeting.adjusters),
        location=plan.meeting.place,
        timestamper=services.timestamper,
    )


def _record_signatures(
    services: Services, token: str, plan: _SigningPlan, signed: Sequence[SignedExtract]
) -> SigningReceipt:
    signer, meeting = plan.signer, plan.meeting
    kind = EventKind.CERTIFIED if signer.role is Role.CERTIFIER else EventKind.SIGNED
    adjusters = {s.slot for s in meeting.signers(Role.ADJUSTER)}
    with services.ledger.transaction() as session:
        lock_meeting(session, meeting.meeting_id)  # before the extracts: one lock order
        link = find_link(session, token)
        items: list[SignedItem] = []
        rows: list[ExtractRow] = []
        for item, signature in zip(plan.items, signed, strict=True):
            extract = lock_extract(session, item.extract_id)
            if extract.head_sha256 != item.head_sha256:
                raise _ExtractMoved
            check_turn(session, extract, item.version, signer)
            digest = store_document(session, extract, signature.pdf)
            append_signer_event(
                session,
                extract,
                kind,
                signer,
                document_sha256=digest,
                certificate_sha256=signature.certificate_fingerprint,
                at=signature.signed_at,
                detail={**plan.identity.trail_detail(), **_timestamp_detail(signature)},
            )
            extract.head_sha256 = digest
            extract.status = status_after_signature(
                extract.status,
                extract.kind,
                all_adjusters_signed=adjusters <= signed_slots(session, extract),
            )
            extract.updated_at = utcnow()
            rows.append(extract)
        # A protocol justered: announced on the anslagstavla, and its extracts on to
        # the certifier, in the same transaction as the signature that completed it.
        settle_justering(session, services.settings, meeting, now=utcnow())
        for extract, signature in zip(rows, signed, strict=True):
            summary = extract.summary(immediate=extract.paragraph in meeting.immediate_numbers)
            items.append(SignedItem(summary, signature.certificate_fingerprint))
        remaining = close_if_done(session, link, signer)
        request_work(session, meeting.meeting_id)
        items.sort(
            key=lambda i: (not i.extract.immediate, not i.extract.is_protocol, i.extract.paragraph)
        )
        receipt = SigningReceipt(signer, meeting.meeting_id, utcnow(), tuple(items), remaining)
        queue_mail(
            session, services, _receipt_mail(meeting, receipt), meeting_id=meeting.meeting_id
        )
        return receipt


def _receipt_mail(meeting: Meeting, receipt: SigningReceipt) -> SigningReceiptMail:
    """The e-mail that tells the signer what they signed (queued with the signatures;
    the receipt page shows the same, whether or not it has left yet)."""
    return SigningReceiptMail(
        to=receipt.signer.person,
        meeting=MeetingHeader.of(meeting),
        role=receipt.signer.role,
        signed_at=receipt.signed_at,
        items=tuple(
            SignedLine(document_line(meeting, i.extract), i.extract.document_sha256)
            for i in receipt.items
        ),
    )


def _timestamp_detail(signature: SignedExtract) -> dict[str, str]:
    if signature.timestamped_at is None:
        return {}
    return {"timestamped_at": signature.timestamped_at.astimezone(dt.UTC).isoformat()}
