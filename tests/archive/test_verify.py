"""``justering verify`` and :mod:`justering.archive.verify` on a really archived meeting:
what verifies, which tampering is caught by which check, and the exit codes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from pypdf import PdfWriter
from pypdf.annotations import FreeText

from justering.archive.verify import Verification, load_trust_roots, verify_targets
from justering.errors import ConfigError
from justering.model.roles import Person, Role, Signer
from justering.model.trail import EventKind
from justering.pades.ca import SigningCA
from justering.pades.sign import sign_extract
from support.archived import (
    ArchivedMeeting,
    archive_sample_meeting,
    archived_meeting_fixture,  # noqa: F401
    clean_environment,
    copy_bundle,
    flip_byte,
    inside_first_stream,
    read_trail,
    rewrite_file,
    run_cli,
    sample_settings,
    write_trail,
)
from support.s3 import AWS_TEST_ENV

PROTOCOL_CHECKS = {
    "checksums",
    "signatures",
    "trail chain",
    "trail matches PDF",
    "trail matches signatures",
    "trail seal",
}
BUNDLE_CHECKS = PROTOCOL_CHECKS | {"justered protocol"}
"""An extract's bundle: also the justered protocol it is a copy of."""
CHANGED_AFTER_SEALING = "trail.json was changed after it was sealed"
SAMPLE_SIGNERS = [
    ("Mats Gerdau", "chair"),
    ("Rolf Wasteson", "adjuster"),
    ("Lena Sekreterare", "certifier"),
]


def verify(target: str | Path, roots: list[x509.Certificate]) -> list[Verification]:
    return list(verify_targets([str(target)], roots))


def verify_one(target: str | Path, roots: list[x509.Certificate]) -> Verification:
    [result] = verify(target, roots)
    return result


def failed(result: Verification) -> dict[str, str]:
    """The failing checks by name, with their details."""
    return {check.name: check.detail for check in result.checks if not check.ok}


@pytest.fixture
def roots(archived_meeting: ArchivedMeeting) -> list[x509.Certificate]:
    return [archived_meeting.ca_certificate]


@pytest.fixture
def bundle(archived_meeting: ArchivedMeeting, tmp_path: Path) -> Path:
    """A writable copy of the first extract's bundle (§ 94)."""
    return copy_bundle(archived_meeting.bundle_dirs()[0], tmp_path / "2014-08-19-p94")


@pytest.fixture(scope="module")
def rogue_ca(tmp_path_factory: pytest.TempPathFactory) -> SigningCA:
    """Another CA with the same organisation name: not the one the home trusts."""
    return SigningCA.create(tmp_path_factory.mktemp("rogue") / "ca", organisation="Nacka kommun")


# --- what verifies ------------------------------------------------------------------------


def test_every_archived_bundle_verifies_with_every_check(
    archived_meeting: ArchivedMeeting, roots: list[x509.Certificate]
) -> None:
    for state, bundle_dir in zip(
        archived_meeting.states, archived_meeting.bundle_dirs(), strict=True
    ):
        result = verify_one(bundle_dir, roots)
        assert result.ok, failed(result)
        assert result.target == str(bundle_dir)
        assert {check.name for check in result.checks} == BUNDLE_CHECKS
        pdf = (bundle_dir / "extract.pdf").read_bytes()
        assert result.sha256 == hashlib.sha256(pdf).hexdigest() == state.document_sha256
        assert [list(s) for s in result.signers] == [list(s) for s in SAMPLE_SIGNERS]
        [named] = [c for c in result.checks if c.name == "justered protocol"]
        assert "som finns i protokollets arkivpaket" in named.detail
    for protocol, bundle_dir in zip(
        archived_meeting.protocols, archived_meeting.protocol_bundle_dirs(), strict=True
    ):
        result = verify_one(bundle_dir, roots)
        assert result.ok, failed(result)
        assert result.kind == "protocol"
        assert {check.name for check in result.checks} == PROTOCOL_CHECKS
        pdf = (bundle_dir / "protocol.pdf").read_bytes()
        assert result.sha256 == hashlib.sha256(pdf).hexdigest() == protocol.document_sha256
        assert [list(s) for s in result.signers] == [list(s) for s in SAMPLE_SIGNERS[:2]]


