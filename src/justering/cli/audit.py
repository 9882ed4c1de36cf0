"""``justering audit``: the archivist's search and an extract's timeline, on the
command line (the queries are :mod:`justering.workflow.audit`).

Building the parser stays cheap: the queries are imported when they run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from justering.cli.commands import EXIT_ERROR, EXIT_INVALID, EXIT_OK, Commands, existing_services
from justering.config import Settings
from justering.errors import JusteringError
from justering.model.calendar import local_minute
from justering.model.process import ExtractStatus
from justering.model.roles import role_name

if TYPE_CHECKING:
    from justering.workflow.audit import AuditRow, Timeline
    from justering.workflow.services import Services

__all__ = ["add_audit_arguments", "describe_rows", "describe_timeline", "register", "run_audit"]

DEFAULT_LIMIT = 200
"""As :data:`justering.workflow.audit.DEFAULT_LIMIT` (not imported: the queries are heavy)."""
MAX_LIMIT = 10_000


def _date_argument(name: str) -> Any:
    def parse(text: str) -> dt.date:
        from justering.workflow.audit import FilterError, parse_date

        try:
            return parse_date(text, name)
        except FilterError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _status_argument(text: str) -> str:
    from justering.workflow.audit import FilterError, parse_status

    try:
        return parse_status(text)
    except FilterError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _limit_argument(text: str) -> int:
    from justering.workflow.audit import FilterError, check_limit

    try:
        return check_limit(int(text))
    except (ValueError, FilterError):
        raise argparse.ArgumentTypeError(
            f"limit: expected a whole number from 1 to {MAX_LIMIT}, got {text!r}"
        ) from None


def register(commands: Commands) -> None:
    audit = commands.add("audit", help="find extracts and read their trail (read-only)", run=_audit)
    add_audit_arguments(audit)


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    with existing_services(settings) as services:
        return run_audit(args, services)


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``justering audit``. Malformed values exit 2 (argparse)."""
    parser.add_argument("--body", help="body code, e.g. KSAU (exact, any case)")
    for flag, dest, bound in (("--from", "date_from", "after"), ("--to", "date_to", "before")):
        parser.add_argument(
            flag,
            dest=dest,
            type=_date_argument(flag),
            metavar="YYYY-MM-DD",
            help=f"meetings on or {bound} this date",
        )
    parser.add_argument("--dnr", help="part of the diarienummer (any case)")
    parser.add_argument("--signer", help="part of a signer's name or e-mail (any case)")
    parser.add_argument(
        "--status",
        type=_status_argument,
        metavar="STATUS",
        help="one of " + ", ".join(ExtractStatus),
    )
    parser.add_argument(
        "--limit",
        type=_limit_argument,
        default=DEFAULT_LIMIT,
        help=f"at most this many extracts (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--meeting", metavar="ID", help="with --paragraph or --protocol: one document's timeline"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--paragraph", type=int, metavar="N", help="the extract's § number")
    which.add_argument(
        "--protocol",
        nargs="?",
        const="protokoll",
        choices=("protokoll", "omedelbar"),
        help="the meeting's protocol (or 'omedelbar': that of the omedelbar justering)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (see docs/audit.md)")


def run_audit(args: argparse.Namespace, services: Services) -> int:
    """``justering audit``: 0 found (or none), 1 a timeline whose chain is broken,
    2 bad arguments or no such extract."""
    from justering.model.process import DocumentKind
    from justering.workflow.audit import FilterError, extract_timeline, find_extracts

    try:
        document = args.paragraph is not None or args.protocol is not None
        if (args.meeting is None) == document:
            raise FilterError(
                "--meeting and --paragraph (or --protocol) go together (one document's timeline)"
            )
        if args.meeting is not None:
            kind, number = DocumentKind.EXTRACT, args.paragraph
            if args.protocol is not None:
                number = 0
                kind = (
                    DocumentKind.IMMEDIATE_PROTOCOL
                    if args.protocol == "omedelbar"
                    else DocumentKind.PROTOCOL
                )
            timeline = extract_timeline(services, args.meeting, number, kind)
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


def describe_rows(rows: Sequence[AuditRow], limit: int = DEFAULT_LIMIT) -> str:
    """A Swedish plain-text table of ``rows`` (a protocol's § column says so)."""
    if not rows:
        return "Inga utdrag matchar sökningen."
    header = ("Organ", "Datum", "§", "Diarienummer", "Status", "Undertecknare", "Rubrik")
    table = [header] + [
        (
            r.body_code,
            r.meeting_date.isoformat(),
            r.extract.kind.swedish if r.extract.is_protocol else str(r.extract.paragraph),
            r.extract.dnr or "–",
            r.extract.status.swedish,
            ", ".join(f"{s.name} ({role_name(s.role)})" for s in r.signatures) or "–",
            r.extract.title,
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
    protocols = sum(1 for r in rows if r.extract.is_protocol)
    counted = f"{len(rows) - protocols} utdrag"
    if protocols:
        counted += f" och {protocols} protokoll"
    lines.append(f"{counted}{more}")
    return "\n".join(line.rstrip() for line in lines)


def describe_timeline(timeline: Timeline) -> str:
    """A Swedish plain-text account of one extract's (or protocol's) trail."""
    row, e = timeline.row, timeline.row.extract
    lines = [
        f"{row.body_name} ({row.body_code}) {row.meeting_date.isoformat()}, "
        + (e.kind.swedish if e.is_protocol else f"§ {e.paragraph}")
        + (f", {e.dnr}" if e.dnr else ""),
        e.title,
        f"Status: {e.status.swedish}, version {e.version}",
        f"Arkiv: {e.archive_uri or '–'}",
        "",
    ]
    for event in timeline.events:
        who = event.actor + (f" <{event.actor_email}>" if event.actor_email else "")
        role = f", {role_name(event.role)}" if event.role else ""
        lines.append(
            f"{event.seq:>3}  {local_minute(event.at, zone=True)}  {event.kind.swedish:<20}"
            f"{who}{role} (v{event.version})"
        )
    lines.append("")
    if timeline.chain_ok:
        lines.append(f"Händelsekedjan är hel ({timeline.count_text()}).")
    else:
        lines.append("Händelsekedjan är BRUTEN:")
        lines.extend(f"  {problem}" for problem in timeline.chain_problems)
    return "\n".join(lines)
