"""The ledger's tables (SQLAlchemy): meetings, the documents they sign (each
paragraph's extract and the meeting's protocols, in ``extracts``), document
versions, trail events, links and their grants, leases, and the e-mail outbox.

The ledger is the legal record: every step of the workflow is one transaction over
these rows (see :mod:`justering.ledger.extracts` for the helpers that keep the
trail's chain and the documents' hashes).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from justering.model.extract import ExtractSummary
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.trail import EventKind, TrailEvent

__all__ = [
    "Base",
    "ClientRow",
    "DocumentRow",
    "ExtractRow",
    "LeaseRow",
    "LinkGrantRow",
    "LinkTokenRow",
    "MailOutboxRow",
    "MeetingRow",
    "SignerLoginRow",
    "TrailEventRow",
    "WebhookAttemptRow",
    "WebhookDeliveryRow",
    "aware_utc",
    "extract_ref",
]


def aware_utc(moment: dt.datetime) -> dt.datetime:
    """A stored time in UTC: SQLite hands back naive datetimes (stored as UTC),
    PostgreSQL aware ones in the session's time zone."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def extract_ref(meeting_id: str, paragraph: int, kind: DocumentKind = DocumentKind.EXTRACT) -> str:
    """A document's stable reference, as its trail names it: ``<meeting_id>/<§>`` for
    an extract, ``<meeting_id>/protokoll`` for the protocol (``DocumentKind.ref_suffix``)."""
    suffix = kind.ref_suffix if kind.is_protocol else str(paragraph)
    return f"{meeting_id}/{suffix}"


class Base(DeclarativeBase):
    pass


class MeetingRow(Base):
    __tablename__ = "meetings"

    meeting_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The canonical manifest (``meeting_to_dict``), paragraphs inline."""
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    advanced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    work_requested: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every event that may let the meeting move (a signature)."""
    work_done: Mapped[int] = mapped_column(Integer, default=0)
    """The ``work_requested`` value the last complete advance started from."""
    client: Mapped[str | None] = mapped_column(ForeignKey("clients.name"), index=True)
    """The meeting system that started the meeting; None: the operator's command line."""
    external_id: Mapped[str | None] = mapped_column(String(100))
    """The ``meeting_id`` the client gave (the row's key is scoped to the client)."""
    failures: Mapped[int | None] = mapped_column(Integer)
    """Advances in a row that failed (archiving that keeps failing); None: none."""
    retry_after: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    """A meeting whose advances keep failing is left alone until then (back-off)."""


def _enum_values(enum: Any) -> list[str]:
    return [member.value for member in enum]