def test_the_whole_archive_folder_verifies_bundle_by_bundle(
    archived_meeting: ArchivedMeeting, roots: list[x509.Certificate]
) -> None:
    results = verify(archived_meeting.settings.archive_dir, roots)
    assert sorted(r.target for r in results) == sorted(
        str(d) for d in archived_meeting.bundle_dirs() + archived_meeting.protocol_bundle_dirs()
    )
    assert len(results) == len(archived_meeting.meeting.paragraphs) + 2 == 6
    assert all(r.ok for r in results), [failed(r) for r in results]


def test_the_archive_uri_and_the_pdf_path_verify_as_the_whole_bundle(
    archived_meeting: ArchivedMeeting, roots: list[x509.Certificate]
) -> None:
    uri = archived_meeting.archive_uris[1]
    assert uri.startswith("file:///") and uri.endswith("/extract.pdf")
    for target in (uri, uri.removeprefix("file://")):
        result = verify_one(target, roots)
        assert result.ok, failed(result)
        assert {check.name for check in result.checks} == BUNDLE_CHECKS


@pytest.mark.parametrize(
    "name",
    ["utdrag-94.pdf", "extract.pdf"],  # named as in a bundle, outside one: still a bare PDF
)
def test_a_bare_pdf_copied_out_of_its_bundle_verifies_by_its_signatures(
    name: str, archived_meeting: ArchivedMeeting, roots: list[x509.Certificate], tmp_path: Path
) -> None:
    copy = tmp_path / name
    shutil.copyfile(archived_meeting.bundle_dirs()[0] / "extract.pdf", copy)
    result = verify_one(copy, roots)
    assert result.ok, failed(result)
    assert [check.name for check in result.checks] == ["signatures"]
    assert "3 giltiga underskrifter" in result.checks[0].detail
    assert result.sha256 == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert [list(s) for s in result.signers] == [list(s) for s in SAMPLE_SIGNERS]


@pytest.mark.parametrize("target", [".", "extract.pdf"])
def test_a_bundle_verifies_from_inside_its_folder(
    archived_meeting: ArchivedMeeting,
    roots: list[x509.Certificate],
    monkeypatch: pytest.MonkeyPatch,
    target: str,
) -> None:
    monkeypatch.chdir(archived_meeting.bundle_dirs()[0])
    result = verify_one(target, roots)
    assert result.ok, failed(result)


# --- tampering, and the check that names it -----------------------------------------------


def test_a_flipped_byte_in_the_bundled_pdf_fails_the_checksums(
    bundle: Path, roots: list[x509.Certificate]
) -> None:
    pdf = (bundle / "extract.pdf").read_bytes()
    (bundle / "extract.pdf").write_bytes(flip_byte(pdf, inside_first_stream(pdf)))
    result = verify_one(bundle, roots)
    assert not result.ok
    assert "extract.pdf" in failed(result)["checksums"]
    assert "does not match its manifest" in failed(result)["checksums"]


def test_a_flipped_byte_behind_a_rewritten_manifest_fails_the_signatures(
    bundle: Path, roots: list[x509.Certificate]
) -> None:
    pdf = (bundle / "extract.pdf").read_bytes()
    rewrite_file(bundle, "extract.pdf", flip_byte(pdf, inside_first_stream(pdf)))
    result = verify_one(bundle, roots)
    problems = failed(result)
    assert set(problems) == {"signatures", "trail matches PDF"}
    assert "digest mismatch" in problems["signatures"]


def test_a_flipped_byte_in_a_bare_copy_fails_the_signatures(
    archived_meeting: ArchivedMeeting, roots: list[x509.Certificate], tmp_path: Path
) -> None:
    pdf = (archived_meeting.bundle_dirs()[0] / "extract.pdf").read_bytes()
    copy = tmp_path / "utdrag.pdf"
    copy.write_bytes(flip_byte(pdf, inside_first_stream(pdf)))
    result = verify_one(copy, roots)
    assert not result.ok
    problems = failed(result)
    assert list(problems) == ["signatures"]
    # Every signature covers the first revision, so each one names the change.
    for field in ("Signatur-chair-0", "Signatur-adjuster-0", "Signatur-certifier-0"):
        assert f"signature {field}: the signed content was changed" in problems["signatures"]


