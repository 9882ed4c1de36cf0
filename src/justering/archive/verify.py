"""``justering verify``: check certified extracts and justered protocols, alone or
as archived bundles.

A bare PDF gets its signatures checked. A bundle (the PDF, its trail and the
checksum manifest, as the archive stores it) also gets its checksums, the
trail's hash chain, and the agreement between the trail and the PDF checked; an
extract's bundle also that its trail names the justered protocol it is a copy of
(and, when that protocol's bundle is in the same archive, that it holds that very
document). Nothing here trusts the bundle about whom to trust: trust roots come
from the caller (the home's CA, or ``--trust``).

Check names are stable English keys (``--json``); what each found is said in
Swedish, for the archivist who reads it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
    MANIFEST_NAME,
    PROTOCOL_PDF,
    read_bundle,
)
from justering.archive.local import LocalArchive
from justering.archive.objects import ArchiveStore
from justering.archive.s3 import S3Archive, parse_s3_uri
from justering.config import Settings
from justering.errors import ArchiveError, ConfigError, JusteringError, TrailError
from justering.model.roles import JUSTERING_ROLES, SIGNING_ORDER, Role
from justering.model.trail import EventKind, TrailEvent, chain_problems, trail_from_json
from justering.pades.ca import CA_CERT_FILE, CA_RETIRED_FILE
from justering.pades.validate import ExtractValidation, validate_extract

__all__ = [
    "Check",
    "Verification",
    "home_trust_paths",
    "load_trust_roots",
    "verify_bundle",
    "verify_pdf",
    "verify_targets",
]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


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

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "valid": self.ok,
            "sha256": self.sha256,
            "signers": [{"name": n, "role": r} for n, r in self.signers],
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
    )


def _titled_protocol(pdf: bytes) -> bool:
    """Whether the PDF's title says it is a protocol (not an extract): only which
    signatures to expect depends on it, never whether they hold."""
    try:
        title = PdfReader(io.BytesIO(pdf)).metadata.title or ""  # type: ignore[union-attr]
    except (PdfReadError, ValueError, AttributeError):
        return False
    return title.startswith("Protokoll ")


_COMPLETED_BY = {"extract": EventKind.CERTIFIED, "protocol": EventKind.ANNOUNCED}
"""The event that completes a document before it is archived."""
_AFTER_COMPLETION = {
    "extract": frozenset({EventKind.CERTIFIED, EventKind.TIMESTAMPED}),
    "protocol": frozenset({EventKind.ANNOUNCED, EventKind.NOTIFIED, EventKind.TIMESTAMPED}),
}
"""What may follow it in an archived trail: the long-term validation data, and for a
protocol the notice to the secretary."""


def _trail_checks(
    events: Sequence[TrailEvent], pdf: bytes, validation: ExtractValidation, kind: str
) -> list[Check]:
    checks = []
    problems = chain_problems(events)
    checks.append(
        Check(
            "trail chain",
            not problems,
            "; ".join(problems)
            or f"{len(events)} händelser i arkivexemplarets trail.json, obruten kedja (i "
            "registret följer händelsen arkiverat, som skrevs när paketet var sparat)",
        )
    )
    if problems:
        return checks
    digest = hashlib.sha256(pdf).hexdigest()
    final = events[-1]
    completion = [
        i
        for i, e in enumerate(events)
        if e.kind is _COMPLETED_BY[kind] and e.version == final.version
    ]
    matches = (
        final.document_sha256 == digest
        and bool(completion)
        and all(e.kind in _AFTER_COMPLETION[kind] for e in events[completion[-1] :])
    )
    checks.append(
        Check(
            "trail matches PDF",
            matches,
            f"händelseförloppet slutar med just den här filen ({final.kind.swedish})"
            if matches
            else f"händelseförloppets sista händelse ({final.kind.swedish}) gäller dokumentet "
            f"{final.document_sha256}, men PDF-filen är {digest}, eller så saknas "
            f"händelsen {_COMPLETED_BY[kind].swedish}",
        )
    )
    signed = [
        e
        for e in events
        if e.kind in (EventKind.SIGNED, EventKind.CERTIFIED) and e.version == final.version
    ]
    in_trail = [(e.certificate_sha256, e.actor, e.role) for e in signed]
    in_pdf = [
        (s.certificate_fingerprint, s.signer_name, s.role.value if s.role else None)
        for s in validation.signatures
    ]
    checks.append(
        Check(
            "trail matches signatures",
            in_trail == in_pdf,
            f"{len(in_pdf)} underskrifter, var och en med undertecknare och roll i "
            "händelseförloppet"
            if in_trail == in_pdf
            else "underskrifterna i PDF-filen (certifikat, undertecknare, roll) skiljer sig "
            "från dem som händelseförloppet har",
        )
    )
    return checks


def _justered_protocol_check(
    events: Sequence[TrailEvent], store: ArchiveStore, prefix: str
) -> Check:
    """An extract's trail names the justered protocol it is a copy of (after the
    justering signatures, before the certification); when that protocol's bundle is in
    the same archive, its trail must hold that very document."""
    final = events[-1].version
    named = [e for e in events if e.kind is EventKind.JUSTERED and e.version == final]
    if not named:
        return Check(
            "justered protocol",
            False,
            "händelseförloppet nämner inget justerat protokoll: utdraget bestyrktes inte "
            "ur ett justerat protokoll",
        )
    detail = named[-1].detail
    sha, key = detail.get("protocol_sha256", ""), detail.get("protocol_archive_key", "")
    kinds = [e.kind for e in events if e.version == final]
    ordered = EventKind.CERTIFIED in kinds and (
        kinds.index(EventKind.JUSTERED) < kinds.index(EventKind.CERTIFIED)
    )
    if not (sha and key and ordered):
        return Check(
            "justered protocol",
            False,
            "händelsen protokollet justerat saknar protokollets SHA-256 eller arkivnyckel, "
            "eller kommer efter bestyrkandet",
        )
    where = f"{detail.get('protocol', '?')}, SHA-256 {sha}, arkivnyckel {key}"
    found = _protocol_holds(store, prefix, key, sha)
    if found is None:
        return Check(
            "justered protocol",
            True,
            f"utdraget är en kopia av {where}; det arkivpaketet finns inte här: verifiera det "
            "för sig",
        )
    return Check(
        "justered protocol",
        found,
        f"utdraget är en kopia av {where}, som finns i protokollets arkivpaket"
        if found
        else f"protokollets arkivpaket {key} har inte dokumentet {sha}",
    )


def _protocol_holds(store: ArchiveStore, prefix: str, key: str, sha256: str) -> bool | None:
    """Whether the protocol bundle at ``key`` (relative to the archive the bundle at
    ``prefix`` was written to, which is ``store`` or a folder around it) has the
    document ``sha256`` in its trail; None when that bundle is not there."""
    for holder, found in _around(store, prefix, key):
        try:
            manifest = json.loads(holder.get(f"{found}/{MANIFEST_NAME}"))
            trail = holder.get(f"{found}/{EXTRACT_TRAIL}")
            entry = manifest["files"][EXTRACT_TRAIL]
            if hashlib.sha256(trail).hexdigest() != entry["sha256"]:
                return False
            return any(event.document_sha256 == sha256 for event in trail_from_json(trail))
        except (ArchiveError, TrailError, ValueError, KeyError, TypeError):
            return False
    return None


def _around(store: ArchiveStore, prefix: str, key: str) -> Iterator[tuple[ArchiveStore, str]]:
    """Where a bundle at ``key`` of the same archive as ``prefix`` is: the store and
    the key in it, trying each folder that encloses ``prefix`` as the archive's root."""
    if isinstance(store, LocalArchive):
        for folder in (store.root / prefix).parents:
            if (folder / key / MANIFEST_NAME).is_file():
                yield LocalArchive(folder), key
                return
        return
    parts = prefix.split("/")
    for depth in range(len(parts) - 1, -1, -1):
        candidate = "/".join([*parts[:depth], key])
        if store.head(f"{candidate}/{MANIFEST_NAME}") is not None:
            yield store, candidate
            return


