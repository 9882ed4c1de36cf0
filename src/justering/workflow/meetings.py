"""Meetings in the ledger: recording a validated manifest (once), reading it back,
and what follows from it (the justering deadlines, where the protocol is kept,
whom to tell)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from justering.config import Settings
from justering.documents.fonts import check_printable
from justering.errors import ManifestError, NotFoundError
from justering.ledger.clients import scoped_meeting_id
from justering.ledger.database import utcnow
from justering.ledger.schema import ExtractRow, MeetingRow
from justering.ledger.webhooks import queue_webhook
from justering.model.assurance import SigningMode
from justering.model.meeting import Meeting, meeting_from_dict, meeting_to_dict
from justering.model.personnummer import hash_personal_numbers
from justering.model.process import DocumentKind
from justering.model.roles import Person
from justering.model.webhooks import MEETING_RECORDED
from justering.workflow.services import Services

__all__ = [
    "deadline_of",
    "drafted_extract",
    "get_meeting",
    "is_late",
    "kept_at_of",
    "load_meeting",
    "record_meeting",
    "secretary_of",
]


def _manifest_digest(manifest: dict[str, object]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()


def record_meeting(services: Services, meeting: Meeting, *, client: str | None = None) -> bool:
    """Record a validated meeting. True if new; False if the same manifest was
    recorded before (``meeting_id`` is the idempotency key, per client: the meeting
    is kept under :func:`~justering.ledger.clients.scoped_meeting_id`). A different
    manifest under a known ``meeting_id`` is refused, and so are more paragraphs
    than the configured maximum, text the extract's fonts cannot show, and a meeting
    of a body without a förvaringsplats: this is the last check before anything
    starts."""
    limit = services.settings.max_paragraphs
    if len(meeting.paragraphs) > limit:
        raise ManifestError(
            "paragraphs",
            f"{len(meeting.paragraphs)} paragraphs; at most {limit} are accepted in one "
            "meeting (max_paragraphs in the configuration)",
        )
    check_printable(meeting)
    kept_at_of(meeting, services.settings)
    meeting = _protect_identities(meeting, services.settings)
    external_id = meeting.meeting_id
    meeting = replace(meeting, meeting_id=scoped_meeting_id(client, external_id))
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
                    client=client,
                    external_id=external_id,
                )
            )
            if client is not None:
                _queue_recorded(session, meeting, client, external_id)
    except IntegrityError:  # recorded concurrently by another request: same rules
        with services.ledger.reading() as session:
            if _known_meeting(session, meeting.meeting_id, digest):
                return False
        raise
    return True


def _queue_recorded(session: Session, meeting: Meeting, client: str, external_id: str) -> None:
    """The client's ``meeting.recorded`` webhook, if it has a webhook URL."""
    session.flush()
    queue_webhook(
        session,
        client=client,
        meeting_id=meeting.meeting_id,
        event=MEETING_RECORDED,
        at=utcnow(),
        data={
            "meeting_id": external_id,
            "body": meeting.body.code,
            "date": meeting.date.isoformat(),
            "paragraphs": [p.number for p in meeting.paragraphs],
        },
    )


