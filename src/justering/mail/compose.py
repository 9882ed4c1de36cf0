"""How justering's e-mails are composed: each message is a list of blocks, written
out both as plain text and as a self-contained HTML page (inline styles, nothing
fetched), so the two alternatives of one e-mail always say the same thing; and the
parts every message shares (the meeting, the documents it lists).

The messages themselves are :mod:`justering.mail.messages` (to signers) and
:mod:`justering.mail.notices` (to the body's secretary); delivery is
:mod:`justering.mail.delivery`' business.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from justering.model.extract import ExtractSummary
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind
from justering.model.roles import Person

__all__ = [
    "Block",
    "Button",
    "Composed",
    "Digests",
    "ExtractLine",
    "Items",
    "MeetingHeader",
    "Message",
    "Quote",
    "Text",
    "count_of",
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
    """One document as a message lists it: a paragraph's extract, or a protocol (whose
    ``title`` then says which paragraphs it shows)."""

    paragraph: int
    dnr: str | None
    title: str
    immediate: bool = False
    """Under omedelbar justering (the extract of such a paragraph, the small protocol)."""
    kind: DocumentKind = DocumentKind.EXTRACT

    @classmethod
    def of(cls, extract: ExtractSummary) -> ExtractLine:
        return cls(extract.paragraph, extract.dnr, extract.title, extract.immediate, extract.kind)

    @property
    def label(self) -> str:
        """``§ 94``, or ``Protokollet``."""
        if self.kind.is_protocol:
            return self.kind.swedish.replace("protokoll", "Protokollet", 1)
        return f"§ {self.paragraph}"

    def describe(self) -> str:
        dnr = f"  {self.dnr}" if self.dnr else ""
        flag = "  (omedelbar justering)" if self.immediate and not self.kind.is_protocol else ""
        return f"{self.label}{dnr}  {self.title}{flag}"


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
        """The meeting as a sentence of its own: "Kommunstyrelsens arbetsutskott i Nacka
        kommun sammanträdde 2014-08-19." """
        day = self.meeting_date.isoformat()
        return f"{self.body_name} i {self.municipality} sammanträdde {day}."

    def source(self) -> str:
        """Where documents come from, after "från": "sammanträdet 2014-08-19 med
        Kommunstyrelsens arbetsutskott i Nacka kommun"."""
        day = self.meeting_date.isoformat()
        return f"sammanträdet {day} med {self.body_name} i {self.municipality}"

    def short(self) -> str:
        """The meeting in a subject line: body and day."""
        return f"{self.body_name} {self.meeting_date.isoformat()}"


def immediate_first(lines: Sequence[ExtractLine]) -> tuple[ExtractLine, ...]:
    """What is under omedelbar justering first (its protocol, then its extracts), then
    the protocol, then the extracts by § number."""
    return tuple(
        sorted(
            lines,
            key=lambda line: (not line.immediate, not line.kind.is_protocol, line.paragraph),
        )
    )


# --- composing: blocks written out as text and as HTML ---------------------------------


@dataclass(frozen=True)
class Text:
    """A paragraph of text."""

    text: str
    strong: bool = False


@dataclass(frozen=True)
class Items:
    """A list of documents."""

    lines: tuple[ExtractLine, ...]


@dataclass(frozen=True)
class Button:
    """A link to follow: a button in HTML, the address on its own line in text."""

    label: str
    link: str
    lead: str


@dataclass(frozen=True)
class Quote:
    """Someone's words (a decline's comment), quoted."""

    text: str


@dataclass(frozen=True)
class Digests:
    """Documents and their SHA-256, to check them against later."""

    rows: tuple[tuple[str, str], ...]
    """(what, SHA-256) pairs."""


Block = Text | Items | Button | Quote | Digests

_BODY_STYLE = (
    "margin:0;padding:1em;max-width:40em;font-family:Arial,Helvetica,sans-serif;"
    "font-size:15px;line-height:1.5;color:#1a1a1a;background:#ffffff"
)
_BUTTON_STYLE = (
    "display:inline-block;padding:0.7em 1.4em;background:#0b4f8a;color:#ffffff;"
    "font-weight:bold;text-decoration:none;border-radius:4px"
)
_QUOTE_STYLE = "margin:1em 0;padding:0.5em 1em;border-left:4px solid #888;background:#f4f4f4"