class ExtractRow(Base):
    """A document the meeting signs: a paragraph's extract or one of its protocols."""

    __tablename__ = "extracts"
    __table_args__ = (UniqueConstraint("meeting_id", "kind", "paragraph"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.meeting_id"), index=True)
    # --- protocols (issue 12): the meeting's protocols are rows of this table too, so
    # that their versions, trails, links, locks and signatures are an extract's. ---
    kind: Mapped[DocumentKind] = mapped_column(
        Enum(DocumentKind, native_enum=False, length=24, values_callable=_enum_values),
        default=DocumentKind.EXTRACT,
        index=True,
    )
    """An extract, the protocol, or the small protocol of the omedelbar justering."""
    # --- end protocols ---
    paragraph: Mapped[int] = mapped_column(Integer)
    """The extract's § number; 0 for a protocol."""
    dnr: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[ExtractStatus] = mapped_column(
        Enum(ExtractStatus, native_enum=False, length=32, values_callable=_enum_values),
        index=True,
    )
    head_sha256: Mapped[str] = mapped_column(String(64))
    """The newest document of the current version (each signature makes a new one)."""
    archive_uri: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    trail_head: Mapped[str | None] = mapped_column(String(64))
    """The hash of the extract's last trail event: anchors the chain's end, so that
    events cut from the end of the trail are noticed (a chain alone cannot tell)."""
    trail_head_mac: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA256, under the home's trail key, of the extract's reference and
    ``trail_head`` (:mod:`justering.ledger.heads`): whoever can write the database
    but not read that key cannot rewrite the trail and its head unnoticed."""

    @property
    def ref(self) -> str:
        """The stable reference in trails (:func:`extract_ref`)."""
        return extract_ref(self.meeting_id, self.paragraph, self.kind)

    def summary(self, *, immediate: bool) -> ExtractSummary:
        """The row as every reader sees it (``immediate``, of an extract, comes from the
        meeting; the small protocol of the omedelbar justering is always immediate)."""
        return ExtractSummary(
            extract_id=self.id,
            meeting_id=self.meeting_id,
            paragraph=self.paragraph,
            dnr=self.dnr,
            title=self.title,
            version=self.version,
            status=self.status,
            document_sha256=self.head_sha256,
            archive_uri=self.archive_uri,
            immediate=immediate or self.kind is DocumentKind.IMMEDIATE_PROTOCOL,
            kind=self.kind,
        )


class DocumentRow(Base):
    __tablename__ = "documents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    extract_id: Mapped[int] = mapped_column(ForeignKey("extracts.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class TrailEventRow(Base):
    __tablename__ = "trail_events"
    __table_args__ = (UniqueConstraint("extract_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    extract_id: Mapped[int] = mapped_column(ForeignKey("extracts.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(Text)
    actor_email: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(16))
    slot: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, str]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    extract_ref: Mapped[str] = mapped_column(Text)

    @classmethod
    def of_event(cls, event: TrailEvent, *, extract_id: int, slot: str | None) -> TrailEventRow:
        """The row that stores ``event`` (of extract ``extract_id``, by ``slot``)."""
        return cls(
            extract_id=extract_id,
            extract_ref=event.extract,
            kind=event.kind.value,
            at=event.at,
            slot=slot,
            detail=dict(event.detail),
            **{name: getattr(event, name) for name in _STORED_AS_THEY_ARE},
        )

    def to_event(self) -> TrailEvent:
        return TrailEvent(
            extract=self.extract_ref,
            kind=EventKind(self.kind),
            at=aware_utc(self.at),
            detail=dict(self.detail),
            **{name: getattr(self, name) for name in _STORED_AS_THEY_ARE},
        )


_STORED_AS_THEY_ARE = (
    "seq",
    "actor",
    "actor_email",
    "role",
    "version",
    "document_sha256",
    "certificate_sha256",
    "prev_hash",
    "hash",
)
"""The fields of a :class:`TrailEvent` its row stores as they are (the others:
``extract`` is the row's ``extract_ref``, ``kind`` its value, ``at`` read back as an
aware UTC time, ``detail`` a plain dict)."""


class ClientRow(Base):
    """A registered meeting system: the only kind of caller that may start a
    justering. Its token is stored only as a SHA-256 hash."""

    __tablename__ = "clients"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    bodies: Mapped[list[str]] = mapped_column(JSON)
    """The body codes it may start meetings for."""
    municipality: Mapped[str | None] = mapped_column(Text)
    """If set, the only municipality its manifests may name."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    """Where its webhooks are posted; None: it polls."""
    webhook_secret: Mapped[str | None] = mapped_column(Text)
    """The secret its webhooks are signed with (``whsec_…``). Kept as it is, not
    hashed, because signing needs it: like the home's other keys, whoever reads the
    ledger can use it (docs/security.md)."""


class WebhookDeliveryRow(Base):
    """One webhook message to a client (the transactional outbox): written in the
    transaction that records the event it reports, delivered after the commit by
    orchestration, at least once. ``id`` is the ``webhook-id`` the receiver dedupes by.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client: Mapped[str] = mapped_column(ForeignKey("clients.name"), index=True)
    meeting_id: Mapped[str] = mapped_column(String(200), index=True)
    """The ledger's (scoped) meeting key; the payload carries the client's own id."""
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), index=True)
    """``pending`` (due at ``next_attempt_at``), ``delivered`` or ``failed`` (gave up)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts since it was queued or last replayed (the back-off's exponent)."""
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    """When a pending delivery is due; a sender that claims it moves this past its
    own attempt, so a sender that dies leaves it due again (at least once)."""
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookAttemptRow(Base):
    """One attempt to deliver a webhook: when, the receiver's status or the error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class LinkTokenRow(Base):
    __tablename__ = "link_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.meeting_id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    slot: Mapped[str] = mapped_column(String(32))
    signer_name: Mapped[str] = mapped_column(Text)
    signer_email: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LinkGrantRow(Base):
    """One extract version a link lets its signer sign."""

    __tablename__ = "link_grants"

    token_hash: Mapped[str] = mapped_column(ForeignKey("link_tokens.token_hash"), primary_key=True)
    extract_id: Mapped[int] = mapped_column(ForeignKey("extracts.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class SignerLoginRow(Base):
    """A login with e-legitimation on a signer's link: started (its ``state``, nonce
    and PKCE verifier, kept until the provider answers), then answered once, and
    either completed (what it proved, and the hash of the session it opened in the
    signer's browser) or refused. Never the ID token itself, never a personnummer:
    their hashes (the personnummer's keyed with the home's secret)."""

    __tablename__ = "signer_logins"

    state_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(ForeignKey("link_tokens.token_hash"), index=True)
    nonce: Mapped[str | None] = mapped_column(String(100))
    code_verifier: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    """The provider must answer before then."""
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    refused: Mapped[str | None] = mapped_column(String(32))
    """Why the login was refused (an ``errors.LoginProblem`` value); None: it was not."""
    session_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    issuer: Mapped[str | None] = mapped_column(Text)
    acr: Mapped[str | None] = mapped_column(Text)
    assurance: Mapped[str | None] = mapped_column(String(16))
    authenticated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    id_token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    """Each ID token is accepted once."""
    identity_hash: Mapped[str | None] = mapped_column(String(64))


class LeaseRow(Base):
    """Who is doing a piece of work that must not be done twice at once (drafting a
    meeting, archiving an extract), until when. A holder that dies lets its lease run
    out, and the work passes to whoever asks next."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MailOutboxRow(Base):
    """One e-mail, queued in the transaction that records what it reports (a link
    issued, a signature, a decline …) and sent after it by the outbox's sender
    (:mod:`justering.mail.outbox`). Its ``Message-ID`` is fixed when it is queued,
    so a message sent again (its sender died before marking it sent) is the same
    message to its recipient. The text and HTML (which may hold a signer's link)
    are kept only until it is sent."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(250), unique=True)
    meeting_id: Mapped[str | None] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient_name: Mapped[str] = mapped_column(Text)
    recipient_email: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    """Not tried again before then (the back-off after a failed attempt)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    """A sender is sending it until then; one that died lets the claim run out."""
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
