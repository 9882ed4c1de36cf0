"""The certificate of completion ("Intyg om genomförd signering"): a PDF for people.

One per archived extract and per archived protocol, stored in its bundle next to
the signed PDF. It tells an archivist, without any tool, what was signed (the
meeting, the § or the protocol, the PDF's SHA-256), the justering (when, whether
after its last day, the announcement, and for an extract the justered protocol it
is a copy of: its SHA-256 and archive key), who signed it in which role and when
(Swedish local time, with the zone), every event of the trail with its hash, what
the verification found, and how to check all of it independently. It is a summary,
not evidence: it is not signed, and what it says can be checked against the signed
PDF and the hash-chained trail.

The text is Swedish, with short English subtitles. The output is
deterministic: the same inputs give the same bytes (the creation date is
``issued_at``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager

from fpdf import FPDF
from fpdf.enums import TableBordersLayout, WrapMode
from fpdf.fonts import FontFace
from fpdf.table import Table

from justering.archive.completion_text import (
    PDFSIG_CAVEAT,
    SHORT_HASH_CHARS,
    CompletionSubject,
    JusteringFacts,
    abridged,
    detail_text,
    role_name,
    short,
    timestamp_line,
    verification_intro,
    verification_steps,
    yes_no,
)
from justering.documents import layout
from justering.documents.fonts import FONT_FAMILY, add_fonts, one_line
from justering.documents.rendering import PRODUCER, number_pages
from justering.model.calendar import local_minute, local_second
from justering.model.meeting import Meeting
from justering.model.trail import TrailEvent, chain_problems
from justering.pades.assurance import CertificateAssurance
from justering.pades.validation_results import (
    DocumentTimestampReport,
    ExtractValidation,
    SignatureReport,
)

__all__ = [
    "ALL_CHECKS_PASSED",
    "SHORT_HASH_CHARS",
    "SUBTITLE",
    "TITLE",
    "render_completion",
]

TITLE = "Intyg om genomförd signering"
SUBTITLE = "Certificate of completion"
ALL_CHECKS_PASSED = "Alla kontroller godkända"
"""Hex digits shown of a shortened hash (followed by "…")."""


_MARGIN_BOTTOM_MM = 20.0
_FOOTER_Y_MM = layout.PAGE_HEIGHT_MM - 14.0
_TABLE_SIZE_PT = 7.5
_TEXT_SIZE_PT = 9.5
_GREY = (90, 90, 90)
_RULE_GREY = (150, 150, 150)
_HEADING_FILL = (230, 230, 230)
_BANNER_FILL = (232, 243, 232)
_PROBLEM_FILL = (250, 228, 228)
_SIGNATURE_COLUMNS = (50.0, 30.0, 56.0, 16.0, 18.0)
_TRAIL_COLUMNS = (7.0, 33.0, 28.0, 31.0, 27.0, 22.0, 22.0)
_TRAIL_ROW_MM = 5.6
_CELL_PADDING_MM = 1.2
"""Longer detail values (a redraft's whole corrected text) are shortened in the
certificate; trail.json beside it has them whole."""
_FACT_COLUMNS = (48.0, 122.0)
_HASH_SIZE_PT = 7.5
"""Small enough that any SHA-256 in hex fits on one line of its cell: 64 of the
widest hex character (a digit, 0.636 em in DejaVu Sans) are 107 mm at 7.5 pt."""
_DOCUMENT_TIMESTAMP_COLUMNS = (60.0, 86.0, 24.0)


def render_completion(
    meeting: Meeting,
    subject: CompletionSubject,
    events: Sequence[TrailEvent],
    validation: ExtractValidation,
    pdf_sha256: str,
    *,
    issued_at: dt.datetime,
) -> bytes:
    """The certificate of completion of ``subject`` (an extract or a protocol of
    ``meeting``) as PDF bytes.

    ``events`` is its trail as archived, ``validation`` the result of validating the
    signed PDF whose SHA-256 is ``pdf_sha256``; ``issued_at`` (timezone-aware) is
    the time the certificate states and its creation date.
    """
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    document = _CompletionDocument(meeting, subject, issued_at)
    add_fonts(document, _shown_texts(meeting, subject, events, validation))
    document.add_page()
    document.write_title()
    document.write_facts(pdf_sha256, JusteringFacts.from_events(events))
    document.write_signatures(validation.signatures)
    document.write_document_timestamps(validation.document_timestamps)
    document.write_trail(events)
    document.write_result(validation, chain_problems(events))
    document.write_how_to_verify(subject.pdf_name, timestamped=_has_timestamps(validation))
    number_pages(document)
    return bytes(document.output())


def _shown_texts(
    meeting: Meeting,
    subject: CompletionSubject,
    events: Sequence[TrailEvent],
    validation: ExtractValidation,
) -> list[str]:
    """Every text from the inputs that the certificate draws (to choose the fonts)."""
    texts = [meeting.municipality, meeting.body.name, meeting.body.code, subject.title]
    texts += [subject.dnr or ""]
    texts += [signature.signer_name for signature in validation.signatures]
    texts += [_identification_line(signature.assurance) for signature in validation.signatures]
    texts += [timestamp.field_name for timestamp in validation.document_timestamps]
    texts += list(validation.problems)
    for event in events:
        texts += [event.actor, event.role or "", *event.detail.keys(), *event.detail.values()]
    return texts


def _has_timestamps(validation: ExtractValidation) -> bool:
    return bool(validation.document_timestamps) or any(
        signature.timestamped_at is not None for signature in validation.signatures
    )


def _identification_line(assurance: CertificateAssurance) -> str:
    """How the certificate says its signer was identified (identified by)."""
    line = f"Identifierad: {assurance.swedish}"
    if assurance.identity_provider:
        line += f", hos {assurance.identity_provider}"
    if assurance.authenticated_at is not None:
        line += f", {local_second(assurance.authenticated_at)}"
    return line


class _CompletionDocument(FPDF):
    """fpdf2 document with the certificate's header and footer on every page."""

    def __init__(
        self, meeting: Meeting, subject: CompletionSubject, issued_at: dt.datetime
    ) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self._meeting = meeting
        self._subject = subject
        self._issued_at = issued_at
        self.set_margins(layout.MARGIN_LEFT_MM, layout.MARGIN_TOP_MM, layout.MARGIN_RIGHT_MM)
        self.set_auto_page_break(True, margin=_MARGIN_BOTTOM_MM)
        self.c_margin = 0  # text starts exactly at the margins and cell paddings
        self.alias_nb_pages("")  # page totals come from number_pages
        self.set_lang("sv")
        label = subject.label + (f" {one_line(subject.dnr)}" if subject.dnr else "")
        self.set_title(f"{TITLE} {label}")
        self.set_author(one_line(meeting.municipality))
        self.set_subject(
            one_line(f"{TITLE}, {meeting.body.name} {meeting.date.isoformat()} {label}")
        )
        self.set_creator(PRODUCER)
        self.set_producer(PRODUCER)
        self.set_creation_date(issued_at.astimezone(dt.UTC))

    # -- page furniture ----------------------------------------------------------------

    def header(self) -> None:
        top = layout.MARGIN_TOP_MM
        self.set_xy(self.l_margin, top)
        self.set_font(FONT_FAMILY, "B", 10)
        self.cell(120, 5, TITLE.upper())
        self.set_xy(self.l_margin, top + 5)
        self._small(SUBTITLE)
        self.set_draw_color(0)
        self.set_line_width(0.3)
        self.line(self.l_margin, top + 11, self.w - self.r_margin, top + 11)
        self.set_xy(self.l_margin, top + 16)

    def footer(self) -> None:
        meeting = self._meeting
        self.set_xy(self.l_margin, _FOOTER_Y_MM)
        self.set_draw_color(*_RULE_GREY)
        self.set_line_width(0.2)
        self.line(self.l_margin, _FOOTER_Y_MM, self.w - self.r_margin, _FOOTER_Y_MM)
        text = (
            f"{one_line(meeting.body.code)} {meeting.date.isoformat()} {self._subject.label} · "
            f"utfärdat {local_second(self._issued_at)} av {PRODUCER}"
        )
        self.set_xy(self.l_margin, _FOOTER_Y_MM + 1)
        self._small(text)

    def _small(self, text: str) -> None:
        """One line of small grey text at the current position, then the next line."""
        self.set_font(FONT_FAMILY, "", 7.5)
        self.set_text_color(*_GREY)
        self.cell(0, 4, text, new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)

    # -- the sections ------------------------------------------------------------------

    def write_title(self) -> None:
        self.set_font(FONT_FAMILY, "B", 16)
        self.cell(0, 8, TITLE, new_x="LMARGIN", new_y="NEXT")
        self._small(f"{SUBTITLE}: who signed what, in which role, when, and how to verify it")
        self.ln(3)

    def write_facts(self, pdf_sha256: str, justering: JusteringFacts | None) -> None:
        meeting, subject = self._meeting, self._subject
        facts = [
            ("Kommun", "Municipality", one_line(meeting.municipality)),
            ("Organ", "Body", f"{one_line(meeting.body.name)} ({one_line(meeting.body.code)})"),
            ("Sammanträdesdatum", "Meeting date", meeting.date.isoformat()),
        ]
        if subject.is_protocol:
            facts.append(("Dokument", "Document", f"{subject.label}, {subject.shows}"))
        else:
            facts += [
                ("Paragraf", "Paragraph", subject.label),
                ("Diarienummer", "Reference", one_line(subject.dnr) if subject.dnr else "–"),
                ("Ärende", "Title", one_line(subject.title)),
            ]
        hashes = [pdf_sha256]
        if justering is not None:
            facts += justering.rows()
            hashes.append(justering.protocol_sha256 or "")
        facts += [
            ("Intyget utfärdat", "Issued", local_second(self._issued_at)),
            ("Dokumentets SHA-256", "SHA-256 of the signed PDF", pdf_sha256),
        ]
        self.set_font(FONT_FAMILY, "", _TEXT_SIZE_PT)
        with self._table(_FACT_COLUMNS, headings=False, borders="HORIZONTAL_LINES") as table:
            for swedish, english, value in facts:
                row = table.row()
                row.cell(f"{swedish}\n{english}", style=FontFace(emphasis="BOLD"))
                hashed = any(value is digest for digest in hashes)
                row.cell(value, style=FontFace(size_pt=_HASH_SIZE_PT) if hashed else None)
        self.ln(4)

    def write_signatures(self, signatures: Sequence[SignatureReport]) -> None:
        self._heading("Underskrifter", "Signatures, in the order they were made", rows=3)
        if not signatures:
            self._paragraph_text("Dokumentet har inga underskrifter (no signatures).")
            return
        with self._table(_SIGNATURE_COLUMNS) as table:
            heading = table.row()
            for text in ("Namn", "Roll", "Signerad (svensk tid)", "Giltig", "Betrodd"):
                heading.cell(text)
            for signature in signatures:
                row = table.row()
                row.cell(one_line(signature.signer_name) or "–")
                row.cell(signature.role.swedish if signature.role else "–")
                row.cell(local_second(signature.signed_at) if signature.signed_at else "okänd")
                row.cell(yes_no(signature.intact and signature.valid))
                row.cell(yes_no(signature.trusted))
                evidence = table.row()
                evidence.cell(
                    "Certifikatets SHA-256 (fingerprint): "
                    f"{signature.certificate_fingerprint or '–'}\n"
                    + _identification_line(signature.assurance)
                    + "\n"
                    + timestamp_line(signature.timestamped_at, signature.timestamp_trusted),
                    colspan=len(_SIGNATURE_COLUMNS),
                    style=FontFace(color=_GREY),
                )
        self._small("Giltig: underskriften är korrekt och dokumentet oförändrat (valid, intact). ")
        self._small("Betrodd: certifikatet leder till CA-certifikatet ca.pem (trusted).")
        self.ln(4)

    def write_document_timestamps(self, timestamps: Sequence[DocumentTimestampReport]) -> None:
        """The PAdES-LTA document timestamps, when the PDF has any."""
        if not timestamps:
            return
        self._heading(
            "Dokumenttidsstämplar",
            "Document timestamps (PAdES-LTA) over the signatures and their validation data",
            rows=3,
        )
        with self._table(_DOCUMENT_TIMESTAMP_COLUMNS) as table:
            heading = table.row()
            for text in ("Fält", "Tid (svensk tid)", "Betrodd"):
                heading.cell(text)
            for timestamp in timestamps:
                row = table.row()
                row.cell(one_line(timestamp.field_name))
                at = timestamp.timestamped_at
                row.cell(local_second(at) if at else "okänd")
                row.cell(yes_no(timestamp.trusted))
        self.ln(4)

    def write_trail(self, events: Sequence[TrailEvent]) -> None:
        self._heading(
            "Händelseförlopp",
            f"Trail of events (hash-chained), as archived: {len(events)} events",
            rows=3,
        )
        if not events:
            self._paragraph_text("Händelseförloppet är tomt (the trail has no events).")
            return
        # Laid out with plain cells, not fpdf2's table(): one line per event, values
        # shortened to fit, so that no cell is measured and wrapped twice (the trail is
        # the longest part of the certificate, written once for every archived extract).
        heading = ("Nr", "Tid (svensk tid)", "Händelse", "Aktör", "Roll", "Dokument", "Hash")
        self._trail_row(heading, bold=True)
        for event in events:
            if self.will_page_break(_TRAIL_ROW_MM):
                self.add_page()
                self._trail_row(heading, bold=True)
            self._trail_row(
                (
                    str(event.seq),
                    local_minute(event.at, zone=True),
                    event.kind.swedish,
                    one_line(event.actor) or "–",
                    role_name(event.role),
                    short(event.document_sha256),
                    short(event.hash),
                )
            )
            details = [
                abridged(one_line(detail_text(key, value)))
                for key, value in sorted(event.detail.items())
            ]
            actor = one_line(event.actor)
            if not self._fits(actor, _TRAIL_COLUMNS[3]):  # shortened in its cell: whole here
                details.insert(0, f"aktör: {actor}")
            if details:
                self._trail_detail("; ".join(details))
        self.ln(2)
        self.set_font(FONT_FAMILY, "B", _TEXT_SIZE_PT)
        self.cell(
            0, 5, "Kedjans sista hash (last hash of the chain):", new_x="LMARGIN", new_y="NEXT"
        )
        self.set_font(FONT_FAMILY, "", 8.5)
        self.cell(0, 5, events[-1].hash or "–", new_x="LMARGIN", new_y="NEXT")
        self.ln(4)

    def write_result(self, validation: ExtractValidation, chain: Sequence[str]) -> None:
        problems = [*validation.problems, *(f"trail: {problem}" for problem in chain)]
        self._heading("Verifieringsresultat", "Verification result", rows=2)
        if not problems:
            self._banner(
                f"{ALL_CHECKS_PASSED} (all checks passed): {len(validation.signatures)} "
                "underskrifter i rätt ordning, händelsekedjan obruten.",
                fill=_BANNER_FILL,
            )
        else:
            self._banner(
                f"Kontrollen fann {len(problems)} problem ({len(problems)} problems found, "
                "in English):",
                fill=_PROBLEM_FILL,
            )
            self.set_font(FONT_FAMILY, "", _TEXT_SIZE_PT)
            for problem in problems:
                self.multi_cell(
                    0, 5, f"• {one_line(problem)}", new_x="LMARGIN", new_y="NEXT", padding=(0, 4)
                )
        self.ln(4)

    def write_how_to_verify(self, pdf_name: str, *, timestamped: bool) -> None:
        """The bundle's files and the commands that check them (run in the bundle's
        folder, as written); ``timestamped``: the bundle has the TSA's CA certificate
        too (``tsa-ca.pem``)."""
        self._heading("Så kontrollerar du själv", "How to verify independently", rows=6)
        self._paragraph_text(
            verification_intro(pdf_name, timestamped=timestamped, subject=self._subject)
        )
        steps = verification_steps(pdf_name, timestamped=timestamped)
        for explanation, command in steps:
            if self.will_page_break(5 + 5 * (command.count("\n") + 1)):
                self.add_page()
            self.set_font(FONT_FAMILY, "", _TEXT_SIZE_PT)
            self.multi_cell(0, 5, explanation, new_x="LMARGIN", new_y="NEXT")
            self.set_font(FONT_FAMILY, "B", 8.5)
            self.multi_cell(0, 4.5, command, new_x="LMARGIN", new_y="NEXT", padding=(0, 6))
            self.ln(1)
        self._paragraph_text(PDFSIG_CAVEAT)

    # -- building blocks ---------------------------------------------------------------

    def _heading(self, swedish: str, english: str, *, rows: int) -> None:
        """A section heading, kept on a page with room for ``rows`` lines after it."""
        if self.will_page_break(12 + rows * 6):
            self.add_page()
        self.set_font(FONT_FAMILY, "B", 12)
        self.cell(0, 6, swedish, new_x="LMARGIN", new_y="NEXT")
        self._small(english)
        self.ln(1)

    def _banner(self, text: str, *, fill: tuple[int, int, int]) -> None:
        """A bold sentence on a coloured band: the verdict."""
        self.set_font(FONT_FAMILY, "B", 11)
        self.set_fill_color(*fill)
        self.multi_cell(0, 7, text, fill=True, new_x="LMARGIN", new_y="NEXT", padding=(1, 2))

    def _paragraph_text(self, text: str) -> None:
        self.set_font(FONT_FAMILY, "", _TEXT_SIZE_PT)
        self.multi_cell(0, 4.8, text, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def _trail_row(self, texts: Sequence[str], *, bold: bool = False) -> None:
        self.set_font(FONT_FAMILY, "B" if bold else "", _TABLE_SIZE_PT)
        self.set_draw_color(*_RULE_GREY)
        self.set_line_width(0.2)
        self.set_fill_color(*_HEADING_FILL)
        self.c_margin = _CELL_PADDING_MM
        for text, width in zip(texts, _TRAIL_COLUMNS, strict=True):
            self.cell(width, _TRAIL_ROW_MM, self._fitted(text, width), border="B", fill=bold)
        self.c_margin = 0
        self.ln(_TRAIL_ROW_MM)

    def _trail_detail(self, text: str) -> None:
        """An event's details, under its row, from the second column on, in grey."""
        self.set_font(FONT_FAMILY, "", _TABLE_SIZE_PT)
        self.set_text_color(*_GREY)
        self.c_margin = _CELL_PADDING_MM
        self.set_x(self.l_margin + _TRAIL_COLUMNS[0])
        self.multi_cell(
            sum(_TRAIL_COLUMNS[1:]),
            _TABLE_SIZE_PT * 0.48,
            text,
            border="B",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        self.c_margin = 0
        self.set_text_color(0)

    def _fits(self, text: str, width: float) -> bool:
        self.set_font(FONT_FAMILY, "", _TABLE_SIZE_PT)
        return bool(self.get_string_width(text) <= width - 2 * _CELL_PADDING_MM)

    def _fitted(self, text: str, width: float) -> str:
        """``text``, shortened with "…" to fit a cell ``width`` mm wide."""
        room = width - 2 * _CELL_PADDING_MM
        if self.get_string_width(text) <= room:
            return text
        while text and self.get_string_width(text + "…") > room:
            text = text[:-1]
        return text + "…"

    def _table(
        self, columns: Sequence[float], *, headings: bool = True, borders: str = "HORIZONTAL_LINES"
    ) -> AbstractContextManager[Table]:
        self.set_font(FONT_FAMILY, "", _TABLE_SIZE_PT if headings else _TEXT_SIZE_PT)
        self.set_draw_color(*_RULE_GREY)
        self.set_line_width(0.2)
        return self.table(
            col_widths=tuple(columns),
            width=sum(columns),
            align="LEFT",
            text_align="LEFT",
            v_align="TOP",
            first_row_as_headings=headings,
            headings_style=FontFace(emphasis="BOLD", fill_color=_HEADING_FILL),
            borders_layout=TableBordersLayout.coerce(borders),
            line_height=(_TABLE_SIZE_PT if headings else _TEXT_SIZE_PT) * 0.48,
            padding=(1.0, 1.2),
            wrapmode=WrapMode.WORD,
            repeat_headings=1,
        )
