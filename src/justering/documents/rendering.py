"""Drafting: render the meeting's protocol and each paragraph's protocol extract (PDF).

Both are A4, one page or more, each page with a header (municipality, "PROTOKOLL"
or "PROTOKOLLSUTDRAG", body, meeting date, place, page "1 (2)") and the footer
boxes of :mod:`justering.documents.layout`, whose area under the caption stays empty
for the signature stamps on the last page; on every other page it says where the
signatures are ("Signeras på sista sidan"), so that a reader used to initialled
pages does not take an empty box for a missing signature. Body text never comes
closer to the bottom edge than :data:`justering.documents.layout.BODY_BOTTOM_MM`.

An extract has the chair's, the adjusters' and the certifier's boxes; a protocol
the chair's and the adjusters' (it is justered, not certified). Every text is true
before and after the signatures: a paragraph under omedelbar justering *is
justered at once* (:data:`IMMEDIATE_NOTE`), never "is justered" before anyone signed.

The output is deterministic: the same meeting, paragraphs and version give the
same bytes, so redrafting an unchanged version is idempotent.

Speed: the fonts are embedded from a Latin cut where they can be
(:mod:`justering.documents.fonts`). Lines are broken here rather than with
fpdf2's ``multi_cell``, whose line breaking is quadratic in the line length.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from fpdf import FPDF

from justering.documents import layout
from justering.documents.fonts import FONT_FAMILY, add_fonts, drawable, one_line
from justering.model.minutes import Paragraph
from justering.model.roles import JUSTERING_ROLES, Role

if TYPE_CHECKING:
    from justering.model.meeting import Meeting

__all__ = [
    "DOCUMENT_TYPE",
    "IMMEDIATE_HEADING",
    "IMMEDIATE_NOTE",
    "PRODUCER",
    "PROTOCOL_ROLES",
    "PROTOCOL_TYPE",
    "SIGNED_ON_LAST_PAGE",
    "extract_title",
    "number_pages",
    "protocol_title",
    "render_extract",
    "render_protocol",
]

PRODUCER = "justering"
"""The ``/Producer`` and ``/Creator`` of every drafted extract."""

DOCUMENT_TYPE = "PROTOKOLLSUTDRAG"
PROTOCOL_TYPE = "PROTOKOLL"
IMMEDIATE_NOTE = "Paragrafen justeras omedelbart, för sig (5 kap. 70 § kommunallagen)"
"""Under the § of a paragraph under omedelbar justering: true before and after it is signed."""
IMMEDIATE_HEADING = "Omedelbart justerade paragrafer"
"""The first line of the small protocol of the paragraphs under omedelbar justering."""
SIGNED_ON_LAST_PAGE = "Signeras på sista sidan"
"""In the footer boxes of every page but the last: where the signatures are."""
PROTOCOL_ROLES: tuple[Role, ...] = JUSTERING_ROLES
"""The footer boxes of a protocol: the chair and the adjusters justera it."""

_TEXT = ("", 10.5, 5.2)
"""(style, size in pt, line height in mm) of the body text."""
_HEADING = ("B", 11.0, 6.0)
_TITLE = ("B", 13.0, 6.5)
_LABEL = ("B", 14.0, 7.0)
_DNR = ("", 10.5, 6.0)
_KEEP_WITH_HEADING = 2
"""Lines of text that go to the next page together with their heading."""
_KEEP_WITH_LABEL_MM = _LABEL[2] + _DNR[2] + _TITLE[2] + 3 * _TEXT[2]
"""A paragraph of a protocol starts on a new page unless this much of it fits."""
_PARAGRAPH_GAP_MM = 2.6
_SECTION_GAP_MM = 3.0
_BETWEEN_PARAGRAPHS_MM = 9.0
_TAB_STOP_MM = 12.5
_CAPTION_SIZE_PT = 7.5
_HEADER_COLUMN_MM = 105.0
"""Left edge of the header's middle column (document type, date)."""
_PAGE_NUMBER_WIDTH_MM = 25.0
_HEADER_RULE_MM = 18.0
"""Distance of the header's rule below the top margin; the body starts 8 mm lower."""
_NOTE_GREY = (90, 90, 90)

_WORDS = re.compile(r"( *)([^ ]+)")


