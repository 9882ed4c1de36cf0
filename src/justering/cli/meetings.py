"""The meeting system's and the secretary's commands: ``meeting-ended`` (a manifest
from a file or standard input) and ``redraft``.

Building the parser stays cheap: what the commands run is imported when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from justering.cli.ca import ensure_ca
from justering.cli.commands import EXIT_ERROR, EXIT_OK, Commands, existing_services
from justering.config import Settings
from justering.errors import ManifestError

if TYPE_CHECKING:
    from justering.model.meeting import Meeting

__all__ = ["STDIN", "read_manifest", "register"]

STDIN = "-"
"""The manifest argument that means standard input."""


def register(commands: Commands) -> None:
    ended = commands.add(
        "meeting-ended", help="start the pipeline for a meeting", run=_meeting_ended
    )
    ended.add_argument(
        "manifest",
        metavar="MANIFEST",
        help="the meeting manifest (JSON; '-': standard input, with the protocol text inline)",
    )
    ended.add_argument(
        "--url",
        help="post it to a running `justering serve` at this address, as a meeting system would",
    )

    redraft = commands.add(
        "redraft",
        help="send corrected text for an extract: version N+1, signing restarts",
        run=_redraft,
    )
    redraft.add_argument("meeting_id", metavar="MEETING_ID", help="the meeting's id")
    redraft.add_argument("paragraph", type=int, metavar="PARAGRAPH", help="the § number")
    what = redraft.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--text", type=Path, metavar="FILE", help="the corrected paragraph text ('-': stdin)"
    )
    what.add_argument(
        "--show", action="store_true", help="print the current text and comments (read-only)"
    )
    redraft.add_argument("--title", help="a corrected title (default: unchanged)")
    redraft.add_argument("--by", help="who redrafts (default: the body's secretary)")


def read_manifest(source: str) -> Meeting:
    """The manifest at ``source``, a file (``protocol_text`` relative to it) or
    :data:`STDIN` (the text inline or as paragraphs: there is no folder to read a
    ``protocol_text`` file from)."""
    from justering.model.manifest import MAX_MANIFEST_BYTES, load_manifest, parse_manifest_json

    if source != STDIN:
        return load_manifest(Path(source))
    document = sys.stdin.buffer.read(MAX_MANIFEST_BYTES + 1)
    try:
        decoded = json.loads(document)
    except ValueError:
        decoded = None  # parse_manifest_json names the line and column
    if isinstance(decoded, dict) and "protocol_text" in decoded:
        raise ManifestError(
            "protocol_text",
            f"{decoded['protocol_text']!r} is a file path, but a manifest read from "
            "standard input has no folder it is relative to: give the manifest as a file "
            "beside its protocol text, or the text itself as protocol_text_inline or "
            "paragraphs",
        )
    return parse_manifest_json(document)


def _meeting_ended(args: argparse.Namespace, settings: Settings) -> int:
    from justering import workflow

    meeting = read_manifest(args.manifest)
    if args.url:
        return _post_meeting(args.url, meeting)
    ensure_ca(settings, meeting.municipality)
    services = workflow.open_services(settings)
    try:
        if not workflow.record_meeting(services, meeting):
            print(f"meeting {meeting.meeting_id} was already started; nothing new to do")
            return EXIT_OK
    finally:
        services.ledger.dispose()
    if settings.prefect_api_url is None:
        print(
            f"meeting {meeting.meeting_id} recorded with {len(meeting.paragraphs)} paragraphs; "
            "`justering serve` picks it up when it runs (PREFECT_API_URL is not set)"
        )
        return EXIT_OK
    os.environ.update({"JUSTERING_HOME": str(settings.home)})
    from justering.orchestration.deployments import trigger_meeting
    from justering.orchestration.flows import meeting_label

    try:
        trigger_meeting(meeting.meeting_id, label=meeting_label(meeting))
    except Exception as error:  # Prefect unreachable, deployment not yet served …
        print(
            f"meeting {meeting.meeting_id} recorded, but its flow could not be started now "
            f"({error}); `justering serve` starts it when it runs",
            file=sys.stderr,
        )
        return EXIT_OK
    print(f"meeting {meeting.meeting_id} started: {len(meeting.paragraphs)} extracts")
    return EXIT_OK


def _post_meeting(url: str, meeting: Meeting) -> int:
    import httpx

    from justering.model.meeting import meeting_to_dict

    endpoint = f"{url.rstrip('/')}/api/meetings"
    token = os.environ.get("JUSTERING_API_TOKEN", "").strip()
    if not token:
        print(
            "justering: set JUSTERING_API_TOKEN to the meeting system's token "
            "(`justering clients add NAME --body CODE` on the server prints one)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        answer = httpx.post(
            endpoint,
            json=meeting_to_dict(meeting),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    except httpx.HTTPError as error:
        print(f"justering: could not reach {endpoint}: {error}", file=sys.stderr)
        return EXIT_ERROR
    if answer.status_code not in (200, 202):
        print(f"justering: {endpoint} refused the meeting: {answer.text}", file=sys.stderr)
        return EXIT_ERROR
    started = "started" if answer.json().get("created") else "was already started"
    print(f"meeting {meeting.meeting_id} {started} at {url}: {len(meeting.paragraphs)} extracts")
    return EXIT_OK


def _redraft(args: argparse.Namespace, settings: Settings) -> int:
    from justering import workflow
    from justering.workflow import redraft

    if args.show:
        with existing_services(settings) as services:
            header, text = redraft.describe_current(services, args.meeting_id, args.paragraph)
        print(header, end="", file=sys.stderr)  # the text alone on stdout, to edit
        print(text, end="")
        return EXIT_OK
    source: Path = args.text
    try:
        text = sys.stdin.read() if str(source) == STDIN else source.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"justering: --text {source}: {error}", file=sys.stderr)
        return EXIT_ERROR
    with existing_services(settings) as services:
        meeting = workflow.get_meeting(services, args.meeting_id)
        actor = args.by or workflow.secretary_of(meeting, settings).name
        result = redraft.redraft_extract(
            services, args.meeting_id, args.paragraph, text=text, title=args.title, actor=actor
        )
    print(
        f"§ {result.paragraph} i {result.meeting_id} är nu version {result.version} "
        f"(SHA-256 {result.document_sha256}), och protokollet har fått en ny version med den. "
        "Signeringen av dem börjar om från ordföranden, som får en ny länk av "
        "`justering serve`."
    )
    return EXIT_OK
