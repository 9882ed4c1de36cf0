import stat
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from justering.errors import ConfigError, SigningError
from justering.model.roles import Person, Role, Signer
from justering.pades.ca import CA_CERT_FILE, CA_KEY_FILE, SigningCA
from justering.pades.certificates import common_name, role_from_certificate
from support.pdfs import ADJUSTER_0, ALL_SIGNERS, CHAIR, ORGANISATION


def test_create_writes_private_key_0600_and_certificate(ca: SigningCA) -> None:
    key_mode = stat.S_IMODE((ca.directory / CA_KEY_FILE).stat().st_mode)
    assert key_mode == 0o600
    assert stat.S_IMODE(ca.directory.stat().st_mode) == 0o700
    cert = x509.load_pem_x509_certificate((ca.directory / CA_CERT_FILE).read_bytes())
    assert cert == ca.certificate
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_load_round_trips(ca: SigningCA) -> None:
    loaded = SigningCA.load(ca.directory)
    assert loaded.fingerprint == ca.fingerprint
    credential = loaded.issue(CHAIR, organisation=ORGANISATION)
    credential.certificate.verify_directly_issued_by(ca.certificate)


def test_refuses_to_overwrite_an_existing_ca(ca: SigningCA) -> None:
    before = (ca.directory / CA_KEY_FILE).read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        SigningCA.create(ca.directory, organisation="Annan kommun")
    assert (ca.directory / CA_KEY_FILE).read_bytes() == before


def test_loading_a_missing_ca_says_what_is_missing(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"no signing CA in .*ca-cert\.pem is missing"):
        SigningCA.load(tmp_path / "nowhere")


def test_loading_a_ca_whose_key_does_not_match_fails(tmp_path) -> None:
    first = SigningCA.create(tmp_path / "a", organisation=ORGANISATION)
    second = SigningCA.create(tmp_path / "b", organisation=ORGANISATION)
    (first.directory / CA_CERT_FILE).write_bytes((second.directory / CA_CERT_FILE).read_bytes())
    with pytest.raises(ConfigError, match="do not match"):
        SigningCA.load(first.directory)


def test_export_pem_and_fingerprint(ca: SigningCA) -> None:
    exported = x509.load_pem_x509_certificate(ca.export_pem().encode())
    assert exported == ca.certificate
    assert ca.fingerprint == ca.certificate.fingerprint(hashes.SHA256()).hex()
    assert len(ca.fingerprint) == 64


@pytest.mark.parametrize("signer", ALL_SIGNERS, ids=lambda s: s.slot)
def test_issued_certificate_names_signer_role_and_organisation(ca: SigningCA, signer) -> None:
    cert = ca.issue(signer, organisation=ORGANISATION).certificate
    subject = cert.subject
    assert common_name(cert) == signer.name
    assert role_from_certificate(cert) is signer.role
    assert subject.get_attributes_for_oid(NameOID.TITLE)[0].value == signer.role.swedish
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == (
        signer.role.swedish
    )
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORGANISATION
    assert cert.issuer == ca.certificate.subject
    cert.verify_directly_issued_by(ca.certificate)


def test_certificate_has_no_identity_number_and_email_only_in_san(ca: SigningCA) -> None:
    cert = ca.issue(CHAIR, organisation=ORGANISATION).certificate
    oids = {attribute.oid for attribute in cert.subject}
    assert NameOID.SERIAL_NUMBER not in oids
    assert NameOID.EMAIL_ADDRESS not in oids
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [CHAIR.email]


def test_certificate_usage_is_document_signing(ca: SigningCA) -> None:
    cert = ca.issue(CHAIR, organisation=ORGANISATION).certificate
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert not usage.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku  # NSS (pdfsig) wants it


def test_validity_window(ca: SigningCA) -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    cert = ca.issue(CHAIR, organisation=ORGANISATION, now=now, validity=timedelta(days=30))
    assert cert.certificate.not_valid_before_utc == now - timedelta(minutes=5)
    assert cert.certificate.not_valid_after_utc == now + timedelta(days=30)
    default = ca.issue(CHAIR, organisation=ORGANISATION, now=now).certificate
    assert default.not_valid_after_utc == now + timedelta(days=365)


def test_each_issue_has_a_fresh_key(ca: SigningCA) -> None:
    first = ca.issue(ADJUSTER_0, organisation=ORGANISATION)
    second = ca.issue(ADJUSTER_0, organisation=ORGANISATION)
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert first.key.public_key().public_bytes(der, spki) != second.key.public_key().public_bytes(
        der, spki
    )
    assert first.fingerprint != second.fingerprint
    assert first.chain == (ca.certificate,)
    assert first.pyhanko_signer.signing_cert.dump() == first.certificate.public_bytes(der)


def test_refuses_a_certificate_outliving_the_ca(ca: SigningCA) -> None:
    with pytest.raises(SigningError, match="renew the CA"):
        ca.issue(CHAIR, organisation=ORGANISATION, validity=timedelta(days=30 * 365))


def test_role_from_certificate_is_none_without_a_role_title(ca: SigningCA) -> None:
    assert role_from_certificate(ca.certificate) is None
    assert {
        role_from_certificate(ca.issue(s, organisation="X").certificate) for s in ALL_SIGNERS
    } == set(Role)


def test_names_longer_than_a_certificate_allows_are_refused(ca: SigningCA, tmp_path) -> None:
    long_name = Signer(Person("Å" * 16 + " " + "Ł" * 16, "a@nacka.example"), Role.CHAIR)
    with pytest.raises(SigningError, match=r"name 'Å+ Ł+' is longer than the 64 bytes"):
        ca.issue(long_name, organisation=ORGANISATION)
    with pytest.raises(ConfigError, match=r"organisation 'Ö+' is longer than the 64"):
        SigningCA.create(tmp_path / "ca", organisation="Ö" * 33)
    assert not (tmp_path / "ca").exists()


def test_crl_is_empty_signed_by_the_ca_and_short_lived(ca: SigningCA) -> None:
    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    crl = ca.crl(now)
    assert crl.issuer == ca.certificate.subject
    assert crl.is_signature_valid(ca.certificate.public_key())
    assert len(crl) == 0
    assert crl.last_update_utc <= now < crl.next_update_utc
    assert crl.next_update_utc - now <= timedelta(days=1)
    later = ca.crl(now + timedelta(hours=1))
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert later.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number


def test_load_or_create_creates_once_then_loads(tmp_path) -> None:
    first, created = SigningCA.load_or_create(tmp_path / "ca", organisation=ORGANISATION)
    assert created
    again, created_again = SigningCA.load_or_create(tmp_path / "ca", organisation="Annan")
    assert not created_again
    assert again.fingerprint == first.fingerprint
