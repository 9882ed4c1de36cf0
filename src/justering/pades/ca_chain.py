"""The signing CA under an outside root: its certificate signing request, and the
checks an issued intermediate must pass before it is installed.

The municipality's issuing CA (a commercial or sector CA that Adobe's or the EU's
trust lists cover) signs our request and returns our CA certificate, issued by
it, with the certificates above it. :func:`check_issued_chain` accepts it only
when every point holds, and names the first that does not (:class:`ChainProblem`):
the certificate is for the CA's own key, it is a CA certificate that may sign
certificates and CRLs, it is valid now, and the chain verifies (signatures,
validity, CA constraints, key usage, by pyhanko-certvalidator) up to a
self-signed root given in the file or on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from justering.errors import ConfigError
from justering.pades.ca import SigningCA
from justering.pades.ca_files import is_self_signed
from justering.pades.certificates import asn1_certificate

__all__ = [
    "ChainError",
    "ChainProblem",
    "IssuedChain",
    "check_issued_chain",
    "install_issued_chain",
]


class ChainProblem(StrEnum):
    """Why a certificate chain was not installed."""

    UNREADABLE = "unreadable"
    OTHER_KEY = "other_key"
    NOT_A_CA = "not_a_ca"
    MISSING_KEY_USAGE = "missing_key_usage"
    NOT_VALID_NOW = "not_valid_now"
    NO_ROOT = "no_root"
    DOES_NOT_VERIFY = "does_not_verify"


class ChainError(ConfigError):
    """A certificate chain refused for installation; ``problem`` says why, the
    message names the certificate and what is wrong with it."""

    def __init__(self, problem: ChainProblem, message: str) -> None:
        self.problem = problem
        super().__init__(f"{message}; the CA was not changed")


@dataclass(frozen=True)
class IssuedChain:
    """The CA's issued certificate and the certificates above it, ending with the root."""

    certificate: x509.Certificate
    above: tuple[x509.Certificate, ...]


def _describe(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(empty subject)"


def install_issued_chain(
    ca: SigningCA,
    certificates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate] = (),
    *,
    now: datetime | None = None,
) -> SigningCA:
    """Check the chain (:func:`check_issued_chain`) and install it in ``ca``'s folder:
    from then on the CA issues under its new certificate. Returns the CA as installed."""
    moment = now or datetime.now(UTC)
    chain = check_issued_chain(ca.certificate.public_key(), certificates, roots, moment)
    return ca.install(chain.certificate, chain.above)


def check_issued_chain(
    public_key: PublicKeyTypes,
    certificates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: datetime,
) -> IssuedChain:
    """The issued chain, ordered up to its root, if it may be installed for a CA
    whose key is ``public_key``; else :class:`ChainError`.

    ``certificates``: the issued CA certificate first, then intermediates, and
    optionally the root; ``roots``: a root given on its own (``--root``).
    """
    if not certificates:
        raise ChainError(ChainProblem.UNREADABLE, "the file holds no certificate")
    issued = certificates[0]
    name = _describe(issued)
    if issued.public_key() != public_key:
        raise ChainError(
            ChainProblem.OTHER_KEY,
            f"the first certificate ({name}) is for another key than the CA's: "
            "it was not issued for this CA's signing request",
        )
    try:
        constraints = issued.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ChainError(
            ChainProblem.NOT_A_CA,
            f"the certificate {name} is not a CA certificate (no basic constraint CA:true): "
            "the CA issues certificates and needs one that may",
        )
    missing = _missing_usages(issued)
    if missing:
        raise ChainError(
            ChainProblem.MISSING_KEY_USAGE,
            f"the certificate {name} lacks the key usage {' and '.join(missing)}: "
            "the CA signs certificates (keyCertSign) and the CRLs that long-term "
            "validation embeds (cRLSign)",
        )
    if not issued.not_valid_before_utc <= now <= issued.not_valid_after_utc:
        when = (
            f"expired on {issued.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            if now > issued.not_valid_after_utc
            else f"is not valid until {issued.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
        raise ChainError(ChainProblem.NOT_VALID_NOW, f"the certificate {name} {when}")
    for root in roots:
        if not is_self_signed(root):
            raise ChainError(
                ChainProblem.NO_ROOT,
                f"the root given ({_describe(root)}) is not a self-signed certificate",
            )
    others = [*certificates[1:], *roots]
    anchors = [cert for cert in others if is_self_signed(cert)]
    if not anchors:
        top = _top(issued, others)
        raise ChainError(
            ChainProblem.NO_ROOT,
            f"the chain does not reach a root: it ends at {_describe(top)}, issued by "
            f"{top.issuer.rfc4514_string()}, whose self-signed certificate is neither in "
            "the file nor given with --root",
        )
    return _verified(issued, others, anchors, now)


def _missing_usages(certificate: x509.Certificate) -> list[str]:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return ["keyCertSign", "cRLSign"]
    return [
        name
        for name, present in (("keyCertSign", usage.key_cert_sign), ("cRLSign", usage.crl_sign))
        if not present
    ]


def _top(issued: x509.Certificate, others: Sequence[x509.Certificate]) -> x509.Certificate:
    """The last certificate reached by following issuers from ``issued`` through ``others``."""
    current, seen = issued, {issued.fingerprint(hashes.SHA256())}
    while True:
        above = next(
            (
                cert
                for cert in others
                if cert.subject == current.issuer and cert.fingerprint(hashes.SHA256()) not in seen
            ),
            None,
        )
        if above is None:
            return current
        seen.add(above.fingerprint(hashes.SHA256()))
        current = above


def _verified(
    issued: x509.Certificate,
    others: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: datetime,
) -> IssuedChain:
    context = ValidationContext(
        trust_roots=[asn1_certificate(cert) for cert in anchors],
        other_certs=[asn1_certificate(cert) for cert in others],
        allow_fetching=False,
        revocation_mode="soft-fail",
        moment=now,
    )
    validator = CertificateValidator(asn1_certificate(issued), validation_context=context)
    try:
        path = asyncio.run(validator.async_validate_usage({"key_cert_sign", "crl_sign"}))  # type: ignore[no-untyped-call]
    except (PathBuildingError, PathValidationError) as error:
        raise ChainError(
            ChainProblem.DOES_NOT_VERIFY,
            f"the chain of {_describe(issued)} does not verify up to its root: {error}",
        ) from None
    above = [
        x509.load_der_x509_certificate(cert.dump())
        for cert in reversed(list(path))  # root first in a pyHanko path
    ][1:]
    return IssuedChain(issued, tuple(above))
