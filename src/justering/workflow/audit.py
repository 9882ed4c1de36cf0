"""The audit: find extracts in the ledger and read an extract's timeline.

:func:`find_extracts` filters in SQL (the body code and the meeting date are
read from the stored manifest with JSON functions, the signer through an
``EXISTS`` over the trail), so a search over thousands of extracts costs one
query for the rows and one for their signatures. SQLite's ``lower()`` and
``LIKE`` fold ASCII only: a needle with other letters (``Åsa``) is matched in
SQL with ``_`` wildcards in their place and confirmed in Python with
``casefold``. ``justering audit`` (:func:`add_audit_arguments`,
:func:`run_audit`) prints the results; docs/audit.md describes its JSON.

Importing this module stays cheap (the command line builds its parser with
:func:`add_audit_arguments` on every run): SQLAlchemy, the ledger and the
workflow are imported by the functions that query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from justering.errors import JusteringError, WorkflowError
from justering.model.roles import Role
from justering.model.trail import EventKind, TrailEvent, chain_problems

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Row, Select
    from sqlalchemy.orm import Session

    from justering.workflow.core import ExtractStatus, Services

DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000
EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2

_SIGNATURE_KINDS = (EventKind.SIGNED.value, EventKind.CERTIFIED.value)

STATUS_SWEDISH: dict[str, str] = {
    "awaiting_chair": "väntar på ordförande",
    "awaiting_adjusters": "väntar på justerare",
    "awaiting_certifier": "väntar på bestyrkande",
    "certified": "bestyrkt",
    "archived": "arkiverat",
    "declined": "avböjt, åter hos sekreteraren",
}
"""Every ``ExtractStatus`` value (the keys, in workflow order) in Swedish."""


class FilterError(JusteringError):
    """A filter value is malformed (a date, a status, a limit)."""


def role_swedish(role: str | None) -> str:
    """The Swedish name of a stored role value, or the value itself if unknown."""
    if role is None:
        return ""
    try:
        return Role(role).swedish.lower()
    except ValueError:
        return role


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
    """One extract as the audit shows it."""

    meeting_id: str
    body_code: str
    body_name: str
    meeting_date: dt.date
    paragraph: int
    dnr: str | None
    title: str
    version: int
    status: ExtractStatus
    archive_uri: str | None
    signatures: tuple[AuditSignature, ...]
    """Every signature so far, oldest first (all versions; see ``version``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "meeting_id": self.meeting_id,
            "body_code": self.body_code,
            "body_name": self.body_name,
            "meeting_date": self.meeting_date.isoformat(),
            "paragraph": self.paragraph,
            "dnr": self.dnr,
            "title": self.title,
            "version": self.version,
            "status": self.status.value,
            "archive_uri": self.archive_uri,
            "signatures": [s.to_json() for s in self.signatures],
        }


@dataclass(frozen=True)
class Timeline:
    """An extract's trail as recorded in the ledger, with its chain checked."""

    extract: AuditRow
    events: tuple[TrailEvent, ...]
    chain_problems: tuple[str, ...]

    @property
    def chain_ok(self) -> bool:
        return not self.chain_problems

    @property
    def archive_uri(self) -> str | None:
        return self.extract.archive_uri

    def to_json(self) -> dict[str, Any]:
        return {
            "extract": self.extract.to_json(),
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
    if value not in STATUS_SWEDISH:
        choices = ", ".join(STATUS_SWEDISH)
        raise FilterError(f"status: expected one of {choices}, got {text!r}")
    return value


def _check_limit(limit: int) -> int:
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
    from sqlalchemy import func

    return func.lower(column).like(_like_pattern(needle, substring=substring), escape="\\")


def _folds(needle: str, *values: str | None) -> bool:
    """The exact case-insensitive substring test the SQL pattern approximates."""
    folded = needle.casefold()
    return any(value is not None and folded in value.casefold() for value in values)


def _meeting_columns() -> tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]:
    """The body's code and name and the meeting date (ISO), from the stored manifest."""
    from justering.ledger.schema import MeetingRow

    manifest = MeetingRow.manifest
    return (
        manifest["body"]["code"].as_string(),
        manifest["body"]["name"].as_string(),
        manifest["date"].as_string(),
    )


