"""``justering status MEETING [--json]``: where a meeting's paragraphs stand, for
the secretary (the query is :mod:`justering.workflow.meeting_view`).

The text is Swedish, with Swedish local times; ``--json`` is the stable format of
docs/cli.md (times in ISO 8601, UTC).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from justering.cli.commands import EXIT_OK, Commands, existing_services
from justering.config import Settings
from justering.errors import NotFoundError
from justering.model.calendar import local_minute
from justering.model.process import ExtractStatus

if TYPE_CHECKING:
    from justering.workflow.meeting_view import (
        MeetingView,
        ParagraphView,
        ProtocolView,
        Signature,
        Waiting,
    )

__all__ = ["describe_meeting", "register"]


def register(commands: Commands) -> None:
    status = commands.add(
        "status", help="where a meeting's paragraphs stand (read-only)", run=_status
    )
    status.add_argument("meeting_id", metavar="MEETING", help="the meeting's id")
    status.add_argument("--json", action="store_true", help="print JSON (docs/cli.md)")


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from justering.workflow.meeting_view import meeting_view

    with existing_services(settings) as services:
        try:
            view = meeting_view(services, args.meeting_id)
        except NotFoundError as error:
            if error.what != "meeting":
                raise
            raise NotFoundError(
                "meeting", f"{args.meeting_id!r} in the ledger of {settings.home}"
            ) from None
    if args.json:
        print(json.dumps(view.to_json(), indent=2, ensure_ascii=False))
    else:
        print(describe_meeting(view))
    return EXIT_OK


def describe_meeting(view: MeetingView) -> str:
    """A Swedish plain-text account of the meeting and its paragraphs."""
    m = view.meeting
    passed = " (passerad)" if view.deadline_passed else ""
    counts = [
        f"{view.count(status)} {status.swedish}" for status in ExtractStatus if view.count(status)
    ]
    if view.count(None):
        counts.insert(0, f"{view.count(None)} inte upprättade ännu")
    lines = [
        f"{m.body.name} ({m.body.code}), {m.municipality}",
        f"Sammanträde {m.date.isoformat()} ({m.meeting_id})",
        f"Justeras senast {view.deadline.isoformat()}{passed}",
        f"{len(view.paragraphs)} paragrafer: {', '.join(counts)}",
    ]
    for protocol in view.protocols:
        lines += ["", *_describe_protocol(protocol)]
    for paragraph in view.paragraphs:
        lines += ["", *_describe_paragraph(paragraph)]
    return "\n".join(lines)


def _describe_protocol(p: ProtocolView) -> list[str]:
    late = " – justeringen är försenad" if p.overdue else ""
    lines = [
        f"{p.protocol.label}",
        f"    version {p.protocol.version}: {p.protocol.status.swedish}{late}",
        f"    justeras senast {p.deadline.isoformat()}",
    ]
    lines += _who(p.signatures, p.waiting)
    if p.held_for:
        held = ", ".join(f"§ {n}" for n in p.held_for)
        lines.append(f"    väntar på att {held} rättas och signeras")
    if p.justered_on:
        after = " (efter sista dagen)" if p.late else ""
        lines.append(f"    justerat:   {p.justered_on.isoformat()}{after}")
    if p.announced_on:
        appeal = f", överklagande senast {p.appeal_deadline}" if p.appeal_deadline else ""
        lines.append(f"    anslaget:   {p.announced_on.isoformat()}{appeal}")
    if p.kept_at:
        lines.append(f"    förvaras:   {p.kept_at}")
    return lines


def _who(signatures: tuple[Signature, ...], waiting: tuple[Waiting, ...]) -> list[str]:
    """Who signed, and who is waited for (since when asked, reminded)."""
    lines = [
        f"    signerat:   {s.name}, {s.role.swedish.lower()}, {local_minute(s.at)}"
        for s in signatures
    ]
    for w in waiting:
        if w.notified_at is None:
            since = "inte underrättad ännu"
        else:
            since = f"underrättad {local_minute(w.notified_at)}"
            if w.last_notified_at and w.last_notified_at != w.notified_at:
                since += f", senast {local_minute(w.last_notified_at)}"
        lines.append(f"    väntar på:  {w.name}, {w.role.swedish.lower()}, {since}")
    return lines


def _describe_paragraph(p: ParagraphView) -> list[str]:
    dnr = f"  {p.dnr}" if p.dnr else ""
    immediate = " (omedelbar justering)" if p.paragraph.immediate else ""
    lines = [f"§ {p.number}{dnr}  {p.title}{immediate}"]
    if p.extract is None:
        return [*lines, f"    {p.status_swedish}"]
    late = " – justeringen är försenad" if p.overdue else ""
    lines.append(f"    version {p.extract.version}: {p.status_swedish}{late}")
    lines += _who(p.signatures, p.waiting)
    for d in p.declines:
        role = f", {d.role.swedish.lower()}" if d.role else ""
        comment = d.comment.replace("\n", "\n                ")
        lines.append(f"    avböjt:     {d.name}{role}, {local_minute(d.at)}: {comment}")
    if p.announced_on:
        appeal = (
            f", överklagande senast {p.appeal_deadline.isoformat()}" if p.appeal_deadline else ""
        )
        lines.append(f"    protokollet anslaget: {p.announced_on.isoformat()}{appeal}")
    return lines
