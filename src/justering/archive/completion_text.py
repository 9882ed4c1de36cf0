"""What the certificate of completion (:mod:`justering.archive.intyg`) says, in
Swedish: what it is about (an extract or a protocol), the justering as the trail
records it (when, by which protocol, whether late, the announcement), and the
trail's details under Swedish names instead of their keys.

The trail (``trail.json``) keeps its machine keys and UTC times; the certificate is
for a person, so every key it shows is named in Swedish and every time is Swedish
local time with its zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from justering.archive.bundle import EXTRACT_PDF, PROTOCOL_PDF
from justering.documents.fonts import one_line
from justering.model.calendar import local_second
from justering.model.process import DocumentKind
from justering.model.roles import Role
from justering.model.trail import EventKind, TrailEvent

__all__ = [
    "DETAIL_LABELS",
    "PDFSIG_CAVEAT",
    "SHORT_HASH_CHARS",
    "CompletionSubject",
    "JusteringFacts",
    "abridged",
    "detail_text",
    "role_name",
    "short",
    "timestamp_line",
    "verification_intro",
    "verification_steps",
    "yes_no",
]

SHORT_HASH_CHARS = 10
_DETAIL_CHARS = 300


@dataclass(frozen=True)
class CompletionSubject:
    """What a certificate of completion is about."""

    kind: DocumentKind
    paragraph: int
    """The extract's § (0 for a protocol)."""
    dnr: str | None
    title: str
    shows: str = ""
    """A protocol's paragraphs, as ``§ 94–97``."""

    @property
    def is_protocol(self) -> bool:
        return self.kind.is_protocol

    @property
    def label(self) -> str:
        """``§ 94``, ``Protokollet`` or ``Protokollet över omedelbart justerade paragrafer``."""
        if self.is_protocol:
            return self.kind.swedish.replace("protokoll", "Protokollet", 1)
        return f"§ {self.paragraph}"

    @property
    def pdf_name(self) -> str:
        """The signed PDF's name in the bundle."""
        return PROTOCOL_PDF if self.is_protocol else EXTRACT_PDF


@dataclass(frozen=True)
class JusteringFacts:
    """The justering as the trail records it: for a protocol its announcement, for
    an extract the ``justered`` event that names the protocol that justered it."""

    justered_on: dt.date
    justering_deadline: dt.date | None
    late: bool
    announced_on: dt.date
    appeal_deadline: dt.date
    kept_at: str | None
    """Where the protocol is kept (the protocol's announcement says)."""
    protocol: str | None = None
    """(An extract.) The reference of the protocol that justered its paragraph."""
    protocol_version: str | None = None
    protocol_sha256: str | None = None
    protocol_archive_key: str | None = None

    @classmethod
    def from_events(cls, events: Sequence[TrailEvent]) -> JusteringFacts | None:
        """From the last announcement (protocol) or ``justered`` event (extract) of
        the trail's last version; None when the trail records no justering."""
        if not events:
            return None
        version = events[-1].version
        found = [
            e
            for e in events
            if e.version == version and e.kind in (EventKind.ANNOUNCED, EventKind.JUSTERED)
        ]
        if not found:
            return None
        detail = found[-1].detail
        try:
            deadline = detail.get("justering_deadline")
            return cls(
                justered_on=dt.date.fromisoformat(detail["justered_on"]),
                justering_deadline=dt.date.fromisoformat(deadline) if deadline else None,
                late=detail.get("late") == "true",
                announced_on=dt.date.fromisoformat(detail["announced_on"]),
                appeal_deadline=dt.date.fromisoformat(detail["appeal_deadline"]),
                kept_at=detail.get("kept_at"),
                protocol=detail.get("protocol"),
                protocol_version=detail.get("protocol_version"),
                protocol_sha256=detail.get("protocol_sha256"),
                protocol_archive_key=detail.get("protocol_archive_key"),
            )
        except (KeyError, ValueError):
            return None  # a malformed event: the verification result says so

    def justering_text(self) -> str:
        """``2014-08-21 (sista dag 2014-09-02)``, ``FÖRSENAD`` when it came after it."""
        if self.justering_deadline is None:
            return self.justered_on.isoformat()
        text = f"{self.justered_on.isoformat()} (sista dag {self.justering_deadline.isoformat()})"
        return text + (", FÖRSENAD: efter sista dagen för justering" if self.late else "")

    def announcement_text(self) -> str:
        return (
            f"anslaget {self.announced_on.isoformat()}, sista dag för överklagande "
            f"{self.appeal_deadline.isoformat()}"
        )

    def rows(self) -> list[tuple[str, str, str]]:
        """The justering as the certificate's facts show it (Swedish, English, value);
        for an extract, the justered protocol it is a copy of."""
        facts = [
            ("Justering", "Justered (last day)", self.justering_text()),
            ("Anslag", "Announced", self.announcement_text()),
        ]
        if self.kept_at:
            facts.append(("Förvaringsplats", "Where the protocol is kept", self.kept_at))
        if self.protocol is not None:
            facts += [
                (
                    "Justerat protokoll",
                    "The justered protocol",
                    f"{self.protocol}, version {self.protocol_version}; "
                    f"arkivnyckel {self.protocol_archive_key}",
                ),
                (
                    "Protokollets SHA-256",
                    "SHA-256 of the justered protocol",
                    self.protocol_sha256 or "–",
                ),
            ]
        return facts


