"""What justering's e-mails to the body's secretary say: a declined paragraph (and
where to correct it), a missed justering deadline, and a justered protocol with its
announcement (marked when the justering came after its last day)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from justering.mail.compose import (
    Block,
    Button,
    Composed,
    ExtractLine,
    Items,
    MeetingHeader,
    Quote,
    Text,
)
from justering.model.calendar import local_minute
from justering.model.roles import Person, Role

__all__ = ["DeclineNotice", "JusteringNotice", "Overdue", "OverdueNotice"]


@dataclass(frozen=True)
class DeclineNotice(Composed):
    """Tells the secretary that a signer declined an extract, why, and where to redraft it."""

    to: Person
    meeting: MeetingHeader
    declined_by: str
    declined_role: Role
    extract: ExtractLine
    version: int
    comment: str
    redraft_link: str
    expires_at: dt.datetime

    kind = "declined"

    def subject(self) -> str:
        return f"Avböjt: § {self.extract.paragraph} behöver ändras, {self.meeting.short()}"

    def body(self) -> list[Block]:
        return [
            Text(
                f"{self.declined_by} ({self.declined_role.swedish.lower()}) har avböjt att "
                f"signera version {self.version} av detta utdrag från {self.meeting.source()}:"
            ),
            Items((self.extract,)),
            Text("Kommentar:"),
            Quote(self.comment),
            Text(
                "Utdraget har gått tillbaka till utkast och underskrifterna på den versionen "
                "gäller inte längre. Protokollet kan inte justeras förrän den rättade "
                "paragrafen har signerats; ordföranden och justerarna har fått veta det. "
                "Utdragen ur de andra paragraferna fortsätter som vanligt. När du har skickat "
                "in den rättade texten skapas en ny version av utdraget och av protokollet, "
                "och signeringen av dem börjar om från ordföranden."
            ),
            Button("Rätta utdraget", self.redraft_link, "Öppna länken för att rätta texten:"),
            Text(
                "Eller från kommandoraden: justering redraft "
                f"{self.meeting.meeting_id} {self.extract.paragraph} --text RÄTTAD.txt"
            ),
            Text(f"Länken är personlig och gäller till {local_minute(self.expires_at)}."),
        ]

    def english(self) -> str:
        return (
            "English: a signer declined this extract with the comment above; the protocol "
            "waits for it. Open the link to send corrected text, which restarts signing "
            "from the chair."
        )


@dataclass(frozen=True)
class Overdue:
    """One document past its justering deadline and whom it waits for."""

    extract: ExtractLine
    waiting_for: str
    deadline: dt.date


@dataclass(frozen=True)
class OverdueNotice(Composed):
    """Tells the secretary that the justering deadline has passed for some documents."""

    to: Person
    meeting: MeetingHeader
    overdue: tuple[Overdue, ...]

    kind = "overdue"

    def subject(self) -> str:
        count = len(self.overdue)
        noun = "dokument" if count == 1 else f"{count} dokument"
        return f"Justeringen är försenad: {noun}, {self.meeting.short()}"

    def body(self) -> list[Block]:
        waiting = "\n".join(
            f"{o.extract.label}: sista dag {o.deadline.isoformat()}, väntar på {o.waiting_for}"
            for o in self.overdue
        )
        return [
            Text(
                f"Sista dagen för justering har passerat, men detta från {self.meeting.source()} "
                "är inte justerat:",
                strong=True,
            ),
            Items(tuple(o.extract for o in self.overdue)),
            Quote(waiting),
            Text(
                "Påminnelser har skickats. Kontakta de som inte har signerat. Justeringen kan "
                "fortfarande göras, men den markeras då som försenad (protokollet ska justeras "
                "senast fjorton dagar efter sammanträdet, 5 kap. 69 § kommunallagen)."
            ),
        ]

    def english(self) -> str:
        return "English: the justering deadline has passed for the documents above."


@dataclass(frozen=True)
class JusteringNotice(Composed):
    """Tells the secretary that a protocol is justered and announced on the
    anslagstavla, and, when it came after its last day, that it was late."""

    to: Person
    meeting: MeetingHeader
    protocol: ExtractLine
    justered_on: dt.date
    announced_on: dt.date
    appeal_deadline: dt.date
    kept_at: str
    justering_deadline: dt.date
    late: bool

    kind = "justered"

    def subject(self) -> str:
        late = " (för sent)" if self.late else ""
        return f"{self.protocol.label} är justerat{late}: {self.meeting.short()}"

    def body(self) -> list[Block]:
        blocks: list[Block] = [
            Text(
                f"Ordföranden och justerarna har signerat protokollet från "
                f"{self.meeting.source()}. Det är justerat {self.justered_on.isoformat()} och "
                f"justeringen anslogs på anslagstavlan {self.announced_on.isoformat()}:"
            ),
            Items((self.protocol,)),
            Text(
                f"Sista dag för överklagande: {self.appeal_deadline.isoformat()} (tre veckor "
                "från anslaget, 13 kap. 5 § kommunallagen). Förvaringsplats enligt anslaget: "
                f"{self.kept_at}."
            ),
        ]
        if self.late:
            law = "5 kap. 70 §" if self.protocol.immediate else "5 kap. 69 §"
            blocks.append(
                Text(
                    "Justeringen gjordes efter sista dagen för justering, "
                    f"{self.justering_deadline.isoformat()} ({law} kommunallagen). Den "
                    "gäller, men är markerad som försenad i händelseförloppet och i intyget.",
                    strong=True,
                )
            )
        blocks.append(Text("Utdragen ur protokollet går nu vidare till utdragsbestyrkande."))
        return blocks

    def english(self) -> str:
        late = " It was justered after its deadline." if self.late else ""
        return f"English: the protocol is justered and announced on the notice board.{late}"