def render_extract(meeting: Meeting, paragraph: Paragraph, *, version: int = 1) -> bytes:
    """The protocol extract of ``paragraph`` as PDF bytes.

    ``version`` counts drafts of the same paragraph (a declined extract is
    redrafted as version 2 …); versions after the first say "Version N" in
    the header of every page.
    """
    document = _MinutesDocument(
        meeting,
        (paragraph,),
        version,
        document_type=DOCUMENT_TYPE,
        roles=layout.FOOTER_ROLES,
        title=extract_title(paragraph),
        subject=f"Protokollsutdrag {meeting.body.name} {meeting.date.isoformat()}",
    )
    document.write_paragraphs()
    return bytes(document.output())


def render_protocol(
    meeting: Meeting,
    paragraphs: Sequence[Paragraph],
    *,
    immediate: bool = False,
    version: int = 1,
) -> bytes:
    """The protocol of ``paragraphs`` (their current texts, in the meeting's order) as
    PDF bytes, with the chair's and the adjusters' footer boxes. ``immediate``: the
    small protocol of the paragraphs under omedelbar justering, which says so first.
    Versions after the first (a paragraph was redrafted) say "Version N" on every page."""
    if not paragraphs:
        raise ValueError("a protocol has at least one paragraph")
    title = protocol_title(meeting, immediate=immediate)
    document = _MinutesDocument(
        meeting,
        tuple(paragraphs),
        version,
        document_type=PROTOCOL_TYPE,
        roles=PROTOCOL_ROLES,
        title=title,
        subject=title,
        heading=IMMEDIATE_HEADING if immediate else None,
    )
    document.write_paragraphs()
    return bytes(document.output())


def extract_title(paragraph: Paragraph) -> str:
    """The document title: ``§ 94 KFKS 2012/577-001 <title>`` (no dnr when there is none)."""
    parts = (paragraph.label, paragraph.dnr, paragraph.title)
    return one_line(" ".join(part for part in parts if part))


def protocol_title(meeting: Meeting, *, immediate: bool = False) -> str:
    """``Protokoll Kommunstyrelsens arbetsutskott 2014-08-19`` (``…, omedelbart justerade
    paragrafer`` for the small protocol)."""
    what = f"Protokoll {meeting.body.name} {meeting.date.isoformat()}"
    return one_line(what + (f", {IMMEDIATE_HEADING.lower()}" if immediate else ""))


def number_pages(document: FPDF) -> None:
    """Write "n (total)" at the top right of every page, once the total is known.

    Call it after the last page. (fpdf2's page-total alias reserves a fixed
    width, which would shift the number off the right margin, and would replace
    "{nb}" in the text too.) The document must use :func:`add_fonts`.
    """
    last_page = document.page
    total = len(document.pages)
    right = layout.PAGE_WIDTH_MM - layout.MARGIN_RIGHT_MM
    document.set_font(FONT_FAMILY, "", 10)
    for number in range(1, total + 1):
        document.page = number
        # fpdf2 tracks whether the font was set for the document, not per page.
        document.current_font_is_set_on_page = False
        document.set_xy(right - _PAGE_NUMBER_WIDTH_MM, layout.MARGIN_TOP_MM)
        document.cell(_PAGE_NUMBER_WIDTH_MM, 5, f"{number} ({total})", align="R")
    document.page = last_page


def _mark_signature_pages(document: FPDF, roles: Sequence[Role]) -> None:
    """In the boxes of every page but the last, say that the signatures are on the
    last page (where the stamps go, :mod:`justering.pades.sign`)."""
    last_page, margin = document.page, document.b_margin
    document.set_auto_page_break(False)  # the boxes are below the body's bottom margin
    document.set_font(FONT_FAMILY, "", _CAPTION_SIZE_PT)
    document.set_text_color(*_NOTE_GREY)
    for number in range(1, len(document.pages)):
        document.page = number
        document.current_font_is_set_on_page = False
        for role in roles:
            box = layout.footer_box(role)
            document.set_xy(box.x, box.y + layout.FOOTER_CAPTION_MM)
            document.cell(
                box.width,
                box.height - layout.FOOTER_CAPTION_MM,
                SIGNED_ON_LAST_PAGE,
                align="C",
            )
    document.set_text_color(0)
    document.set_auto_page_break(True, margin=margin)
    document.page = last_page


