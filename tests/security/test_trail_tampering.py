"""Issue 10, finding 8: the trail is authenticated.

An attacker rewrites a trail as someone who knows the format would: an
adjuster's e-mail, or the appeal deadline the anslagstavla announced; the hash
chain recomputed, and the bundle's manifest.json (or the ledger's trail head) to
match. In the archive, the municipality's seal on trail.json no longer verifies
and ``justering verify`` exits 1 naming the trail; in the ledger, the head's MAC
does not, archiving refuses the extract with nothing written, and ``justering
audit`` exits 1 naming the broken seal.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from justering import workflow
from justering.archive.keys import extract_prefix
from justering.errors import ArchiveError, TrailError
from justering.ledger.heads import UNSEALED_HEAD
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Role
from justering.model.trail import EventKind, TrailEvent, trail_to_json
from justering.pades.ca import SigningCA
from justering.pades.seal import TrailSeal
from justering.workflow.services import Services
from support.archived import (
    ArchivedMeeting,
    archived_meeting_fixture,  # noqa: F401
    copy_bundle,
    read_trail,
    rewrite_file,
    run_cli,
    sample_settings,
    write_trail,
)
from support.workflow import (
    extract_rows,
    rewrite_ledger_trail,
    sign_as,
    small_meeting,
    snapshot,
    start,
    trail,
)

Change = Callable[[TrailEvent], TrailEvent]


def adjuster_email(event: TrailEvent) -> TrailEvent:
    """The adjuster's e-mail address, wherever the trail names it."""
    if event.role != Role.ADJUSTER.value or event.actor_email is None:
        return event
    return dataclasses.replace(event, actor_email="rolf.wasteson@evil.example")


def appeal_deadline(event: TrailEvent) -> TrailEvent:
    """The announced appeal deadline, two weeks later than the law gives: in the
    protocol's announcement, and in an extract's record of its protocol's justering."""
    if event.kind not in (EventKind.ANNOUNCED, EventKind.JUSTERED):
        return event
    deadline = dt.date.fromisoformat(event.detail["appeal_deadline"]) + dt.timedelta(days=14)
    return dataclasses.replace(
        event, detail={**event.detail, "appeal_deadline": deadline.isoformat()}
    )


CHANGES = pytest.mark.parametrize("change", [adjuster_email, appeal_deadline])


def _changed(events: list[TrailEvent], change: Change) -> list[TrailEvent]:
    changed = [change(event) for event in events]
    assert changed != events, "the change must touch the trail"
    return changed


@pytest.fixture
def bundle(archived_meeting: ArchivedMeeting, tmp_path: Path) -> Path:
    return copy_bundle(archived_meeting.bundle_dirs()[0], tmp_path / "bundle")


def _verify(home: Path, *args: str) -> tuple[int, dict[str, dict[str, object]]]:
    """``justering verify --json``: the exit code and the one result's checks by name."""
    done = run_cli(home, "verify", "--json", *args)
    [result] = json.loads(done.stdout)["results"]
    return done.returncode, {check["name"]: check for check in result["checks"]}


# --- the archive ----------------------------------------------------------------------------


def test_the_untouched_bundle_verifies_with_its_seal(archived_meeting: ArchivedMeeting) -> None:
    code, checks = _verify(archived_meeting.home, str(archived_meeting.bundle_dirs()[0]))
    assert code == 0
    seal = checks["trail seal"]
    assert seal["ok"] is True
    assert str(seal["detail"]).startswith("trail.json förseglat av 'Nacka kommun – signaturkedja'")


@CHANGES
def test_a_rewritten_archived_trail_fails_verify_naming_the_trail(
    archived_meeting: ArchivedMeeting, bundle: Path, change: Change
) -> None:
    write_trail(bundle, _changed(read_trail(bundle), change), reseal=True)
    code, checks = _verify(archived_meeting.home, str(bundle))
    assert code == 1
    failing = {name: check["detail"] for name, check in checks.items() if not check["ok"]}
    # The forgery is complete (checksums, chain, the PDF all agree); only the seal tells.
    assert failing == {"trail seal": "trail.json was changed after it was sealed"}
    done = run_cli(archived_meeting.home, "verify", str(bundle))
    assert done.returncode == 1
    assert done.stdout.startswith(f"OGILTIG (invalid): {bundle}\n")
    assert "  [FEL] trail seal: trail.json was changed after it was sealed" in done.stdout


def test_a_rewritten_protocol_trail_fails_verify(
    archived_meeting: ArchivedMeeting, tmp_path: Path
) -> None:
    """The justered protocol's bundle is sealed too: its announcement rewritten."""
    protocol = copy_bundle(archived_meeting.protocol_bundle_dirs()[0], tmp_path / "protocol")
    code, checks = _verify(archived_meeting.home, str(protocol))
    assert code == 0 and checks["trail seal"]["ok"] is True
    write_trail(protocol, _changed(read_trail(protocol), appeal_deadline), reseal=True)
    code, checks = _verify(archived_meeting.home, str(protocol))
    assert code == 1
    failing = {name: check["detail"] for name, check in checks.items() if not check["ok"]}
    assert failing == {"trail seal": "trail.json was changed after it was sealed"}


def test_a_trail_resealed_under_another_ca_is_refused(
    archived_meeting: ArchivedMeeting, bundle: Path, tmp_path: Path
) -> None:
    """The attacker runs a CA of the same name and seals the forged trail with it,
    and puts that CA's certificate in the bundle: verification never trusts it."""
    rogue = SigningCA.create(tmp_path / "rogue", organisation="Nacka kommun")
    write_trail(bundle, _changed(read_trail(bundle), adjuster_email), reseal=True)
    forged = (bundle / "trail.json").read_bytes()
    rewrite_file(bundle, "trail.json.p7s", TrailSeal.load_or_create(rogue).seal(forged))
    rewrite_file(bundle, "ca.pem", rogue.export_pem().encode())
    code, checks = _verify(archived_meeting.home, str(bundle))
    assert code == 1
    assert checks["trail seal"]["ok"] is False
    assert "does not chain to a trust root" in str(checks["trail seal"]["detail"])
    assert checks["trail chain"]["ok"] is True


