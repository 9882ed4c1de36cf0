"""A home with the sample meeting driven to archived extracts, in-process (no Prefect).

``archive_sample_meeting`` runs the real workflow: record, draft, advance,
follow each link from the outbox, sign, … until every extract is archived.
The fixtures share one such home per session (read only: copy before
tampering, with :func:`copy_bundle`), and help rewrite a bundle so that only
the check under test can catch a change.

Use from a test module::

    from support.archived import ArchivedMeeting, archived_meeting_fixture  # noqa: F401

and ask for ``archived_meeting`` in a test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import select

from justering import workflow
from justering.config import Settings, load_settings
from justering.ledger.database import Ledger
from justering.ledger.extracts import load_document
from justering.ledger.schema import MeetingRow
from justering.mail.delivery import outbox_messages
from justering.model.extract import ExtractSummary
from justering.model.manifest import load_sample_meeting
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.trail import (
    GENESIS_HASH,
    TrailEvent,
    trail_from_json,
    trail_to_json,
    with_hash,
)
from justering.pades.ca import SigningCA

_LINK = re.compile(r"/s/([A-Za-z0-9_-]+)")
MAX_ROUNDS = 8


KEPT_AT = "Kommunstyrelsens kansli, Nacka stadshus, Granitvägen 15"
"""The förvaringsplats the tests' settings give every body (the announcement says it)."""


@dataclass(frozen=True)
class ArchivedMeeting:
    """A home whose sample meeting is archived; everything a test needs to find it."""

    settings: Settings
    meeting: Meeting
    states: tuple[ExtractSummary, ...]
    ca_certificate: x509.Certificate
    protocols: tuple[ExtractSummary, ...] = ()
    """The protocol, then the small protocol of the omedelbar justering."""

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def ca_pem(self) -> Path:
        return self.settings.ca_dir / "ca-cert.pem"

    @property
    def archive_uris(self) -> list[str]:
        return [state.archive_uri or "" for state in self.states]

    def bundle_dirs(self) -> list[Path]:
        """The local bundle folders, in paragraph order (local archive only)."""
        return [Path(uri.removeprefix("file://")).parent for uri in self.archive_uris]

    def protocol_bundle_dirs(self) -> list[Path]:
        """The protocols' local bundle folders (the protocol's first)."""
        return [Path((p.archive_uri or "").removeprefix("file://")).parent for p in self.protocols]

    def document(self, sha256: str) -> bytes:
        """A document version from the ledger (e.g. the PDF before certification)."""
        services = workflow.open_services(self.settings)
        try:
            with services.ledger.transaction() as session:
                return load_document(session, sha256)
        finally:
            services.ledger.dispose()


def archive_sample_meeting(settings: Settings, meeting: Meeting | None = None) -> ArchivedMeeting:
    """Drive ``meeting`` (default: the sample) through every signer to the archive."""
    meeting = meeting or load_sample_meeting()
    settings.home.mkdir(parents=True, exist_ok=True)
    ca = SigningCA.create(settings.ca_dir, organisation=meeting.municipality)
    services = workflow.open_services(settings)
    try:
        workflow.record_meeting(services, meeting)
        for paragraph in meeting.paragraphs:
            workflow.draft_extract(services, meeting.meeting_id, paragraph.number)
        followed: set[Path] = set()
        for _round in range(MAX_ROUNDS):
            report = workflow.advance_meeting(services, meeting.meeting_id)
            if report.remaining == 0:
                break
            for path in outbox_messages(settings.outbox_dir):
                if path in followed:
                    continue
                followed.add(path)
                match = _LINK.search(path.read_text(encoding="utf-8"))
                if match is None:  # a receipt, a notice to the secretary
                    assert re.search(r"-(receipt|justered)-", path.name), f"no link in {path}"
                    continue
                workflow.view_link(services, match.group(1))
                workflow.sign_with_link(services, match.group(1))
        else:
            raise AssertionError(f"the meeting was not archived in {MAX_ROUNDS} rounds")
        states = workflow.meeting_summaries(services, meeting.meeting_id)
        protocols = workflow.protocol_summaries(services, meeting.meeting_id)
    finally:
        services.ledger.dispose()
    assert all(s.status is ExtractStatus.ARCHIVED for s in (*states, *protocols)), states
    return ArchivedMeeting(settings, meeting, states, ca.certificate, protocols)


