"""The signing CA under an outside root: the signing request, the checks before an
issued certificate is installed (each refusal names its problem and changes
nothing), and signatures that chain to the outside root once it is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from justering.errors import ConfigError
from justering.pades.ca import CA_CERT_FILE, CA_RETIRED_FILE, SigningCA
from justering.pades.ca_chain import ChainError, ChainProblem, install_issued_chain
from justering.pades.validate import validate_extract
from support.outside_ca import OutsideCA, pem
from support.pdfs import ALL_SIGNERS, CHAIR, ORGANISATION, sign_in_turn
from support.poppler import nss_database, pdfsig


@pytest.fixture(scope="module")
def root() -> OutsideCA:
    return OutsideCA("Utomstående Rot CA")


@pytest.fixture
def own_ca(tmp_path: Path) -> SigningCA:
    return SigningCA.create(tmp_path / "ca", organisation=ORGANISATION)


def _folder(ca: SigningCA) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(ca.directory.iterdir())}


def test_the_signing_request_asks_for_a_ca_certificate(own_ca: SigningCA) -> None:
    request = own_ca.signing_request()
    assert request.is_signature_valid
    assert request.subject == own_ca.certificate.subject
    assert request.public_key() == own_ca.certificate.public_key()
    constraints = request.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = request.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature


def test_an_issued_certificate_is_installed_with_its_chain(
    own_ca: SigningCA, root: OutsideCA
) -> None:
    issuing = OutsideCA("Utomstående Utfärdande CA", issuer=root)
    issued = issuing.issue(own_ca.signing_request())
    installed = install_issued_chain(own_ca, [issued, issuing.certificate], [root.certificate])
    assert installed.certificate == issued
    assert installed.chain == (issuing.certificate, root.certificate)
    loaded = SigningCA.load(own_ca.directory)
    assert (loaded.certificate, loaded.chain) == (issued, installed.chain)
    assert x509.load_pem_x509_certificates(loaded.export_pem().encode()) == [
        issued,
        issuing.certificate,
        root.certificate,
    ]
    assert loaded.retired == (own_ca.certificate,)
    assert set(loaded.trust_anchors) == {root.certificate, own_ca.certificate}
    credential = loaded.issue(CHAIR, organisation=ORGANISATION)
    assert credential.chain == (issued, issuing.certificate)  # the root is the validator's
    credential.certificate.verify_directly_issued_by(issued)


def test_the_chain_may_be_given_in_any_order_after_the_issued_certificate(
    own_ca: SigningCA, root: OutsideCA
) -> None:
    issuing = OutsideCA("Utomstående Utfärdande CA", issuer=root)
    issued = issuing.issue(own_ca.signing_request())
    installed = install_issued_chain(own_ca, [issued, root.certificate, issuing.certificate])
    assert installed.chain == (issuing.certificate, root.certificate)


def _other_key(ca: SigningCA, root: OutsideCA) -> list[x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return [root.issue(ca.signing_request(), public_key=key), root.certificate]


def _not_a_ca(ca: SigningCA, root: OutsideCA) -> list[x509.Certificate]:
    return [root.issue(ca.signing_request(), ca=False), root.certificate]


def _no_crl_sign(ca: SigningCA, root: OutsideCA) -> list[x509.Certificate]:
    return [root.issue(ca.signing_request(), crl_sign=False), root.certificate]


def _expired(ca: SigningCA, root: OutsideCA) -> list[x509.Certificate]:
    past = datetime.now(UTC) - timedelta(days=10)
    certificate = root.issue(
        ca.signing_request(), not_before=past - timedelta(days=365), not_after=past
    )
    return [certificate, root.certificate]


def _not_yet_valid(ca: SigningCA, root: OutsideCA) -> list[x509.Certificate]:
    soon = datetime.now(UTC) + timedelta(days=2)
    return [root.issue(ca.signing_request(), not_before=soon), root.certificate]


def _no_root(ca: SigningCA, root: OutsideCA) -> list[x509.Certificate]:
    issuing = OutsideCA("Utomstående Utfärdande CA", issuer=root)
    return [issuing.issue(ca.signing_request()), issuing.certificate]


def _another_root(ca: SigningCA, root: OutsideCA) -> list[x509.Certificate]:
    """Issued by the root's name, but signed by another key: no path verifies."""
    impostor = OutsideCA("Utomstående Rot CA")
    return [impostor.issue(ca.signing_request()), root.certificate]


@pytest.mark.parametrize(
    ("make", "problem", "message"),
    [
        (_other_key, ChainProblem.OTHER_KEY, "is for another key than the CA's"),
        (_not_a_ca, ChainProblem.NOT_A_CA, "is not a CA certificate"),
        (_no_crl_sign, ChainProblem.MISSING_KEY_USAGE, "lacks the key usage cRLSign"),
        (_expired, ChainProblem.NOT_VALID_NOW, "expired on"),
        (_not_yet_valid, ChainProblem.NOT_VALID_NOW, "is not valid until"),
        (_no_root, ChainProblem.NO_ROOT, "does not reach a root: it ends at"),
        (_another_root, ChainProblem.DOES_NOT_VERIFY, "does not verify up to its root"),
    ],
)
def test_a_chain_that_does_not_fit_is_refused_and_nothing_changes(
    own_ca: SigningCA,
    root: OutsideCA,
    make: Callable[[SigningCA, OutsideCA], list[x509.Certificate]],
    problem: ChainProblem,
    message: str,
) -> None:
    before = _folder(own_ca)
    with pytest.raises(ChainError, match=message) as refused:
        install_issued_chain(own_ca, make(own_ca, root))
    assert refused.value.problem is problem
    assert refused.value.diagnostics().endswith("the CA was not changed")
    assert _folder(own_ca) == before