def test_a_removed_trail_event_breaks_the_chain(
    bundle: Path, roots: list[x509.Certificate]
) -> None:
    events = read_trail(bundle)
    viewed = next(i for i, e in enumerate(events) if e.kind is EventKind.VIEWED)
    write_trail(bundle, events[:viewed] + events[viewed + 1 :])
    result = verify_one(bundle, roots)
    problems = failed(result)
    assert list(problems) == ["trail chain", "trail seal"]
    assert problems["trail seal"] == CHANGED_AFTER_SEALING
    assert f"event {viewed + 1} (notified)" not in problems["trail chain"]
    assert "does not link to the event before it" in problems["trail chain"]
    assert "sequence number" in problems["trail chain"]


def test_a_trail_cut_before_its_certification_no_longer_matches_the_pdf(
    bundle: Path, roots: list[x509.Certificate]
) -> None:
    events = read_trail(bundle)
    assert events[-1].kind is EventKind.CERTIFIED
    write_trail(bundle, events[:-1])  # the chain of what is left still holds
    problems = failed(verify_one(bundle, roots))
    assert set(problems) == {
        "trail matches PDF",
        "trail matches signatures",
        "justered protocol",
        "trail seal",
    }
    assert problems["trail seal"] == CHANGED_AFTER_SEALING
    assert "sista händelse (länk öppnad)" in problems["trail matches PDF"]
    assert "kommer efter bestyrkandet" in problems["justered protocol"]


def test_an_extract_whose_trail_names_no_justered_protocol_is_refused(
    bundle: Path, roots: list[x509.Certificate]
) -> None:
    """An extract certified without its protocol's justering: the rechained trail (a
    forger who knows the format) holds, and the justered protocol check fails (as the
    seal does: the forger has not the municipality's seal)."""
    events = [e for e in read_trail(bundle) if e.kind is not EventKind.JUSTERED]
    write_trail(bundle, events, reseal=True)
    assert failed(verify_one(bundle, roots)) == {
        "justered protocol": "händelseförloppet nämner inget justerat protokoll: utdraget "
        "bestyrktes inte ur ett justerat protokoll",
        "trail seal": CHANGED_AFTER_SEALING,
    }


def test_an_extract_naming_another_protocol_document_is_refused(
    bundle: Path, archived_meeting: ArchivedMeeting, roots: list[x509.Certificate], tmp_path: Path
) -> None:
    """The named protocol's bundle is in the archive, but does not hold the document the
    extract's trail names; with the bundle copied away from its archive, it is not
    there at all, which the check says (the protocol is verified on its own)."""
    events = read_trail(bundle)
    forged = [
        dataclasses.replace(e, detail={**e.detail, "protocol_sha256": "0" * 64})
        if e.kind is EventKind.JUSTERED
        else e
        for e in events
    ]
    inside = archived_meeting.bundle_dirs()[0].parent / f"forged-{uuid.uuid4().hex[:8]}"
    try:
        copy_bundle(bundle, inside)
        write_trail(inside, forged, reseal=True)
        problems = failed(verify_one(inside, roots))
        assert list(problems) == ["justered protocol", "trail seal"]
        assert f"har inte dokumentet {'0' * 64}" in problems["justered protocol"]
    finally:
        shutil.rmtree(inside, ignore_errors=True)
    write_trail(bundle, forged, reseal=True)  # the copy outside the archive
    result = verify_one(bundle, roots)
    assert list(failed(result)) == ["trail seal"]
    [named] = [c for c in result.checks if c.name == "justered protocol"]
    assert named.ok and "det arkivpaketet finns inte här" in named.detail


def broken_chain(bundle: Path, roots: list[x509.Certificate]) -> str:
    """What verify says of a trail whose chain a change broke (its seal breaks too)."""
    problems = failed(verify_one(bundle, roots))
    assert list(problems) == ["trail chain", "trail seal"]
    return problems["trail chain"]


