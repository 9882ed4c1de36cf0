"""The workflow rules: how an extract moves from drafting through the chair,
the adjusters and the certifier to the archive.

The ledger is the authority: every function here reads the extract's state
from it, checks that the step is allowed, and records what it did, in one
transaction. Orchestration (Prefect, in ``flows/``) only decides *when* these
functions run; running one twice does nothing new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import multiprocessing
from collections import defaultdict
from collections.abc import Collection, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from justering.archive.intyg import render_completion
from justering.archive.store import (
    EXTRACT_CA,
    EXTRACT_COMPLETION,
    EXTRACT_PDF,
    EXTRACT_TRAIL,
    EXTRACT_TSA_CA,
    ArchiveStore,
    RetentionPolicy,
    extract_prefix,
    open_archive,
    write_bundle,
)
from justering.config import Settings
from justering.documents.rendering import render_extract
from justering.errors import LinkError, ManifestError, TrailError, WorkflowError
from justering.ledger.links import claim_link, find_link, grants_of, hash_token, issue_link
from justering.ledger.schema import (
    ExtractRow,
    Ledger,
    LinkGrantRow,
    LinkTokenRow,
    MeetingRow,
    WorkLease,
    append_event,
    aware,
    event_rows,
    last_event,
    load_document,
    lock_extract,
    lock_meeting,
    store_document,
    trail_of,
    utcnow,
)
from justering.mail.delivery import NotificationError, Notifier, notifier_for
from justering.mail.messages import (
    ExtractLine,
    SignedLine,
    SigningReceiptMail,
    SigningRequest,
    immediate_first,
)
from justering.model.manifest import Meeting, meeting_to_dict, parse_manifest
from justering.model.roles import Person, Role, Signer
from justering.model.trail import EventKind, trail_to_json
from justering.pades.ca import SigningCA
from justering.pades.sign import SignedExtract, sign_extract
from justering.pades.timestamps import Timestamper, seal_long_term, timestamper_for
from justering.pades.validate import validate_extract
from justering.workflow.noticeboard import announce

log = logging.getLogger(__name__)


class ExtractStatus(StrEnum):
    AWAITING_CHAIR = "awaiting_chair"
    AWAITING_ADJUSTERS = "awaiting_adjusters"
    AWAITING_CERTIFIER = "awaiting_certifier"
    CERTIFIED = "certified"
    ARCHIVED = "archived"
    DECLINED = "declined"
    """Declined by a signer: back with the secretary until it is redrafted."""


STAGE_OF: dict[Role, ExtractStatus] = {
    Role.CHAIR: ExtractStatus.AWAITING_CHAIR,
    Role.ADJUSTER: ExtractStatus.AWAITING_ADJUSTERS,
    Role.CERTIFIER: ExtractStatus.AWAITING_CERTIFIER,
}
ROLE_OF_STAGE = {status: role for role, status in STAGE_OF.items()}


@dataclass(frozen=True)
class Services:
    """What the workflow acts with; one per process."""

    settings: Settings
    ledger: Ledger
    ca: SigningCA
    notifier: Notifier
    archive: ArchiveStore
    timestamper: Timestamper | None = None
    """With a TSA: every signature is timestamped and certified extracts are sealed."""
    tsa_root: x509.Certificate | None = None

    @property
    def trust_roots(self) -> list[x509.Certificate]:
        """What an archived extract is validated against: our CA and the TSA's root."""
        return [self.ca.certificate, *([self.tsa_root] if self.tsa_root else [])]


