"""The municipality's seal on archived trails: an organisation seal (e-sigill).

Every archived ``trail.json`` is signed by the municipality itself, not by a
person: a detached CMS SignedData over the file's exact bytes
(``trail.json.p7s`` in the bundle), with an RFC 3161 signature timestamp when a
TSA is configured. Whoever rewrites the trail, even recomputing its hash chain
and the bundle's checksums, cannot make a seal that verifies without the seal's
key. The signing and the validation are pyHanko's general-data CMS functions.

The seal's certificate lives in one file, ``trail-seal.pem`` (mode 0600) in the CA
folder, so that a copy of the CA folder (docs/deploy.md) carries it. Its key is
where the CA's is: in that file before the certificate, or, when the CA key is in
a PKCS#11 token (:mod:`justering.pades.hsm`), generated in the same token
(sensitive, not extractable) under a label derived from the certificate's serial
number, so that the file holds no private key at all. The certificate is issued by the signing CA
(:meth:`justering.pades.ca.SigningCA.certify`): CN "<organisation> –
signaturkedja", O the organisation, key usage digitalSignature and one extended
key usage, :data:`TRAIL_SEAL_EKU`, which validation requires, so that no signer
certificate of the same CA can seal a trail. It is renewed (a fresh key) when
it has less than :data:`SEAL_RENEWAL` left, or the CA changed.

Time: a seal with a timestamp is checked at the timestamp's time (the TSA's
certificate at the time of validation); without one, at the time of validation
while the seal's certificate is valid, and at the signing time it claims once it
has expired (the municipality's own clock), as signatures in the PDF are
(:mod:`justering.pades.validate`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier
from pyhanko.sign.general import extract_certificate_info
from pyhanko.sign.signers import Signer
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from justering.errors import ConfigError
from justering.model.calendar import local_minute
from justering.pades.ca import SigningCA
from justering.pades.certificates import (
    BACKDATE,
    SignerCredential,
    asn1_certificate,
    common_name,
    key_usage,
)
from justering.pades.checks import first_failed_check
from justering.pades.hsm import KEY_REFERENCE_FILE, TokenKey, TokenReference, generate_token_key
from justering.pades.names import organisation_name
from justering.pades.timestamps import (
    UNTRUSTED_TIMESTAMP,
    Timestamper,
    signature_timestamp_tokens,
    timestamp_time,
)

__all__ = [
    "SEAL_FILE",
    "SEAL_RENEWAL",
    "SEAL_VALIDITY",
    "TRAIL_SEAL_EKU",
    "SealVerification",
    "TrailSeal",
    "verify_seal",
]

TRAIL_SEAL_EKU = ObjectIdentifier("2.25.43453473923251583018126536477298252067")
"""The extended key usage "seals a justering signature trail". No standard key
purpose says that (RFC 9336's documentSigning would also admit a signer's
certificate), so it is a private one, under the UUID arc 2.25 (ITU-T X.667),
which needs no registration: UUID 20b0d5ac-62b0-4255-ac3f-d148cae5d923."""
SEAL_FILE = "trail-seal.pem"
"""The seal's certificate, after its private key unless that is in a token (PEM,
mode 0600), in the CA folder."""
_SEAL_KEY_LABEL = "justering-sigill-{serial:x}"
"""The label of a seal key in the CA's token: one per certificate."""
SEAL_VALIDITY = timedelta(days=5 * 365)
SEAL_RENEWAL = timedelta(days=30)
"""A seal whose certificate has less than this left is replaced by a new one."""
_NAME_SUFFIX = " – signaturkedja"
_KEY_USAGE = key_usage(digital_signature=True)
"""The seal's key signs data (a trail), nothing else."""


def _organisation(ca: SigningCA) -> str:
    names = ca.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if not names:
        raise ConfigError(f"the signing CA in {ca.directory} names no organisation (O)")
    return str(names[0].value)


