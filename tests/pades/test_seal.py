"""The municipality's trail seal: its certificate, where its key is kept, and what
its verification accepts and refuses."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from justering.errors import ConfigError, SigningError
from justering.pades.ca import SigningCA
from justering.pades.certificates import SignerCredential
from justering.pades.hsm import TokenKey
from justering.pades.seal import (
    SEAL_FILE,
    SEAL_RENEWAL,
    SEAL_VALIDITY,
    TRAIL_SEAL_EKU,
    TrailSeal,
    verify_seal,
)
from justering.pades.timestamps import TimestampError, timestamper_for
from support.pdfs import CHAIR, ORGANISATION
from support.softhsm import SoftHsm
from support.tsa import TsaService, refused_url, tsa_service_fixture  # noqa: F401

TRAIL = b'{"format": "justering-trail/1", "events": []}'


@pytest.fixture
def fresh_ca(tmp_path: Path) -> SigningCA:
    return SigningCA.create(tmp_path / "ca", organisation=ORGANISATION)


@pytest.fixture(scope="module")
def seal(ca: SigningCA) -> TrailSeal:
    return TrailSeal.load_or_create(ca)


def test_the_seal_is_the_organisation_s_for_sealing_trails_only(
    seal: TrailSeal, ca: SigningCA
) -> None:
    certificate = seal.certificate
    certificate.verify_directly_issued_by(ca.certificate)
    subject = {a.oid: a.value for a in certificate.subject}
    assert subject[NameOID.COMMON_NAME] == "Nacka kommun – signaturkedja"
    assert subject[NameOID.ORGANIZATION_NAME] == "Nacka kommun"
    assert NameOID.TITLE not in subject  # no person, no role
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    purposes = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(purposes) == [TRAIL_SEAL_EKU]
    assert TRAIL_SEAL_EKU.dotted_string.startswith("2.25.")
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not constraints.ca
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert SEAL_VALIDITY <= validity <= SEAL_VALIDITY + timedelta(minutes=10)


def test_the_key_is_kept_with_the_ca_0600_and_loaded_again(fresh_ca: SigningCA) -> None:
    made = TrailSeal.load_or_create(fresh_ca)
    path = fresh_ca.directory / SEAL_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in path.read_bytes()
    again = TrailSeal.load_or_create(SigningCA.load(fresh_ca.directory))
    assert again.certificate == made.certificate
    assert [p.name for p in fresh_ca.directory.iterdir() if p.name.startswith(".")] == []


def test_a_seal_near_its_end_or_from_another_ca_is_renewed(fresh_ca: SigningCA) -> None:
    first = TrailSeal.load_or_create(fresh_ca)
    end = first.certificate.not_valid_after_utc
    kept = TrailSeal.load_or_create(fresh_ca, now=end - SEAL_RENEWAL - timedelta(days=1))
    assert kept.certificate == first.certificate
    late = end - SEAL_RENEWAL + timedelta(days=1)
    renewed = TrailSeal.load_or_create(fresh_ca, now=late)
    assert renewed.certificate != first.certificate
    assert renewed.credential.key.public_key() != first.credential.key.public_key()
    assert renewed.certificate.not_valid_before_utc <= late
    assert TrailSeal.load_or_create(fresh_ca, now=late).certificate == renewed.certificate
    # A seal file next to another CA (a CA folder put together by hand): replaced.
    other = SigningCA.create(fresh_ca.directory.parent / "other", organisation="Annan kommun")
    (other.directory / SEAL_FILE).write_bytes((fresh_ca.directory / SEAL_FILE).read_bytes())
    replaced = TrailSeal.load_or_create(other)
    replaced.certificate.verify_directly_issued_by(other.certificate)
    names = replaced.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [n.value for n in names] == ["Annan kommun"]


def test_a_damaged_seal_file_is_named(fresh_ca: SigningCA) -> None:
    TrailSeal.load_or_create(fresh_ca)
    path = fresh_ca.directory / SEAL_FILE
    path.write_bytes(b"not a key")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*damaged"):
        TrailSeal.load_or_create(fresh_ca)
    assert path.read_bytes() == b"not a key"  # left for a person to look at


def test_the_seal_verifies_over_exactly_the_sealed_bytes(seal: TrailSeal, ca: SigningCA) -> None:
    sealed = seal.seal(TRAIL)
    info = cms.ContentInfo.load(sealed)
    assert info["content_type"].native == "signed_data"
    assert info["content"]["encap_content_info"]["content"].native is None  # detached
    result = verify_seal(TRAIL, sealed, [ca.certificate])
    assert result.ok, result.problems
    assert (result.intact, result.valid, result.trusted) == (True, True, True)
    assert result.sealed_by == "Nacka kommun – signaturkedja"
    assert result.signed_at is not None and result.timestamped_at is None
    changed = verify_seal(TRAIL.replace(b"[]", b"[ ]"), sealed, [ca.certificate])
    assert changed.problems == ("trail.json was changed after it was sealed",)
    assert not changed.intact


def test_a_seal_from_another_ca_is_not_trusted(seal: TrailSeal, fresh_ca: SigningCA) -> None:
    rogue = TrailSeal.load_or_create(fresh_ca)  # same organisation name, another CA
    result = verify_seal(TRAIL, rogue.seal(TRAIL), [seal.credential.chain[-1]])
    assert result.intact and result.valid and not result.trusted
    [problem] = result.problems
    assert "does not chain to a trust root" in problem
    assert re.search(r"valid at \d{4}-\d\d-\d\d \d\d:\d\d CES?T$", problem), problem


def test_a_signer_certificate_of_the_same_ca_cannot_seal(ca: SigningCA) -> None:
    signer = TrailSeal(ca.issue(CHAIR, organisation=ORGANISATION))
    result = verify_seal(TRAIL, signer.seal(TRAIL), [ca.certificate])
    assert not result.ok and not result.trusted
    assert result.problems == (
        "the seal was made with a certificate ('Mats Gerdau') that is not a trail seal's",
    )


def _builder(key: ec.EllipticCurvePrivateKey, *extensions: x509.ExtensionType) -> Any:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nacka kommun – e-post")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder


def test_a_certificate_for_another_purpose_cannot_seal(ca: SigningCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = ca.certify(
        _builder(
            key,
            x509.BasicConstraints(ca=False, path_length=None),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
        )
    )
    other = TrailSeal(SignerCredential(key, certificate, ca.issuing_chain))
    result = verify_seal(TRAIL, other.seal(TRAIL), [ca.certificate])
    assert not result.ok
    assert "not a trail seal's" in result.problems[0]


def test_the_ca_certifies_no_ca(ca: SigningCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for extensions in ((x509.BasicConstraints(ca=True, path_length=0),), ()):
        with pytest.raises(SigningError, match="certifies no CA"):
            ca.certify(_builder(key, *extensions))


@pytest.mark.parametrize("junk", [b"", b"not cms", b"0\x03\x02\x01\x00"])
def test_an_unreadable_seal_is_a_problem_not_a_crash(ca: SigningCA, junk: bytes) -> None:
    result = verify_seal(TRAIL, junk, [ca.certificate])
    assert not result.ok
    assert result.problems[0].startswith("the seal of trail.json is not a readable CMS signature")


def test_an_expired_seal_is_checked_at_the_time_it_claims(seal: TrailSeal, ca: SigningCA) -> None:
    sealed = seal.seal(TRAIL)
    later = seal.certificate.not_valid_after_utc + timedelta(days=365)
    result = verify_seal(TRAIL, sealed, [ca.certificate], now=later)
    assert result.ok, result.problems
    assert result.signed_at is not None and result.validated_at == result.signed_at


def test_with_a_tsa_the_seal_carries_a_trusted_timestamp(
    seal: TrailSeal, ca: SigningCA, tsa_service: TsaService
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    sealed = seal.seal(TRAIL, timestamper=timestamper_for(tsa_service.tsa_url))
    roots = [ca.certificate, tsa_service.root]
    result = verify_seal(TRAIL, sealed, roots)
    assert result.ok, result.problems
    assert result.timestamped_at is not None and result.timestamp_trusted
    assert before - timedelta(seconds=5) <= result.timestamped_at <= datetime.now(UTC)
    assert result.validated_at == result.timestamped_at
    # Ten years on, with the seal's certificate long expired: the timestamp's time counts.
    later = verify_seal(TRAIL, sealed, roots, now=datetime.now(UTC) + timedelta(days=3653))
    assert later.ok, later.problems
    # Without the TSA's root the timestamp is not trusted.
    untrusted = verify_seal(TRAIL, sealed, [ca.certificate])
    assert "its timestamp is not trusted" in " ".join(untrusted.problems)


def test_a_tsa_that_fails_fails_the_seal(seal: TrailSeal, tsa_service: TsaService) -> None:
    for url in (refused_url(), tsa_service.base_url + "/broken/500"):
        with pytest.raises(TimestampError, match=re.escape(url)):
            seal.seal(TRAIL, timestamper=timestamper_for(url))


def test_a_seal_that_cannot_be_written_is_a_configuration_error(
    fresh_ca: SigningCA, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    fresh_ca.directory = blocker / "ca"  # a CA folder that cannot be written in
    with pytest.raises(ConfigError, match=r"cannot write the trail seal .*not-a-folder"):
        TrailSeal.load_or_create(fresh_ca)


def test_with_the_ca_key_in_a_token_the_seal_key_is_made_there(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    ca = SigningCA.create(tmp_path / "ca", organisation=ORGANISATION, token=softhsm.reference())
    seal = TrailSeal.load_or_create(ca)
    kept = (ca.directory / SEAL_FILE).read_bytes()
    assert b"PRIVATE KEY" not in kept and kept.count(b"BEGIN CERTIFICATE") == 1
    key = seal.credential.key
    assert isinstance(key, TokenKey)
    assert key.reference.key_label == f"justering-sigill-{seal.certificate.serial_number:x}"
    assert key.reference.token_label == softhsm.token_label
    with pytest.raises(SigningError, match="cannot leave the token"):
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    assert verify_seal(TRAIL, seal.seal(TRAIL), [ca.certificate]).ok
    again = TrailSeal.load_or_create(SigningCA.load(ca.directory))  # found again by its label
    assert again.certificate == seal.certificate
    result = verify_seal(TRAIL, again.seal(TRAIL), [ca.certificate])
    assert result.ok, result.problems
