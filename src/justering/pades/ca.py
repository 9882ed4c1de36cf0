"""The municipality's signing CA, in the Sweden Connect "signature service" model.

At each signature the CA issues a certificate for a fresh key that names the
signer and their role; the key signs one PDF and is then dropped. The CA itself
is a key and a certificate, in one directory (``Settings.ca_dir``):

- ``ca-cert.pem``: the CA certificate, self-signed as made by ``create``, or
  issued by an outside CA (``justering.pades.ca_chain``) and then followed by
  the certificates above it up to that CA's root;
- ``ca-key.pem`` (file mode 0600), or ``ca-token.json`` when the key lives in a
  PKCS#11 token (``justering.pades.hsm``) and no private key is on disk;
- ``ca-retired.pem``: the certificates the key had before an outside CA's was
  installed, so that extracts signed under them still verify.

Archivists and validators trust the CA's root (``export_pem``, ``trust_anchors``).

Keys are EC P-256: a key pair costs well under a millisecond, and pyHanko,
poppler/NSS (``pdfsig``) and Adobe Reader all verify ECDSA signatures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from justering.errors import ConfigError, SigningError
from justering.model.assurance import LINK_ONLY, SignerIdentity
from justering.model.roles import Signer
from justering.pades.ca_files import (
    check_chain,
    is_self_signed,
    pem,
    read_certificates,
    replace_file,
    unique,
)
from justering.pades.certificates import (
    BACKDATE,
    SignerCredential,
    fingerprint,
    key_usage,
    signer_certificate,
)
from justering.pades.hsm import KEY_REFERENCE_FILE, TokenKey, TokenReference, generate_token_key
from justering.pades.names import organisation_name, with_organisation_identifier

CA_KEY_FILE = "ca-key.pem"
CA_CERT_FILE = "ca-cert.pem"
CA_RETIRED_FILE = "ca-retired.pem"

DEFAULT_CERTIFICATE_VALIDITY = timedelta(days=365)
"""How long a signer certificate stays valid; see :meth:`SigningCA.issue`."""

CA_VALIDITY = timedelta(days=20 * 365)
CRL_VALIDITY = timedelta(days=1)
"""How long a CRL of the signing CA says it is current (its next update)."""


_CA_KEY_USAGE = key_usage(key_cert_sign=True, crl_sign=True)
"""A CA's key signs certificates and CRLs, nothing else."""


