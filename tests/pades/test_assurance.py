"""What a signer certificate says about how its signer was identified: a policy per
level, the login's authentication context (RFC 7773), a pseudonymous serialNumber;
read back by validation, whatever else a certificate carries."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from justering.model.assurance import LINK_ONLY, LOA3, LOA4, Assurance, SignerIdentity
from justering.pades.assurance import (
    AUTH_CONTEXT_OID,
    POLICY_OIDS,
    PROJECT_ARC,
    SACI_CONTEXT_TYPE,
    assurance_of,
)
from justering.pades.ca import SigningCA
from justering.pades.sign import sign_extract
from justering.pades.validate import validate_extract
from support.pdfs import CHAIR, ORGANISATION

AT = dt.datetime(2014, 8, 19, 12, 30, tzinfo=dt.UTC)
LOGIN = SignerIdentity(
    Assurance.LOA3,
    issuer="https://broker.example/oidc",
    acr=LOA3,
    authenticated_at=AT,
    id_token_sha256="ab" * 32,
    pseudonym="ID-0123456789ABCDEF0123456789ABCDEF",
)


def test_the_policies_are_under_the_projects_own_arc() -> None:
    assert PROJECT_ARC.startswith("2.25.")  # a UUID's OID (ITU-T X.667)
    assert len({oid.dotted_string for oid in POLICY_OIDS.values()}) == len(Assurance)
    assert all(oid.dotted_string.startswith(PROJECT_ARC) for oid in POLICY_OIDS.values())


def test_a_login_is_in_the_certificate(ca: SigningCA) -> None:
    certificate = ca.issue(CHAIR, organisation=ORGANISATION, identity=LOGIN).certificate
    policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies)
    assert not policies.critical
    (policy,) = policies.value
    assert policy.policy_identifier == POLICY_OIDS[Assurance.LOA3]
    (notice,) = policy.policy_qualifiers or []
    assert isinstance(notice, x509.UserNotice)
    assert "e-legitimation, tillitsnivå 3" in str(notice.explicit_text)
    context = certificate.extensions.get_extension_for_oid(AUTH_CONTEXT_OID)
    assert not context.critical
    assert SACI_CONTEXT_TYPE.encode() in context.value.public_bytes()
    (serial,) = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    assert serial.value == LOGIN.pseudonym
    read = assurance_of(certificate)
    assert read.assurance is Assurance.LOA3
    assert read.identity_provider == LOGIN.issuer and read.acr == LOA3
    assert read.authenticated_at == AT
    assert read.meets(Assurance.LOA3) and not read.meets(Assurance.LOA4)


def test_link_only_signing_has_its_own_policy_and_no_context(ca: SigningCA) -> None:
    certificate = ca.issue(CHAIR, organisation=ORGANISATION).certificate
    (policy,) = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert policy.policy_identifier == POLICY_OIDS[Assurance.LINK]
    with pytest.raises(x509.ExtensionNotFound):
        certificate.extensions.get_extension_for_oid(AUTH_CONTEXT_OID)
    assert certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER) == []
    read = assurance_of(certificate)
    assert read.assurance is Assurance.LINK and read.identity_provider is None
    assert read.swedish == "via e-postlänk (enkel elektronisk underskrift)"
    assert read.meets(Assurance.LINK) and not read.meets(Assurance.LOA2)


def _certificate(*extensions: x509.ExtensionType) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(AT)
        .not_valid_after(AT + dt.timedelta(days=1))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(key, hashes.SHA256())


def _policy(level: Assurance) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(POLICY_OIDS[level], None)])


class _Context(core.Sequence):  # type: ignore[misc]
    _fields = [("contextType", core.UTF8String), ("contextInfo", core.UTF8String)]  # noqa: RUF012


class _Contexts(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _Context


def _context(info: str) -> x509.UnrecognizedExtension:
    value = _Contexts([{"contextType": SACI_CONTEXT_TYPE, "contextInfo": info}]).dump()
    return x509.UnrecognizedExtension(AUTH_CONTEXT_OID, value)


@pytest.mark.parametrize(
    "extensions",
    [
        (),
        (x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("1.2.3"), None)]),),
        (
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(POLICY_OIDS[Assurance.LINK], None),
                    x509.PolicyInformation(POLICY_OIDS[Assurance.LOA4], None),
                ]
            ),
        ),
    ],
    ids=["no-policy", "a-foreign-policy", "two-levels"],
)
def test_a_certificate_that_does_not_say_one_level_says_nothing(
    extensions: tuple[x509.ExtensionType, ...],
) -> None:
    read = assurance_of(_certificate(*extensions))
    assert read.assurance is None and not read.meets(Assurance.LINK)
    assert read.to_json()["assurance"] == "unknown"


@pytest.mark.parametrize(
    "info",
    [
        "<not xml",
        '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
        "<x/>",
        "x" * 9000,
    ],
    ids=["not-xml", "a-dtd", "another-document", "too-long"],
)
def test_a_malformed_context_leaves_only_the_level(info: str) -> None:
    read = assurance_of(_certificate(_policy(Assurance.LOA4), _context(info)))
    assert read.assurance is Assurance.LOA4 and read.identity_provider is None


def test_validation_reports_each_signatures_assurance(ca: SigningCA, unsigned: bytes) -> None:
    credential = ca.issue(CHAIR, organisation=ORGANISATION, identity=LOGIN)
    signed = sign_extract(unsigned, credential, CHAIR, adjuster_count=1)
    report = validate_extract(signed.pdf, [ca.certificate], complete=False)
    (signature,) = report.signatures
    assert signature.assurance.assurance is Assurance.LOA3
    assert signature.assurance.to_json() == {
        "assurance": "loa3",
        "identity_provider": LOGIN.issuer,
        "acr": LOA3,
        "authenticated_at": AT.isoformat(),
    }
    assert LINK_ONLY.trail_detail() == {"identification": "link", "assurance": "link"}
    assert SignerIdentity.from_trail_detail(LOGIN.trail_detail()) == SignerIdentity(
        Assurance.LOA3, LOGIN.issuer, LOA3, AT, LOGIN.id_token_sha256
    )
    assert LOA4.endswith("loa4")