def open_services(settings: Settings) -> Services:
    """Connect to the ledger, load the CA (which must exist), open the archive."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return Services(
        settings=settings,
        ledger=Ledger(settings.database_url),
        ca=SigningCA.load(settings.ca_dir),
        notifier=notifier_for(
            settings.smtp_url, outbox=settings.outbox_dir, sender=settings.mail_from
        ),
        archive=open_archive(
            settings.archive_url,
            default_dir=settings.archive_dir,
            retention=RetentionPolicy(
                settings.archive_retention_mode, settings.archive_retention_days
            ),
        ),
        timestamper=timestamper_for(settings.tsa_url),
        tsa_root=settings.tsa_root(),
    )


# --- meetings and drafting ------------------------------------------------------------


def _manifest_digest(manifest: dict[str, object]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()


def record_meeting(services: Services, meeting: Meeting) -> bool:
    """Record a validated meeting. True if new; False if the same manifest was
    recorded before (``meeting_id`` is the idempotency key). A different
    manifest under a known ``meeting_id`` is refused."""
    manifest = meeting_to_dict(meeting)
    digest = _manifest_digest(manifest)
    try:
        with services.ledger.transaction() as session:
            if _known_meeting(session, meeting.meeting_id, digest):
                return False
            session.add(
                MeetingRow(
                    meeting_id=meeting.meeting_id,
                    manifest=manifest,
                    manifest_sha256=digest,
                    created_at=utcnow(),
                    work_requested=1,
                    work_done=0,
                )
            )
    except IntegrityError:  # recorded concurrently by another request: same rules
        with services.ledger.reading() as session:
            if _known_meeting(session, meeting.meeting_id, digest):
                return False
        raise
    return True


def _known_meeting(session: Session, meeting_id: str, digest: str) -> bool:
    """True if the meeting is recorded with this manifest; refuses another manifest."""
    existing = session.get(MeetingRow, meeting_id)
    if existing is None:
        return False
    if existing.manifest_sha256 != digest:
        raise ManifestError(
            "meeting_id",
            f"meeting {meeting_id!r} was already started with a different "
            "manifest; use a new meeting_id or redraft the extracts",
        )
    return True


def load_meeting(session: Session, meeting_id: str) -> Meeting:
    row = session.get(MeetingRow, meeting_id)
    if row is None:
        raise WorkflowError(f"no meeting {meeting_id!r}", status_code=404)
    return parse_manifest(row.manifest)


def get_meeting(services: Services, meeting_id: str) -> Meeting:
    with services.ledger.reading() as session:
        return load_meeting(session, meeting_id)


def _extract_id(session: Session, meeting_id: str, paragraph_number: int) -> int | None:
    return session.execute(
        select(ExtractRow.id).where(
            ExtractRow.meeting_id == meeting_id, ExtractRow.paragraph == paragraph_number
        )
    ).scalar_one_or_none()


def draft_extract(services: Services, meeting_id: str, paragraph_number: int) -> int:
    """Render and record version 1 of a paragraph's extract (idempotent); its id."""
    with services.ledger.reading() as session:
        meeting = load_meeting(session, meeting_id)
        existing = _extract_id(session, meeting_id, paragraph_number)
    if existing is not None:
        return existing
    paragraph = next((p for p in meeting.paragraphs if p.number == paragraph_number), None)
    if paragraph is None:
        raise WorkflowError(f"meeting {meeting_id} has no § {paragraph_number}", status_code=404)
    pdf = render_extract(meeting, paragraph, version=1)
    try:
        with services.ledger.transaction() as session:
            existing = _extract_id(session, meeting_id, paragraph_number)
            if existing is not None:
                return existing
            extract = ExtractRow(
                meeting_id=meeting_id,
                paragraph=paragraph_number,
                dnr=paragraph.dnr,
                title=paragraph.title,
                version=1,
                status=ExtractStatus.AWAITING_CHAIR.value,
                head_sha256="",
                updated_at=utcnow(),
            )
            session.add(extract)
            session.flush()
            extract.head_sha256 = store_document(session, extract, pdf)
            append_event(session, extract, EventKind.DRAFTED, document_sha256=extract.head_sha256)
            return extract.id
    except IntegrityError:  # drafted concurrently by another advance: that one stands
        with services.ledger.reading() as session:
            existing = _extract_id(session, meeting_id, paragraph_number)
        if existing is None:
            raise
        return existing


def deadline_of(meeting: Meeting, settings: Settings) -> dt.date:
    """The last day of the justering: the body's ``justering_days`` after the meeting."""
    return meeting.date + dt.timedelta(days=settings.body_rules(meeting.body.code).justering_days)


def secretary_of(meeting: Meeting, settings: Settings) -> Person:
    """Who hears about declined and overdue extracts: the body's configured secretary,
    else the meeting's certifier (the secretary or registrar who certifies extracts)."""
    return settings.body_rules(meeting.body.code).secretary or meeting.certifier


# --- notifying the signers whose turn it is -------------------------------------------


@dataclass(frozen=True)
class AdvanceReport:
    """What one :func:`advance_meeting` did."""

    drafted: tuple[int, ...] = ()
    notified: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()
    remaining: int = 0
    complete: bool = True
    """False when another process held part of the work (the meeting stays marked)."""


_SIGNATURE_KINDS = frozenset({EventKind.SIGNED.value, EventKind.CERTIFIED.value})
_NOTIFIED_OR_SIGNED = _SIGNATURE_KINDS | {EventKind.NOTIFIED.value}