def verification_intro(pdf_name: str, *, timestamped: bool, subject: CompletionSubject) -> str:
    """What the bundle holds and how to use the commands after it; ``timestamped``: the
    bundle has the TSA's CA certificate too (``tsa-ca.pem``)."""
    tsa = " tsa-ca.pem (tidsstämpeltjänstens CA-certifikat)," if timestamped else ""
    what = "det justerade protokollet" if subject.is_protocol else "det signerade utdraget"
    return (
        "Intyget är en sammanfattning och är inte självt signerat; beviset är de signerade "
        f"filerna. Paketet (the bundle) innehåller {pdf_name} ({what}), "
        "trail.json (händelseförloppet med hashkedja), ca.pem (CA-certifikatet som utfärdat "
        f"undertecknarnas certifikat),{tsa} manifest.json (SHA-256 för varje fil) och detta "
        "intyg. Jämför CA-certifikaten med de som kommunen har publicerat. Kör kommandona "
        "nedan i paketets mapp, så som de står."
    )


def verification_steps(pdf_name: str, *, timestamped: bool) -> list[tuple[str, str]]:
    """Each check an archivist can run in the bundle's folder: what it shows, the
    command (one or more lines)."""
    trust = "--trust ca.pem --trust tsa-ca.pem" if timestamped else "--trust ca.pem"
    return [
        ("Kontrollsumman (checksum) ska vara SHA-256 ovan:", f"sha256sum {pdf_name}"),
        (
            "Hela paketet: kontrollsummor, underskrifter, ordning och hashkedja:",
            f"justering verify {trust} .",
        ),
        (
            "Underskrifterna med poppler (pdfsig), med ca.pem som betrott certifikat "
            "(i en ny mapp nss):",
            "mkdir nss\n"
            "certutil -N -d nss --empty-password\n"
            "certutil -A -d nss -n justering-ca -t CT,C,C -i ca.pem\n"
            f"pdfsig -nssdir nss {pdf_name}",
        ),
    ]


PDFSIG_CAVEAT = (
    "pdfsig prövar certifikaten mot dagens datum: när ett certifikat har gått ut visar "
    "den det som utgånget, också för en korrekt underskrift; justering verify prövar då "
    "mot tidsstämpeln eller tidpunkten för underskriften."
)
"""Why pdfsig may call a good signature's certificate expired."""


DETAIL_LABELS: Mapping[str, str] = {
    "announced_on": "anslaget",
    "announce_by": "anslås senast",
    "appeal_deadline": "sista dag för överklagande",
    "justered_on": "justerat",
    "justering_deadline": "sista dag för justering",
    "late": "försenad",
    "kept_at": "förvaringsplats",
    "body": "organ",
    "meeting_date": "sammanträdesdatum",
    "municipality": "kommun",
    "paragraphs": "paragrafer",
    "immediate_paragraphs": "omedelbart justerade paragrafer",
    "protocol": "protokoll",
    "protocol_version": "protokollets version",
    "protocol_sha256": "protokollets SHA-256",
    "protocol_archive_key": "protokollets arkivnyckel",
    "comment": "kommentar",
    "started_by": "startat av",
    "message_id": "meddelande",
    "reminder_days_left": "påminnelse, dagar kvar",
    "overdue": "försenat, sista dag",
    "waiting_for": "väntar på",
    "previous_sha256": "föregående version, SHA-256",
    "title": "rubrik",
    "text": "text",
    "tsa": "tidsstämpeltjänst",
    "timestamped_at": "tidsstämpel",
    "uri": "adress",
    "bundle": "arkivpaket",
    "paragraph": "paragraf",
    "declined_by": "avböjt av",
    "slot": "undertecknarens plats",
    "still_declined": "fortfarande avböjda paragrafer",
    "user_agent": "webbläsare eller program",
    "justered_notice": "sekreteraren underrättad om justeringen, version",
    "held_notice": "underrättad om vilande protokoll, §",
}
"""The Swedish name of every detail key the trail records."""

_VALUES = {"true": "ja", "false": "nej"}


def detail_text(key: str, value: str) -> str:
    """``anslaget: 2014-08-21``: a detail of the trail as a person reads it; a time in
    UTC (an RFC 3161 timestamp) as Swedish local time; an unknown key as it is."""
    label = DETAIL_LABELS.get(key, key)
    shown = _VALUES.get(value, value)
    if key.endswith("_at"):
        moment = _aware_time(value)
        if moment is not None:
            shown = local_second(moment)
    return f"{label}: {shown}"


def _aware_time(value: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def short(digest: str | None) -> str:
    """A SHA-256 cut to its first characters (the whole one is in trail.json)."""
    if not digest:
        return "–"
    return digest if len(digest) <= SHORT_HASH_CHARS else f"{digest[:SHORT_HASH_CHARS]}…"


def abridged(text: str) -> str:
    """A long detail cut short, pointing to trail.json for the rest."""
    return text if len(text) <= _DETAIL_CHARS else f"{text[:_DETAIL_CHARS]}… (trail.json)"


def role_name(role: str | None) -> str:
    """A trail's role in Swedish (an unknown one as it was recorded, on one line)."""
    if role is None:
        return "–"
    try:
        return Role(role).swedish
    except ValueError:
        return one_line(role)


def timestamp_line(at: dt.datetime | None, trusted: bool) -> str:
    if at is None:
        return "Tidsstämpel: ingen; tiden ovan är signeringstjänstens egen (no RFC 3161 timestamp)"
    return f"Tidsstämpel (RFC 3161): {local_second(at)}, betrodd: {yes_no(trusted)}"


def yes_no(value: bool) -> str:
    return "ja" if value else "NEJ"