@dataclass(frozen=True)
class TrailSeal:
    """The municipality's seal: its key and the certificate the CA issued for it."""

    credential: SignerCredential

    @property
    def certificate(self) -> x509.Certificate:
        return self.credential.certificate

    @classmethod
    def load_or_create(cls, ca: SigningCA, *, now: datetime | None = None) -> TrailSeal:
        """The seal kept in the CA's folder; a new one (created, or replacing the
        kept one) when there is none, it expires within :data:`SEAL_RENEWAL`, or
        another CA issued it. Several processes starting at once keep one seal."""
        now = now or datetime.now(UTC)
        path = ca.directory / SEAL_FILE
        if path.exists():
            kept = _read(path, ca)
            if _current(kept, ca, now):
                return kept
        fresh = _issue(ca, now)
        if not _write(path, fresh, replace=path.exists()):
            return _read(path, ca)  # another process made it first
        return fresh

    def seal(
        self, data: bytes, *, timestamper: Timestamper | None = None, now: datetime | None = None
    ) -> bytes:
        """A detached CMS signature (DER) over ``data``, with a signature timestamp
        from ``timestamper`` when given; a TSA that fails raises ``TimestampError``."""
        attributes = PdfCMSSignedAttributes(signing_time=now or datetime.now(UTC))
        signed = asyncio.run(
            _KeySigner(self.credential).async_sign_general_data(
                data,
                "sha256",
                detached=True,
                timestamper=timestamper,
                signed_attr_settings=attributes,
            )
        )
        return bytes(signed.dump())


class _KeySigner(Signer):  # type: ignore[misc]
    """pyHanko's signer over a ``cryptography`` EC key wherever it is: a key in
    memory, or a :class:`~justering.pades.hsm.TokenKey` that signs in its token
    (pyHanko's ``SimpleSigner`` needs the key's bytes, which a token never gives)."""

    def __init__(self, credential: SignerCredential) -> None:
        self._key = credential.key
        super().__init__(
            signing_cert=asn1_certificate(credential.certificate),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [asn1_certificate(cert) for cert in credential.chain]
            ),
        )

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        algorithm = get_pyca_cryptography_hash(digest_algorithm)
        return await asyncio.to_thread(self._key.sign, data, ec.ECDSA(algorithm))


def _ca_token(ca: SigningCA) -> TokenReference | None:
    """Where the CA key is when it is in a token (the seal's key goes there too)."""
    path = ca.directory / KEY_REFERENCE_FILE
    return TokenReference.read(path) if path.exists() else None


def _token_key(token: TokenReference, certificate: x509.Certificate) -> TokenKey:
    label = _SEAL_KEY_LABEL.format(serial=certificate.serial_number)
    public = certificate.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ConfigError("the trail seal's certificate is not for an EC key")
    return TokenKey(dataclasses.replace(token, key_label=label), public)


def _issue(ca: SigningCA, now: datetime) -> TrailSeal:
    """A fresh key and its certificate: the organisation's, for sealing trails only."""
    organisation = _organisation(ca)
    try:
        subject = organisation_name(organisation, suffix=_NAME_SUFFIX)
    except ValueError as error:
        raise ConfigError(f"trail seal certificate: {error}") from error
    serial = x509.random_serial_number()
    token = _ca_token(ca)
    key: ec.EllipticCurvePrivateKey
    if token is None:
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        label = _SEAL_KEY_LABEL.format(serial=serial)
        key = generate_token_key(dataclasses.replace(token, key_label=label))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + SEAL_VALIDITY, ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([TRAIL_SEAL_EKU]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    return TrailSeal(SignerCredential(key, ca.certify(builder), ca.issuing_chain))


def _current(seal: TrailSeal, ca: SigningCA, now: datetime) -> bool:
    certificate = seal.certificate
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc - SEAL_RENEWAL


def _read(path: Path, ca: SigningCA) -> TrailSeal:
    """The seal kept in ``path``: its certificate, and its key from the file or, when
    the file has none and the CA key is in a token, from that token."""
    try:
        data = path.read_bytes()
        certificate = x509.load_pem_x509_certificate(data)
        key = (
            serialization.load_pem_private_key(data, password=None)
            if b"PRIVATE KEY-----" in data
            else None
        )
    except OSError as error:
        raise ConfigError(f"the trail seal {path} is unreadable: {error.strerror}") from None
    except ValueError as error:
        raise ConfigError(
            f"the trail seal {path} is damaged ({error}); delete it and a new seal is made"
        ) from None
    token = _ca_token(ca)
    if key is None and token is not None:
        key = _token_key(token, certificate)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != (
        certificate.public_key()
    ):
        raise ConfigError(
            f"the trail seal {path}: its key is missing or does not match its certificate; "
            "delete it and a new seal is made"
        )
    return TrailSeal(SignerCredential(key, certificate, ca.issuing_chain))


def _write(path: Path, seal: TrailSeal, *, replace: bool) -> bool:
    """Write the seal's file whole (mode 0600) or not at all; False when, creating
    it, another process was first."""
    pem = seal.certificate.public_bytes(serialization.Encoding.PEM)
    if not isinstance(seal.credential.key, TokenKey):  # a key in a token stays there
        pem = (
            seal.credential.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + pem
        )
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".trail-seal-")
    except OSError as error:
        raise ConfigError(f"cannot write the trail seal {path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:  # mkstemp: mode 0600
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        Path(temporary).unlink(missing_ok=True)


@dataclass(frozen=True)
class SealVerification:
    """What a trail's seal says and whether it holds."""

    sealed_by: str
    """The seal certificate's CN ('' when the seal is unreadable)."""
    intact: bool
    """The sealed bytes are these: the file was not changed after it was sealed."""
    valid: bool
    """The cryptographic signature is correct."""
    trusted: bool
    """A trail seal's certificate, chaining to a trust root at ``validated_at``."""
    validated_at: datetime
    signed_at: datetime | None = None
    """The signing time the seal claims."""
    timestamped_at: datetime | None = None
    """The time of its RFC 3161 timestamp, None when it has none."""
    timestamp_trusted: bool = False
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


_SEAL_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature"},
    extd_key_usage={TRAIL_SEAL_EKU.dotted_string},
    explicit_extd_key_usage_required=True,
)