def _text_of(block: Block) -> list[str]:
    if isinstance(block, Text):
        return [block.text, ""]
    if isinstance(block, Items):
        return [*(f"  {line.describe()}" for line in block.lines), ""]
    if isinstance(block, Button):
        return [block.lead, block.link, ""]
    if isinstance(block, Quote):
        return [*(f"  > {line}" for line in block.text.splitlines()), ""]
    return [*(f"  {what}: {digest}" for what, digest in block.rows), ""]


def _html_item(line: ExtractLine) -> str:
    dnr = f' <span style="color:#555">{html.escape(line.dnr)}</span>' if line.dnr else ""
    flag = ""
    if line.immediate and not line.kind.is_protocol:
        flag = ' <strong style="color:#a4000f">(omedelbar justering)</strong>'
    label = html.escape(line.label)
    return f"<li><strong>{label}</strong>{dnr} {html.escape(line.title)}{flag}</li>"


def _html_of(block: Block) -> str:
    e = html.escape
    if isinstance(block, Text):
        inner = f"<strong>{e(block.text)}</strong>" if block.strong else e(block.text)
        return f"<p>{inner}</p>"
    if isinstance(block, Items):
        items = "\n".join(_html_item(line) for line in block.lines)
        return f'<ul style="padding-left:1.2em">\n{items}\n</ul>'
    if isinstance(block, Button):
        link = e(block.link)
        return (
            f"<p>{e(block.lead)}</p>\n"
            f'<p style="margin:1em 0 1.5em"><a href="{link}" style="{_BUTTON_STYLE}">'
            f"{e(block.label)}</a></p>\n"
            f'<p style="font-size:90%;color:#444">Fungerar inte knappen? Kopiera länken:<br>\n'
            f'<a href="{link}" style="color:#0b4f8a;word-break:break-all">{link}</a></p>'
        )
    if isinstance(block, Quote):
        return f'<blockquote style="{_QUOTE_STYLE}">{e(block.text)}</blockquote>'.replace(
            "\n", "<br>"
        )
    rows = "".join(
        f"<li>{e(what)}: <code style='word-break:break-all'>{digest}</code></li>"
        for what, digest in block.rows
    )
    return f'<ul style="padding-left:1.2em;font-size:90%">{rows}</ul>'


class Composed:
    """``text()`` and ``html()`` from one list of blocks (a greeting of ``to`` by name,
    then the message's :meth:`body`) and a short English summary (:meth:`english`),
    which a message defines."""

    to: Person

    def subject(self) -> str:
        raise NotImplementedError

    def body(self) -> list[Block]:
        raise NotImplementedError

    def blocks(self) -> list[Block]:
        return [Text(f"Hej {self.to.name},"), *self.body()]

    def english(self) -> str:
        raise NotImplementedError

    def text(self) -> str:
        lines = [line for block in self.blocks() for line in _text_of(block)]
        return "\n".join([*lines, f"({self.english()})"]) + "\n"

    def html(self) -> str:
        """The same message as :meth:`text`, as a self-contained HTML page."""
        body = "\n".join(_html_of(block) for block in self.blocks())
        return f"""<!DOCTYPE html>
<html lang="sv">
<head><meta charset="utf-8"><title>{html.escape(self.subject())}</title></head>
<body style="{_BODY_STYLE}">
{body}
<p lang="en" style="font-size:85%;color:#666">({html.escape(self.english())})</p>
</body>
</html>
"""


def count_of(lines: Sequence[ExtractLine]) -> str:
    """What a message is about, for its subject: "protokollet och 3 protokollsutdrag",
    "protokollsutdrag" (one), "2 protokollsutdrag"."""
    extracts = sum(1 for line in lines if not line.kind.is_protocol)
    protocols = len(lines) - extracts
    parts = []
    if protocols:
        parts.append("protokollet" if protocols == 1 else f"{protocols} protokoll")
    if extracts:
        parts.append("protokollsutdrag" if extracts == 1 else f"{extracts} protokollsutdrag")
    return " och ".join(parts)
