"""What ``justering demo`` reports: every extract and every protocol of the meeting,
archived and verified, with the justering and its announcement on the anslagstavla,
in Swedish (``describe``) or as JSON (``to_json``, docs/cli.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from justering.archive.verify import verify_targets
from justering.model.extract import ExtractSummary
from justering.model.process import ExtractStatus
from justering.workflow.meeting_view import MeetingView, ProtocolView

__all__ = ["DemoExtract", "DemoProtocol", "DemoSummary", "summarise"]


@dataclass(frozen=True)
class DemoExtract:
    paragraph: int
    dnr: str | None
    title: str
    status: str
    archive_uri: str | None
    sha256: str
    verified: bool
    signatures: int = 0
    """The signatures ``justering verify`` found in the archived PDF."""

    def to_json(self) -> dict[str, Any]:
        return {
            "paragraph": self.paragraph,
            "dnr": self.dnr,
            "title": self.title,
            "status": self.status,
            "archive_uri": self.archive_uri,
            "sha256": self.sha256,
            "verified": self.verified,
            "signatures": self.signatures,
        }

    def describe(self) -> list[str]:
        dnr = f" {self.dnr}" if self.dnr else ""
        return [f"  § {self.paragraph}{dnr}  {self.title}", *_archived(self)]


@dataclass(frozen=True)
class DemoProtocol:
    """A protocol of the meeting: justered, announced, archived and verified."""

    label: str
    """``Protokollet``, ``Protokollet över omedelbart justerade paragrafer``."""
    kind: str
    status: str
    archive_uri: str | None
    sha256: str
    verified: bool
    signatures: int
    justered_on: dt.date | None
    announced_on: dt.date | None
    appeal_deadline: dt.date | None
    kept_at: str | None
    justering_deadline: dt.date
    late: bool

    def to_json(self) -> dict[str, Any]:
        def day(value: dt.date | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "kind": self.kind,
            "status": self.status,
            "archive_uri": self.archive_uri,
            "sha256": self.sha256,
            "verified": self.verified,
            "signatures": self.signatures,
            "justered_on": day(self.justered_on),
            "justering_deadline": self.justering_deadline.isoformat(),
            "late": self.late,
            "announced_on": day(self.announced_on),
            "appeal_deadline": day(self.appeal_deadline),
            "kept_at": self.kept_at,
        }

    def describe(self) -> list[str]:
        justered = self.justered_on.isoformat() if self.justered_on else "inte justerat"
        late = f" (efter sista dagen, {self.justering_deadline.isoformat()})" if self.late else ""
        lines = [f"{self.label}: justerat {justered}{late}"]
        if self.announced_on:
            appeal = self.appeal_deadline.isoformat() if self.appeal_deadline else "–"
            lines.append(
                f"      anslaget {self.announced_on.isoformat()} på anslagstavlan, "
                f"överklagande senast {appeal}"
            )
            lines.append(f"      förvaringsplats: {self.kept_at}")
        return [*lines, *_archived(self)]


def _archived(document: DemoExtract | DemoProtocol) -> list[str]:
    mark = "verifierat" if document.verified else "EJ VERIFIERAT"
    status = ExtractStatus(document.status).swedish
    return [
        f"      {status}, {mark}: {document.archive_uri}",
        f"      sha256 {document.sha256}",
    ]


@dataclass(frozen=True)
class DemoSummary:
    meeting_id: str
    home: Path
    seconds: float
    links: int
    """The signing links the demo followed (one per signer and stage)."""
    extracts: tuple[DemoExtract, ...]
    protocols: tuple[DemoProtocol, ...] = ()
    startup_seconds: float | None = None
    """From the command's start to the first paragraph drafted (the Prefect server's
    and the service's start-up, the meeting's hand-over); ``seconds`` counts from the
    command's start too, to every document archived and verified."""

    @property
    def signatures(self) -> int:
        """Every signature in the archived documents."""
        return sum(p.signatures for p in self.protocols) + sum(e.signatures for e in self.extracts)

    @property
    def ok(self) -> bool:
        documents: tuple[DemoExtract | DemoProtocol, ...] = (*self.protocols, *self.extracts)
        return (
            bool(self.extracts)
            and bool(self.protocols)
            and all(d.status == ExtractStatus.ARCHIVED.value and d.verified for d in documents)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "startup_seconds": (
                None if self.startup_seconds is None else round(self.startup_seconds, 2)
            ),
            "signatures": self.signatures,
            "links": self.links,
            "extracts": [extract.to_json() for extract in self.extracts],
            "protocols": [protocol.to_json() for protocol in self.protocols],
        }

    def _startup(self) -> str:
        if self.startup_seconds is None:
            return ""
        return f" (första paragrafen upprättad efter {self.startup_seconds:.1f} s)"

    def describe(self) -> str:
        count = len(self.protocols)
        protocols = "protokollet" if count == 1 else f"{count} protokoll"
        lines = [
            f"Sammanträde {self.meeting_id}: {protocols} och {len(self.extracts)} "
            f"protokollsutdrag, {self.signatures} underskrifter genom {self.links} länkar, "
            f"{self.seconds:.1f} s{self._startup()}",
        ]
        for protocol in self.protocols:
            lines += protocol.describe()
        lines.append("Protokollsutdragen:")
        for extract in self.extracts:
            lines += extract.describe()
        lines.append(f"Allt under {self.home}")
        lines.append("OK" if self.ok else "NÅGOT GICK FEL (something failed)")
        return "\n".join(lines)


def _verified(uri: str | None, trust: Sequence[x509.Certificate]) -> tuple[bool, int]:
    """Whether the archived document at ``uri`` verifies, and its signatures."""
    if not uri:
        return False, 0
    results = list(verify_targets([uri], trust))
    return bool(results) and all(r.ok for r in results), sum(len(r.signers) for r in results)


def summarise(
    view: MeetingView,
    extracts: Sequence[ExtractSummary],
    trust: Sequence[x509.Certificate],
    *,
    meeting_id: str,
    home: Path,
    seconds: float,
    links: int,
    startup_seconds: float | None = None,
) -> DemoSummary:
    """The summary of a run: each document verified in the archive."""
    return DemoSummary(
        meeting_id,
        home,
        seconds,
        links,
        tuple(_extract(extract, trust) for extract in extracts),
        tuple(_protocol(protocol, trust) for protocol in view.protocols),
        startup_seconds,
    )


def _extract(extract: ExtractSummary, trust: Sequence[x509.Certificate]) -> DemoExtract:
    verified, signatures = _verified(extract.archive_uri, trust)
    return DemoExtract(
        paragraph=extract.paragraph,
        dnr=extract.dnr,
        title=extract.title,
        status=extract.status.value,
        archive_uri=extract.archive_uri or "",
        sha256=extract.document_sha256,
        verified=verified,
        signatures=signatures,
    )


def _protocol(view: ProtocolView, trust: Sequence[x509.Certificate]) -> DemoProtocol:
    protocol = view.protocol
    verified, signatures = _verified(protocol.archive_uri, trust)
    return DemoProtocol(
        label=protocol.label,
        kind=protocol.kind.value,
        status=protocol.status.value,
        archive_uri=protocol.archive_uri,
        sha256=protocol.document_sha256,
        verified=verified,
        signatures=signatures,
        justered_on=view.justered_on,
        announced_on=view.announced_on,
        appeal_deadline=view.appeal_deadline,
        kept_at=view.kept_at,
        justering_deadline=view.deadline,
        late=view.late,
    )