def append_signer_event(
    session: Session,
    extract: ExtractRow,
    kind: EventKind,
    signer: Signer,
    *,
    document_sha256: str | None = None,
    certificate_sha256: str | None = None,
    at: dt.datetime | None = None,
    detail: dict[str, str] | None = None,
) -> None:
    """Append an event done by (or to) ``signer`` on the extract's current document
    (or ``document_sha256``)."""
    append_event(
        session,
        extract,
        kind,
        actor=signer.name,
        actor_email=signer.email,
        role=signer.role.value,
        slot=signer.slot,
        document_sha256=document_sha256 or extract.head_sha256,
        certificate_sha256=certificate_sha256,
        at=at,
        detail=detail,
    )


def _slots_with(session: Session, extract: ExtractRow, kinds: frozenset[str]) -> set[str]:
    """The signer slots with an event of ``kinds`` on the extract's current version."""
    return {
        row.slot
        for row in event_rows(session, extract.id)
        if row.kind in kinds and row.version == extract.version and row.slot
    }


def _signed_slots(session: Session, extract: ExtractRow) -> set[str]:
    return _slots_with(session, extract, _SIGNATURE_KINDS)


def advance_meeting(services: Services, meeting_id: str) -> AdvanceReport:
    """Bring a meeting forward as far as the ledger allows: draft what is missing,
    notify every signer whose turn has come and who has not been notified yet,
    archive what is certified. Safe to run any number of times, concurrently: work
    another process is doing (drafting this meeting, archiving an extract) is left to
    it, and the meeting stays marked as needing work until an advance did it all."""
    meeting = get_meeting(services, meeting_id)
    with services.ledger.reading() as session:
        requested = session.execute(
            select(MeetingRow.work_requested).where(MeetingRow.meeting_id == meeting_id)
        ).scalar_one()
    drafted = draft_meeting(services, meeting_id)
    if drafted is None:  # another process is drafting; it notifies when it is done
        return AdvanceReport(complete=False, remaining=len(meeting.paragraphs))
    notified = _notify_due(services, meeting)
    archived: list[str] = []
    complete = True
    with services.ledger.reading() as session:
        certified = list(
            session.execute(
                select(ExtractRow.id).where(
                    ExtractRow.meeting_id == meeting_id,
                    ExtractRow.status == ExtractStatus.CERTIFIED.value,
                )
            ).scalars()
        )
    if _archive_pool is not None and len(certified) > 1:
        outcomes = list(_archive_pool.map(_archive_in_worker, certified))
    else:
        outcomes = [archive_if_free(services, extract_id) for extract_id in certified]
    for uri in outcomes:
        if uri is None:
            complete = False  # another process is archiving it
        else:
            archived.append(uri)
    with services.ledger.transaction() as session:
        remaining = len(
            session.execute(
                select(ExtractRow.id).where(
                    ExtractRow.meeting_id == meeting_id,
                    ExtractRow.status != ExtractStatus.ARCHIVED.value,
                )
            ).all()
        )
        if complete:
            session.execute(
                update(MeetingRow)
                .where(MeetingRow.meeting_id == meeting_id, MeetingRow.work_done < requested)
                .values(work_done=requested)
            )
    return AdvanceReport(drafted, notified, tuple(archived), remaining, complete)


def archive_if_free(services: Services, extract_id: int) -> str | None:
    """Archive the extract unless another process is archiving it (its lease); the
    PDF's URI, or None."""
    with WorkLease(services.ledger, f"archive:{extract_id}") as lease:
        return archive_extract(services, extract_id) if lease.held else None


# Archiving (validation, the certificate of completion, the writes) is the longest
# step of a meeting and runs after the certifier's one request: `serve` spreads it
# over worker processes, one per core, so that it is not bound to one core.
_archive_pool: Executor | None = None
_worker_services: Services | None = None


def start_archive_workers(settings: Settings, count: int) -> Executor:
    """Archive in ``count`` worker processes from now on (each with its own
    services); the caller shuts the pool down when it stops."""
    global _archive_pool
    context = multiprocessing.get_context("spawn")  # the parent has threads: no fork
    _archive_pool = ProcessPoolExecutor(
        count, mp_context=context, initializer=_start_worker, initargs=(settings,)
    )
    return _archive_pool


def stop_archive_workers() -> None:
    global _archive_pool
    pool, _archive_pool = _archive_pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


def _start_worker(settings: Settings) -> None:
    global _worker_services
    _worker_services = open_services(settings)


def _archive_in_worker(extract_id: int) -> str | None:
    assert _worker_services is not None, "not in an archive worker"
    return archive_if_free(_worker_services, extract_id)


