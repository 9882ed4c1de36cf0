"""What justering's e-mails say: requests to sign, reminders, receipts, and the
notices to the body's secretary (a declined extract, a missed deadline).

Each message is composed once, as a list of blocks, and written out both as
plain text and as a self-contained HTML page (inline styles, nothing fetched),
so the two alternatives of one e-mail always say the same thing. Delivery is
:mod:`justering.mail.delivery`' business.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from justering.model.calendar import local_minute
from justering.model.extract import ExtractSummary
from justering.model.meeting import Meeting
from justering.model.roles import Person, Role

__all__ = [
    "DeclineNotice",
    "ExtractLine",
    "MeetingHeader",
    "Message",
    "Overdue",
    "OverdueNotice",
    "SignedLine",
    "SigningReceiptMail",
    "SigningRequest",
    "immediate_first",
]


class Message(Protocol):
    """An e-mail to one person."""

    @property
    def to(self) -> Person: ...

    @property
    def kind(self) -> str:
        """A short tag for the outbox's file names (``chair``, ``receipt`` …)."""
        ...

    def subject(self) -> str: ...

    def text(self) -> str: ...

    def html(self) -> str: ...


@dataclass(frozen=True)
class ExtractLine:
    """One extract as a message lists it."""

    paragraph: int
    dnr: str | None
    title: str
    immediate: bool = False

    @classmethod
    def of(cls, extract: ExtractSummary) -> ExtractLine:
        return cls(extract.paragraph, extract.dnr, extract.title, extract.immediate)

    def describe(self) -> str:
        dnr = f"  {self.dnr}" if self.dnr else ""
        flag = "  (omedelbart justerad)" if self.immediate else ""
        return f"§ {self.paragraph}{dnr}  {self.title}{flag}"


@dataclass(frozen=True)
class MeetingHeader:
    """The meeting a message is about, as every message names it."""

    meeting_id: str
    municipality: str
    body_name: str
    meeting_date: dt.date

    @classmethod
    def of(cls, meeting: Meeting) -> MeetingHeader:
        return cls(meeting.meeting_id, meeting.municipality, meeting.body.name, meeting.date)

    def sentence(self) -> str:
        """The meeting in a sentence: body, municipality and day."""
        day = self.meeting_date.isoformat()
        return f"{self.body_name}, {self.municipality}, sammanträdde {day}."

    def short(self) -> str:
        """The meeting in a subject line: body and day."""
        return f"{self.body_name} {self.meeting_date.isoformat()}"


def immediate_first(lines: Sequence[ExtractLine]) -> tuple[ExtractLine, ...]:
    """Paragraphs under omedelbar justering first, then by § number."""
    return tuple(sorted(lines, key=lambda line: (not line.immediate, line.paragraph)))


# --- composing: blocks written out as text and as HTML ---------------------------------


@dataclass(frozen=True)
class _Text:
    text: str
    strong: bool = False


@dataclass(frozen=True)
class _Extracts:
    lines: tuple[ExtractLine, ...]


@dataclass(frozen=True)
class _Button:
    label: str
    link: str
    lead: str


@dataclass(frozen=True)
class _Quote:
    text: str


@dataclass(frozen=True)
class _Digests:
    rows: tuple[tuple[str, str], ...]
    """(what, SHA-256) pairs."""


_Block = _Text | _Extracts | _Button | _Quote | _Digests

_BODY_STYLE = (
    "margin:0;padding:1em;max-width:40em;font-family:Arial,Helvetica,sans-serif;"
    "font-size:15px;line-height:1.5;color:#1a1a1a;background:#ffffff"
)
_BUTTON_STYLE = (
    "display:inline-block;padding:0.7em 1.4em;background:#0b4f8a;color:#ffffff;"
    "font-weight:bold;text-decoration:none;border-radius:4px"
)
_QUOTE_STYLE = "margin:1em 0;padding:0.5em 1em;border-left:4px solid #888;background:#f4f4f4"


def _text_of(block: _Block) -> list[str]:
    if isinstance(block, _Text):
        return [block.text, ""]
    if isinstance(block, _Extracts):
        return [*(f"  {line.describe()}" for line in block.lines), ""]
    if isinstance(block, _Button):
        return [block.lead, block.link, ""]
    if isinstance(block, _Quote):
        return [*(f"  > {line}" for line in block.text.splitlines()), ""]
    return [*(f"  {what}: {digest}" for what, digest in block.rows), ""]


