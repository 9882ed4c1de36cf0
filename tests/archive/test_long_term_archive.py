"""An extract archived with a TSA proves itself offline, years later, with the
TSA stopped (issue 4: "done when")."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from justering import workflow
from justering.archive.bundle import EXTRACT_TRAIL, EXTRACT_TRAIL_SEAL, EXTRACT_TSA_CA
from justering.archive.verify import verify_targets
from justering.config import Settings, load_settings
from justering.ledger.extracts import trail_of
from justering.model.manifest import load_sample_meeting
from justering.model.process import ExtractStatus
from justering.model.roles import JUSTERING_ROLES, Role
from justering.model.trail import EventKind, trail_from_json
from justering.pades.ca import SigningCA
from justering.pades.ca_chain import install_issued_chain
from justering.pades.seal import verify_seal
from justering.pades.timestamps import (
    Timestamper,
    TimestampError,
    add_long_term_validation,
    timestamper_for,
)
from justering.pades.validate import validate_extract
from support.archived import ArchivedMeeting, archive_sample_meeting, run_cli
from support.outside_ca import issue_ca_certificate
from support.pdfs import CHAIR, ORGANISATION, extract_pdf, sign_in_turn
from support.tsa import TsaService, start_tsa_service
from support.workflow import KEPT_AT, archived_meeting, sign_as, small_meeting, start


def _settings_with_tsa(home: Path, tsa: TsaService) -> Settings:
    home.mkdir(parents=True)
    (home / "tsa-ca.pem").write_bytes(tsa.root.public_bytes(serialization.Encoding.PEM))
    return replace(load_settings(home, environ={}), tsa_url=tsa.tsa_url, kept_at=KEPT_AT)


@dataclass(frozen=True)
class SealedArchive:
    settings: Settings
    archived: ArchivedMeeting
    tsa_root: x509.Certificate


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> SealedArchive:
    """Two extracts archived with a TSA, and the TSA stopped afterwards."""
    folder = tmp_path_factory.mktemp("sealed")
    tsa = start_tsa_service(folder / "tsa")
    try:
        settings = _settings_with_tsa(folder / "home", tsa)
        meeting = small_meeting(load_sample_meeting(), paragraphs=(94, 96), adjusters=2)
        archived = archive_sample_meeting(settings, meeting)
    finally:
        tsa.stop()
    return SealedArchive(settings, archived, tsa.root)


def test_a_sealed_archive_verifies_offline_with_the_tsa_stopped(sealed: SealedArchive) -> None:
    settings, archived, tsa_root = sealed.settings, sealed.archived, sealed.tsa_root

    for bundle_dir in archived.bundle_dirs():
        trail = trail_from_json((bundle_dir / "trail.json").read_bytes())
        kinds = [event.kind for event in trail]
        assert kinds[-1] is EventKind.TIMESTAMPED
        assert kinds[-2] is EventKind.CERTIFIED
        signed = [e for e in trail if e.kind in (EventKind.SIGNED, EventKind.CERTIFIED)]
        assert signed and all("timestamped_at" in e.detail for e in signed)
        assert (bundle_dir / EXTRACT_TSA_CA).is_file()

        pdf = (bundle_dir / "extract.pdf").read_bytes()
        roots = [archived.ca_certificate, tsa_root]
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
        future = validate_extract(pdf, roots, now=later)
        assert future.ok, future.problems
        assert future.document_timestamps
        assert all(s.timestamped_at is not None for s in future.signatures)

    for bundle_dir in archived.protocol_bundle_dirs():  # the protocol is sealed too
        kinds = [e.kind for e in trail_from_json((bundle_dir / "trail.json").read_bytes())]
        assert kinds[-1] is EventKind.TIMESTAMPED and EventKind.ANNOUNCED in kinds
        pdf = (bundle_dir / "protocol.pdf").read_bytes()
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
        future = validate_extract(
            pdf, [archived.ca_certificate, tsa_root], now=later, roles=JUSTERING_ROLES
        )
        assert future.ok, future.problems
        assert future.document_timestamps

    done = run_cli(archived.home, "verify", "--json", str(settings.archive_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)["results"]
    assert len(results) == len(archived.bundle_dirs()) + len(archived.protocol_bundle_dirs())
    assert all(r["valid"] for r in results)
    for result in results:  # the trail's seal carries a timestamp, and verify says so
        [seal] = [c for c in result["checks"] if c["name"] == "trail seal"]
        assert seal["ok"] and "av en betrodd tidsstämpeltjänst" in seal["detail"], seal
        assert re.search(r"tidsstämplat \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T ", seal["detail"])


def test_the_trail_seal_is_timestamped_and_holds_after_its_certificate(
    sealed: SealedArchive,
) -> None:
    roots = [sealed.archived.ca_certificate, sealed.tsa_root]
    for bundle_dir in sealed.archived.bundle_dirs():
        trail = (bundle_dir / EXTRACT_TRAIL).read_bytes()
        seal = (bundle_dir / EXTRACT_TRAIL_SEAL).read_bytes()
        now = verify_seal(trail, seal, roots)
        assert now.ok and now.timestamp_trusted, now.problems
        assert now.timestamped_at is not None
        assert now.timestamped_at >= trail_from_json(trail)[-1].at.replace(microsecond=0)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
        assert verify_seal(trail, seal, roots, now=later).ok
        assert not verify_seal(trail, seal, [sealed.archived.ca_certificate]).ok


class _FailsAfterFirstStamp(Timestamper):
    """A TSA that answers once (the document timestamp of the PDF), then fails
    with an HTTP 500 (the seal's timestamp)."""

    broken_url = ""
    calls = 0

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> object:
        self.calls += 1
        if self.calls > 1:
            self.url = self.broken_url
        return await super().async_timestamp(message_digest, md_algorithm)


def test_a_tsa_failing_at_the_seal_fails_the_archiving_and_writes_nothing(
    tmp_path: Path,
) -> None:
    tsa = start_tsa_service(tmp_path / "tsa")
    try:
        settings = _settings_with_tsa(tmp_path / "home", tsa)
        meeting = small_meeting(load_sample_meeting())
        SigningCA.create(settings.ca_dir, organisation=meeting.municipality)
        services = workflow.open_services(settings)
        try:
            start(services, meeting)
            for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
                sign_as(services, meeting.signers(role)[0].email)
                if role is not Role.CERTIFIER:
                    workflow.advance_meeting(services, meeting.meeting_id)
            [state] = workflow.meeting_summaries(services, meeting.meeting_id)
            flaky = _FailsAfterFirstStamp(tsa.tsa_url)
            flaky.broken_url = tsa.base_url + "/broken/500"
            archived = sorted(p for p in settings.archive_dir.rglob("*") if p.is_file())
            assert all("/protokoll/" in str(p) for p in archived)  # the justered protocol's
            with pytest.raises(TimestampError, match="/broken/500"):
                workflow.archive_extract(replace(services, timestamper=flaky), state.extract_id)
            [after] = workflow.meeting_summaries(services, meeting.meeting_id)
            assert after.status is ExtractStatus.CERTIFIED
            assert sorted(p for p in settings.archive_dir.rglob("*") if p.is_file()) == archived
            # The retry (the TSA answers again) archives it, sealed and timestamped.
            uri = workflow.archive_extract(services, state.extract_id)
        finally:
            services.ledger.dispose()
    finally:
        tsa.stop()
    [result] = verify_targets([uri], [services.ca.certificate, tsa.root])
    assert result.ok, result.checks
    assert "av en betrodd tidsstämpeltjänst" in result.checks[-1].detail


def test_without_the_tsa_root_the_sealed_archive_does_not_verify(sealed: SealedArchive) -> None:
    archive = str(sealed.settings.archive_dir)
    results = list(verify_targets([archive], [sealed.archived.ca_certificate]))
    assert results and not any(r.ok for r in results)


def test_a_tsa_that_is_down_fails_the_signature_and_records_nothing(tmp_path: Path) -> None:
    tsa = start_tsa_service(tmp_path / "tsa")
    settings = _settings_with_tsa(tmp_path / "home", tsa)
    tsa.stop()
    meeting = small_meeting(load_sample_meeting())
    with pytest.raises(TimestampError):
        archive_sample_meeting(settings, meeting)
    services = workflow.open_services(settings)
    try:
        [state] = workflow.meeting_summaries(services, meeting.meeting_id)
        assert state.status is ExtractStatus.AWAITING_CHAIR
        with services.ledger.reading() as session:
            kinds = [e.kind for e in trail_of(session, state.extract_id)]
        assert EventKind.SIGNED not in kinds
    finally:
        services.ledger.dispose()


def test_a_tsa_without_its_trust_root_is_a_configuration_error(tmp_path: Path) -> None:
    from justering.errors import ConfigError

    settings = load_settings(tmp_path, environ={"JUSTERING_TSA_URL": "http://127.0.0.1:9/tsa"})
    with pytest.raises(ConfigError, match="trust root"):
        settings.tsa_root()


def _root_key(tsa_folder: Path) -> ec.EllipticCurvePrivateKey:
    """The key of the TSA's root (start_tsa_service keeps it in its folder)."""
    key = serialization.load_pem_private_key(
        (tsa_folder / "root.key.pem").read_bytes(), password=None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def test_a_sealed_archive_under_an_outside_root_verifies_with_that_root_alone(
    tmp_path: Path,
) -> None:
    """The TSA's PKI stands in for the outside CA: its root issues our CA's
    certificate with a CRL distribution point, and sealing archives that CRL, so
    the extract still verifies after our CA's certificate has expired."""
    tsa = start_tsa_service(tmp_path / "tsa")
    try:
        settings = _settings_with_tsa(tmp_path / "home", tsa)
        meeting = small_meeting(load_sample_meeting())
        ca = SigningCA.create(settings.ca_dir, organisation=meeting.municipality)
        root_key = _root_key(tmp_path / "tsa")
        request = ca.signing_request(organisation_identifier="NTRSE-2120001234")
        issued = issue_ca_certificate(request, root_key, tsa.root, crl_url=tsa.crl_url)
        install_issued_chain(ca, [issued, tsa.root])
        [state] = archived_meeting(settings, meeting)
        # the root's CRL, fetched once for the TSA's certificate and once for our CA's,
        # for each document sealed: the extract and the protocol
        crl_path = tsa.crl_url.removeprefix(tsa.base_url)
        assert tsa.requests.count(f"GET {crl_path}") == 2 * 2
    finally:
        tsa.stop()
    pdf = Path((state.archive_uri or "").removeprefix("file://")).read_bytes()
    after_expiry = issued.not_valid_after_utc + dt.timedelta(days=30)
    report = validate_extract(pdf, [tsa.root], now=after_expiry)
    assert report.ok, report.problems
    assert all(s.long_term and s.trusted for s in report.signatures)


def test_sealing_under_an_outside_root_needs_its_revocation_source(tmp_path: Path) -> None:
    """An outside CA certificate that names no CRL or OCSP: the long-term
    validation data cannot say it was not revoked, and sealing says so."""
    tsa = start_tsa_service(tmp_path / "tsa")
    try:
        ca = SigningCA.create(tmp_path / "ca", organisation=ORGANISATION)
        root_key = _root_key(tmp_path / "tsa")
        issued = issue_ca_certificate(ca.signing_request(), root_key, tsa.root)
        ca = install_issued_chain(ca, [issued, tsa.root])
        timestamper = timestamper_for(tsa.tsa_url)
        assert timestamper is not None
        [signed] = sign_in_turn(extract_pdf(), ca, (CHAIR,), timestamper=timestamper)
        with pytest.raises(
            TimestampError,
            match=r"the signing CA's chain certificate '.*' names no CRL distribution point",
        ):
            add_long_term_validation(signed.pdf, ca, timestamper)
    finally:
        tsa.stop()