def draft_meeting(services: Services, meeting_id: str) -> tuple[int, ...] | None:
    """Draft every paragraph of the meeting not drafted yet, those under omedelbar
    justering first; the new extracts' ids. None if another process is drafting the
    meeting now (a lease in the ledger): the work is not done twice."""
    meeting = get_meeting(services, meeting_id)
    with services.ledger.reading() as session:
        existing = set(
            session.execute(
                select(ExtractRow.paragraph).where(ExtractRow.meeting_id == meeting_id)
            ).scalars()
        )
    missing = sorted(
        (p for p in meeting.paragraphs if p.number not in existing),
        key=lambda p: (not p.immediate, p.number),
    )
    if not missing:
        return ()
    with WorkLease(services.ledger, f"draft:{meeting_id}") as lease:
        if not lease.held:
            return None
        drafted = []
        for paragraph in missing:
            drafted.append(draft_extract(services, meeting_id, paragraph.number))
            lease.renew()
        return tuple(drafted)


def _notify_due(services: Services, meeting: Meeting) -> tuple[str, ...]:
    """One message to every signer whose turn has come on some extract and who has
    not been notified for it. Each signer's link, message and events are one short
    transaction under the meeting's lock (which serialises concurrent advances), so
    a link is committed the moment after its message leaves, not after everyone's."""
    with services.ledger.reading() as session:
        signers = list(_due(session, meeting))
    sent: list[str] = []
    for signer in signers:
        with services.ledger.transaction() as session:
            lock_meeting(session, meeting.meeting_id)
            waiting = _due(session, meeting).get(signer)
            if not waiting:
                continue  # notified by a concurrent advance meanwhile
            request_signatures(session, services, meeting, signer, waiting)
            session.execute(
                update(MeetingRow)
                .where(MeetingRow.meeting_id == meeting.meeting_id)
                .values(advanced_at=utcnow())
            )
        sent.append(f"{signer.slot}:{signer.email}")
    return tuple(sent)


def _due(session: Session, meeting: Meeting) -> dict[Signer, list[ExtractRow]]:
    """For each signer whose turn has come, the extracts they were not notified of."""
    extracts = session.execute(
        select(ExtractRow)
        .where(ExtractRow.meeting_id == meeting.meeting_id)
        .order_by(ExtractRow.paragraph)
    ).scalars()
    due: dict[Signer, list[ExtractRow]] = defaultdict(list)
    for extract in extracts:
        role = ROLE_OF_STAGE.get(ExtractStatus(extract.status))
        if role is None:
            continue
        done = _slots_with(session, extract, _NOTIFIED_OR_SIGNED)
        for signer in meeting.signers(role):
            if signer.slot not in done:
                due[signer].append(extract)
    return due


def request_signatures(
    session: Session,
    services: Services,
    meeting: Meeting,
    signer: Signer,
    extracts: Sequence[ExtractRow],
    *,
    days_left: int | None = None,
) -> str:
    """Issue ``signer`` one link for ``extracts``, send the message (a reminder when
    ``days_left`` is given) and record it on each extract's trail; the message id.
    Inside the caller's transaction: a failed send rolls the link and events back."""
    link = issue_link(
        session,
        meeting_id=meeting.meeting_id,
        signer=signer,
        extracts=extracts,
        ttl=services.settings.link_ttl,
    )
    immediate = {p.number for p in meeting.paragraphs if p.immediate}
    request = SigningRequest(
        to_name=signer.name,
        to_email=signer.email,
        role=signer.role,
        municipality=meeting.municipality,
        body_name=meeting.body.name,
        meeting_date=meeting.date,
        link=f"{services.settings.public_url}/s/{link.token}",
        expires_at=link.expires_at,
        deadline=deadline_of(meeting, services.settings),
        extracts=immediate_first(
            [ExtractLine(e.paragraph, e.dnr, e.title, e.paragraph in immediate) for e in extracts]
        ),
        days_left=days_left,
    )
    message_id = services.notifier.send(request)
    detail = {"message_id": message_id}
    if days_left is not None:
        detail["reminder_days_left"] = str(days_left)
    for extract in extracts:
        append_signer_event(session, extract, EventKind.NOTIFIED, signer, detail=detail)
    return message_id


# --- what a link shows and what signing does ------------------------------------------


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
    NOT_YOUR_TURN = "not_your_turn"


_DONE = frozenset({GrantState.SIGNED, GrantState.DECLINED, GrantState.REPLACED})


@dataclass(frozen=True)
class PendingExtract:
    extract_id: int
    paragraph: int
    dnr: str | None
    title: str
    version: int
    status: ExtractStatus
    document_sha256: str
    state: GrantState = GrantState.PENDING
    immediate: bool = False


