"""The protocol model (paragraphs of the minutes) and the parser for the
meeting system's text export.

The export (see ``tests/data/protocols`` and the bundled sample) is plain
text: each paragraph starts at a line ``§ N``, followed by an optional
diarienummer line, the title line, and the text, in which known headings
(:data:`SECTION_HEADINGS`) standing alone on a line start sections. The
page footer (``Ordförandes signatur⇥Justerandes signatur⇥Utdragsbestyrkande``)
repeats on every page and is dropped. Everything else is kept as written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from justering.errors import ProtocolTextError
from justering.model.roles import Role

__all__ = [
    "MAX_PROTOCOL_TEXT_BYTES",
    "MAX_TITLE_LENGTH",
    "SECTION_HEADINGS",
    "Paragraph",
    "Section",
    "declares_immediate",
    "parse_protocol_text",
    "parse_sections",
    "sections_to_text",
]

MAX_PROTOCOL_TEXT_BYTES = 5 * 1024 * 1024
"""Largest text export accepted (UTF-8 bytes); a whole protocol is far smaller."""

MAX_TITLE_LENGTH = 500
"""Longest paragraph title accepted (characters); also the manifest's limit for one-line fields."""

SECTION_HEADINGS: tuple[str, ...] = (
    "Sammanfattning",
    "Förslag till beslut",
    "Beslut",
    "Ärende",
    "Ärendet",
    "Bakgrund",
    "Handlingar i ärendet",
    "Ärendets tidigare behandling",
    "Tidigare behandling",
    "Jäv",
    "Yrkande",
    "Yrkanden",
    "Propositionsordning",
    "Beslutsgång",
    "Omröstning",
    "Omröstningsresultat",
    "Reservation",
    "Reservationer",
    "Protokollsanteckning",
    "Protokollsanteckningar",
    "Särskilt yttrande",
    "Särskilda yttranden",
    "Omedelbar justering",
    "Expedieras",
    "Beslutet skickas till",
)
"""Lines that start a section when they stand alone on a line (exact match)."""

_HEADINGS = frozenset(SECTION_HEADINGS)

_FOOTER = re.compile(
    r"\s*" + r"\s+".join(re.escape(role.footer_label) for role in Role) + r"\s*",
)
"""The page footer of the export: the three signature box captions on one line."""

_PARAGRAPH_START = re.compile(r"§\s*(\S*)")
"""A line that is only ``§`` and at most one word: a paragraph start (or a bad one)."""

_DNR = re.compile(
    r"(?:Dnr\.?\s+)?"
    r"(?P<dnr>[A-ZÅÄÖ]{1,12}(?:[ -][A-ZÅÄÖ]{1,12})?\s+\d{4}/\d{1,6}(?:[-:.]\d{1,6})?)",
)
"""A diarienummer line, e.g. ``KFKS 2012/577-001``, ``KS 2014/12``, ``Dnr MSN 2013/221-214``."""

_IMMEDIATE = re.compile(
    r"(?<!\binte\s)(?<!\bej\s)\bomedelbart\s+justera(?:d|de|des|s|t)\b"
    r"|\bjustera(?:d|de|des|s|t)\s+omedelbart\b"
    r"|(?<!\binte\s)(?<!\bej\s)\bomedelbar\s+justering\b",
    re.IGNORECASE,
)

_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
"""Bidirectional formatting characters: they reorder what is shown, so text can read
differently on the page than in the file (Trojan Source); refused in the text."""
_ALLOWED_CONTROLS = frozenset("\t\n")


