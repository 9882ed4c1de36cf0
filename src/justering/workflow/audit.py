"""The audit: find extracts and protocols in the ledger and read one's timeline.

:func:`find_extracts` filters in SQL (the body code and the meeting date are
read from the stored manifest with JSON functions, the signer through an
``EXISTS`` over the trail), so a search over thousands of extracts costs one
query for the rows and one for their signatures. SQLite's ``lower()`` and
``LIKE`` fold ASCII only: a needle with other letters (``Åsa``) is matched in
SQL with ``_`` wildcards in their place and confirmed in Python with
``casefold``. ``justering audit`` (:mod:`justering.cli.audit`) prints the
results; docs/audit.md describes its JSON.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, exists, func, or_, select
from sqlalchemy.orm import Session

from justering.errors import JusteringError, NotFoundError
from justering.ledger.extracts import checked_trail
from justering.ledger.schema import ExtractRow, MeetingRow, TrailEventRow, aware_utc
from justering.model.extract import ExtractSummary
from justering.model.process import SIGNATURE_EVENTS, DocumentKind, ExtractStatus
from justering.model.trail import EventKind, TrailEvent
from justering.workflow.services import Services

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "AuditRow",
    "AuditSignature",
    "FilterError",
    "Timeline",
    "archived_count",
    "check_limit",
    "extract_timeline",
    "find_extracts",
    "parse_date",
    "parse_status",
]

DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000


class FilterError(JusteringError):
    """A filter value is malformed (a date, a status, a limit)."""


@dataclass(frozen=True)
class AuditSignature:
    """A signature recorded in the trail (a ``signed`` or ``certified`` event)."""

    name: str
    email: str | None
    role: str
    at: dt.datetime
    version: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "role": self.role,
            "at": self.at.isoformat(),
            "version": self.version,
        }


@dataclass(frozen=True)
class AuditRow:
    """One extract, or one protocol, as the audit shows it."""

    extract: ExtractSummary
    body_code: str
    body_name: str
    meeting_date: dt.date
    signatures: tuple[AuditSignature, ...]
    """Every signature so far, oldest first (all versions; see ``version``)."""

    def to_json(self) -> dict[str, Any]:
        e = self.extract
        return {
            "meeting_id": e.meeting_id,
            "body_code": self.body_code,
            "body_name": self.body_name,
            "meeting_date": self.meeting_date.isoformat(),
            "kind": e.kind.value,
            "paragraph": None if e.is_protocol else e.paragraph,
            "dnr": e.dnr,
            "title": e.title,
            "version": e.version,
            "status": e.status.value,
            "archive_uri": e.archive_uri,
            "signatures": [s.to_json() for s in self.signatures],
        }


@dataclass(frozen=True)
class Timeline:
    """An extract's (or a protocol's) trail as recorded in the ledger, with its chain
    checked. The ledger's trail goes on after the archived copy (``trail.json``) was
    written: it also has the ``archived`` event (and any message sent after it), so
    it counts more events than ``justering verify`` finds in the bundle
    (:func:`archived_count`)."""

    row: AuditRow
    events: tuple[TrailEvent, ...]
    chain_problems: tuple[str, ...]

    @property
    def chain_ok(self) -> bool:
        return not self.chain_problems

    @property
    def archive_uri(self) -> str | None:
        return self.row.extract.archive_uri

    @property
    def archived_count(self) -> int | None:
        """How many of the events the archived ``trail.json`` holds (those before the
        ``archived`` event of the current archive), or None when not archived."""
        return archived_count(self.events)

    def count_text(self) -> str:
        """The count of events as the archivist's page and ``justering audit`` say it,
        with why ``justering verify`` finds fewer in the archived copy."""
        text = f"{len(self.events)} händelser i registret"
        archived = self.archived_count
        if archived is not None:
            text += (
                f"; arkivexemplarets trail.json har de {archived} som skedde före "
                "arkiveringen (händelsen arkiverat och det som följt den skrivs bara i "
                "registret)"
            )
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "extract": self.row.to_json(),
            "chain_ok": self.chain_ok,
            "chain_problems": list(self.chain_problems),
            "events": [e.to_json() for e in self.events],
        }


# --- filter values -------------------------------------------------------------------


def parse_date(text: str, name: str = "date") -> dt.date:
    """A date as YYYY-MM-DD; ``FilterError`` naming ``name`` otherwise."""
    try:
        if len(text.strip()) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise FilterError(
            f"{name}: expected a date as YYYY-MM-DD (ÅÅÅÅ-MM-DD), got {text!r}"
        ) from None


def parse_status(text: str) -> str:
    """An ``ExtractStatus`` value, checked; ``FilterError`` listing them otherwise."""
    value = text.strip().lower()
    if value not in set(ExtractStatus):
        choices = ", ".join(ExtractStatus)
        raise FilterError(f"status: expected one of {choices}, got {text!r}")
    return value


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise FilterError(f"limit: expected 1 to {MAX_LIMIT}, got {limit}")
    return limit


# --- queries -------------------------------------------------------------------------


def _like_pattern(needle: str, *, substring: bool = True) -> str:
    """A lower-case ``LIKE`` pattern (escape ``\\``) for ``needle``; non-ASCII
    characters become ``_`` so that the match is a superset on every database."""
    out = []
    for char in needle.lower():
        if not char.isascii():
            out.append("_")
        elif char in "%_\\":
            out.append("\\" + char)
        else:
            out.append(char)
    pattern = "".join(out)
    return f"%{pattern}%" if substring else pattern


def _matches(column: Any, needle: str, *, substring: bool = True) -> ColumnElement[bool]:
    return func.lower(column).like(_like_pattern(needle, substring=substring), escape="\\")


def _folds(needle: str, *values: str | None) -> bool:
    """The exact case-insensitive substring test the SQL pattern approximates."""
    folded = needle.casefold()
    return any(value is not None and folded in value.casefold() for value in values)


def _meeting_columns() -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
    """The body's code and name and the meeting date (ISO), from the stored manifest."""
    manifest = MeetingRow.manifest
    return (
        manifest["body"]["code"].as_string(),
        manifest["body"]["name"].as_string(),
        manifest["date"].as_string(),
    )