def name_first_signer(bundle: Path, actor: str, *, reseal: bool = False) -> int:
    """Rewrite the bundle's trail so its first ``signed`` event names ``actor`` (its
    seal made again over the change with ``reseal``); that event's index."""
    events = read_trail(bundle)
    signed = next(i for i, e in enumerate(events) if e.kind is EventKind.SIGNED)
    events[signed] = dataclasses.replace(events[signed], actor=actor)
    write_trail(bundle, events, reseal=reseal)
    return signed


def test_reordered_trail_events_break_the_chain(
    bundle: Path, roots: list[x509.Certificate]
) -> None:
    events = read_trail(bundle)
    events[4], events[5] = events[5], events[4]
    write_trail(bundle, events)
    assert "event 5 (viewed) has sequence number 6, expected 5" in broken_chain(bundle, roots)


def test_an_edited_trail_event_breaks_the_chain(
    bundle: Path, roots: list[x509.Certificate]
) -> None:
    signed = name_first_signer(bundle, "Mallory")
    assert f"event {signed + 1} (signed) was altered" in broken_chain(bundle, roots)


def test_a_malformed_trail_is_named(bundle: Path, roots: list[x509.Certificate]) -> None:
    rewrite_file(bundle, "trail.json", b'{"format": "justering-trail/1", "events": [{}]}')
    assert "trail event 1 is malformed" in broken_chain(bundle, roots)


def test_a_resealed_trail_naming_another_signer_is_caught(
    bundle: Path, roots: list[x509.Certificate]
) -> None:
    name_first_signer(bundle, "Mallory Forger", reseal=True)
    assert not verify_one(bundle, roots).ok


def test_a_certifier_signature_from_another_ca_fails_the_signatures_and_the_seal(
    archived_meeting: ArchivedMeeting,
    bundle: Path,
    roots: list[x509.Certificate],
    rogue_ca: SigningCA,
) -> None:
    """Re-sign the certification with a certificate from another CA, and rewrite
    the trail and the manifest to match: the trust in the CA tells, and the trail
    no longer matches its seal."""
    events = read_trail(bundle)
    final = events[-1]
    before = events[-2].document_sha256
    assert before is not None
    meeting = archived_meeting.meeting
    certifier = Signer(Person(meeting.certifier.name, meeting.certifier.email), Role.CERTIFIER)
    forged = sign_extract(
        archived_meeting.document(before),
        rogue_ca.issue(certifier, organisation=meeting.municipality),
        certifier,
        adjuster_count=len(meeting.adjusters),
        location=meeting.place,
    )
    rewrite_file(bundle, "extract.pdf", forged.pdf)
    events[-1] = dataclasses.replace(
        final,
        document_sha256=hashlib.sha256(forged.pdf).hexdigest(),
        certificate_sha256=forged.certificate_fingerprint,
    )
    write_trail(bundle, events, reseal=True)
    result = verify_one(bundle, roots)
    problems = failed(result)
    assert list(problems) == ["signatures", "trail seal"]
    assert problems["trail seal"] == CHANGED_AFTER_SEALING
    assert "Signatur-certifier-0" in problems["signatures"]
    assert "'Lena Sekreterare' is not trusted" in problems["signatures"]
    assert "Mats Gerdau" not in problems["signatures"]
    # With the other CA trusted instead, it is the genuine signatures that fail.
    problems = failed(verify_one(bundle, [rogue_ca.certificate]))
    assert "'Mats Gerdau' is not trusted" in problems["signatures"]
    assert "'Lena Sekreterare' is not trusted" not in problems["signatures"]


def test_trusting_another_ca_fails_every_signature_despite_the_bundled_ca(
    archived_meeting: ArchivedMeeting, rogue_ca: SigningCA
) -> None:
    bundle_dir = archived_meeting.bundle_dirs()[0]
    assert (bundle_dir / "ca.pem").read_text() == archived_meeting.ca_pem.read_text()
    problems = failed(verify_one(bundle_dir, [rogue_ca.certificate]))
    assert set(problems) == {"signatures", "trail seal"}
    for name, _role in SAMPLE_SIGNERS:
        assert f"certificate of {name!r} is not trusted" in problems["signatures"]
    assert "does not chain to a trust root" in problems["trail seal"]