def _html_item(line: ExtractLine) -> str:
    dnr = f' <span style="color:#555">{html.escape(line.dnr)}</span>' if line.dnr else ""
    flag = ' <strong style="color:#a4000f">(omedelbart justerad)</strong>' if line.immediate else ""
    return f"<li><strong>§ {line.paragraph}</strong>{dnr} {html.escape(line.title)}{flag}</li>"


def _html_of(block: _Block) -> str:
    e = html.escape
    if isinstance(block, _Text):
        inner = f"<strong>{e(block.text)}</strong>" if block.strong else e(block.text)
        return f"<p>{inner}</p>"
    if isinstance(block, _Extracts):
        items = "\n".join(_html_item(line) for line in block.lines)
        return f'<ul style="padding-left:1.2em">\n{items}\n</ul>'
    if isinstance(block, _Button):
        link = e(block.link)
        return (
            f"<p>{e(block.lead)}</p>\n"
            f'<p style="margin:1em 0 1.5em"><a href="{link}" style="{_BUTTON_STYLE}">'
            f"{e(block.label)}</a></p>\n"
            f'<p style="font-size:90%;color:#444">Fungerar inte knappen? Kopiera länken:<br>\n'
            f'<a href="{link}" style="color:#0b4f8a;word-break:break-all">{link}</a></p>'
        )
    if isinstance(block, _Quote):
        return f'<blockquote style="{_QUOTE_STYLE}">{e(block.text)}</blockquote>'.replace(
            "\n", "<br>"
        )
    rows = "".join(
        f"<li>{e(what)}: <code style='word-break:break-all'>{digest}</code></li>"
        for what, digest in block.rows
    )
    return f'<ul style="padding-left:1.2em;font-size:90%">{rows}</ul>'


class _Composed:
    """``text()`` and ``html()`` from one list of blocks and an English summary."""

    def subject(self) -> str:
        raise NotImplementedError

    def _blocks(self) -> list[_Block]:
        raise NotImplementedError

    def _english(self) -> str:
        raise NotImplementedError

    def text(self) -> str:
        lines = [line for block in self._blocks() for line in _text_of(block)]
        return "\n".join([*lines, f"({self._english()})"]) + "\n"

    def html(self) -> str:
        """The same message as :meth:`text`, as a self-contained HTML page."""
        body = "\n".join(_html_of(block) for block in self._blocks())
        return f"""<!DOCTYPE html>
<html lang="sv">
<head><meta charset="utf-8"><title>{html.escape(self.subject())}</title></head>
<body style="{_BODY_STYLE}">
{body}
<p lang="en" style="font-size:85%;color:#666">({html.escape(self._english())})</p>
</body>
</html>
"""


# --- the messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningRequest(_Composed):
    """Asks one signer to sign the extracts behind one link; with ``days_left`` set,
    it is a reminder that the justering deadline is near."""

    to: Person
    meeting: MeetingHeader
    role: Role
    link: str
    expires_at: dt.datetime
    deadline: dt.date
    extracts: tuple[ExtractLine, ...]
    days_left: int | None = None

    @property
    def kind(self) -> str:
        return self.role.value if self.days_left is None else f"reminder-{self.role.value}"

    def subject(self) -> str:
        count = len(self.extracts)
        noun = "protokollsutdrag" if count == 1 else f"{count} protokollsutdrag"
        prefix = "" if self.days_left is None else "Påminnelse: "
        flag = "Omedelbar justering – " if any(e.immediate for e in self.extracts) else ""
        return (
            f"{prefix}{flag}Att signera som {self.role.swedish.lower()}: {noun}, "
            f"{self.meeting.short()}"
        )

    def _blocks(self) -> list[_Block]:
        blocks: list[_Block] = [_Text(f"Hej {self.to.name},")]
        if self.days_left is not None:
            when = "i dag" if self.days_left <= 0 else f"om {self.days_left} dagar"
            if self.days_left == 1:
                when = "i morgon"
            blocks.append(_Text(f"Påminnelse: tiden för justering går ut {when}.", strong=True))
        return [
            *blocks,
            _Text(
                self.meeting.sentence() + " Följande protokollsutdrag väntar på din signatur som "
                f"{self.role.swedish.lower()}:"
            ),
            _Extracts(self.extracts),
            _Button("Läs och signera", self.link, "Öppna länken för att läsa och signera:"),
            _Text(f"Sista dag för justering: {self.deadline.isoformat()}.", strong=True),
            _Text(
                "Länken är personlig och gäller till "
                f"{local_minute(self.expires_at)}. Vidarebefordra den inte."
            ),
        ]

    def _english(self) -> str:
        return (
            "English: extracts from the meeting above are waiting for your signature; "
            "open the link to read and sign them."
        )


