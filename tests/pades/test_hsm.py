"""The signing CA with its key in a PKCS#11 token (real SoftHSM2): made in the token,
never on disk, not extractable, and every certificate, CRL and request it signs
signed there."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from justering.errors import ConfigError, SigningError
from justering.pades.ca import CA_CERT_FILE, CA_KEY_FILE, SigningCA
from justering.pades.hsm import KEY_REFERENCE_FILE, TokenKey, TokenReference
from justering.pades.validate import validate_extract
from support.pdfs import ALL_SIGNERS, CHAIR, ORGANISATION, sign_in_turn
from support.softhsm import PIN, SoftHsm


@pytest.fixture
def token_ca(softhsm: SoftHsm, tmp_path: Path) -> SigningCA:
    return SigningCA.create(tmp_path / "ca", organisation=ORGANISATION, token=softhsm.reference())


def _token_objects(softhsm: SoftHsm, label: str) -> list[str]:
    """The classes of the objects labelled ``label`` in the token (this process is
    logged in to it, so private objects count too)."""
    library = pkcs11.lib(str(softhsm.module))
    token = library.get_token(token_label=softhsm.token_label)
    with token.open() as session:
        objects = session.get_objects({pkcs11.Attribute.LABEL: label})
        return sorted(str(obj[pkcs11.Attribute.CLASS]) for obj in objects)


def _private_key(ca: SigningCA) -> pkcs11.PrivateKey:
    from justering.pades import hsm

    key = ca._key
    assert isinstance(key, TokenKey)
    session = hsm._session(key.reference).session
    found: pkcs11.PrivateKey = session.get_key(
        object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=key.reference.key_label
    )
    return found


def test_the_ca_folder_keeps_a_reference_and_no_key(token_ca: SigningCA) -> None:
    files = sorted(path.name for path in token_ca.directory.iterdir())
    assert files == [CA_CERT_FILE, KEY_REFERENCE_FILE]
    reference = json.loads((token_ca.directory / KEY_REFERENCE_FILE).read_text())
    assert set(reference) == {"pkcs11_module", "token_label", "key_label", "pin_env"}
    assert PIN not in (token_ca.directory / KEY_REFERENCE_FILE).read_text()
    assert "the key" in token_ca.key_location and "token" in token_ca.key_location


def test_the_key_is_sensitive_and_cannot_be_exported(token_ca: SigningCA) -> None:
    key = _private_key(token_ca)
    assert key[pkcs11.Attribute.EXTRACTABLE] is False
    assert key[pkcs11.Attribute.SENSITIVE] is True
    assert key[pkcs11.Attribute.NEVER_EXTRACTABLE] is True
    with pytest.raises(pkcs11.AttributeSensitive):
        key[pkcs11.Attribute.VALUE]
    ca_key = token_ca._key
    with pytest.raises(SigningError, match="cannot leave the token"):
        ca_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    with pytest.raises(SigningError, match="cannot leave the token"):
        ca_key.private_numbers()


def test_a_loaded_token_ca_issues_signs_crls_and_requests_in_the_token(
    token_ca: SigningCA,
) -> None:
    loaded = SigningCA.load(token_ca.directory)
    assert isinstance(loaded._key, TokenKey)
    credential = loaded.issue(CHAIR, organisation=ORGANISATION)
    credential.certificate.verify_directly_issued_by(token_ca.certificate)
    token_ca.certificate.verify_directly_issued_by(token_ca.certificate)
    crl = loaded.crl(datetime.now(UTC))
    assert crl.is_signature_valid(token_ca.certificate.public_key())  # type: ignore[arg-type]
    request = loaded.signing_request()
    assert request.is_signature_valid
    assert request.public_key() == token_ca.certificate.public_key()


def test_an_extract_signed_under_the_token_ca_validates(
    token_ca: SigningCA, unsigned: bytes
) -> None:
    signed = sign_in_turn(unsigned, SigningCA.load(token_ca.directory), ALL_SIGNERS)
    report = validate_extract(signed[-1].pdf, [token_ca.certificate], expected_adjusters=2)
    assert report.ok, report.problems


def test_another_key_under_the_label_issues_nothing(
    token_ca: SigningCA, softhsm: SoftHsm, tmp_path: Path
) -> None:
    other = SigningCA.create(
        tmp_path / "other", organisation=ORGANISATION, token=softhsm.reference()
    )
    # the reference now names the other CA's key: the certificate is not its
    (token_ca.directory / KEY_REFERENCE_FILE).write_text(
        (other.directory / KEY_REFERENCE_FILE).read_text()
    )
    confused = SigningCA.load(token_ca.directory)
    with pytest.raises(ConfigError, match="is not the key of the CA certificate"):
        confused.issue(CHAIR, organisation=ORGANISATION)


def test_a_key_label_already_in_the_token_is_refused(
    token_ca: SigningCA, softhsm: SoftHsm, tmp_path: Path
) -> None:
    label = json.loads((token_ca.directory / KEY_REFERENCE_FILE).read_text())["key_label"]
    before = _token_objects(softhsm, label)
    assert len(before) == 2  # the key pair
    with pytest.raises(ConfigError, match="already holds a key labelled"):
        SigningCA.create(
            tmp_path / "again", organisation=ORGANISATION, token=softhsm.reference(label)
        )
    assert not (tmp_path / "again").exists()
    assert _token_objects(softhsm, label) == before


def test_a_missing_key_or_token_is_named(token_ca: SigningCA, softhsm: SoftHsm) -> None:
    path = token_ca.directory / KEY_REFERENCE_FILE
    reference = json.loads(path.read_text())
    path.write_text(json.dumps({**reference, "key_label": "nowhere"}))
    with pytest.raises(ConfigError, match="has no EC private key labelled 'nowhere'"):
        SigningCA.load(token_ca.directory).issue(CHAIR, organisation=ORGANISATION)
    path.write_text(json.dumps({**reference, "token_label": "elsewhere"}))
    with pytest.raises(ConfigError, match=r"no token labelled 'elsewhere'.*'justering-test'"):
        SigningCA.load(token_ca.directory).issue(CHAIR, organisation=ORGANISATION)


def test_a_missing_pin_variable_is_named(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(softhsm.pin_env)
    with pytest.raises(ConfigError, match=f"environment variable {softhsm.pin_env}, which is not"):
        softhsm.reference().pin()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"pkcs11_module": "libsofthsm2.so"}, "must be an absolute path"),
        ({"pin_env": "1234"}, "is not the name of an environment variable"),
        ({"token_label": ""}, "the token label '' must be 1 to 32 bytes"),
        ({"key_label": 7}, "every field must be a string"),
        ({"pin_env": None, "drop": True}, "is unreadable"),
    ],
)
def test_a_bad_reference_file_is_refused(
    token_ca: SigningCA, change: dict[str, object], problem: str
) -> None:
    path = token_ca.directory / KEY_REFERENCE_FILE
    reference = json.loads(path.read_text())
    if change.pop("drop", False):
        del reference["pin_env"]
    else:
        reference.update(change)
    path.write_text(json.dumps(reference))
    with pytest.raises(ConfigError, match=problem):
        SigningCA.load(token_ca.directory)


def test_a_key_file_next_to_a_reference_is_refused(token_ca: SigningCA) -> None:
    (token_ca.directory / CA_KEY_FILE).write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match="the key is in one place only"):
        SigningCA.load(token_ca.directory)


def test_the_adapter_signs_only_ecdsa(token_ca: SigningCA) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    key = SigningCA.load(token_ca.directory)._key
    with pytest.raises(SigningError, match="no Prehashed"):
        key.sign(b"\0" * 32, ec.ECDSA(Prehashed(hashes.SHA256())))
    signature = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    token_ca.certificate.public_key().verify(  # type: ignore[union-attr,call-arg]
        signature, b"data", ec.ECDSA(hashes.SHA256())
    )


def test_a_reference_round_trips(softhsm: SoftHsm, tmp_path: Path) -> None:
    reference = softhsm.reference("round-trip")
    path = tmp_path / KEY_REFERENCE_FILE
    path.write_text(reference.to_json())
    assert TokenReference.read(path) == reference