def _signatures_of(session: Session, extract_ids: Sequence[int]) -> dict[int, list[AuditSignature]]:
    found: dict[int, list[AuditSignature]] = defaultdict(list)
    for start in range(0, len(extract_ids), 500):  # bound the IN list
        rows = session.execute(
            select(
                TrailEventRow.extract_id,
                TrailEventRow.actor,
                TrailEventRow.actor_email,
                TrailEventRow.role,
                TrailEventRow.at,
                TrailEventRow.version,
            )
            .where(
                TrailEventRow.extract_id.in_(extract_ids[start : start + 500]),
                TrailEventRow.kind.in_(SIGNATURE_EVENTS),
            )
            .order_by(TrailEventRow.extract_id, TrailEventRow.seq)
        )
        for extract_id, actor, email, role, at, version in rows:
            signature = AuditSignature(actor, email, role or "", aware_utc(at), version)
            found[extract_id].append(signature)
    return found


def find_extracts(
    services: Services,
    *,
    body: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    dnr: str | None = None,
    signer: str | None = None,
    status: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[AuditRow]:
    """Extracts matching every filter given, newest meeting first, then by §.

    ``body``: the body's code, exact and case-insensitive; ``date_from`` /
    ``date_to``: the meeting date, inclusive; ``dnr``: a substring of the
    diarienummer; ``signer``: a substring of the name or e-mail of someone who
    signed (any version); ``status``: an ``ExtractStatus`` (or its value).
    Empty strings count as no filter. Raises ``FilterError`` for a bad status
    or limit.
    """
    check_limit(limit)
    body, dnr, signer = (v.strip() if v else None for v in (body, dnr, signer))
    body_code, _name, meeting_date = _meeting_columns()
    conditions: list[ColumnElement[bool]] = []
    if body:
        conditions.append(_matches(body_code, body, substring=False))
    if date_from is not None:
        conditions.append(meeting_date >= date_from.isoformat())
    if date_to is not None:
        conditions.append(meeting_date <= date_to.isoformat())
    if dnr:
        conditions.append(_matches(ExtractRow.dnr, dnr))
    if status:
        conditions.append(ExtractRow.status == parse_status(status))
    if signer:
        conditions.append(
            exists().where(
                TrailEventRow.extract_id == ExtractRow.id,
                TrailEventRow.kind.in_(SIGNATURE_EVENTS),
                or_(
                    _matches(TrailEventRow.actor, signer),
                    _matches(TrailEventRow.actor_email, signer),
                ),
            )
        )
    # Only non-ASCII needles can over-match in SQL; then the limit is applied after
    # the exact check in Python (the SQL superset stays small: one letter differs).
    exact_in_python = any(v and not v.isascii() for v in (body, dnr, signer))
    query = _extract_query().where(*conditions)
    if not exact_in_python:
        query = query.limit(limit)
    with services.ledger.reading() as session:
        candidates = [
            record
            for record in session.execute(query)
            if not exact_in_python
            or (
                (not body or body.casefold() == str(record.body_code).casefold())
                and (not dnr or _folds(dnr, record.dnr))
            )
        ]
        signatures = _signatures_of(session, [record.id for record in candidates])
    rows: list[AuditRow] = []
    for record in candidates:
        signed = tuple(signatures.get(record.id, ()))
        if exact_in_python and signer and not any(_folds(signer, s.name, s.email) for s in signed):
            continue
        rows.append(_audit_row(record, signed))
        if len(rows) == limit:
            break
    return rows


def _extract_query() -> Select[Any]:
    """The columns of an :class:`AuditRow`, newest meeting first, then its protocols,
    then its extracts by §."""
    body_code, body_name, meeting_date = _meeting_columns()
    return (
        select(
            ExtractRow.id,
            ExtractRow.meeting_id,
            body_code.label("body_code"),
            body_name.label("body_name"),
            meeting_date.label("meeting_date"),
            ExtractRow.kind,
            ExtractRow.paragraph,
            ExtractRow.dnr,
            ExtractRow.title,
            ExtractRow.version,
            ExtractRow.status,
            ExtractRow.head_sha256,
            ExtractRow.archive_uri,
        )
        .join(MeetingRow, MeetingRow.meeting_id == ExtractRow.meeting_id)
        .order_by(
            meeting_date.desc(), ExtractRow.meeting_id, ExtractRow.paragraph, ExtractRow.kind.desc()
        )
    )


def _audit_row(record: Row[Any], signatures: tuple[AuditSignature, ...]) -> AuditRow:
    summary = ExtractSummary(
        extract_id=record.id,
        meeting_id=record.meeting_id,
        paragraph=record.paragraph,
        dnr=record.dnr,
        title=record.title,
        version=record.version,
        status=record.status,
        document_sha256=record.head_sha256,
        archive_uri=record.archive_uri,
        immediate=record.kind is DocumentKind.IMMEDIATE_PROTOCOL,
        kind=record.kind,
    )
    return AuditRow(
        extract=summary,
        body_code=str(record.body_code),
        body_name=str(record.body_name),
        meeting_date=dt.date.fromisoformat(str(record.meeting_date)),
        signatures=signatures,
    )


def extract_timeline(
    services: Services,
    meeting_id: str,
    paragraph: int,
    kind: DocumentKind = DocumentKind.EXTRACT,
) -> Timeline:
    """The trail of the extract of § ``paragraph`` (or, with ``kind``, of a protocol:
    ``paragraph`` 0) from the ledger, its chain checked, its end against the recorded
    head and the head against the ledger's seal
    (:func:`justering.ledger.extracts.checked_trail`); ``NotFoundError`` if there is
    no such document."""
    with services.ledger.reading() as session:
        record = session.execute(
            _extract_query().where(
                ExtractRow.meeting_id == meeting_id,
                ExtractRow.kind == kind,
                ExtractRow.paragraph == paragraph,
            )
        ).one_or_none()
        extract = session.get(ExtractRow, record.id) if record is not None else None
        if record is None or extract is None:
            what = f"§ {paragraph}" if kind is DocumentKind.EXTRACT else kind.swedish
            raise NotFoundError(kind.value.replace("_", " "), f"{what} of meeting {meeting_id!r}")
        events, problems = checked_trail(session, extract)
        signatures = tuple(_signatures_of(session, [record.id]).get(record.id, ()))
    return Timeline(_audit_row(record, signatures), events, tuple(problems))


def archived_count(events: Sequence[TrailEvent]) -> int | None:
    """How many of ``events`` (a ledger trail) the archived ``trail.json`` holds: those
    before its last ``archived`` event, which is recorded once the bundle is written.
    None when the trail has no ``archived`` event."""
    archived = [i for i, event in enumerate(events) if event.kind is EventKind.ARCHIVED]
    return archived[-1] if archived else None