class SigningCA:
    """The signing CA kept in ``directory`` (see the module docstring for its files)."""

    def __init__(
        self,
        directory: Path,
        key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        retired: Sequence[x509.Certificate] = (),
    ) -> None:
        self.directory = directory
        self._key = key
        self.certificate = certificate
        self.chain = tuple(chain)
        """The certificates above ``certificate``, up to the root; empty when self-signed."""
        self.retired = tuple(retired)
        """The CA's earlier certificates (and their chains)."""

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        organisation: str,
        common_name: str | None = None,
        now: datetime | None = None,
        token: TokenReference | None = None,
    ) -> SigningCA:
        """Make a new CA in ``directory`` (created if missing); refuse to overwrite one.

        With ``token`` the key is generated in that PKCS#11 token and the folder
        keeps only the reference to it; else the key is a file (mode 0600).
        """
        directory = Path(directory)
        key_path = directory / (KEY_REFERENCE_FILE if token else CA_KEY_FILE)
        cert_path = directory / CA_CERT_FILE
        for path in (directory / CA_KEY_FILE, directory / KEY_REFERENCE_FILE, cert_path):
            if path.exists():
                raise ConfigError(
                    f"a signing CA already exists in {directory} ({path.name}); "
                    "refusing to overwrite it"
                )
        now = now or datetime.now(UTC)
        try:
            name = organisation_name(
                organisation, suffix=" signeringstjänst CA", common_name=common_name or None
            )
        except ValueError as error:
            raise ConfigError(f"signing CA name: {error}") from error
        key: ec.EllipticCurvePrivateKey
        if token is None:
            key = ec.generate_private_key(ec.SECP256R1())
            key_file = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        else:
            key = generate_token_key(token)
            key_file = token.to_json().encode()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as error:
            raise ConfigError(f"a signing CA key already exists at {key_path}") from error
        with os.fdopen(fd, "wb") as handle:
            handle.write(key_file)
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
        """Load the CA kept in ``directory``. A key in a token is not touched until
        it signs: the PIN is needed then, not here."""
        directory = Path(directory)
        cert_path = directory / CA_CERT_FILE
        key_path, token_path = directory / CA_KEY_FILE, directory / KEY_REFERENCE_FILE
        if not cert_path.is_file():
            raise ConfigError(
                f"no signing CA in {directory}: {cert_path.name} is missing "
                "(create one with `justering ca init`)"
            )
        if key_path.exists() and token_path.exists():
            raise ConfigError(
                f"signing CA in {directory}: both {key_path.name} and {token_path.name} are "
                "there; the key is in one place only"
            )
        certificate, *chain = read_certificates(cert_path)
        retired_path = directory / CA_RETIRED_FILE
        retired = read_certificates(retired_path) if retired_path.exists() else []
        public = certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ConfigError(f"signing CA certificate {cert_path} is not for an EC key")
        check_chain(cert_path, certificate, chain)
        key: ec.EllipticCurvePrivateKey
        if token_path.exists():
            key = TokenKey(TokenReference.read(token_path), public)
        elif key_path.is_file():
            try:
                loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            except ValueError as error:
                raise ConfigError(f"signing CA key {key_path} is unreadable: {error}") from error
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ConfigError(f"signing CA key {key_path} is not an EC key")
            if loaded.public_key() != public:
                raise ConfigError(f"signing CA in {directory}: key and certificate do not match")
            key = loaded
        else:
            raise ConfigError(
                f"no signing CA in {directory}: {key_path.name} is missing "
                f"(and there is no {token_path.name} naming a key in a token)"
            )
        return cls(directory, key, certificate, chain, retired)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the CA certificate, lowercase hex."""
        return fingerprint(self.certificate)

    @property
    def key_location(self) -> str:
        """Where the CA key is, for people: a file, or a key in a PKCS#11 token."""
        if isinstance(self._key, TokenKey):
            return f"the {self._key.reference.describe()}"
        return f"the file {self.directory / CA_KEY_FILE}"

    @property
    def trust_anchors(self) -> tuple[x509.Certificate, ...]:
        """The roots a validator of this CA's signatures trusts: the root of its
        chain, and the roots of its retired certificates (older signatures)."""
        found: dict[bytes, x509.Certificate] = {}
        for certificate in (self.certificate, *self.chain, *self.retired):
            if is_self_signed(certificate):
                found.setdefault(certificate.fingerprint(hashes.SHA256()), certificate)
        return tuple(found.values())

    def export_pem(self) -> str:
        """The CA certificate and the chain above it (up to the root) as PEM, for
        trust stores (NSS, Adobe, ``justering verify``) and archive bundles."""
        return "".join(
            cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for cert in (self.certificate, *self.chain)
        )

    def signing_request(
        self, *, organisation_identifier: str | None = None
    ) -> x509.CertificateSigningRequest:
        """A PKCS#10 request for an outside CA to issue this CA's certificate: the
        CA's subject, CA:true with no CA below it, the key usages keyCertSign and
        cRLSign; signed by the CA key wherever it is.

        ``organisation_identifier`` (ETSI EN 319 412-1, e.g. ``NTRSE-2120001234``
        for a Swedish organisationsnummer) goes in the subject after O. It also
        names the issued CA apart from the self-signed certificate: under the very
        same name and key, a validator that trusts the old certificate would trust
        the new signatures too.
        """
        subject = self.certificate.subject
        if organisation_identifier is not None:
            subject = with_organisation_identifier(subject, organisation_identifier)
        return (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .sign(self._key, hashes.SHA256())
        )

    def install(
        self, certificate: x509.Certificate, above: Sequence[x509.Certificate]
    ) -> SigningCA:
        """Make ``certificate`` (for this CA's key, issued under ``above``, which ends
        with the root) the CA's certificate; the current one is retired. Check the
        chain first: ``justering.pades.ca_chain.install_issued_chain`` does."""
        if certificate.public_key() != self.certificate.public_key():
            raise ConfigError("the certificate to install is not for the CA's key")
        retired = unique([*self.retired, self.certificate, *self.chain])
        replace_file(self.directory / CA_RETIRED_FILE, pem(retired))
        replace_file(self.directory / CA_CERT_FILE, pem([certificate, *above]))
        return SigningCA(self.directory, self._key, certificate, above, retired)

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
        identity: SignerIdentity = LINK_ONLY,
    ) -> SignerCredential:
        """A fresh key and a certificate naming ``signer`` and their role, as
        ``justering.pades.certificates.signer_certificate`` describes it.

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
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self.certify(
            signer_certificate(
                signer,
                key.public_key(),
                organisation=organisation,
                identity=identity,
                now=now,
                not_after=not_after,
            )
        )
        return SignerCredential(key=key, certificate=certificate, chain=self.issuing_chain)

    @property
    def issuing_chain(self) -> tuple[x509.Certificate, ...]:
        """What a certificate this CA issues is sent with: the CA's certificate and the
        chain above it up to, not including, an outside root (the validator has that)."""
        return (self.certificate, *(cert for cert in self.chain if not is_self_signed(cert)))

    def certify(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Issue the certificate ``builder`` describes (subject, public key, validity,
        what it is for) under this CA: its name as issuer, its key identifier, signed
        by its key wherever that is. For profiles defined elsewhere, such as the trail
        seal's (``justering.pades.seal``); never for a CA."""
        certificate = (
            builder.issuer_name(self.certificate.subject)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        try:
            is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = True
        if is_ca:
            raise SigningError("the signing CA certifies no CA: say BasicConstraints ca=False")
        return certificate


__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CA_RETIRED_FILE",
    "DEFAULT_CERTIFICATE_VALIDITY",
    "SigningCA",
]