def _protect_identities(meeting: Meeting, settings: Settings) -> Meeting:
    """The meeting as the ledger may keep it: each personnummer a keyed hash. A body
    that signs with e-legitimation needs one for every signer, unless logins can be
    matched by a verified e-mail claim (``identity.email_claim``)."""
    people = [("chair", meeting.chair), ("certifier", meeting.certifier)]
    people += [(f"adjusters[{i}]", person) for i, person in enumerate(meeting.adjusters)]
    if any(person.personal_number for _field, person in people):
        meeting = hash_personal_numbers(meeting, settings.identity_key)
    identity = settings.identity
    signing = settings.body_rules(meeting.body.code).signing
    if signing is SigningMode.E_LEGITIMATION and identity and identity.email_claim is None:
        for field, person in people:
            if person.personal_number is None and person.identity_hash is None:
                raise ManifestError(
                    f"{field}.personal_number",
                    f"is required: {meeting.body.code} signs with e-legitimation, and a "
                    "login is matched to its signer by personnummer",
                )
    return meeting


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
    """The recorded meeting; ``NotFoundError`` if there is none. Read back without
    validating it again (and kept, by its manifest's digest, for the next read)."""
    row = session.execute(
        select(MeetingRow.manifest_sha256).where(MeetingRow.meeting_id == meeting_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError("meeting", meeting_id)
    return _stored_meeting(session, meeting_id, row.manifest_sha256)


class _RecentMeetings:
    """Meetings read lately, by id and manifest digest. A recorded manifest never
    changes under its digest, so what was read once stays true."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._meetings: OrderedDict[tuple[str, str], Meeting] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Meeting | None:
        with self._lock:
            return self._meetings.get(key)

    def keep(self, key: tuple[str, str], meeting: Meeting) -> None:
        with self._lock:
            self._meetings[key] = meeting
            if len(self._meetings) > self._size:
                self._meetings.popitem(last=False)


_recent = _RecentMeetings()


def _stored_meeting(session: Session, meeting_id: str, digest: str) -> Meeting:
    cached = _recent.get((meeting_id, digest))
    if cached is not None:
        return cached
    manifest = session.execute(
        select(MeetingRow.manifest).where(MeetingRow.meeting_id == meeting_id)
    ).scalar_one()
    meeting = meeting_from_dict(manifest)
    _recent.keep((meeting_id, digest), meeting)
    return meeting


def get_meeting(services: Services, meeting_id: str) -> Meeting:
    with services.ledger.reading() as session:
        return load_meeting(session, meeting_id)


def drafted_extract(session: Session, meeting_id: str, paragraph_number: int) -> ExtractRow:
    """The drafted extract of § ``paragraph_number``; ``NotFoundError`` if none."""
    row = session.execute(
        select(ExtractRow).where(
            ExtractRow.meeting_id == meeting_id,
            ExtractRow.kind == DocumentKind.EXTRACT,
            ExtractRow.paragraph == paragraph_number,
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError("drafted extract", f"§ {paragraph_number} of {meeting_id}")
    return row


def deadline_of(meeting: Meeting, settings: Settings, *, immediate: bool = False) -> dt.date:
    """The last day of the justering: the body's ``justering_days`` (at most 14, KL
    5 kap. 69 §) after the meeting; with ``immediate``, of the omedelbar justering:
    the meeting day or the next (the body's ``immediate_justering_days``)."""
    rules = settings.body_rules(meeting.body.code)
    return meeting.date + dt.timedelta(
        days=rules.immediate_days if immediate else rules.justering_days
    )


def is_late(justered_on: dt.date, deadline: dt.date) -> bool:
    """A justering after its last day: still valid, but marked as late (in the
    trail, in the certificate of completion, to the secretary)."""
    return justered_on > deadline


def kept_at_of(meeting: Meeting, settings: Settings) -> str:
    """Where the body's protocols are kept (förvaringsplats), as the announcement
    on the anslagstavla must say (KL 8 kap. 12 §): the body's own, else the default of
    ``[justering]``; a body without either is refused."""
    kept_at = settings.body_rules(meeting.body.code).kept_at or settings.kept_at
    if kept_at is None:
        code = meeting.body.code
        raise ManifestError(
            "body.code",
            f"no förvaringsplats is configured for body {code!r}: set protocol_kept_at "
            f"under [bodies.{code}] (or [justering]) in the config file; the announcement of "
            "the justering must say where the protocol is kept (8 kap. 12 § kommunallagen)",
        )
    return kept_at


def secretary_of(meeting: Meeting, settings: Settings) -> Person:
    """Who hears about declined and overdue extracts: the body's configured secretary,
    else the meeting's certifier (the secretary or registrar who certifies extracts)."""
    return settings.body_rules(meeting.body.code).secretary or meeting.certifier