def test_a_root_given_apart_must_be_self_signed(own_ca: SigningCA, root: OutsideCA) -> None:
    issuing = OutsideCA("Utomstående Utfärdande CA", issuer=root)
    issued = issuing.issue(own_ca.signing_request())
    before = _folder(own_ca)
    with pytest.raises(ChainError, match="is not a self-signed certificate") as refused:
        install_issued_chain(own_ca, [issued], [issuing.certificate])
    assert refused.value.problem is ChainProblem.NO_ROOT
    assert _folder(own_ca) == before


def test_an_empty_chain_is_refused(own_ca: SigningCA) -> None:
    with pytest.raises(ChainError, match="holds no certificate"):
        install_issued_chain(own_ca, [])


def test_a_broken_chain_in_the_folder_is_named_on_load(own_ca: SigningCA, root: OutsideCA) -> None:
    installed = install_issued_chain(
        own_ca, [root.issue(own_ca.signing_request()), root.certificate]
    )
    other = OutsideCA("Annan Rot CA")
    (own_ca.directory / CA_CERT_FILE).write_bytes(pem(installed.certificate, other.certificate))
    with pytest.raises(ConfigError, match=r"the chain in .* is broken"):
        SigningCA.load(own_ca.directory)


ORGANISATION_IDENTIFIER = "NTRSE-2120001234"


def test_the_organisation_identifier_goes_in_the_requested_subject(own_ca: SigningCA) -> None:
    request = own_ca.signing_request(organisation_identifier=ORGANISATION_IDENTIFIER)
    assert [a.oid for a in request.subject] == [
        NameOID.COUNTRY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATION_IDENTIFIER,
        NameOID.COMMON_NAME,
    ]
    assert request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == (
        ORGANISATION_IDENTIFIER
    )
    with pytest.raises(ConfigError, match="expected the ETSI EN 319 412-1 form"):
        own_ca.signing_request(organisation_identifier="212000-1234")


def test_under_the_same_name_the_old_certificate_still_vouches_for_the_key(
    own_ca: SigningCA, root: OutsideCA, unsigned: bytes
) -> None:
    """Why ``--organisation-identifier`` matters: the same name and the same key make
    the self-signed certificate a valid issuer of the new signer certificates too."""
    installed = install_issued_chain(
        own_ca, [root.issue(own_ca.signing_request()), root.certificate]
    )
    [chair] = sign_in_turn(unsigned, installed, ALL_SIGNERS[:1])
    report = validate_extract(chair.pdf, [own_ca.certificate], complete=False)
    assert report.ok, report.problems


def test_signatures_chain_to_the_outside_root(
    own_ca: SigningCA, root: OutsideCA, unsigned: bytes, tmp_path: Path
) -> None:
    issuing = OutsideCA("Utomstående Utfärdande CA", issuer=root)
    request = own_ca.signing_request(organisation_identifier=ORGANISATION_IDENTIFIER)
    issued = issuing.issue(request)
    # the chair signs before the installation, the others after it
    [chair] = sign_in_turn(unsigned, own_ca, ALL_SIGNERS[:1])
    installed = install_issued_chain(own_ca, [issued, issuing.certificate, root.certificate])
    assert (own_ca.directory / CA_RETIRED_FILE).is_file()
    signed = sign_in_turn(chair.pdf, installed, ALL_SIGNERS[1:])[-1].pdf

    both = validate_extract(signed, installed.trust_anchors, expected_adjusters=2)
    assert both.ok, both.problems
    only_outside = validate_extract(signed, [root.certificate], expected_adjusters=2)
    assert [s.trusted for s in only_outside.signatures] == [False, True, True, True]

    after = sign_in_turn(unsigned, installed, ALL_SIGNERS)[-1].pdf
    assert validate_extract(after, [root.certificate], expected_adjusters=2).ok
    old_root_only = validate_extract(after, [own_ca.certificate], expected_adjusters=2)
    assert not any(s.trusted for s in old_root_only.signatures)

    path = tmp_path / "signed.pdf"
    path.write_bytes(after)
    report = pdfsig(path, "-nssdir", nss_database(tmp_path / "nss", pem(root.certificate)))
    assert [s["Signature Validation"] for s in report] == ["Signature is Valid."] * 4
    assert [s["Certificate Validation"] for s in report] == ["Certificate is Trusted."] * 4


def test_a_long_outside_chain_fits_in_the_signature(
    own_ca: SigningCA, root: OutsideCA, unsigned: bytes
) -> None:
    """Each certificate above ours is embedded: the signature's room grows with them."""
    issuing = root
    for level in range(4):
        issuing = OutsideCA(f"Utomstående mellanliggande CA {level}", issuer=issuing)
    chain = [issuing.issue(own_ca.signing_request())]
    above = issuing
    while above.issuer is not None:
        chain.append(above.certificate)
        above = above.issuer
    installed = install_issued_chain(own_ca, [*chain, root.certificate])
    assert len(installed.chain) == 5
    [signed] = sign_in_turn(unsigned, installed, ALL_SIGNERS[:1])
    report = validate_extract(signed.pdf, [root.certificate], complete=False)
    assert report.ok, report.problems
