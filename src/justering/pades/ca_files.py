"""The CA folder's certificate files: PEM lists read and checked, written whole or
not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from justering.errors import ConfigError

__all__ = [
    "check_chain",
    "is_self_signed",
    "pem",
    "read_certificates",
    "replace_file",
    "unique",
]


def is_self_signed(certificate: x509.Certificate) -> bool:
    """The certificate names itself as issuer and its signature verifies with its own key."""
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def read_certificates(path: Path) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ConfigError(f"signing CA: {path} is unreadable: {error}") from error
    return certificates


def check_chain(
    path: Path, certificate: x509.Certificate, chain: Sequence[x509.Certificate]
) -> None:
    """Each certificate in ``path`` is issued by the next, and the last is a root."""
    for lower, upper in zip((certificate, *chain), chain, strict=False):
        try:
            lower.verify_directly_issued_by(upper)
        except (ValueError, TypeError, InvalidSignature):
            raise ConfigError(
                f"signing CA: the chain in {path} is broken: {upper.subject.rfc4514_string()} "
                f"did not issue {lower.subject.rfc4514_string()}"
            ) from None
    if chain and not is_self_signed(chain[-1]):
        raise ConfigError(f"signing CA: the chain in {path} does not end with a root")


def unique(certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    found: dict[bytes, x509.Certificate] = {}
    for certificate in certificates:
        found.setdefault(certificate.fingerprint(hashes.SHA256()), certificate)
    return list(found.values())


def pem(certificates: Sequence[x509.Certificate]) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def replace_file(path: Path, content: bytes) -> None:
    """Write ``path`` whole or not at all (a new file renamed over the old one)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # the home is private (justering.home)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