def _incremental(pdf: bytes, change: str) -> bytes:
    writer = PdfWriter(BytesIO(pdf), incremental=True)
    if change == "metadata":
        writer.add_metadata({"/Title": "Ändrat efter bestyrkandet"})
    else:
        writer.add_annotation(
            page_number=0,
            annotation=FreeText(text="Upphävt", rect=(50, 50, 200, 100)),
        )
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("change", ["metadata", "annotation"])
def test_an_update_appended_after_certification_fails_the_signatures(
    bundle: Path, roots: list[x509.Certificate], change: str
) -> None:
    pdf = (bundle / "extract.pdf").read_bytes()
    updated = _incremental(pdf, change)
    assert updated.startswith(pdf) and len(updated) > len(pdf)
    rewrite_file(bundle, "extract.pdf", updated)
    events = read_trail(bundle)
    events[-1] = dataclasses.replace(
        events[-1], document_sha256=hashlib.sha256(updated).hexdigest()
    )
    write_trail(bundle, events, reseal=True)
    problems = failed(verify_one(bundle, roots))
    assert list(problems) == ["signatures", "trail seal"]
    assert "the file goes on after the last signature" in problems["signatures"]


def test_a_missing_bundle_file_is_named(bundle: Path, roots: list[x509.Certificate]) -> None:
    (bundle / "trail.json").unlink()
    problems = failed(verify_one(bundle, roots))
    assert list(problems) == ["checksums"]
    assert "'trail.json' is missing" in problems["checksums"]


# --- could not run ----------------------------------------------------------------------


def test_a_missing_target_cannot_run(roots: list[x509.Certificate], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file or directory"):
        verify(tmp_path / "nothing-here.pdf", roots)


def test_no_trust_root_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no trust root"):
        load_trust_roots([])
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(ConfigError, match=r"empty\.pem: not a PEM certificate"):
        load_trust_roots([tmp_path / "empty.pem"])
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"junk\.pem: not a PEM certificate"):
        load_trust_roots([tmp_path / "junk.pem"])


# --- the command line ---------------------------------------------------------------------


