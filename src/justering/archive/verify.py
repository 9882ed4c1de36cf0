"""``justering verify``: check certified extracts and justered protocols, alone or
as archived bundles.

A bare PDF gets its signatures checked. A bundle (the PDF, its trail and the
checksum manifest, as the archive stores it) also gets its checksums, the
trail's hash chain, the agreement between the trail and the PDF, and the
municipality's seal on the trail (``trail.json.p7s``) checked; an extract's bundle
also that its trail names the justered protocol it is a copy of (and, when that
protocol's bundle is in the same archive, that it holds that very document).
Nothing here trusts the bundle about whom to trust: trust roots come from the
caller (the home's CA, or ``--trust``).

A bundle without a seal (archived before trails were sealed, or with its seal
removed) fails the ``trail seal`` check as an unsealed trail ("oförseglat
händelseförlopp"), unless the caller accepts unsealed trails
(``--accept-unsealed``): its trail could have been rewritten, chain and
checksums included, and nothing would tell.

Check names are stable English keys (``--json``); what each found is said in
Swedish, for the archivist who reads it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from cryptography import x509
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from justering.archive.bundle import (
    EXTRACT_PDF,
    EXTRACT_TRAIL,
    EXTRACT_TRAIL_SEAL,
    MANIFEST_NAME,
    PROTOCOL_PDF,
    read_bundle,
)
from justering.archive.bundle_checks import (
    TRAIL_SEAL_CHECK,
    Check,
    justered_protocol_check,
    seal_check,
    trail_checks,
)
from justering.archive.local import LocalArchive
from justering.archive.objects import ArchiveStore
from justering.archive.s3 import S3Archive, parse_s3_uri
from justering.config import Settings
from justering.errors import ArchiveError, ConfigError, JusteringError, TrailError
from justering.model.assurance import Assurance
from justering.model.roles import JUSTERING_ROLES, SIGNING_ORDER, Role
from justering.model.trail import EventKind, chain_problems, trail_from_json
from justering.pades.assurance import CertificateAssurance
from justering.pades.ca import CA_CERT_FILE, CA_RETIRED_FILE
from justering.pades.validate import validate_extract
from justering.pades.validation_results import ExtractValidation

__all__ = [
    "TRAIL_SEAL_CHECK",
    "Check",
    "Verification",
    "home_trust_paths",
    "load_trust_roots",
    "require_assurance",
    "verify_bundle",
    "verify_pdf",
    "verify_targets",
]


@dataclass(frozen=True)
class Verification:
    """The outcome for one target (one extract, or one protocol)."""

    target: str
    checks: tuple[Check, ...]
    sha256: str | None = None
    signers: tuple[tuple[str, str], ...] = ()
    """(name, role) of each signature, in order."""
    kind: str = "extract"
    """``extract`` or ``protocol``."""
    assurances: tuple[CertificateAssurance, ...] = ()
    """How each signer was identified, as their certificate says (same order)."""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        assurances = self.assurances or (CertificateAssurance(None),) * len(self.signers)
        return {
            "target": self.target,
            "kind": self.kind,
            "valid": self.ok,
            "sha256": self.sha256,
            "signers": [
                {"name": n, "role": r, **assurance.to_json()}
                for (n, r), assurance in zip(self.signers, assurances, strict=True)
            ],
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def home_trust_paths(settings: Settings) -> list[Path]:
    """The trust roots a home provides: its signing CA (with the chain above it and
    its retired certificates, for extracts signed before an outside CA's certificate
    was installed) and, next to it, the TSA's root when there is one. None without
    the CA (the caller must give ``--trust``)."""
    ca_file = settings.ca_dir / CA_CERT_FILE
    if not ca_file.exists():
        return []
    retired = settings.ca_dir / CA_RETIRED_FILE
    tsa_file = settings.tsa_ca_file
    return [
        ca_file,
        *([retired] if retired.exists() else []),
        *([tsa_file] if tsa_file is not None and tsa_file.exists() else []),
    ]


def load_trust_roots(paths: Sequence[Path]) -> list[x509.Certificate]:
    roots: list[x509.Certificate] = []
    for path in paths:
        try:
            roots.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except OSError as error:
            raise ConfigError(f"trust root {path}: {error.strerror}") from None
        except ValueError:
            raise ConfigError(f"trust root {path}: not a PEM certificate") from None
    if not roots:
        raise ConfigError("no trust root: give --trust CA.pem or create the CA (justering ca init)")
    return roots


def _signature_checks(validation: ExtractValidation) -> list[Check]:
    return [
        Check(
            "signatures",
            validation.ok,
            "; ".join(validation.problems)
            or f"{len(validation.signatures)} giltiga underskrifter i rätt ordning",
        )
    ]


def _signers(validation: ExtractValidation) -> tuple[tuple[str, str], ...]:
    return tuple((s.signer_name, s.role.value if s.role else "?") for s in validation.signatures)


def _assurances(validation: ExtractValidation) -> tuple[CertificateAssurance, ...]:
    return tuple(signature.assurance for signature in validation.signatures)


def require_assurance(result: Verification, minimum: Assurance) -> Verification:
    """``result`` with one more check: every signer was identified at ``minimum``
    or higher, as their certificate says (``verify --require-assurance``)."""
    below = [
        f"{name} ({assurance.assurance.value if assurance.assurance else 'unknown'})"
        for (name, _role), assurance in zip(result.signers, result.assurances, strict=True)
        if not assurance.meets(minimum)
    ]
    if not result.assurances:
        check = Check("assurance", False, "no signature to say how its signer was identified")
    elif below:
        check = Check("assurance", False, f"below {minimum.value}: {', '.join(below)}")
    else:
        check = Check("assurance", True, f"every signer identified at {minimum.value} or higher")
    return replace(result, checks=(*result.checks, check))


def verify_pdf(target: str, pdf: bytes, trust_roots: Sequence[x509.Certificate]) -> Verification:
    """Signatures only: a PDF met outside its bundle (a protocol when its title says
    so and no certifier signed it)."""
    validation = validate_extract(pdf, trust_roots)
    kind = "extract"
    if not any(s.role is Role.CERTIFIER for s in validation.signatures) and _titled_protocol(pdf):
        validation, kind = validate_extract(pdf, trust_roots, roles=JUSTERING_ROLES), "protocol"
    return Verification(
        target,
        tuple(_signature_checks(validation)),
        hashlib.sha256(pdf).hexdigest(),
        _signers(validation),
        kind,
        _assurances(validation),
    )


def _titled_protocol(pdf: bytes) -> bool:
    """Whether the PDF's title says it is a protocol (not an extract): only which
    signatures to expect depends on it, never whether they hold."""
    try:
        title = PdfReader(io.BytesIO(pdf)).metadata.title or ""  # type: ignore[union-attr]
    except (PdfReadError, ValueError, AttributeError):
        return False
    return title.startswith("Protokoll ")


def verify_bundle(
    target: str,
    store: ArchiveStore,
    prefix: str,
    trust_roots: Sequence[x509.Certificate],
    *,
    accept_unsealed: bool = False,
) -> Verification:
    """Checksums, signatures, the trail's chain, its agreement with the PDF and its
    seal (an unsealed trail fails unless ``accept_unsealed``); for an extract, the
    justered protocol its trail names."""
    try:
        bundle = read_bundle(store, prefix)
    except ArchiveError as error:
        return Verification(target, (Check("checksums", False, error.diagnostics()),))
    checks = [Check("checksums", True, f"alla {len(bundle.files)} filer stämmer med manifest.json")]
    kind = "protocol" if PROTOCOL_PDF in bundle.files else "extract"
    pdf = bundle.files.get(PROTOCOL_PDF if kind == "protocol" else EXTRACT_PDF)
    trail_bytes = bundle.files.get(EXTRACT_TRAIL)
    both = EXTRACT_PDF in bundle.files and PROTOCOL_PDF in bundle.files
    if pdf is None or trail_bytes is None or both:
        checks.append(
            Check(
                "bundle",
                False,
                f"paketet saknar {EXTRACT_TRAIL}, eller har inte precis en av {EXTRACT_PDF} "
                f"och {PROTOCOL_PDF}",
            )
        )
        return Verification(target, tuple(checks), kind=kind)
    try:
        events = trail_from_json(trail_bytes)
    except TrailError as error:
        events = ()
        checks.append(Check("trail chain", False, error.diagnostics()))
    adjusters = len(
        {
            e.actor_email
            for e in events
            if e.role == Role.ADJUSTER.value and e.kind is EventKind.SIGNED
        }
    )
    roles = JUSTERING_ROLES if kind == "protocol" else SIGNING_ORDER
    validation = validate_extract(
        pdf, trust_roots, expected_adjusters=adjusters or None, roles=roles
    )
    checks.extend(_signature_checks(validation))
    if events:
        checks.extend(trail_checks(events, pdf, validation, kind))
        if kind == "extract" and not chain_problems(events):
            checks.append(justered_protocol_check(events, store, prefix))
    seal = bundle.files.get(EXTRACT_TRAIL_SEAL)
    checks.append(seal_check(trail_bytes, seal, trust_roots, accept_unsealed=accept_unsealed))
    return Verification(
        target,
        tuple(checks),
        hashlib.sha256(pdf).hexdigest(),
        _signers(validation),
        kind,
        _assurances(validation),
    )


def _local_targets(path: Path) -> Iterator[tuple[str, Path | None, Path | None]]:
    """(target, bundle directory or None, bare PDF or None) for a local path."""
    path = path.resolve()
    if path.is_file():
        in_bundle = path.name in (EXTRACT_PDF, PROTOCOL_PDF)
        if path.parent.joinpath(MANIFEST_NAME).is_file() and in_bundle:
            yield str(path), path.parent, None
        else:
            yield str(path), None, path
    elif path.is_dir():
        if path.joinpath(MANIFEST_NAME).is_file():
            yield str(path), path, None
        else:
            bundles = sorted(path.rglob(MANIFEST_NAME))
            if not bundles:
                raise ConfigError(f"{path}: no archived extract there")
            for manifest in bundles:
                yield str(manifest.parent), manifest.parent, None
    else:
        raise ConfigError(f"{path}: no such file or directory")


def _s3_targets(uri: str, client: Any) -> Iterator[tuple[str, S3Archive, str]]:
    bucket, key = parse_s3_uri(uri)
    store = S3Archive(bucket, "", client)
    if key.endswith(".pdf") or key.endswith("/" + MANIFEST_NAME):
        prefix = key.rpartition("/")[0]
        yield f"s3://{bucket}/{prefix}", store, prefix
        return
    if key and not key.endswith("/"):
        key += "/"  # a folder: s3://bucket/ark must not reach into arkiv/
    found = False
    for found_key in store.list(key):
        if found_key.endswith("/" + MANIFEST_NAME):
            found = True
            prefix = found_key.rpartition("/")[0]
            yield f"s3://{bucket}/{prefix}", store, prefix
    if not found:
        raise ConfigError(f"{uri}: no archived extract there")


def _local_path(target: str) -> Path:
    if not target.startswith("file:"):
        return Path(target)
    parts = urlsplit(target)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"{target}: only local file:// URIs can be read")
    return Path(url2pathname(parts.path))


def verify_targets(
    targets: Sequence[str],
    trust_roots: Sequence[x509.Certificate],
    *,
    accept_unsealed: bool = False,
) -> Iterator[Verification]:
    """Verify each target: a PDF path, a bundle directory, a folder of bundles,
    a ``file://`` URI or an ``s3://bucket/key-or-prefix``. Raises ``ConfigError``
    (could not run) for a target that does not exist or cannot be reached.
    ``accept_unsealed``: a bundle whose trail has no seal passes that check."""
    client = None
    for target in targets:
        if target.startswith("s3://"):
            if client is None:
                from justering.archive.s3 import S3ClientSettings

                client = S3ClientSettings().client()
            try:
                for name, store, prefix in _s3_targets(target, client):
                    yield verify_bundle(
                        name, store, prefix, trust_roots, accept_unsealed=accept_unsealed
                    )
            except JusteringError:
                raise
            except Exception as error:  # botocore's many connection errors
                raise ConfigError(f"{target}: cannot reach the object store ({error})") from None
            continue
        path = _local_path(target)
        for name, bundle_dir, bare in _local_targets(path):
            if bundle_dir is not None:
                yield verify_bundle(
                    name,
                    LocalArchive(bundle_dir.parent),
                    bundle_dir.name,
                    trust_roots,
                    accept_unsealed=accept_unsealed,
                )
            elif bare is not None:
                yield verify_pdf(name, bare.read_bytes(), trust_roots)