def sample_settings(home: Path) -> Settings:
    """Settings for ``home`` with the defaults (SQLite, local archive), not the environment."""
    return dataclasses.replace(
        load_settings(home, environ={}), public_url="http://justering.test", kept_at=KEPT_AT
    )


@pytest.fixture(scope="session", name="archived_meeting")
def archived_meeting_fixture(tmp_path_factory: pytest.TempPathFactory) -> ArchivedMeeting:
    """One home with the sample meeting archived locally, shared by the whole
    session. Treat it as read only (its archived files are read only anyway)."""
    return archive_sample_meeting(sample_settings(tmp_path_factory.mktemp("archived") / "home"))


# --- changing copies of bundles ---------------------------------------------------------


def copy_bundle(bundle: Path, destination: Path) -> Path:
    """A writable copy of a bundle folder at ``destination``."""
    shutil.copytree(bundle, destination)
    for path in destination.iterdir():
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return destination


def flip_byte(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def inside_first_stream(pdf: bytes) -> int:
    """An offset inside the first content stream's data: covered by every signature,
    and flipping it leaves the file readable as a PDF."""
    start = pdf.index(b"stream\n") + len(b"stream\n")
    end = pdf.index(b"endstream", start)
    assert end - start > 40, "the first stream is too short to flip a byte in"
    return start + (end - start) // 2


def rewrite_file(bundle: Path, name: str, data: bytes) -> None:
    """Replace one bundle file and its manifest.json entry, so that the checksums
    still hold and only the other checks can catch the change."""
    (bundle / name).write_bytes(data)
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")


def read_trail(bundle: Path) -> list[TrailEvent]:
    return list(trail_from_json((bundle / "trail.json").read_bytes()))


def write_trail(bundle: Path, events: Sequence[TrailEvent], *, reseal: bool = False) -> None:
    """Write ``events`` as the bundle's trail (manifest updated). ``reseal``
    renumbers and rehashes the chain, as a forger who knows the format would."""
    if reseal:
        events = list(reseal_chain(events))
    rewrite_file(bundle, "trail.json", trail_to_json(events))


def reseal_chain(events: Sequence[TrailEvent]) -> Iterator[TrailEvent]:
    """``events`` renumbered and rehashed into a chain that holds: what anyone who
    knows the format can do (the hashes need no key)."""
    previous = GENESIS_HASH
    for seq, event in enumerate(events, start=1):
        sealed = with_hash(dataclasses.replace(event, seq=seq, prev_hash=previous, hash=""))
        previous = sealed.hash
        yield sealed


# --- the command line as a subprocess ---------------------------------------------------


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without Prefect's API URL and justering's own
    settings (so only ``--home`` and ``extra`` count)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "PREFECT_API_URL" and not name.startswith("JUSTERING_")
    }
    env.update(extra)
    return env


def meetings_in_ledger(home: Path) -> list[str]:
    """The meeting ids recorded in the home's default SQLite ledger (none if it is absent)."""
    database = home / "justering.db"
    if not database.exists():
        return []
    ledger = Ledger(f"sqlite:///{database}")
    try:
        with ledger.transaction() as session:
            return list(session.execute(select(MeetingRow.meeting_id)).scalars())
    finally:
        ledger.dispose()


def run_cli(
    home: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m justering [--home HOME] ARGS`` in a clean environment, with
    ``input`` on its standard input (default: none)."""
    command = [sys.executable, "-m", "justering"]
    if home is not None:
        command += ["--home", str(home)]
    return subprocess.run(
        [*command, *args],
        env=env if env is not None else clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}),
        cwd=cwd,
        check=False,
    )