def verify_bundle(
    target: str, store: ArchiveStore, prefix: str, trust_roots: Sequence[x509.Certificate]
) -> Verification:
    """Checksums, signatures, the trail's chain and its agreement with the PDF; for
    an extract, the justered protocol its trail names."""
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
        checks.extend(_trail_checks(events, pdf, validation, kind))
        if kind == "extract" and not chain_problems(events):
            checks.append(_justered_protocol_check(events, store, prefix))
    return Verification(
        target, tuple(checks), hashlib.sha256(pdf).hexdigest(), _signers(validation), kind
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
    targets: Sequence[str], trust_roots: Sequence[x509.Certificate]
) -> Iterator[Verification]:
    """Verify each target: a PDF path, a bundle directory, a folder of bundles,
    a ``file://`` URI or an ``s3://bucket/key-or-prefix``. Raises ``ConfigError``
    (could not run) for a target that does not exist or cannot be reached."""
    client = None
    for target in targets:
        if target.startswith("s3://"):
            if client is None:
                from justering.archive.s3 import S3ClientSettings

                client = S3ClientSettings().client()
            try:
                for name, store, prefix in _s3_targets(target, client):
                    yield verify_bundle(name, store, prefix, trust_roots)
            except JusteringError:
                raise
            except Exception as error:  # botocore's many connection errors
                raise ConfigError(f"{target}: cannot reach the object store ({error})") from None
            continue
        path = _local_path(target)
        for name, bundle_dir, bare in _local_targets(path):
            if bundle_dir is not None:
                yield verify_bundle(
                    name, LocalArchive(bundle_dir.parent), bundle_dir.name, trust_roots
                )
            elif bare is not None:
                yield verify_pdf(name, bare.read_bytes(), trust_roots)