@dataclass(frozen=True)
class LinkView:
    """What a signer sees behind a link: the extracts it grants, those under
    omedelbar justering first."""

    signer: Signer
    meeting: Meeting
    expires_at: dt.datetime
    extracts: tuple[PendingExtract, ...]

    @property
    def pending(self) -> tuple[PendingExtract, ...]:
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
    if any(row.kind in _SIGNATURE_KINDS and row.slot == signer.slot for row in events):
        return GrantState.SIGNED
    if any(row.kind == EventKind.DECLINED.value for row in events):
        return GrantState.DECLINED
    if extract.version != version:
        return GrantState.REPLACED
    if ExtractStatus(extract.status) is not STAGE_OF[signer.role]:
        return GrantState.NOT_YOUR_TURN
    return GrantState.PENDING


def _pending(extract: ExtractRow, state: GrantState, meeting: Meeting) -> PendingExtract:
    immediate = any(p.immediate for p in meeting.paragraphs if p.number == extract.paragraph)
    return PendingExtract(
        extract_id=extract.id,
        paragraph=extract.paragraph,
        dnr=extract.dnr,
        title=extract.title,
        version=extract.version,
        status=ExtractStatus(extract.status),
        document_sha256=extract.head_sha256,
        state=state,
        immediate=immediate,
    )


def view_link(services: Services, token: str) -> LinkView:
    """Check a link and record that its signer viewed the extracts waiting for them."""
    with services.ledger.transaction() as session:
        link, meeting, signer = link_signer(session, token)
        extracts = []
        for grant in grants_of(session, link.token_hash):
            extract = lock_extract(session, grant.extract_id)
            state = grant_state(session, extract, grant.version, signer)
            extracts.append(_pending(extract, state, meeting))
            if state is not GrantState.PENDING:
                continue
            last = last_event(session, extract.id)
            if last and last.kind == EventKind.VIEWED.value and last.slot == signer.slot:
                continue  # a reload: the trail already says this signer has it open
            append_signer_event(session, extract, EventKind.VIEWED, signer)
        if all(e.state in _DONE for e in extracts):
            # Nothing waits for this signer any more: say why (changed, declined, signed).
            grant = grants_of(session, link.token_hash)[0]
            extract = lock_extract(session, grant.extract_id)
            check_turn(session, extract, grant.version, signer)
        extracts.sort(key=lambda e: (not e.immediate, e.paragraph))
        return LinkView(signer, meeting, aware(link.expires_at), tuple(extracts))


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
        extract = session.get(ExtractRow, extract_id)
        assert extract is not None
        _check_version(extract, grant.version)
        return _stored_document(session, extract)


def grant_for(session: Session, link: LinkTokenRow, extract_id: int) -> LinkGrantRow:
    grant = next(
        (g for g in grants_of(session, link.token_hash) if g.extract_id == extract_id), None
    )
    if grant is None:
        raise LinkError("Länken gäller inte det utdraget. (Not granted.)", status_code=404)
    return grant


def close_if_done(session: Session, link: LinkTokenRow, signer: Signer) -> int:
    """Mark the link used once nothing it grants waits for its signer any more; how
    many extracts still wait."""
    waiting = 0
    for grant in grants_of(session, link.token_hash):
        extract = session.get(ExtractRow, grant.extract_id)
        assert extract is not None
        waiting += grant_state(session, extract, grant.version, signer) is GrantState.PENDING
    if not waiting:
        claim_link(session, link)
    return waiting


@dataclass(frozen=True)
class SignedItem:
    paragraph: int
    dnr: str | None
    title: str
    document_sha256: str
    certificate_sha256: str


@dataclass(frozen=True)
class SigningReceipt:
    signer: Signer
    meeting_id: str
    signed_at: dt.datetime
    items: tuple[SignedItem, ...] = field(default_factory=tuple)
    remaining: int = 0
    """Extracts the link still grants that wait for this signer (a subset was signed)."""


def _next_status(session: Session, extract: ExtractRow, meeting: Meeting) -> ExtractStatus:
    status = ExtractStatus(extract.status)
    if status is ExtractStatus.AWAITING_CHAIR:
        return ExtractStatus.AWAITING_ADJUSTERS
    if status is ExtractStatus.AWAITING_ADJUSTERS:
        needed = {signer.slot for signer in meeting.signers(Role.ADJUSTER)}
        if needed <= _signed_slots(session, extract):
            return ExtractStatus.AWAITING_CERTIFIER
        return status
    return ExtractStatus.CERTIFIED


MAX_SIGNING_ATTEMPTS = 3


@dataclass(frozen=True)
class _PlannedSignature:
    extract_id: int
    version: int
    head_sha256: str
    document: bytes
    paragraph: int


