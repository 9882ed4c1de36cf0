"""The municipality's signing CA, in the Sweden Connect "signature service" model.

At each signature the CA issues a certificate for a fresh key that names the
signer and their role; the key signs one PDF and is then dropped. The CA itself
is a key (file mode 0600) and a self-signed certificate (PEM) in one directory.
Archivists and validators trust the CA certificate (``export_pem``).

Keys are EC P-256: a key pair costs well under a millisecond, and pyHanko,
poppler/NSS (``pdfsig``) and Adobe Reader all verify ECDSA signatures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from pyhanko.sign.signers import SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from justering.errors import ConfigError, SigningError
from justering.model.roles import Role, Signer

CA_KEY_FILE = "ca-key.pem"
CA_CERT_FILE = "ca-cert.pem"

DEFAULT_CERTIFICATE_VALIDITY = timedelta(days=365)
"""How long a signer certificate stays valid; see :meth:`SigningCA.issue`."""

CA_VALIDITY = timedelta(days=20 * 365)
CRL_VALIDITY = timedelta(days=1)
"""How long a CRL of the signing CA says it is current (its next update)."""
MAX_NAME_LENGTH = 64
"""X.509's upper bound for a CN or O (RFC 5280 ub-common-name), which
``cryptography`` applies to the UTF-8 bytes: "Å" counts twice."""
BACKDATE = timedelta(minutes=5)
"""Certificates start a little before now, so a validator with a slow clock accepts them."""

DOCUMENT_SIGNING_EKU = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
"""id-kp-documentSigning (RFC 9336)."""
ADOBE_AUTHENTIC_DOCUMENTS_EKU = ObjectIdentifier("1.2.840.113583.1.1.5")
"""Adobe Authentic Documents Trust: Adobe Reader's document-signing usage."""

_ROLE_BY_TITLE = {role.swedish: role for role in Role}


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