def verify_seal(
    data: bytes,
    seal: bytes,
    trust_roots: Sequence[x509.Certificate],
    *,
    what: str = "trail.json",
    now: datetime | None = None,
) -> SealVerification:
    """Check that ``seal`` is a trail seal over exactly ``data`` (named ``what`` in
    the problems) by a certificate chaining to ``trust_roots``. Bad input never
    raises: an unreadable seal is a problem in the result."""
    moment = now or datetime.now(UTC)
    try:
        info = cms.ContentInfo.load(seal)
        if info["content_type"].native != "signed_data":
            raise ValueError("not a CMS SignedData")
        signed_data = info["content"]
        [signer_info] = signed_data["signer_infos"]
        certificate = x509.load_der_x509_certificate(
            extract_certificate_info(signed_data).signer_cert.dump()
        )
        tokens = list(signature_timestamp_tokens(signer_info))
        stamped = timestamp_time(tokens[0]) if tokens else None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        problem = f"the seal of {what} is not a readable CMS signature ({error})"
        return SealVerification("", False, False, False, moment, problems=(problem,))
    roots = [asn1_certificate(root) for root in trust_roots]
    claimed = _claimed_time(signer_info)
    expired = certificate.not_valid_after_utc < moment
    at = stamped or (claimed if claimed is not None and expired else moment)
    try:
        status = asyncio.run(
            async_validate_detached_cms(
                data,
                signed_data,
                signer_validation_context=_context(roots, at),
                ts_validation_context=_context(roots, moment),
                key_usage_settings=_SEAL_USAGE,
            )
        )
    except (ValueError, TypeError, KeyError) as error:
        problem = f"the seal of {what} cannot be checked ({error})"
        name = common_name(certificate)
        return SealVerification(
            name, False, False, False, at, claimed, stamped, problems=(problem,)
        )
    tst = status.timestamp_validity
    result = SealVerification(
        sealed_by=common_name(certificate),
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        validated_at=at,
        signed_at=claimed,
        timestamped_at=stamped,
        timestamp_trusted=tst is not None and tst.intact and tst.valid and tst.trusted,
    )
    return _with_problems(result, certificate, what)


def _context(roots: Sequence[object], moment: datetime) -> ValidationContext:
    return ValidationContext(
        trust_roots=list(roots), allow_fetching=False, moment=moment, revocation_mode="soft-fail"
    )


def _claimed_time(signer_info: cms.SignerInfo) -> datetime | None:
    for attribute in signer_info["signed_attrs"] or ():
        if attribute["type"].native == "signing_time":
            moment: datetime = attribute["values"][0].native
            return moment
    return None


def _with_problems(
    result: SealVerification, certificate: x509.Certificate, what: str
) -> SealVerification:
    failed = first_failed_check(
        result,
        changed=f"{what} was changed after it was sealed",
        invalid=f"the seal of {what}: its cryptographic signature is invalid",
        untrusted=lambda: _untrusted(certificate, result.validated_at),
    )
    problems = [] if failed is None else [failed]
    if result.timestamped_at is not None and not result.timestamp_trusted:
        problems.append(f"the seal of {what}: {UNTRUSTED_TIMESTAMP}")
    return replace(result, problems=tuple(problems))


def _untrusted(certificate: x509.Certificate, moment: datetime) -> str:
    name = common_name(certificate)
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if TRAIL_SEAL_EKU not in usages:
        return f"the seal was made with a certificate ({name!r}) that is not a trail seal's"
    issuer = certificate.issuer.rfc4514_string()
    return (
        f"the seal's certificate ({name!r}, issued by {issuer}) does not chain to a "
        f"trust root valid at {local_minute(moment, zone=True)}"
    )