@dataclass(frozen=True)
class _SigningPlan:
    meeting: Meeting
    signer: Signer
    items: tuple[_PlannedSignature, ...]


class _ExtractMoved(Exception):
    """An extract changed between planning and committing (another adjuster signed)."""


def sign_with_link(
    services: Services, token: str, extract_ids: Collection[int] | None = None
) -> SigningReceipt:
    """Sign, as the link's signer, the chosen extracts among those the link grants
    (``None``: every one waiting for them), all or nothing; each gets its own
    signature. The link is used up once nothing it grants waits for its signer.

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
        plan = _plan_signing(services, token, extract_ids)
        signed = [_sign_planned(services, plan, item) for item in plan.items]
        try:
            receipt = _record_signatures(services, token, plan, signed)
        except _ExtractMoved:
            continue
        _send_receipt(services, plan.meeting, receipt)
        return receipt
    raise WorkflowError(
        "Utdragen ändrades under signeringen; försök igen. "
        "(The extracts changed while signing; try again.)"
    )


def _check_version(extract: ExtractRow, version: int) -> None:
    """A link grants the version it was issued for; a redrafted extract needs a new one."""
    if extract.version != version:
        where = f"§ {extract.paragraph}"
        raise LinkError(
            f"{where} har ändrats sedan länken skickades; du får en ny länk. "
            f"({where} changed since the link was sent.)",
            status_code=410,
        )


def check_turn(session: Session, extract: ExtractRow, version: int, signer: Signer) -> None:
    _check_version(extract, version)
    where = f"§ {extract.paragraph}"
    if extract.status == ExtractStatus.DECLINED.value:
        raise WorkflowError(
            f"{where} har avböjts och har gått tillbaka till sekreteraren för rättelse. "
            f"({where} was declined and is back with the secretary.)",
            status_code=409,
        )
    if signer.slot in _signed_slots(session, extract):
        raise WorkflowError(
            f"{where} är redan signerad av {signer.name}. ({where} is already signed.)"
        )
    if ExtractStatus(extract.status) is not STAGE_OF[signer.role]:
        raise WorkflowError(
            f"{where}: det är inte {signer.role.swedish.lower()}s tur att signera "
            f"(status {extract.status}). (Not this role's turn.)"
        )


def _plan_signing(
    services: Services, token: str, extract_ids: Collection[int] | None
) -> _SigningPlan:
    with services.ledger.reading() as session:
        link, meeting, signer = link_signer(session, token)
        grants = grants_of(session, link.token_hash)
        if extract_ids is None:
            chosen = []
            for grant in grants:
                extract = session.get(ExtractRow, grant.extract_id)
                assert extract is not None
                if grant_state(session, extract, grant.version, signer) is GrantState.PENDING:
                    chosen.append(grant)
            # Nothing waits: try them all, so that the refusal says why.
            chosen = chosen or grants
        else:
            chosen = [grant_for(session, link, extract_id) for extract_id in set(extract_ids)]
        if not chosen:
            raise WorkflowError(
                "Inget utdrag valt att signera. (No extract chosen to sign.)", status_code=400
            )
        items = []
        for grant in sorted(chosen, key=lambda g: g.extract_id):
            extract = session.get(ExtractRow, grant.extract_id)
            assert extract is not None
            check_turn(session, extract, grant.version, signer)
            items.append(
                _PlannedSignature(
                    extract.id,
                    grant.version,
                    extract.head_sha256,
                    _stored_document(session, extract),
                    extract.paragraph,
                )
            )
        return _SigningPlan(meeting, signer, tuple(items))


def _stored_document(session: Session, extract: ExtractRow) -> bytes:
    try:
        return load_document(session, extract.head_sha256)
    except TrailError as error:
        log.error("§ %s of %s: %s", extract.paragraph, extract.meeting_id, error.diagnostics())
        raise _tampered(extract.paragraph) from None


def _tampered(paragraph: int) -> WorkflowError:
    where = f"§ {paragraph}"
    return WorkflowError(
        f"{where} signeras inte: dokumentet har ändrats efter att det sparades eller "
        "signerades. Kontakta nämndens sekreterare. "
        f"({where} was altered after it was stored or signed; it is not signed.)",
        status_code=409,
    )


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
    )
    if not report.ok or not report.signatures:
        log.error("§ %s: earlier signatures do not validate: %s", item.paragraph, report.problems)
        raise _tampered(item.paragraph)


def _sign_planned(services: Services, plan: _SigningPlan, item: _PlannedSignature) -> SignedExtract:
    _check_earlier_signatures(services, plan, item)
    credential = services.ca.issue(
        plan.signer,
        organisation=plan.meeting.municipality,
        validity=services.settings.signer_certificate_validity,
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
    with services.ledger.transaction() as session:
        lock_meeting(session, meeting.meeting_id)  # before the extracts: one lock order
        link = find_link(session, token)
        items: list[SignedItem] = []
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
                detail=_timestamp_detail(signature),
            )
            extract.head_sha256 = digest
            extract.status = _next_status(session, extract, meeting).value
            extract.updated_at = utcnow()
            if extract.status == ExtractStatus.AWAITING_CERTIFIER.value:
                # The justering is complete: announce it on the anslagstavla, in the
                # same transaction as the signature that completed it.
                announce(
                    session,
                    extract,
                    meeting,
                    now=utcnow(),
                    appeal_weeks=services.settings.appeal_weeks,
                )
            items.append(
                SignedItem(
                    paragraph=extract.paragraph,
                    dnr=extract.dnr,
                    title=extract.title,
                    document_sha256=digest,
                    certificate_sha256=signature.certificate_fingerprint,
                )
            )
        remaining = close_if_done(session, link, signer)
        request_work(session, meeting.meeting_id)
        immediate = {p.number for p in meeting.paragraphs if p.immediate}
        items.sort(key=lambda i: (i.paragraph not in immediate, i.paragraph))
        return SigningReceipt(signer, meeting.meeting_id, utcnow(), tuple(items), remaining)


def _send_receipt(services: Services, meeting: Meeting, receipt: SigningReceipt) -> None:
    """E-mail the signer what they signed. The signatures are already recorded, so a
    delivery failure is logged, not raised: the receipt page shows the same."""
    immediate = {p.number for p in meeting.paragraphs if p.immediate}
    mail = SigningReceiptMail(
        to_name=receipt.signer.name,
        to_email=receipt.signer.email,
        role=receipt.signer.role,
        municipality=meeting.municipality,
        body_name=meeting.body.name,
        meeting_date=meeting.date,
        signed_at=receipt.signed_at,
        items=tuple(
            SignedLine(
                ExtractLine(i.paragraph, i.dnr, i.title, i.paragraph in immediate),
                i.document_sha256,
            )
            for i in receipt.items
        ),
    )
    try:
        services.notifier.send(mail)
    except NotificationError as error:
        log.warning("receipt to %s not sent: %s", receipt.signer.email, error.diagnostics())


def _timestamp_detail(signature: SignedExtract) -> dict[str, str]:
    if signature.timestamped_at is None:
        return {}
    return {"timestamped_at": signature.timestamped_at.astimezone(dt.UTC).isoformat()}


def request_work(session: Session, meeting_id: str) -> None:
    """Note that the meeting may move now (cleared by the next complete advance)."""
    session.execute(
        update(MeetingRow)
        .where(MeetingRow.meeting_id == meeting_id)
        .values(work_requested=MeetingRow.work_requested + 1)
    )


# --- archiving --------------------------------------------------------------------------


def archive_extract(services: Services, extract_id: int) -> str:
    """Seal a certified extract for the long term (with a TSA), validate it, write
    its bundle (PDF, trail, CA certificates, checksums) to the archive and record
    it; returns the PDF's URI. Idempotent: a retry neither seals nor writes twice.
    An extract whose PDF does not validate is not archived."""
    with services.ledger.reading() as session:
        extract = session.get(ExtractRow, extract_id)
        if extract is None:
            raise WorkflowError(f"no extract with id {extract_id}", status_code=404)
        if extract.status == ExtractStatus.ARCHIVED.value and extract.archive_uri:
            return extract.archive_uri
        if extract.status != ExtractStatus.CERTIFIED.value:
            raise WorkflowError(f"§ {extract.paragraph} is {extract.status}, not certified")
        last = last_event(session, extract.id)
        sealed = last is not None and last.kind == EventKind.TIMESTAMPED.value
        head = extract.head_sha256
        pdf = load_document(session, head)
    if services.timestamper is not None and not sealed:
        pdf = _seal(services, extract_id, head, pdf)
    with services.ledger.reading() as session:
        extract = session.get(ExtractRow, extract_id)
        assert extract is not None
        meeting = load_meeting(session, extract.meeting_id)
        trail = trail_of(session, extract.id)
        prefix = extract_prefix(meeting.body.code, meeting.date, extract.dnr, extract.paragraph)
        paragraph, head = extract.paragraph, extract.head_sha256
        dnr, title = extract.dnr, extract.title
    validation = validate_extract(
        pdf, services.trust_roots, expected_adjusters=len(meeting.adjusters)
    )
    if not validation.ok:
        raise WorkflowError(
            f"§ {paragraph} is not archived: its PDF does not validate: "
            + "; ".join(validation.problems)
        )
    files = {
        EXTRACT_PDF: pdf,
        EXTRACT_TRAIL: trail_to_json(trail),
        EXTRACT_CA: services.ca.export_pem().encode(),
        # Issued at the last trail event, not the clock: a retry writes the same bytes.
        EXTRACT_COMPLETION: render_completion(
            meeting,
            paragraph,
            dnr,
            title,
            trail,
            validation,
            hashlib.sha256(pdf).hexdigest(),
            issued_at=trail[-1].at,
        ),
    }
    if services.tsa_root is not None:
        files[EXTRACT_TSA_CA] = services.tsa_root.public_bytes(serialization.Encoding.PEM)
    bundle = write_bundle(services.archive, prefix, files)
    uri = services.archive.uri(f"{bundle.prefix}/{EXTRACT_PDF}")
    with services.ledger.transaction() as session:
        extract = lock_extract(session, extract_id)
        if extract.status == ExtractStatus.ARCHIVED.value and extract.archive_uri:
            return extract.archive_uri
        if extract.head_sha256 != head:
            raise WorkflowError(f"§ {paragraph} changed while it was archived; retry")
        append_event(
            session,
            extract,
            EventKind.ARCHIVED,
            document_sha256=extract.head_sha256,
            detail={"uri": uri, "bundle": services.archive.uri(bundle.prefix)},
        )
        extract.status = ExtractStatus.ARCHIVED.value
        extract.archive_uri = uri
        extract.updated_at = utcnow()
    return uri


def _seal(services: Services, extract_id: int, head: str, pdf: bytes) -> bytes:
    """Add validation data and a document timestamp (PAdES B-LTA) and record the
    sealed document. A TSA or revocation source that fails raises, and the step is
    retried; the trail's ``timestamped`` event keeps a retry from sealing twice."""
    assert services.timestamper is not None
    sealed = seal_long_term(pdf, services.ca, services.timestamper)
    with services.ledger.transaction() as session:
        extract = lock_extract(session, extract_id)
        if extract.head_sha256 != head:
            raise WorkflowError(f"§ {extract.paragraph} changed while it was sealed; retry")
        digest = store_document(session, extract, sealed)
        append_event(
            session,
            extract,
            EventKind.TIMESTAMPED,
            document_sha256=digest,
            detail={"tsa": services.settings.tsa_url or ""},
        )
        extract.head_sha256 = digest
        extract.updated_at = utcnow()
    return sealed


