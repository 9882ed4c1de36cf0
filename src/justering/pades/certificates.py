"""What the signing CA's certificates say, and how they are read back: the profile of
a signer's single-use certificate (its name, role, key usages and how the signer was
identified), the key usages of every certificate the CA makes, and the small readers
(fingerprint, CN, role) validation and the command line use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from pyhanko.sign.signers import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from justering.errors import SigningError
from justering.model.assurance import SignerIdentity
from justering.model.roles import Role, Signer
from justering.pades.assurance import assurance_extensions
from justering.pades.names import certificate_name

__all__ = [
    "ADOBE_AUTHENTIC_DOCUMENTS_EKU",
    "BACKDATE",
    "DOCUMENT_SIGNING_EKU",
    "SignerCredential",
    "asn1_certificate",
    "common_name",
    "fingerprint",
    "key_usage",
    "role_from_certificate",
    "signer_certificate",
]

BACKDATE = timedelta(minutes=5)
"""Certificates start a little before now, so a validator with a slow clock accepts them."""
DOCUMENT_SIGNING_EKU = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
"""id-kp-documentSigning (RFC 9336)."""
ADOBE_AUTHENTIC_DOCUMENTS_EKU = ObjectIdentifier("1.2.840.113583.1.1.5")
"""Adobe Authentic Documents Trust: Adobe Reader's document-signing usage."""

_ROLE_BY_TITLE = {role.swedish: role for role in Role}
_NEVER_USED = dict.fromkeys(
    (
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "encipher_only",
        "decipher_only",
    ),
    False,
)
"""What no key the CA certifies may do: they sign, and nothing else."""


def key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A key usage extension that allows only the uses named (every key the CA
    certifies signs something; none enciphers or agrees keys)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        **_NEVER_USED,
    )


def signer_certificate(
    signer: Signer,
    public_key: ec.EllipticCurvePublicKey,
    *,
    organisation: str,
    identity: SignerIdentity,
    now: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    """A signer's certificate, all but its issuer (see ``SigningCA.certify``).

    Subject: CN = name, title and OU = the role in Swedish, O = ``organisation``, and
    for a login with e-legitimation serialNumber = the pseudonym derived from the keyed
    hash of the personnummer; the email goes only in the subjectAltName, and no personal
    identity number is ever put in the certificate. How the signer was identified (the
    link only, or a login and its level) is in the certificate's policy and, for a
    login, in the authentication context extension (``justering.pades.assurance``)."""
    serial = ((NameOID.SERIAL_NUMBER, identity.pseudonym),) if identity.pseudonym else ()
    try:
        subject = certificate_name(
            (NameOID.COUNTRY_NAME, "SE"),
            (NameOID.ORGANIZATION_NAME, organisation),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, signer.role.swedish),
            (NameOID.TITLE, signer.role.swedish),
            (NameOID.COMMON_NAME, signer.name),
            *serial,
        )
    except ValueError as error:
        raise SigningError(f"signer {signer.slot}: {error}") from error
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(
            # NSS (pdfsig) checks signer certificates for the email-signing
            # usage; the other two name document signing for Adobe and RFC 9336.
            x509.ExtendedKeyUsage(
                [
                    ExtendedKeyUsageOID.EMAIL_PROTECTION,
                    DOCUMENT_SIGNING_EKU,
                    ADOBE_AUTHENTIC_DOCUMENTS_EKU,
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
    )
    if signer.email:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(signer.email)]), critical=False
        )
    for extension, critical in assurance_extensions(identity):
        builder = builder.add_extension(extension, critical=critical)
    return builder


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, lowercase hex."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def role_from_certificate(certificate: x509.Certificate) -> Role | None:
    """The role a signer certificate names in its title, or None if it names none."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.TITLE):
        role = _ROLE_BY_TITLE.get(str(attribute.value))
        if role is not None:
            return role
    return None


def common_name(certificate: x509.Certificate) -> str:
    """The subject's CN, or an empty string."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    """``certificate`` as the asn1crypto object pyHanko works with."""
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True)
class SignerCredential:
    """A fresh single-use key and the certificate the CA issued for it."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    """The issuing CA certificate(s), nearest first."""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    @property
    def pyhanko_signer(self) -> SimpleSigner:
        """A pyHanko signer for this key, with the chain embedded in each signature."""
        der_key = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return SimpleSigner(
            signing_cert=asn1_certificate(self.certificate),
            signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [asn1_certificate(cert) for cert in self.chain]
            ),
        )
