"""An outside CA for the tests: a root (and, if asked, an issuing intermediate under
it) made with ``cryptography``, standing in for the commercial or sector CA that
issues the municipality's signing CA certificate from ``justering ca csr``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

_CA_USAGE = {
    "digital_signature": False,
    "content_commitment": False,
    "key_encipherment": False,
    "data_encipherment": False,
    "key_agreement": False,
    "key_cert_sign": True,
    "crl_sign": True,
    "encipher_only": False,
    "decipher_only": False,
}


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


@dataclass
class OutsideCA:
    """A CA of its own: a key and a certificate (self-signed when ``issuer`` is None)."""

    name: str
    issuer: OutsideCA | None = None
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    certificate: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Utomstående Tillit AB"),
                x509.NameAttribute(NameOID.COMMON_NAME, self.name),
            ]
        )
        signer = self.issuer or self
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(signer.certificate.subject if self.issuer else subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(**_CA_USAGE), critical=True)
        )
        self.certificate = builder.sign(signer.key, hashes.SHA384())

    def issue(self, request: x509.CertificateSigningRequest, **options: Any) -> x509.Certificate:
        """Our CA's certificate for ``request`` (see :func:`issue_ca_certificate`)."""
        return issue_ca_certificate(request, self.key, self.certificate, **options)

    def write(self, path: Path) -> Path:
        path.write_bytes(pem(self.certificate))
        return path


def issue_ca_certificate(
    request: x509.CertificateSigningRequest,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate,
    *,
    ca: bool = True,
    key_cert_sign: bool = True,
    crl_sign: bool = True,
    public_key: PublicKeyTypes | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    crl_url: str | None = None,
) -> x509.Certificate:
    """The CA certificate an outside CA issues for ``request`` (or, to test refusals,
    not quite it); ``crl_url``: where its CRL is published, for long-term validation."""
    now = datetime.now(UTC)
    usage = {**_CA_USAGE, "key_cert_sign": key_cert_sign, "crl_sign": crl_sign}
    if not ca:
        usage.update(digital_signature=True, key_cert_sign=False, crl_sign=False)
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(issuer.subject)
        .public_key(public_key or request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(hours=1))
        .not_valid_after(not_after or now + timedelta(days=3 * 365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
    )
    if crl_url is not None:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder.sign(issuer_key, hashes.SHA384())