# --- where things stand -----------------------------------------------------------------


@dataclass(frozen=True)
class ExtractState:
    extract_id: int
    paragraph: int
    dnr: str | None
    title: str
    version: int
    status: ExtractStatus
    document_sha256: str
    archive_uri: str | None


def meeting_states(services: Services, meeting_id: str) -> tuple[ExtractState, ...]:
    with services.ledger.reading() as session:
        load_meeting(session, meeting_id)
        rows = session.execute(
            select(ExtractRow)
            .where(ExtractRow.meeting_id == meeting_id)
            .order_by(ExtractRow.paragraph)
        ).scalars()
        return tuple(
            ExtractState(
                r.id,
                r.paragraph,
                r.dnr,
                r.title,
                r.version,
                ExtractStatus(r.status),
                r.head_sha256,
                r.archive_uri,
            )
            for r in rows
        )


def unfinished_meetings(services: Services) -> tuple[str, ...]:
    """Meetings with an extract not yet archived, or not yet drafted at all."""
    with services.ledger.reading() as session:
        meetings = set(session.execute(select(MeetingRow.meeting_id)).scalars())
        done = {
            meeting_id
            for meeting_id in meetings
            if session.execute(
                select(ExtractRow.id).where(ExtractRow.meeting_id == meeting_id)
            ).first()
            is not None
            and session.execute(
                select(ExtractRow.id).where(
                    ExtractRow.meeting_id == meeting_id,
                    ExtractRow.status != ExtractStatus.ARCHIVED.value,
                )
            ).first()
            is None
        }
        return tuple(sorted(meetings - done))


def meetings_needing_work(services: Services) -> tuple[str, ...]:
    """Meetings with something recorded since their last complete advance (a new
    meeting, a signature): what the reconciler nudges after a restart or a failure."""
    with services.ledger.reading() as session:
        return tuple(
            session.execute(
                select(MeetingRow.meeting_id)
                .where(MeetingRow.work_requested > MeetingRow.work_done)
                .order_by(MeetingRow.created_at)
            ).scalars()
        )