def test_a_removed_seal_is_an_unsealed_trail(
    archived_meeting: ArchivedMeeting, bundle: Path
) -> None:
    (bundle / "trail.json.p7s").unlink()
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    del manifest["files"]["trail.json.p7s"]
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    code, checks = _verify(archived_meeting.home, str(bundle))
    assert code == 1
    assert str(checks["trail seal"]["detail"]).startswith(
        "oförseglat händelseförlopp: paketet saknar trail.json.p7s"
    )
    # Bundles archived before trails were sealed pass only when the caller says so.
    code, checks = _verify(archived_meeting.home, "--accept-unsealed", str(bundle))
    assert code == 0
    assert str(checks["trail seal"]["detail"]).startswith("oförseglat händelseförlopp, godtaget")


# --- the ledger -----------------------------------------------------------------------------


@pytest.fixture
def certified(tmp_path: Path, sample_meeting: Meeting) -> Iterator[tuple[Services, Meeting]]:
    """A home (SQLite, so that the command line reads the same ledger) with one
    extract certified, not yet archived (its justered protocol is announced and
    archived)."""
    settings = sample_settings(tmp_path / "home")
    settings.home.mkdir(parents=True)
    SigningCA.create(settings.ca_dir, organisation=sample_meeting.municipality)
    services = workflow.open_services(settings)
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
        sign_as(services, meeting.signers(role)[0].email)
        if role is not Role.CERTIFIER:
            workflow.advance_meeting(services, meeting.meeting_id)
    yield services, meeting
    services.ledger.dispose()


def _audit(services: Services, meeting: Meeting, *flags: str) -> CompletedProcess[str]:
    """``justering audit`` of the meeting's one extract's timeline, as a subprocess."""
    paragraph = str(meeting.paragraphs[0].number)
    where = ("--meeting", meeting.meeting_id, "--paragraph", paragraph)
    return run_cli(services.settings.home, "audit", *flags, *where)


@CHANGES
def test_a_trail_rewritten_in_the_ledger_is_not_archived_and_the_audit_names_it(
    certified: tuple[Services, Meeting], change: Change
) -> None:
    services, meeting = certified
    [extract] = extract_rows(services, meeting.meeting_id)
    assert extract.status is ExtractStatus.CERTIFIED
    _changed(list(trail(services, extract.id)), change)
    archived = services.settings.archive_dir
    files = sorted(p for p in archived.rglob("*") if p.is_file())
    assert files and all("/protokoll/" in str(p) for p in files)  # the protocol's bundle
    rewrite_ledger_trail(services, extract.id, change)
    before = snapshot(services)
    with pytest.raises(TrailError) as refused:
        workflow.archive_extract(services, extract.id)
    assert UNSEALED_HEAD in str(refused.value)
    assert "nothing was written" in str(refused.value)
    report = workflow.advance_meeting(services, meeting.meeting_id)  # reported, backs off
    assert report.archived == () and not report.complete
    assert any(UNSEALED_HEAD in failure for failure in report.failed), report.failed
    assert snapshot(services) == before
    assert sorted(p for p in archived.rglob("*") if p.is_file()) == files

    done = _audit(services, meeting)
    assert done.returncode == 1, done.stderr
    assert "Händelsekedjan är BRUTEN:" in done.stdout
    assert UNSEALED_HEAD in done.stdout
    done = _audit(services, meeting, "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["chain_ok"] is False and report["chain_problems"] == [UNSEALED_HEAD]


def test_the_untouched_ledger_trail_is_archived_and_sealed(
    certified: tuple[Services, Meeting],
) -> None:
    services, meeting = certified
    [extract] = extract_rows(services, meeting.meeting_id)
    uri = workflow.archive_extract(services, extract.id)
    bundle = Path(uri.removeprefix("file://")).parent
    assert (bundle / "trail.json.p7s").is_file()
    code, checks = _verify(services.settings.home, str(bundle))
    assert code == 0 and checks["trail seal"]["ok"] is True
    done = _audit(services, meeting)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_seal_planted_in_the_archive_is_not_adopted(
    certified: tuple[Services, Meeting], tmp_path: Path
) -> None:
    """Someone who can write the archive plants a seal of their own (over the very
    trail the extract will archive) where its bundle will go: archiving keeps a
    stored seal only if it verifies, so it refuses, and nothing is archived."""
    services, meeting = certified
    [extract] = extract_rows(services, meeting.meeting_id)
    where = (meeting.meeting_id, extract.dnr, extract.paragraph, extract.version)
    prefix = extract_prefix(meeting.body.code, meeting.date, *where)
    rogue = SigningCA.create(tmp_path / "rogue", organisation="Nacka kommun")
    planted = TrailSeal.load_or_create(rogue).seal(trail_to_json(trail(services, extract.id)))
    key = f"{prefix}/trail.json.p7s"
    services.archive.put(key, planted, content_type="application/pkcs7-signature")
    with pytest.raises(ArchiveError, match=r"trail\.json\.p7s"):
        workflow.archive_extract(services, extract.id)
    [state] = workflow.meeting_summaries(services, meeting.meeting_id)
    assert state.status is ExtractStatus.CERTIFIED
    assert services.archive.head(f"{prefix}/manifest.json") is None