@dataclass(frozen=True)
class SignedLine:
    """One extract in a receipt: what was signed, exactly."""

    extract: ExtractLine
    document_sha256: str


@dataclass(frozen=True)
class SigningReceiptMail(_Composed):
    """Sent to a signer after they signed: what they signed, when, and the digests."""

    to: Person
    meeting: MeetingHeader
    role: Role
    signed_at: dt.datetime
    items: tuple[SignedLine, ...]

    kind = "receipt"

    def subject(self) -> str:
        count = len(self.items)
        noun = "protokollsutdrag" if count == 1 else f"{count} protokollsutdrag"
        return f"Kvitto: du har signerat {noun}, {self.meeting.short()}"

    def _blocks(self) -> list[_Block]:
        return [
            _Text(f"Hej {self.to.name},"),
            _Text(
                f"Du signerade {local_minute(self.signed_at)} som {self.role.swedish.lower()} "
                "följande protokollsutdrag från " + self.meeting.sentence()
            ),
            _Extracts(tuple(item.extract for item in self.items)),
            _Text(
                "Varje utdrag fick en egen elektronisk underskrift (PAdES). Så här ser de "
                "signerade dokumenten ut, som SHA-256-kontrollsummor:"
            ),
            _Digests(tuple((f"§ {i.extract.paragraph}", i.document_sha256) for i in self.items)),
            _Text(
                "Har du inte signerat detta själv? Kontakta nämndens sekreterare genast.",
                strong=True,
            ),
        ]

    def _english(self) -> str:
        return "English: a receipt for the extracts you signed, with their SHA-256 digests."


@dataclass(frozen=True)
class DeclineNotice(_Composed):
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

    def _blocks(self) -> list[_Block]:
        return [
            _Text(f"Hej {self.to.name},"),
            _Text(
                f"{self.declined_by} ({self.declined_role.swedish.lower()}) har avböjt att "
                f"signera version {self.version} av detta utdrag från " + self.meeting.sentence()
            ),
            _Extracts((self.extract,)),
            _Text("Kommentar:"),
            _Quote(self.comment),
            _Text(
                "Utdraget har gått tillbaka till utkast och underskrifterna på den versionen "
                "gäller inte längre. De andra utdragen fortsätter som vanligt. När du har "
                "skickat in den rättade texten skapas en ny version och signeringen börjar "
                "om från ordföranden."
            ),
            _Button(
                "Rätta utdraget",
                self.redraft_link,
                "Öppna länken för att rätta texten:",
            ),
            _Text(
                "Eller från kommandoraden: justering redraft "
                f"{self.meeting.meeting_id} {self.extract.paragraph} --text RÄTTAD.txt"
            ),
            _Text(f"Länken är personlig och gäller till {local_minute(self.expires_at)}."),
        ]

    def _english(self) -> str:
        return (
            "English: a signer declined this extract with the comment above; "
            "open the link to send corrected text, which restarts signing from the chair."
        )


@dataclass(frozen=True)
class Overdue:
    """One extract past its justering deadline and whom it waits for."""

    extract: ExtractLine
    waiting_for: str


@dataclass(frozen=True)
class OverdueNotice(_Composed):
    """Tells the secretary that the justering deadline has passed for some extracts."""

    to: Person
    meeting: MeetingHeader
    deadline: dt.date
    overdue: tuple[Overdue, ...]

    kind = "overdue"

    def subject(self) -> str:
        return f"Justeringen är försenad: {len(self.overdue)} utdrag, {self.meeting.short()}"

    def _blocks(self) -> list[_Block]:
        waiting = "\n".join(
            f"§ {o.extract.paragraph}: väntar på {o.waiting_for}" for o in self.overdue
        )
        return [
            _Text(f"Hej {self.to.name},"),
            _Text(
                f"Sista dag för justering var {self.deadline.isoformat()}, men dessa utdrag "
                "från " + self.meeting.sentence() + " är inte justerade:",
                strong=True,
            ),
            _Extracts(tuple(o.extract for o in self.overdue)),
            _Quote(waiting),
            _Text(
                "Påminnelser har skickats. Kontakta de som inte har signerat, eller "
                "besluta om hur justeringen ska ske."
            ),
        ]

    def _english(self) -> str:
        return "English: the justering deadline has passed for the extracts above."