class SigningCA:
    """The signing CA kept in ``directory``: ``ca-key.pem`` (0600) and ``ca-cert.pem``."""

    def __init__(
        self, directory: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
    ) -> None:
        self.directory = directory
        self._key = key
        self.certificate = certificate

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        organisation: str,
        common_name: str | None = None,
        now: datetime | None = None,
    ) -> SigningCA:
        """Make a new CA in ``directory`` (created if missing); refuse to overwrite one."""
        directory = Path(directory)
        key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
        for path in (key_path, cert_path):
            if path.exists():
                raise ConfigError(
                    f"a signing CA already exists in {directory} ({path.name}); "
                    "refusing to overwrite it"
                )
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        default_name = f"{organisation} signeringstjänst CA"
        if len(default_name.encode()) > MAX_NAME_LENGTH:
            default_name = organisation
        try:
            name = _name(
                (NameOID.COUNTRY_NAME, "SE"),
                (NameOID.ORGANIZATION_NAME, organisation),
                (NameOID.COMMON_NAME, common_name or default_name),
            )
        except ValueError as error:
            raise ConfigError(f"signing CA name: {error}") from error
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as error:
            raise ConfigError(f"a signing CA key already exists at {key_path}") from error
        with os.fdopen(fd, "wb") as handle:
            handle.write(key_pem)
        try:
            with cert_path.open("xb") as handle:
                handle.write(certificate.public_bytes(serialization.Encoding.PEM))
        except BaseException:
            key_path.unlink()
            raise
        return cls(directory, key, certificate)

    @classmethod
    def load_or_create(cls, directory: Path, *, organisation: str) -> tuple[SigningCA, bool]:
        """The CA in ``directory``, created first if there is none; and whether it was."""
        if (Path(directory) / CA_CERT_FILE).exists():
            return cls.load(directory), False
        return cls.create(directory, organisation=organisation), True

    @classmethod
    def load(cls, directory: Path) -> SigningCA:
        """Load the CA kept in ``directory``."""
        directory = Path(directory)
        key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
        for path in (cert_path, key_path):
            if not path.is_file():
                raise ConfigError(
                    f"no signing CA in {directory}: {path.name} is missing "
                    "(create one with `justering ca init`)"
                )
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as error:
            raise ConfigError(f"signing CA in {directory} is unreadable: {error}") from error
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"signing CA key {key_path} is not an EC key")
        if key.public_key() != certificate.public_key():
            raise ConfigError(f"signing CA in {directory}: key and certificate do not match")
        return cls(directory, key, certificate)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the CA certificate, lowercase hex."""
        return fingerprint(self.certificate)

    def export_pem(self) -> str:
        """The CA certificate as PEM, for trust stores (NSS, Adobe, ``justering verify``)."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def crl(
        self, now: datetime | None = None, *, validity: timedelta = CRL_VALIDITY
    ) -> x509.CertificateRevocationList:
        """A CRL of this CA, issued ``now``: empty, since a signer key is used once
        and dropped, so there is never a certificate to revoke.

        Archived with each extract (PAdES-LTA, ``justering.pades.timestamps``) as the
        proof that no signer certificate was revoked when the extract was sealed.
        The short ``validity`` (next update) says that this statement holds for
        that moment only; a validator uses it retroactively, under the document
        timestamp that proves when it existed.
        """
        now = now or datetime.now(UTC)
        return (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - BACKDATE)
            .next_update(now + validity)
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )

    def issue(
        self,
        signer: Signer,
        *,
        organisation: str,
        now: datetime | None = None,
        validity: timedelta = DEFAULT_CERTIFICATE_VALIDITY,
    ) -> SignerCredential:
        """A fresh key and a certificate naming ``signer`` and their role.

        Subject: CN = name, title and OU = the role in Swedish, O = ``organisation``;
        the email goes only in the subjectAltName, and no personal identity number
        is ever put in the certificate.

        ``validity``: the key signs once and is dropped, so the certificate could
        be valid for minutes. But ``pdfsig`` and Adobe Reader check certificates at
        the time of *verification* (there is no trusted timestamp yet), so a
        minutes-long certificate would show as expired to an archivist tomorrow.
        The default of a year keeps independent validators green for the appeal
        period and beyond; ``justering``'s own validator checks expired
        certificates at the signing time instead.
        """
        if not signer.name.strip():
            raise SigningError(f"signer {signer.slot} has no name")
        now = now or datetime.now(UTC)
        not_after = now + validity
        if not_after > self.certificate.not_valid_after_utc:
            raise SigningError(
                f"the signing CA expires {self.certificate.not_valid_after_utc:%Y-%m-%d}, "
                "before the certificate it would issue; renew the CA"
            )
        try:
            subject = _name(
                (NameOID.COUNTRY_NAME, "SE"),
                (NameOID.ORGANIZATION_NAME, organisation),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, signer.role.swedish),
                (NameOID.TITLE, signer.role.swedish),
                (NameOID.COMMON_NAME, signer.name),
            )
        except ValueError as error:
            raise SigningError(f"signer {signer.slot}: {error}") from error
        key = ec.generate_private_key(ec.SECP256R1())
        ca_public = self._key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
            )
        )
        if signer.email:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(signer.email)]), critical=False
            )
        certificate = builder.sign(self._key, hashes.SHA256())
        return SignerCredential(key=key, certificate=certificate, chain=(self.certificate,))

    def issue_seal(
        self,
        public_key: ec.EllipticCurvePublicKey,
        *,
        organisation: str,
        name: str,
        purpose: ObjectIdentifier,
        validity: timedelta,
        now: datetime | None = None,
    ) -> x509.Certificate:
        """A certificate for an organisation seal (e-sigill) of ``organisation``: a key
        of the municipality itself, not of a person, for ``purpose`` only (its one
        extended key usage), with the digitalSignature key usage. Subject: CN =
        ``name``, O = ``organisation``. Valid for ``validity``, or until the CA
        expires if that comes first."""
        now = now or datetime.now(UTC)
        try:
            subject = _name(
                (NameOID.COUNTRY_NAME, "SE"),
                (NameOID.ORGANIZATION_NAME, organisation),
                (NameOID.COMMON_NAME, name),
            )
        except ValueError as error:
            raise SigningError(f"seal certificate: {error}") from error
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(min(now + validity, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )


_LABELS = {NameOID.COMMON_NAME: "name", NameOID.ORGANIZATION_NAME: "organisation"}


def _name(*attributes: tuple[ObjectIdentifier, str]) -> x509.Name:
    """An X.509 name; ValueError naming the attribute when one is too long."""
    for oid, value in attributes:
        if len(value.encode()) > MAX_NAME_LENGTH:
            label = _LABELS.get(oid, oid.dotted_string)
            raise ValueError(
                f"{label} {value!r} is longer than the {MAX_NAME_LENGTH} bytes (UTF-8) "
                "a certificate allows"
            )
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    """``certificate`` as the asn1crypto object pyHanko works with."""
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


__all__ = [
    "DEFAULT_CERTIFICATE_VALIDITY",
    "SignerCredential",
    "SigningCA",
    "asn1_certificate",
    "common_name",
    "fingerprint",
    "role_from_certificate",
]