def _signatures_of(session: Session, extract_ids: Sequence[int]) -> dict[int, list[AuditSignature]]:
    from sqlalchemy import select

    from justering.ledger.schema import TrailEventRow, aware

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
                TrailEventRow.kind.in_(_SIGNATURE_KINDS),
            )
            .order_by(TrailEventRow.extract_id, TrailEventRow.seq)
        )
        for extract_id, actor, email, role, at, version in rows:
            found[extract_id].append(AuditSignature(actor, email, role or "", aware(at), version))
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
    from sqlalchemy import exists, or_

    from justering.ledger.schema import ExtractRow, TrailEventRow

    _check_limit(limit)
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
                TrailEventRow.kind.in_(_SIGNATURE_KINDS),
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
    """The columns of an :class:`AuditRow`, newest meeting first, then by §."""
    from sqlalchemy import select

    from justering.ledger.schema import ExtractRow, MeetingRow

    body_code, body_name, meeting_date = _meeting_columns()
    return (
        select(
            ExtractRow.id,
            ExtractRow.meeting_id,
            body_code.label("body_code"),
            body_name.label("body_name"),
            meeting_date.label("meeting_date"),
            ExtractRow.paragraph,
            ExtractRow.dnr,
            ExtractRow.title,
            ExtractRow.version,
            ExtractRow.status,
            ExtractRow.archive_uri,
        )
        .join(MeetingRow, MeetingRow.meeting_id == ExtractRow.meeting_id)
        .order_by(meeting_date.desc(), ExtractRow.meeting_id, ExtractRow.paragraph)
    )


def _audit_row(record: Row[Any], signatures: tuple[AuditSignature, ...]) -> AuditRow:
    from justering.workflow.core import ExtractStatus

    return AuditRow(
        meeting_id=record.meeting_id,
        body_code=str(record.body_code),
        body_name=str(record.body_name),
        meeting_date=dt.date.fromisoformat(str(record.meeting_date)),
        paragraph=record.paragraph,
        dnr=record.dnr,
        title=record.title,
        version=record.version,
        status=ExtractStatus(record.status),
        archive_uri=record.archive_uri,
        signatures=signatures,
    )


def extract_timeline(services: Services, meeting_id: str, paragraph: int) -> Timeline:
    """The extract's trail from the ledger and its chain check; ``WorkflowError``
    (404) if there is no such extract."""
    from justering.ledger.schema import ExtractRow, trail_of

    with services.ledger.reading() as session:
        record = session.execute(
            _extract_query().where(
                ExtractRow.meeting_id == meeting_id, ExtractRow.paragraph == paragraph
            )
        ).one_or_none()
        if record is None:
            raise WorkflowError(f"no extract § {paragraph} of meeting {meeting_id!r}", 404)
        events = trail_of(session, record.id)
        signatures = tuple(_signatures_of(session, [record.id]).get(record.id, ()))
        extract = session.get(ExtractRow, record.id)
        head = extract.trail_head if extract is not None else None
    problems = chain_problems(events, expected_head=head)
    return Timeline(_audit_row(record, signatures), events, tuple(problems))


# --- the command line ------------------------------------------------------------------