class _MinutesDocument(FPDF):
    """fpdf2 document of paragraphs of the minutes, with the header and the footer
    boxes of ``roles`` on every page."""

    def __init__(
        self,
        meeting: Meeting,
        paragraphs: tuple[Paragraph, ...],
        version: int,
        *,
        document_type: str,
        roles: Sequence[Role],
        title: str,
        subject: str,
        heading: str | None = None,
    ) -> None:
        if version < 1:
            raise ValueError(f"a document version must be 1 or more, not {version}")
        super().__init__(orientation="P", unit="mm", format="A4")
        self._meeting = meeting
        self._paragraphs = paragraphs
        self._version = version
        self._document_type = document_type
        self._roles = tuple(roles)
        self._heading = heading
        add_fonts(self, _drawn_texts(meeting, paragraphs))
        self.set_margins(layout.MARGIN_LEFT_MM, layout.MARGIN_TOP_MM, layout.MARGIN_RIGHT_MM)
        self.set_auto_page_break(True, margin=layout.BODY_BOTTOM_MM)
        self.c_margin = 0  # text starts exactly at the margins and box edges given
        self.alias_nb_pages("")  # no alias: page totals are written by number_pages instead
        self.set_lang("sv")
        self.set_title(title)
        self.set_author(one_line(meeting.municipality))
        self.set_subject(one_line(subject))
        self.set_creator(PRODUCER)
        self.set_producer(PRODUCER)
        self.set_creation_date(dt.datetime.combine(meeting.date, dt.time(), tzinfo=dt.UTC))

    # -- page furniture (fpdf2 calls these on every page) ------------------------------

    def header(self) -> None:
        meeting = self._meeting
        top = layout.MARGIN_TOP_MM
        left = layout.MARGIN_LEFT_MM
        right = layout.PAGE_WIDTH_MM - layout.MARGIN_RIGHT_MM
        left_width = _HEADER_COLUMN_MM - left - 2
        middle_width = right - _HEADER_COLUMN_MM - _PAGE_NUMBER_WIDTH_MM

        self.set_font(FONT_FAMILY, "B", 11)
        self._text_at(left, top, left_width, 5, one_line(meeting.municipality).upper())
        self._text_at(_HEADER_COLUMN_MM, top, middle_width, 5, self._document_type)
        if self._version > 1:
            self.set_font(FONT_FAMILY, "B", 10)
            version = f"Version {self._version}"
            self._text_at(
                right - _PAGE_NUMBER_WIDTH_MM, top + 6, _PAGE_NUMBER_WIDTH_MM, 5, version, "R"
            )

        self.set_font(FONT_FAMILY, "", 10)
        self._text_at(left, top + 6, left_width, 5, one_line(meeting.body.name))
        self._text_at(left, top + 11, left_width, 5, one_line(meeting.place))
        self._text_at(_HEADER_COLUMN_MM, top + 11, middle_width, 5, meeting.date.isoformat())
        self.set_font(FONT_FAMILY, "", _CAPTION_SIZE_PT)
        self._text_at(_HEADER_COLUMN_MM, top + 7, middle_width, 4, "Sammanträdesdatum")

        self.set_line_width(0.3)
        self.line(left, top + _HEADER_RULE_MM, right, top + _HEADER_RULE_MM)
        self.set_xy(left, top + _HEADER_RULE_MM + 8)

    def footer(self) -> None:
        self.set_line_width(0.3)
        self.set_font(FONT_FAMILY, "", _CAPTION_SIZE_PT)
        for role in self._roles:
            box = layout.footer_box(role)
            caption_bottom = box.y + layout.FOOTER_CAPTION_MM
            self.rect(box.x, box.y, box.width, box.height)
            self.line(box.x, caption_bottom, box.x + box.width, caption_bottom)
            self._text_at(
                box.x + 1.5, box.y, box.width - 3, layout.FOOTER_CAPTION_MM, role.footer_label
            )

    def _text_at(self, x: float, y: float, w: float, h: float, text: str, align: str = "L") -> None:
        self.set_xy(x, y)
        self.cell(w, h, text, align=align)

    # -- the paragraphs ----------------------------------------------------------------

    def write_paragraphs(self) -> None:
        """Add the first page and write the paragraphs; pages break automatically."""
        self.add_page()
        if self._heading is not None:
            self._write(_TITLE, self._heading)
            self.ln(_SECTION_GAP_MM)
        for index, paragraph in enumerate(self._paragraphs):
            if index:
                self.ln(_BETWEEN_PARAGRAPHS_MM)
                if self.will_page_break(_KEEP_WITH_LABEL_MM):
                    self.add_page()  # a paragraph never starts at the foot of a page
            self._write_paragraph(paragraph)
        number_pages(self)
        _mark_signature_pages(self, self._roles)

    def _write_paragraph(self, paragraph: Paragraph) -> None:
        self._write(_LABEL, paragraph.label)
        if paragraph.dnr:
            self._write(_DNR, f"Dnr {one_line(paragraph.dnr)}")
        if paragraph.immediate:
            self._write(_HEADING, IMMEDIATE_NOTE)
        self.ln(_SECTION_GAP_MM)
        self._write(_TITLE, one_line(paragraph.title))
        for section in paragraph.sections:
            self.ln(_SECTION_GAP_MM)
            if section.heading is not None and section.heading.strip():
                if self.will_page_break(_HEADING[2] + 1 + _KEEP_WITH_HEADING * _TEXT[2]):
                    self.add_page()  # a heading never ends a page on its own
                self._write(_HEADING, one_line(section.heading))
                self.ln(1)
            self._write_text(section.text)

    def _write_text(self, text: str) -> None:
        """Lines as they are; a run of blank lines becomes one paragraph gap."""
        gap_pending = False
        wrote_any = False
        for line in drawable(text).split("\n"):
            if not line.strip():
                gap_pending = wrote_any
                continue
            if gap_pending:
                self.ln(_PARAGRAPH_GAP_MM)
                gap_pending = False
            self._write(_TEXT, line.rstrip())
            wrote_any = True

    def _write(self, font: tuple[str, float, float], text: str) -> None:
        """One logical line, wrapped at the margins; tabs go to the next tab stop."""
        style, size, line_height = font
        self.set_font(FONT_FAMILY, style, size)
        if "\t" in text:
            if self._write_tabulated(text, line_height):
                return
            text = text.replace("\t", " ")
        for line in self._wrap(text):
            self.cell(0, line_height, line, new_x="LMARGIN", new_y="NEXT")

    def _write_tabulated(self, text: str, line_height: float) -> bool:
        """Draw a line with tabs, each part at the next tab stop (every 12.5 mm).

        Returns False, drawing nothing, when the parts do not fit on one line.
        """
        placed: list[tuple[float, str]] = []
        x = 0.0
        for index, part in enumerate(text.split("\t")):
            if index:
                x = (x // _TAB_STOP_MM + 1) * _TAB_STOP_MM
            placed.append((x, part))
            x += self._width(part)
        if x > self.epw:
            return False
        if self.will_page_break(line_height):
            self.add_page()
        y = self.y
        for offset, part in placed:
            if part:
                self._text_at(self.l_margin + offset, y, self._width(part), line_height, part)
        self.set_xy(self.l_margin, y + line_height)
        return True

    def _wrap(self, text: str) -> Iterator[str]:
        """Greedy line breaking at spaces; a word wider than the line is cut."""
        available = self.epw
        line, width = "", 0.0
        for match in _WORDS.finditer(text):
            gap, word = match.groups()
            gap_width = self._width(gap) if gap else 0.0
            word_width = self._width(word)
            if line and width + gap_width + word_width > available:
                yield line
                line, width, gap, gap_width = "", 0.0, "", 0.0
            line, width = line + gap, width + gap_width  # indentation of the text is kept
            while width + word_width > available:
                head = self._longest_prefix(word, available - width)
                yield line + head
                line, width = "", 0.0
                word = word[len(head) :]
                word_width = self._width(word)
            line, width = line + word, width + word_width
        if line.strip():
            yield line

    def _width(self, text: str) -> float:
        """Width of ``text`` in the current font, in mm.

        Same as ``get_string_width`` for this document (no stretching, spacing or
        markdown), without its per-call copy of the graphics state.
        """
        font = self.current_font
        assert font is not None
        return float(font.get_text_width(text, self.font_size_pt, None)[1]) / self.k

    def _longest_prefix(self, word: str, available: float) -> str:
        """The longest start of ``word`` (at least one character) that fits in ``available``."""
        end = 1
        while end < len(word) and self._width(word[: end + 1]) <= available:
            end += 1
        return word[:end]


def _drawn_texts(meeting: Meeting, paragraphs: Sequence[Paragraph]) -> list[str]:
    """Every text of the document that is drawn."""
    texts = [meeting.municipality, meeting.body.name, meeting.place]
    for paragraph in paragraphs:
        texts += [paragraph.title, paragraph.dnr or ""]
        for section in paragraph.sections:
            texts += [section.heading or "", section.text]
    return texts
