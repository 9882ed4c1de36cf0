"""``justering ca`` as an operator runs it (subprocesses), and a small meeting signed
and archived in-process under the CA it set up: with the key in a SoftHSM2 token,
and under an outside root."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from justering import workflow
from justering.config import Settings, load_settings
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Role
from justering.pades.ca import CA_CERT_FILE, SigningCA
from justering.pades.ca_chain import install_issued_chain
from justering.pades.certificates import fingerprint
from justering.pades.validate import validate_extract
from support.archived import clean_environment, run_cli
from support.outside_ca import OutsideCA, pem
from support.poppler import nss_database, pdfsig
from support.softhsm import SoftHsm
from support.workflow import KEPT_AT, archived_meeting, sign_as, small_meeting, start

ORGANISATION = "Nacka kommun"


def _settings(home: Path) -> Settings:
    return replace(
        load_settings(home, environ={}), public_url="http://justering.test", kept_at=KEPT_AT
    )


def _sign_and_archive(home: Path, meeting: Meeting) -> list[Path]:
    """The meeting signed by everyone and archived; its bundle folders."""
    states = archived_meeting(_settings(home), meeting)
    return [Path((s.archive_uri or "").removeprefix("file://")).parent for s in states]


def _private_keys_under(folder: Path) -> list[str]:
    """Every file under ``folder`` that is or holds a private key (PEM or DER)."""
    found = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        content = path.read_bytes()
        if b"PRIVATE KEY-----" in content:
            found.append(f"{path}: PEM private key")
            continue
        try:
            serialization.load_der_private_key(content, password=None)
        except (ValueError, TypeError):
            continue
        found.append(f"{path}: DER private key")
    return found


def _all_trusted(bundle: Path, nss: str) -> None:
    report = pdfsig(bundle / "extract.pdf", "-nssdir", nss)
    assert len(report) == 3  # chair, adjuster, certifier
    assert [s["Signature Validation"] for s in report] == ["Signature is Valid."] * 3
    assert [s["Certificate Validation"] for s in report] == ["Certificate is Trusted."] * 3


# --- the key in a token ---------------------------------------------------------------


@pytest.fixture
def token_home(softhsm: SoftHsm, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    label = f"ca-{uuid.uuid4().hex[:8]}"
    done = run_cli(
        home,
        "ca",
        "init",
        "--organisation",
        ORGANISATION,
        *softhsm.init_ca_arguments(label),
        env=softhsm.environment(clean_environment()),
    )
    assert done.returncode == 0, done.stderr
    assert f"its key: the key '{label}' in token '{softhsm.token_label}'" in done.stdout
    assert softhsm.pin not in done.stdout + done.stderr
    return home


def test_a_meeting_signed_with_the_ca_key_in_a_token_leaves_no_key_on_disk(
    token_home: Path, sample_meeting: Meeting, tmp_path: Path
) -> None:
    bundles = _sign_and_archive(token_home, small_meeting(sample_meeting))
    assert _private_keys_under(token_home) == []
    nss = nss_database(tmp_path / "nss", (token_home / "ca" / CA_CERT_FILE).read_bytes())
    for bundle in bundles:
        _all_trusted(bundle, nss)
    done = run_cli(token_home, "verify", *map(str, bundles))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_private_key_scan_finds_a_key_file(tmp_path: Path) -> None:
    """The scan above can fail: a CA made with a key file is caught."""
    done = run_cli(tmp_path / "home", "ca", "init")
    assert done.returncode == 0, done.stderr
    seal = f"{tmp_path / 'home' / 'ca' / 'trail-seal.pem'}: PEM private key"  # where the CA's is
    assert sorted(_private_keys_under(tmp_path / "home")) == [
        f"{tmp_path / 'home' / 'ca' / 'ca-key.pem'}: PEM private key",
        seal,
    ]
    key = serialization.load_pem_private_key(
        (tmp_path / "home" / "ca" / "ca-key.pem").read_bytes(), password=None
    )
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "home" / "ca" / "ca-key.pem").write_bytes(der)
    assert sorted(_private_keys_under(tmp_path / "home")) == [
        f"{tmp_path / 'home' / 'ca' / 'ca-key.pem'}: DER private key",
        seal,
    ]


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        ("000000", "refused the PIN in JUSTERING_TEST_HSM_PIN (wrong PIN)"),
        (None, "environment variable JUSTERING_TEST_HSM_PIN, which is not set"),
    ],
)
def test_a_wrong_or_missing_pin_is_named(
    token_home: Path, softhsm: SoftHsm, pin: str | None, message: str
) -> None:
    done = run_cli(token_home, "ca", "csr", env=softhsm.environment(clean_environment(), pin=pin))
    assert done.returncode == 2
    assert message in done.stderr
    assert "BEGIN CERTIFICATE REQUEST" not in done.stdout


def test_token_options_go_together(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "home", "ca", "init", "--token-label", "x")
    assert done.returncode == 2
    assert "--pkcs11-module, --token-label and --pin-env go together" in done.stderr
    done = run_cli(tmp_path / "home", "ca", "init", "--key-label", "x")
    assert done.returncode == 2
    assert "--key-label names a key in a token" in done.stderr
    assert not (tmp_path / "home" / "ca").exists()


# --- under an outside root -------------------------------------------------------------


@pytest.fixture
def outside_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    done = run_cli(home, "ca", "init", "--organisation", ORGANISATION)
    assert done.returncode == 0, done.stderr
    return home


def test_a_meeting_signed_under_an_outside_root_is_trusted_with_only_that_root(
    outside_home: Path, sample_meeting: Meeting, tmp_path: Path
) -> None:
    old_root = tmp_path / "self-signed.pem"
    old_root.write_bytes((outside_home / "ca" / CA_CERT_FILE).read_bytes())
    request_file = tmp_path / "request.pem"
    done = run_cli(
        outside_home,
        "ca",
        "csr",
        "--out",
        str(request_file),
        "--organisation-identifier",
        "NTRSE-2120001234",
    )
    assert done.returncode == 0, done.stderr
    assert "justering ca install" in done.stderr

    root = OutsideCA("Utomstående Rot CA")
    issued = root.issue(x509.load_pem_x509_csr(request_file.read_bytes()))
    (tmp_path / "issued.pem").write_bytes(pem(issued))
    root_file = root.write(tmp_path / "outside-root.pem")
    done = run_cli(
        outside_home, "ca", "install", str(tmp_path / "issued.pem"), "--root", str(root_file)
    )
    assert done.returncode == 0, done.stderr
    assert f"root: 'Utomstående Rot CA', SHA-256 fingerprint {fingerprint(root.certificate)}" in (
        done.stdout
    )

    bundles = _sign_and_archive(outside_home, small_meeting(sample_meeting))
    nss = nss_database(tmp_path / "nss", pem(root.certificate))  # the outside root alone
    for bundle in bundles:
        assert x509.load_pem_x509_certificates((bundle / "ca.pem").read_bytes()) == [
            issued,
            root.certificate,
        ]
        _all_trusted(bundle, nss)
    targets = [str(bundle) for bundle in bundles]
    trusted = run_cli(outside_home, "verify", "--trust", str(root_file), *targets)
    assert trusted.returncode == 0, trusted.stdout
    old = run_cli(outside_home, "verify", "--trust", str(old_root), *targets)
    assert old.returncode == 1
    assert "is not trusted" in old.stdout


def test_an_issued_certificate_that_is_not_a_ca_is_refused(
    outside_home: Path, tmp_path: Path
) -> None:
    done = run_cli(outside_home, "ca", "csr")
    root = OutsideCA("Utomstående Rot CA")
    issued = root.issue(x509.load_pem_x509_csr(done.stdout.encode()), ca=False)
    (tmp_path / "chain.pem").write_bytes(pem(issued, root.certificate))
    before = {p.name: p.read_bytes() for p in (outside_home / "ca").iterdir()}
    done = run_cli(outside_home, "ca", "install", str(tmp_path / "chain.pem"))
    assert done.returncode == 1
    assert "is not a CA certificate" in done.stderr
    assert "the CA was not changed" in done.stderr
    assert {p.name: p.read_bytes() for p in (outside_home / "ca").iterdir()} == before


def test_a_file_that_is_no_certificate_is_refused(outside_home: Path, tmp_path: Path) -> None:
    (tmp_path / "chain.pem").write_text("not a certificate\n")
    done = run_cli(outside_home, "ca", "install", str(tmp_path / "chain.pem"))
    assert done.returncode == 1
    assert "not a PEM certificate file" in done.stderr


def test_an_extract_half_signed_before_the_switch_is_still_archived(
    outside_home: Path, sample_meeting: Meeting
) -> None:
    """The chair signs under the self-signed certificate, the rest under the outside
    root's: the signing and archiving steps trust both (``ca-retired.pem``)."""
    meeting = small_meeting(sample_meeting)
    services = workflow.open_services(_settings(outside_home))
    try:
        start(services, meeting)
        sign_as(services, meeting.chair.email)
        workflow.advance_meeting(services, meeting.meeting_id)
    finally:
        services.ledger.dispose()
    ca = SigningCA.load(outside_home / "ca")
    root = OutsideCA("Utomstående Rot CA")
    request = ca.signing_request(organisation_identifier="NTRSE-2120001234")
    install_issued_chain(ca, [root.issue(request), root.certificate])
    services = workflow.open_services(_settings(outside_home))  # restarted after the switch
    try:
        for role in (Role.ADJUSTER, Role.CERTIFIER):
            for signer in meeting.signers(role):
                sign_as(services, signer.email)
            workflow.advance_meeting(services, meeting.meeting_id)
        [state] = workflow.meeting_summaries(services, meeting.meeting_id)
    finally:
        services.ledger.dispose()
    assert state.status is ExtractStatus.ARCHIVED
    pdf = Path((state.archive_uri or "").removeprefix("file://")).read_bytes()
    with_root_only = validate_extract(pdf, [root.certificate])
    assert [s.trusted for s in with_root_only.signatures] == [False, True, True]
    bundle = Path((state.archive_uri or "").removeprefix("file://")).parent
    done = run_cli(outside_home, "verify", str(bundle))  # the home's trust: retired too
    assert done.returncode == 0, done.stdout
