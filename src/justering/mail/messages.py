"""What justering's e-mails to signers say: requests to sign (and reminders), the
receipt after signing, and the notice that the protocol waits for a corrected
paragraph. (The secretary's are :mod:`justering.mail.notices`; how a message is
written out as text and HTML, :mod:`justering.mail.compose`.)"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from justering.mail.compose import (
    Block,
    Button,
    Composed,
    Digests,
    ExtractLine,
    Items,
    MeetingHeader,
    Text,
    count_of,
)
from justering.model.calendar import local_minute
from justering.model.roles import Person, Role

__all__ = [
    "HeldNotice",
    "SignedLine",
    "SigningReceiptMail",
    "SigningRequest",
]


@dataclass(frozen=True)
class SigningRequest(Composed):
    """Asks one signer to sign the documents behind one link (the protocol and the
    extracts of its paragraphs, for the chair and the adjusters; extracts to certify,
    for the certifier); with ``days_left`` set, it is a reminder that the justering
    deadline is near."""

    to: Person
    meeting: MeetingHeader
    role: Role
    link: str
    expires_at: dt.datetime
    deadline: dt.date | None
    """The last day of the justering (None for the certifier: no deadline of its own)."""
    extracts: tuple[ExtractLine, ...]
    days_left: int | None = None

    @property
    def kind(self) -> str:
        return self.role.value if self.days_left is None else f"reminder-{self.role.value}"

    @property
    def _justering(self) -> bool:
        return self.role in (Role.CHAIR, Role.ADJUSTER)

    def subject(self) -> str:
        prefix = "" if self.days_left is None else "Påminnelse: "
        immediate = self._justering and any(e.immediate for e in self.extracts)
        flag = "Omedelbar justering – " if immediate else ""
        return (
            f"{prefix}{flag}Att signera {self.role.capacity}: {count_of(self.extracts)}, "
            f"{self.meeting.short()}"
        )

    def body(self) -> list[Block]:
        blocks: list[Block] = []
        if self.days_left is not None:
            when = "i dag" if self.days_left <= 0 else f"om {self.days_left} dagar"
            if self.days_left == 1:
                when = "i morgon"
            blocks.append(Text(f"Påminnelse: tiden för justering går ut {when}.", strong=True))
        if self._justering:
            what = f"Följande väntar på din signatur {self.role.capacity}"
            if any(e.kind.is_protocol for e in self.extracts):
                what += ". Du signerar protokollet och utdragen ur det på en gång"
            what += ":"
        else:
            what = (
                "Protokollet är justerat. Följande protokollsutdrag väntar på din signatur "
                "för utdragsbestyrkande, att de stämmer med det justerade protokollet:"
            )
        blocks += [
            Text(self.meeting.sentence() + " " + what),
            Items(self.extracts),
            Button("Läs och signera", self.link, "Öppna länken för att läsa och signera:"),
        ]
        if self.deadline is not None:
            blocks.append(
                Text(f"Sista dag för justering: {self.deadline.isoformat()}.", strong=True)
            )
        blocks.append(
            Text(
                "Länken är personlig och gäller till "
                f"{local_minute(self.expires_at)}. Vidarebefordra den inte."
            )
        )
        return blocks

    def english(self) -> str:
        return (
            "English: documents from the meeting above are waiting for your signature; "
            "open the link to read and sign them."
        )


@dataclass(frozen=True)
class SignedLine:
    """One document in a receipt: what was signed, exactly."""

    extract: ExtractLine
    document_sha256: str


@dataclass(frozen=True)
class SigningReceiptMail(Composed):
    """Sent to a signer after they signed: what they signed, when, and the digests."""

    to: Person
    meeting: MeetingHeader
    role: Role
    signed_at: dt.datetime
    items: tuple[SignedLine, ...]

    kind = "receipt"

    def subject(self) -> str:
        noun = count_of([item.extract for item in self.items])
        return f"Kvitto: du har signerat {noun}, {self.meeting.short()}"

    def body(self) -> list[Block]:
        return [
            Text(
                f"Du signerade {local_minute(self.signed_at, zone=True)} {self.role.capacity} "
                f"följande från {self.meeting.source()}:"
            ),
            Items(tuple(item.extract for item in self.items)),
            Text(
                "Varje dokument fick en egen elektronisk underskrift i ditt namn. Vill någon "
                "senare pröva att dokumenten inte har ändrats, är detta deras kontrollsummor "
                "(SHA-256):"
            ),
            Digests(tuple((i.extract.label, i.document_sha256) for i in self.items)),
            Text(
                "Har du inte signerat detta själv? Kontakta nämndens sekreterare genast.",
                strong=True,
            ),
        ]

    def english(self) -> str:
        return "English: a receipt for the documents you signed, with their SHA-256 digests."


@dataclass(frozen=True)
class HeldNotice(Composed):
    """Tells the chair or an adjuster that a paragraph was declined: the protocol
    waits for its correction, and they get a new link when it is their turn."""

    to: Person
    meeting: MeetingHeader
    declined: ExtractLine
    declined_by: str
    protocols: tuple[ExtractLine, ...]

    kind = "held"

    def subject(self) -> str:
        return f"Protokollet väntar: {self.declined.label} ska rättas, {self.meeting.short()}"

    def body(self) -> list[Block]:
        return [
            Text(
                f"{self.declined_by} har avböjt att signera {self.declined.label} från "
                f"{self.meeting.source()}. Paragrafen går tillbaka till sekreteraren för "
                "rättelse:"
            ),
            Items((self.declined,)),
            Text(
                "Protokollet kan inte justeras förrän den rättade paragrafen har signerats. "
                "Signaturer på den tidigare versionen av protokollet gäller inte för den nya; "
                "du får en ny länk när det är din tur att signera den:",
                strong=True,
            ),
            Items(self.protocols),
            Text("Utdrag ur andra paragrafer kan du signera som vanligt."),
        ]

    def english(self) -> str:
        return (
            "English: a paragraph was declined; the protocol waits for its correction, "
            "and you will get a new link to sign it."
        )