def _date_argument(name: str) -> Any:
    def parse(text: str) -> dt.date:
        try:
            return parse_date(text, name)
        except FilterError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _status_argument(text: str) -> str:
    try:
        return parse_status(text)
    except FilterError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _limit_argument(text: str) -> int:
    try:
        return _check_limit(int(text))
    except (ValueError, FilterError):
        raise argparse.ArgumentTypeError(
            f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {text!r}"
        ) from None


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``justering audit``. Malformed values exit 2 (argparse)."""
    parser.add_argument("--body", help="body code, e.g. KSAU (exact, any case)")
    parser.add_argument(
        "--from",
        dest="date_from",
        type=_date_argument("--from"),
        metavar="YYYY-MM-DD",
        help="meetings on or after this date",
    )
    parser.add_argument(
        "--to",
        dest="date_to",
        type=_date_argument("--to"),
        metavar="YYYY-MM-DD",
        help="meetings on or before this date",
    )
    parser.add_argument("--dnr", help="part of the diarienummer (any case)")
    parser.add_argument("--signer", help="part of a signer's name or e-mail (any case)")
    parser.add_argument(
        "--status",
        type=_status_argument,
        metavar="STATUS",
        help="one of " + ", ".join(STATUS_SWEDISH),
    )
    parser.add_argument(
        "--limit",
        type=_limit_argument,
        default=DEFAULT_LIMIT,
        help=f"at most this many extracts (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--meeting", metavar="ID", help="with --paragraph: one extract's timeline")
    parser.add_argument("--paragraph", type=int, metavar="N", help="the extract's § number")
    parser.add_argument("--json", action="store_true", help="print JSON (see docs/audit.md)")


def run_audit(args: argparse.Namespace, services: Services) -> int:
    """``justering audit``: 0 found (or none), 1 a timeline whose chain is broken,
    2 bad arguments or no such extract."""
    try:
        if (args.meeting is None) != (args.paragraph is None):
            raise FilterError("--meeting and --paragraph go together (one extract's timeline)")
        if args.meeting is not None:
            timeline = extract_timeline(services, args.meeting, args.paragraph)
            if args.json:
                print(json.dumps(timeline.to_json(), indent=2, ensure_ascii=False))
            else:
                print(describe_timeline(timeline))
            return EXIT_OK if timeline.chain_ok else EXIT_INVALID
        rows = find_extracts(
            services,
            body=args.body,
            date_from=args.date_from,
            date_to=args.date_to,
            dnr=args.dnr,
            signer=args.signer,
            status=args.status,
            limit=args.limit,
        )
    except JusteringError as error:
        print(f"justering: {error.diagnostics()}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"extracts": [r.to_json() for r in rows]}, indent=2, ensure_ascii=False))
    else:
        print(describe_rows(rows, args.limit))
    return EXIT_OK


def _utc_minute(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def describe_rows(rows: Sequence[AuditRow], limit: int = DEFAULT_LIMIT) -> str:
    """A Swedish plain-text table of ``rows``."""
    if not rows:
        return "Inga utdrag matchar sökningen."
    header = ("Organ", "Datum", "§", "Diarienummer", "Status", "Undertecknare", "Rubrik")
    table = [header] + [
        (
            r.body_code,
            r.meeting_date.isoformat(),
            str(r.paragraph),
            r.dnr or "–",
            STATUS_SWEDISH[r.status],
            ", ".join(f"{s.name} ({role_swedish(s.role)})" for s in r.signatures) or "–",
            r.title,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False))
        + "  "
        + line[-1]
        for line in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    more = " (gränsen nådd: använd --limit eller fler filter)" if len(rows) >= limit else ""
    lines.append(f"{len(rows)} utdrag{more}")
    return "\n".join(line.rstrip() for line in lines)


def describe_timeline(timeline: Timeline) -> str:
    """A Swedish plain-text account of one extract's trail."""
    e = timeline.extract
    lines = [
        f"{e.body_name} ({e.body_code}) {e.meeting_date.isoformat()}, § {e.paragraph}"
        + (f", {e.dnr}" if e.dnr else ""),
        e.title,
        f"Status: {STATUS_SWEDISH[e.status]}, version {e.version}",
        f"Arkiv: {e.archive_uri or '–'}",
        "",
    ]
    for event in timeline.events:
        who = event.actor + (f" <{event.actor_email}>" if event.actor_email else "")
        role = f", {role_swedish(event.role)}" if event.role else ""
        lines.append(
            f"{event.seq:>3}  {_utc_minute(event.at)}  {event.kind.swedish:<14}"
            f"{who}{role} (v{event.version})"
        )
    lines.append("")
    if timeline.chain_ok:
        lines.append(f"Händelsekedjan är hel ({len(timeline.events)} händelser).")
    else:
        lines.append("Händelsekedjan är BRUTEN:")
        lines.extend(f"  {problem}" for problem in timeline.chain_problems)
    return "\n".join(lines)