@dataclass(frozen=True)
class Section:
    """A headed part of a paragraph (``Beslut``, ``Ärende`` …).

    ``heading`` is ``None`` for text that comes before the first heading (for
    example a subtitle such as "Lägesrapport augusti 2014"). ``text`` keeps the
    original lines; paragraphs of text are separated by one blank line.
    """

    heading: str | None
    text: str


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of the minutes: what becomes one protocol extract."""

    number: int
    dnr: str | None
    title: str
    sections: tuple[Section, ...]
    immediate: bool = False
    """Omedelbart justerad: justered at the meeting itself."""

    @property
    def label(self) -> str:
        """``§ 94``"""
        return f"§ {self.number}"

    @property
    def text(self) -> str:
        """The sections as text (headings on their own lines); ``parse_sections`` inverts it."""
        return sections_to_text(self.sections)


def parse_protocol_text(text: str) -> tuple[Paragraph, ...]:
    """Split a text export into paragraphs. Raises ``ProtocolTextError``.

    Line numbers in errors are 1-based lines of ``text``. The diarienummer is
    kept without a leading ``Dnr`` label; in it and in the title, runs of
    whitespace (tabs too) are one space, as in the manifest's one-line fields.
    """
    lines = _clean_lines(text)
    starts = [i for i, (_, line) in enumerate(lines) if _PARAGRAPH_START.fullmatch(line.strip())]
    first_text = next((i for i, (_, line) in enumerate(lines) if line), None)
    if first_text is None:
        raise ProtocolTextError(1, "the text is empty; expected paragraphs starting with '§ N'")
    if not starts or first_text < starts[0]:
        raise ProtocolTextError(
            lines[first_text][0], "text before the first paragraph; expected a line '§ N'"
        )
    paragraphs: list[Paragraph] = []
    seen: dict[int, int] = {}
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        paragraph = _parse_paragraph(lines[start:end])
        line_no = lines[start][0]
        if paragraph.number in seen:
            raise ProtocolTextError(
                line_no,
                f"duplicate paragraph {paragraph.label} (first at line {seen[paragraph.number]})",
            )
        seen[paragraph.number] = line_no
        paragraphs.append(paragraph)
    return tuple(paragraphs)


def parse_sections(text: str) -> tuple[Section, ...]:
    """Split the text of one paragraph (everything after its title) into sections.

    The same rules as :func:`parse_protocol_text`: normalised, footer lines
    dropped, :data:`SECTION_HEADINGS` start sections. Raises ``ProtocolTextError``.
    """
    return _sections(_clean_lines(text))


def sections_to_text(sections: Iterable[Section]) -> str:
    """The inverse of :func:`parse_sections`: headings and texts separated by blank lines."""
    parts: list[str] = []
    for section in sections:
        if section.heading is not None:
            parts.append(section.heading)
        if section.text:
            parts.append(section.text)
    return "\n\n".join(parts)


def declares_immediate(sections: Iterable[Section]) -> bool:
    """Whether the text says the paragraph is omedelbart justerad.

    True for a heading ``Omedelbar justering`` or phrases such as "förklaras
    omedelbart justerad", "justeras omedelbart"; a negation ("inte omedelbart
    justerad") does not count.
    """
    for section in sections:
        if section.heading == "Omedelbar justering":
            return True
        if _IMMEDIATE.search(section.text):
            return True
    return False


def _clean_lines(text: str) -> list[tuple[int, str]]:
    """Validate and normalise ``text``; return (1-based line number, line) pairs.

    Lines are NFC, without byte order marks and trailing whitespace; footer lines and the
    whitespace-only lines next to them are dropped.
    """
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_PROTOCOL_TEXT_BYTES:
        raise ProtocolTextError(
            1, f"the text is {size} bytes; the limit is {MAX_PROTOCOL_TEXT_BYTES} bytes"
        )
    # U+FEFF is a byte order mark (at the start, or where files were joined), never text;
    # dropping only the first would make parse_sections(sections_to_text(...)) drift.
    text = text.replace("\ufeff", "").replace("\r\n", "\n").replace("\r", "\n")
    raw = unicodedata.normalize("NFC", text).split("\n")
    for number, line in enumerate(raw, start=1):
        for char in line:
            if char in _ALLOWED_CONTROLS:
                continue
            if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
                raise ProtocolTextError(
                    number, f"control character U+{ord(char):04X} is not allowed in the text"
                )
            if char in _BIDI_CONTROLS:
                raise ProtocolTextError(
                    number,
                    f"U+{ord(char):04X} ({unicodedata.name(char).lower()}) is not allowed in "
                    "the text: it changes the order in which the text is shown",
                )
    footer = {i for i, line in enumerate(raw) if _FOOTER.fullmatch(line)}
    dropped = set(footer)
    for i in footer:
        for step in (-1, 1):
            j = i + step
            while 0 <= j < len(raw) and j not in footer and raw[j] and not raw[j].strip():
                dropped.add(j)
                j += step
    return [(i + 1, line.rstrip()) for i, line in enumerate(raw) if i not in dropped]


def _parse_paragraph(lines: Sequence[tuple[int, str]]) -> Paragraph:
    """Parse the lines of one paragraph; ``lines[0]`` is its ``§ N`` line."""
    line_no, first = lines[0]
    match = _PARAGRAPH_START.fullmatch(first.strip())
    assert match is not None
    token = match.group(1)
    if not token:
        raise ProtocolTextError(line_no, "'§' without a paragraph number")
    if not (token.isascii() and token.isdigit() and len(token) <= 6) or int(token) < 1:
        raise ProtocolTextError(
            line_no, f"'§ {token}': the paragraph number must be a whole number from 1"
        )
    number = int(token)
    rest = lines[1:]
    dnr: str | None = None
    position = _skip_blank(rest, 0)
    if position < len(rest):
        dnr_match = _DNR.fullmatch(rest[position][1].strip())
        if dnr_match:
            dnr = " ".join(dnr_match.group("dnr").split())
            position = _skip_blank(rest, position + 1)
    # One line as the manifest's one-line fields: whitespace runs (tabs too) as one space.
    title = "" if position >= len(rest) else " ".join(rest[position][1].split())
    if title in _HEADINGS or not title:
        raise ProtocolTextError(line_no, f"§ {number} has no title")
    if len(title) > MAX_TITLE_LENGTH:
        raise ProtocolTextError(
            rest[position][0], f"the title is longer than {MAX_TITLE_LENGTH} characters"
        )
    sections = _sections(rest[position + 1 :])
    return Paragraph(number, dnr, title, sections, declares_immediate(sections))


def _skip_blank(lines: Sequence[tuple[int, str]], position: int) -> int:
    while position < len(lines) and not lines[position][1]:
        position += 1
    return position


def _sections(lines: Iterable[tuple[int, str]]) -> tuple[Section, ...]:
    sections: list[Section] = []
    heading: str | None = None
    body: list[str] = []
    for _, line in lines:
        if line in _HEADINGS:
            if heading is not None or any(body):
                sections.append(Section(heading, _join(body)))
            heading, body = line, []
        else:
            body.append(line)
    if heading is not None or any(body):
        sections.append(Section(heading, _join(body)))
    return tuple(sections)


def _join(lines: list[str]) -> str:
    """Join lines, without leading or trailing blank lines and with blank runs as one."""
    kept: list[str] = []
    for line in lines:
        if line or (kept and kept[-1]):
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept)
