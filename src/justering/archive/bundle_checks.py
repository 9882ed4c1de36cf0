"""The checks of an archived bundle that read its trail: the trail's chain and its
agreement with the PDF (:func:`trail_checks`), the justered protocol an extract's
trail names (:func:`justered_protocol_check`) and the municipality's seal on the
trail (:func:`seal_check`). :mod:`justering.archive.verify` runs them.

Check names are stable English keys (``--json``); what each found is said in
Swedish, for the archivist who reads it, with times in Swedish local time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography import x509

from justering.archive.bundle import EXTRACT_TRAIL, EXTRACT_TRAIL_SEAL, MANIFEST_NAME
from justering.archive.local import LocalArchive
from justering.archive.objects import ArchiveStore
from justering.errors import ArchiveError, TrailError
from justering.model.calendar import local_second
from justering.model.trail import EventKind, TrailEvent, chain_problems, trail_from_json
from justering.pades.seal import verify_seal
from justering.pades.validation_results import ExtractValidation

__all__ = [
    "TRAIL_SEAL_CHECK",
    "UNSEALED",
    "Check",
    "justered_protocol_check",
    "seal_check",
    "trail_checks",
]

TRAIL_SEAL_CHECK = "trail seal"
UNSEALED = "oförseglat händelseförlopp"
"""How the ``trail seal`` check begins for a bundle without a seal."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


_COMPLETED_BY = {"extract": EventKind.CERTIFIED, "protocol": EventKind.ANNOUNCED}
"""The event that completes a document before it is archived."""
_AFTER_COMPLETION = {
    "extract": frozenset({EventKind.CERTIFIED, EventKind.TIMESTAMPED}),
    "protocol": frozenset({EventKind.ANNOUNCED, EventKind.NOTIFIED, EventKind.TIMESTAMPED}),
}
"""What may follow it in an archived trail: the long-term validation data, and for a
protocol the notice to the secretary."""


def trail_checks(
    events: Sequence[TrailEvent], pdf: bytes, validation: ExtractValidation, kind: str
) -> list[Check]:
    """The trail's chain, and its agreement with the PDF (``kind``: ``extract`` or
    ``protocol``)."""
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


def justered_protocol_check(
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


def seal_check(
    trail: bytes,
    seal: bytes | None,
    trust_roots: Sequence[x509.Certificate],
    *,
    accept_unsealed: bool,
) -> Check:
    """The municipality's seal on ``trail.json`` (``trail.json.p7s``): it holds and is
    trusted; a bundle without one fails unless ``accept_unsealed``."""
    if seal is None:
        if accept_unsealed:
            return Check(
                TRAIL_SEAL_CHECK,
                True,
                f"{UNSEALED}, godtaget (--accept-unsealed): inget visar att {EXTRACT_TRAIL} "
                "inte har skrivits om",
            )
        return Check(
            TRAIL_SEAL_CHECK,
            False,
            f"{UNSEALED}: paketet saknar {EXTRACT_TRAIL_SEAL} (arkiverat innan "
            "händelseförloppen förseglades, eller med förseglingen borttagen), så inget "
            f"visar att {EXTRACT_TRAIL} inte har skrivits om",
        )
    result = verify_seal(trail, seal, trust_roots, what=EXTRACT_TRAIL)
    if not result.ok:
        return Check(TRAIL_SEAL_CHECK, False, "; ".join(result.problems))
    if result.timestamped_at is not None:
        when = f"tidsstämplat {local_second(result.timestamped_at)} av en betrodd tidsstämpeltjänst"
    elif result.signed_at is not None:
        when = f"{local_second(result.signed_at)} enligt sin egen klocka (ingen tidsstämpel)"
    else:
        when = "utan tid (ingen tidsstämpel)"
    return Check(
        TRAIL_SEAL_CHECK, True, f"{EXTRACT_TRAIL} förseglat av {result.sealed_by!r}, {when}"
    )