def test_cli_verifies_an_archived_bundle(archived_meeting: ArchivedMeeting) -> None:
    bundle_dir = archived_meeting.bundle_dirs()[0]
    done = run_cli(archived_meeting.home, "verify", str(bundle_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"GILTIG (valid): {bundle_dir}\n")
    for name in BUNDLE_CHECKS:
        assert f"  [ok] {name}: " in done.stdout
    assert "[FEL]" not in done.stdout


def test_cli_json_for_the_whole_archive(archived_meeting: ArchivedMeeting) -> None:
    done = run_cli(
        archived_meeting.home, "verify", "--json", str(archived_meeting.settings.archive_dir)
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"valid", "results"}
    assert report["valid"] is True
    assert len(report["results"]) == 6
    by_sha = {s.document_sha256: s for s in archived_meeting.states}
    extracts = [r for r in report["results"] if r["kind"] == "extract"]
    assert len(extracts) == 4
    assert [r["kind"] for r in report["results"]].count("protocol") == 2
    for result in extracts:
        assert set(result) == {"target", "kind", "valid", "sha256", "signers", "checks"}
        assert result["valid"] is True
        assert result["sha256"] in by_sha
        link_only = {"assurance": "link", "identity_provider": None, "acr": None}
        assert result["signers"] == [
            {"name": n, "role": r, **link_only, "authenticated_at": None} for n, r in SAMPLE_SIGNERS
        ]
        assert {c["name"] for c in result["checks"]} == BUNDLE_CHECKS
        for check in result["checks"]:
            assert set(check) == {"name", "ok", "detail"}
            assert check["ok"] is True and check["detail"]


def test_cli_names_the_tampering_and_exits_1(
    archived_meeting: ArchivedMeeting, bundle: Path, tmp_path: Path
) -> None:
    pdf = (bundle / "extract.pdf").read_bytes()
    bare = tmp_path / "utdrag.pdf"
    bare.write_bytes(flip_byte(pdf, inside_first_stream(pdf)))
    good = archived_meeting.bundle_dirs()[1]
    done = run_cli(archived_meeting.home, "verify", "--json", str(good), str(bare))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["valid"] is False
    assert [r["valid"] for r in report["results"]] == [True, False]
    [check] = report["results"][1]["checks"]
    assert check["name"] == "signatures" and check["ok"] is False
    assert "digest mismatch" in check["detail"]
    done = run_cli(archived_meeting.home, "verify", str(bare))
    assert done.returncode == 1
    assert done.stdout.startswith(f"OGILTIG (invalid): {bare}\n")
    assert "  [FEL] signatures: " in done.stdout


def test_cli_trusting_another_ca_exits_1(
    archived_meeting: ArchivedMeeting, rogue_ca: SigningCA, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_text(rogue_ca.export_pem())
    bundle_dir = archived_meeting.bundle_dirs()[0]
    done = run_cli(archived_meeting.home, "verify", "--trust", str(other), str(bundle_dir))
    assert done.returncode == 1, done.stderr
    assert "is not trusted" in done.stdout
    # Trusting both is enough for the genuine signatures.
    done = run_cli(
        archived_meeting.home,
        "verify",
        "--trust",
        str(other),
        "--trust",
        str(archived_meeting.ca_pem),
        str(bundle_dir),
    )
    assert done.returncode == 0, done.stdout


def test_cli_missing_target_exits_2_with_a_clear_message(
    archived_meeting: ArchivedMeeting, tmp_path: Path
) -> None:
    missing = tmp_path / "saknas.pdf"
    done = run_cli(archived_meeting.home, "verify", str(missing))
    assert done.returncode == 2
    assert done.stderr.strip() == f"justering: {missing}: no such file or directory"
    assert done.stdout == ""


def test_cli_without_a_trust_root_exits_2(
    archived_meeting: ArchivedMeeting, tmp_path: Path
) -> None:
    bundle_dir = archived_meeting.bundle_dirs()[0]
    done = run_cli(tmp_path / "empty-home", "verify", str(bundle_dir))
    assert done.returncode == 2
    assert done.stderr.startswith("justering: no trust root")
    (tmp_path / "empty.pem").write_text("")
    done = run_cli(tmp_path / "empty-home", "verify", "--trust", str(tmp_path / "empty.pem"), ".")
    assert done.returncode == 2
    assert "empty.pem: not a PEM certificate" in done.stderr


def test_cli_without_a_ca_says_how_to_give_a_trust_root(
    archived_meeting: ArchivedMeeting, tmp_path: Path
) -> None:
    done = run_cli(tmp_path / "empty-home", "verify", str(archived_meeting.bundle_dirs()[0]))
    assert done.returncode == 2
    assert "--trust" in done.stderr


def test_cli_a_folder_without_bundles_cannot_run(
    archived_meeting: ArchivedMeeting, tmp_path: Path
) -> None:
    empty = tmp_path / "tom"
    empty.mkdir()
    done = run_cli(archived_meeting.home, "verify", str(empty))
    assert done.returncode == 2
    assert "no archived extract" in done.stderr


def test_a_file_that_is_not_a_pdf_is_invalid(roots: list[x509.Certificate], tmp_path: Path) -> None:
    text = tmp_path / "utdrag.pdf"
    text.write_text("§ 94 Styrning och ledning\n")
    problems = failed(verify_one(text, roots))
    assert problems == {"signatures": "the file is not a PDF (no %PDF- header)"}


# --- S3 -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class S3Meeting:
    archived: ArchivedMeeting
    bucket: str
    prefix: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def s3_meeting(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Meeting]:
    """The sample meeting archived to ``s3://BUCKET/arkiv`` on the test server."""
    env = {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": s3_endpoint}
    bucket = f"arkiv-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket=bucket)
        settings = dataclasses.replace(
            sample_settings(tmp_path_factory.mktemp("s3") / "home"),
            archive_url=f"s3://{bucket}/arkiv",
        )
        archived = archive_sample_meeting(settings)
    yield S3Meeting(archived, bucket, "arkiv", env)


def test_s3_archive_uris_are_s3(s3_meeting: S3Meeting) -> None:
    for uri in s3_meeting.archived.archive_uris:
        assert uri.startswith(f"s3://{s3_meeting.bucket}/arkiv/KSAU/2014/")
        assert uri.endswith("/extract.pdf")


def test_an_s3_prefix_verifies_every_bundle(s3_meeting: S3Meeting, s3_env: str) -> None:
    roots = [s3_meeting.archived.ca_certificate]
    results = verify(f"s3://{s3_meeting.bucket}/arkiv/", roots)
    assert len(results) == 6
    assert all(r.ok for r in results), [failed(r) for r in results]
    protocols = [p.archive_uri or "" for p in s3_meeting.archived.protocols]
    assert sorted(r.target for r in results) == sorted(
        [uri.removesuffix("/extract.pdf") for uri in s3_meeting.archived.archive_uris]
        + [uri.removesuffix("/protocol.pdf") for uri in protocols]
    )
    for result in results:
        expected = BUNDLE_CHECKS if result.kind == "extract" else PROTOCOL_CHECKS
        assert {c.name for c in result.checks} == expected
        named = [c.detail for c in result.checks if c.name == "justered protocol"]
        assert all("som finns i protokollets arkivpaket" in detail for detail in named)


def test_an_s3_pdf_key_verifies_its_bundle(s3_meeting: S3Meeting, s3_env: str) -> None:
    uri = s3_meeting.archived.archive_uris[2]
    result = verify_one(uri, [s3_meeting.archived.ca_certificate])
    assert result.ok, failed(result)
    assert result.target == uri.removesuffix("/extract.pdf")
    assert result.sha256 == s3_meeting.archived.states[2].document_sha256


def test_an_s3_prefix_with_nothing_archived_cannot_run(s3_meeting: S3Meeting, s3_env: str) -> None:
    with pytest.raises(ConfigError, match="no archived extract there"):
        verify(f"s3://{s3_meeting.bucket}/tomt/", [s3_meeting.archived.ca_certificate])


def test_cli_verifies_s3_targets(s3_meeting: S3Meeting) -> None:
    env = clean_environment(**s3_meeting.env)
    home = s3_meeting.archived.home
    done = run_cli(home, "verify", "--json", f"s3://{s3_meeting.bucket}/arkiv/", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["valid"] is True and len(report["results"]) == 6
    done = run_cli(home, "verify", s3_meeting.archived.archive_uris[0], env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("GILTIG (valid): s3://")


def test_a_tampered_s3_object_is_caught(s3_meeting: S3Meeting, s3_env: str, tmp_path: Path) -> None:
    """Copy one bundle to a new prefix, then replace its PDF and manifest there."""
    client = boto3.client("s3")
    source = s3_meeting.archived.archive_uris[3].removesuffix("/extract.pdf")
    source_key = source.removeprefix(f"s3://{s3_meeting.bucket}/")
    local = tmp_path / "bundle"
    local.mkdir()
    names = ("extract.pdf", "trail.json", "trail.json.p7s", "intyg.pdf", "ca.pem", "manifest.json")
    for name in names:
        body = client.get_object(Bucket=s3_meeting.bucket, Key=f"{source_key}/{name}")
        (local / name).write_bytes(body["Body"].read())
    pdf = (local / "extract.pdf").read_bytes()
    rewrite_file(local, "extract.pdf", flip_byte(pdf, inside_first_stream(pdf)))
    for name in names:
        client.put_object(
            Bucket=s3_meeting.bucket, Key=f"manipulerat/b/{name}", Body=(local / name).read_bytes()
        )
    result = verify_one(
        f"s3://{s3_meeting.bucket}/manipulerat/b/extract.pdf", [s3_meeting.archived.ca_certificate]
    )
    assert not result.ok
    assert "digest mismatch" in failed(result)["signatures"]


def test_cli_unreachable_object_store_exits_2(archived_meeting: ArchivedMeeting) -> None:
    env = clean_environment(**AWS_TEST_ENV, AWS_ENDPOINT_URL="http://127.0.0.1:9")
    done = run_cli(archived_meeting.home, "verify", "s3://nirgendwo/arkiv/", env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("justering: ")
    assert "Traceback" not in done.stderr
