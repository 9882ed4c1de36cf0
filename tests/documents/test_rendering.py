"""Tests of the extract renderer, read back with poppler's pdftotext and with pypdf."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
import sys
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from justering.documents import fonts as bundled_fonts
from justering.documents import layout
from justering.documents.fonts import unrenderable_characters
from justering.documents.rendering import (
    IMMEDIATE_HEADING,
    IMMEDIATE_NOTE,
    SIGNED_ON_LAST_PAGE,
    extract_title,
    protocol_title,
    render_extract,
    render_protocol,
)
from justering.model.meeting import Body, Meeting
from justering.model.minutes import Paragraph, Section
from justering.model.roles import Person, Role
from support.poppler import PT_PER_MM, page_texts, pdftotext, words
from support.seed import SEED, SEED_HEADINGS

CAPTIONS = tuple(role.footer_label for role in layout.FOOTER_ROLES)
MARK_WORDS = set(SIGNED_ON_LAST_PAGE.split())
"""The words in the boxes of every page but the last."""
PERSONNUMMER = re.compile(r"(?<!\d)(19|20)?\d{6}[-+]?\d{4}(?!\d)")


def seed_paragraph() -> Paragraph:
    """§ 94 of the seed, split into sections by hand (no dependency on the parser)."""
    lines = SEED.read_text(encoding="utf-8").split("\n")
    # Drop the footer rows the meeting system exports at each of its page ends.
    lines = [line for line in lines if not line.startswith("Ordförandes signatur")]
    lines = [line for line in lines if line.strip("\t") or not line]
    assert lines[2] == "§ 94" and lines[4] == "KFKS 2012/577-001"
    sections: list[Section] = []
    heading: str | None = None
    text: list[str] = []
    for line in lines[8:]:
        if line in SEED_HEADINGS:
            sections.append(Section(heading, "\n".join(text).strip("\n")))
            heading, text = line, []
        else:
            text.append(line)
    sections.append(Section(heading, "\n".join(text).strip("\n")))
    return Paragraph(94, "KFKS 2012/577-001", lines[6], tuple(sections))


def make_meeting(*paragraphs: Paragraph) -> Meeting:
    return Meeting(
        meeting_id="nacka-ksau-2014-08-19",
        municipality="Nacka kommun",
        body=Body("KSAU", "Kommunstyrelsens arbetsutskott"),
        date=dt.date(2014, 8, 19),
        place="Nacka stadshus",
        chair=Person("Mats Gerdau", "mats.gerdau@nacka.example"),
        adjusters=(Person("Rolf Wasteson", "rolf.wasteson@nacka.example"),),
        certifier=Person("Lena Sekreterare", "lena.sekreterare@nacka.example"),
        paragraphs=paragraphs,
    )


def box_around(word: Any) -> layout.Box:
    """The footer box a word of the footer lies in, across."""
    return next(
        box
        for box in map(layout.footer_box, layout.FOOTER_ROLES)
        if box.x * PT_PER_MM <= word.x_min and word.x_max <= (box.x + box.width) * PT_PER_MM
    )


def long_paragraph(sections: int = 12) -> Paragraph:
    sentence = (
        "Kommunstyrelsens arbetsutskott föreslår att kommunfullmäktige beslutar "
        "om en ny detaljplan för området vid Älta centrum, med hänsyn till "
        "trafik, dagvatten och förskoleplatser. "
    )
    return Paragraph(
        number=101,
        dnr="KFKS 2014/123-214",
        title="Detaljplan för Älta centrum, etapp B",
        sections=tuple(
            Section(f"Avsnitt {i}", f"{sentence * 4}\n\n{sentence * 3}\nSista raden {i}.")
            for i in range(1, sections + 1)
        ),
    )


SEED_PARAGRAPH = seed_paragraph()
MEETING = make_meeting(SEED_PARAGRAPH)


# -- reading the PDF back -----------------------------------------------------------


BODY_TOP_PT = (layout.MARGIN_TOP_MM + 19) * PT_PER_MM
"""Just under the header's rule."""
BODY_LIMIT_PT = (layout.PAGE_HEIGHT_MM - layout.BODY_BOTTOM_MM) * PT_PER_MM


def body_text_pdftotext(pdf: bytes, tmp_path: Path) -> str:
    """The body region of every page (header and footer cropped away), in reading order."""
    crop = ["-x", "0", "-y", str(int(BODY_TOP_PT))]
    crop += ["-W", "596", "-H", str(int(BODY_LIMIT_PT - BODY_TOP_PT) + 1)]
    return pdftotext(pdf, tmp_path, *crop)


def body_text_pypdf(pdf: bytes) -> str:
    """The body region of every page read with pypdf (origin bottom-left)."""
    page_height = layout.PAGE_HEIGHT_MM * PT_PER_MM
    parts: list[str] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        y = page_height - (tm[4] * cm[1] + tm[5] * cm[3] + cm[5])
        if BODY_TOP_PT < y < BODY_LIMIT_PT:
            parts.append(f"{text} ")

    for page in PdfReader(io.BytesIO(pdf)).pages:
        page.extract_text(visitor_text=visit)
        parts.append("\n")
    return "".join(parts)


def tokens(text: str) -> list[str]:
    return unicodedata.normalize("NFC", text).split()


def expected_tokens(paragraph: Paragraph) -> list[str]:
    parts = [paragraph.label]
    if paragraph.dnr:
        parts.append(f"Dnr {paragraph.dnr}")
    if paragraph.immediate:
        parts.append("Paragrafen är omedelbart justerad")
    parts.append(paragraph.title)
    for section in paragraph.sections:
        parts += [section.heading or "", section.text]
    return tokens(" ".join(parts))


# -- tests --------------------------------------------------------------------------


def test_seed_every_page_has_header_page_number_and_the_three_captions(tmp_path: Path) -> None:
    pdf = render_extract(MEETING, SEED_PARAGRAPH)
    pages = page_texts(pdf, tmp_path)
    assert len(pages) == 2
    for number, text in enumerate(pages, start=1):
        assert f"{number} ({len(pages)})" in text
        for caption in CAPTIONS:
            assert caption in text
        for header in ("NACKA KOMMUN", "PROTOKOLLSUTDRAG", "Kommunstyrelsens arbetsutskott"):
            assert header in text
        assert "2014-08-19" in text
        assert "Nacka stadshus" in text
    assert "Version" not in "".join(pages)


def test_page_number_is_top_right(tmp_path: Path) -> None:
    pdf = render_extract(MEETING, SEED_PARAGRAPH)
    number = next(w for w in words(pdf, tmp_path) if w.page == 1 and w.text == "(2)")
    right = (layout.PAGE_WIDTH_MM - layout.MARGIN_RIGHT_MM) * PT_PER_MM
    assert right - 2 < number.x_max <= right + 0.5
    assert number.y_min < BODY_TOP_PT


def test_page_numbers_look_the_same_on_every_page(tmp_path: Path) -> None:
    paragraph = long_paragraph()
    pdf = render_extract(make_meeting(paragraph), paragraph)
    found = words(pdf, tmp_path)
    total = max(w.page for w in found)
    numbers = [w for w in found if w.text == f"({total})" and w.y_max < BODY_TOP_PT]
    assert [w.page for w in numbers] == list(range(1, total + 1))
    assert len({(w.x_max, w.y_min, w.y_max) for w in numbers}) == 1, numbers


def test_footer_boxes_are_drawn_where_layout_says(tmp_path: Path) -> None:
    pdf = render_extract(MEETING, SEED_PARAGRAPH)
    content = PdfReader(io.BytesIO(pdf)).pages[0].get_contents()
    assert content is not None
    drawing = content.get_data().decode("latin-1")
    page_height = layout.PAGE_HEIGHT_MM * PT_PER_MM
    for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
        box = layout.footer_box(role)
        # fpdf2 writes rectangles as "x y w -h re" in points, origin bottom-left.
        rect = (
            f"{box.x * PT_PER_MM:.2f} {page_height - box.y * PT_PER_MM:.2f} "
            f"{box.width * PT_PER_MM:.2f} -{box.height * PT_PER_MM:.2f} re"
        )
        assert rect in drawing


def test_long_paragraph_breaks_into_pages_with_correct_totals(tmp_path: Path) -> None:
    paragraph = long_paragraph()
    pdf = render_extract(make_meeting(paragraph), paragraph)
    pages = page_texts(pdf, tmp_path)
    assert len(pages) >= 4
    for number, text in enumerate(pages, start=1):
        assert f"{number} ({len(pages)})" in text
        assert all(caption in text for caption in CAPTIONS)
    assert tokens(body_text_pdftotext(pdf, tmp_path)) == expected_tokens(paragraph)


def test_body_text_stays_above_the_footer_and_out_of_the_stamp_areas(tmp_path: Path) -> None:
    paragraph = long_paragraph()
    pdf = render_extract(make_meeting(paragraph), paragraph)
    caption_words = set(" ".join(CAPTIONS).split())
    last_page = max(w.page for w in words(pdf, tmp_path))
    below_limit = [
        w
        for w in words(pdf, tmp_path)
        if w.y_max > BODY_LIMIT_PT and (w.page == last_page or w.text not in MARK_WORDS)
    ]
    assert below_limit, "the captions should be found below the body limit"
    for word in below_limit:
        assert word.text in caption_words, word
        box = box_around(word)
        assert box.y * PT_PER_MM <= word.y_min
        assert word.y_max <= (box.y + layout.FOOTER_CAPTION_MM) * PT_PER_MM
    # The last body line of a full page comes close to the limit, but never past it.
    lowest = max(
        w.y_max
        for w in words(pdf, tmp_path)
        if w.text not in caption_words and w.text not in MARK_WORDS
    )
    assert BODY_LIMIT_PT - 30 < lowest <= BODY_LIMIT_PT


def test_a_heading_is_never_the_last_line_of_a_page(tmp_path: Path) -> None:
    checked_breaks = 0
    for lead in range(12):  # move the headings down line by line past a page break
        paragraph = long_paragraph(3)
        first = Section(None, "\n".join(f"Inledande rad {i}" for i in range(lead + 28)))
        paragraph = replace(paragraph, sections=(first, *paragraph.sections))
        pdf = render_extract(make_meeting(paragraph), paragraph)
        found = [w for w in words(pdf, tmp_path) if BODY_TOP_PT < w.y_min < BODY_LIMIT_PT]
        for index, word in enumerate(found):
            if word.text == "Avsnitt":
                following = found[index + 2]  # after the heading's number
                assert following.page == word.page, (lead, following)
                checked_breaks += following.y_min > BODY_LIMIT_PT - 30 * PT_PER_MM
    assert checked_breaks  # some heading did come near the end of a page


def test_body_text_stays_inside_the_side_margins(tmp_path: Path) -> None:
    long_word = "Översiktsplanering" * 12
    paragraph = Paragraph(5, None, "Marginaler", (Section("Text", f"kort {long_word} slut"),))
    pdf = render_extract(make_meeting(paragraph), paragraph)
    left = layout.MARGIN_LEFT_MM * PT_PER_MM
    right = (layout.PAGE_WIDTH_MM - layout.MARGIN_RIGHT_MM) * PT_PER_MM
    found = words(pdf, tmp_path)
    assert all(left - 0.5 <= w.x_min and w.x_max <= right + 0.5 for w in found)
    # The word wider than a line is cut, not lost.
    body = "".join(tokens(body_text_pdftotext(pdf, tmp_path)))
    assert f"Textkort{long_word}slut" in body


def test_seed_text_is_extractable_in_order_by_pdftotext_and_pypdf(tmp_path: Path) -> None:
    pdf = render_extract(MEETING, SEED_PARAGRAPH)
    expected = expected_tokens(SEED_PARAGRAPH)
    assert tokens(body_text_pdftotext(pdf, tmp_path)) == expected
    assert tokens(body_text_pypdf(pdf)) == expected


def test_line_breaks_and_blank_line_paragraphs_are_kept(tmp_path: Path) -> None:
    paragraph = Paragraph(7, None, "Rader", (Section(None, "Ett\nTvå\n\n\n\nTre\n \t \nFyra"),))
    pdf = render_extract(make_meeting(paragraph), paragraph)
    y = {w.text: w.y_min for w in words(pdf, tmp_path) if w.text in {"Ett", "Två", "Tre", "Fyra"}}
    line = y["Två"] - y["Ett"]
    assert line > 10  # a line of its own, not joined to "Ett"
    # A run of blank lines (or of whitespace-only lines) is one paragraph gap.
    assert y["Tre"] - y["Två"] == pytest.approx(y["Fyra"] - y["Tre"], abs=0.1)
    assert line * 1.3 < y["Tre"] - y["Två"] < line * 2


def test_tabs_go_to_tab_stops(tmp_path: Path) -> None:
    text = "Ordförande\tMats Gerdau\nLedamot\tRolf Wasteson"
    paragraph = Paragraph(8, None, "Tabbar", (Section("Närvarande", text),))
    pdf = render_extract(make_meeting(paragraph), paragraph)
    found = {w.text: w for w in words(pdf, tmp_path)}
    stop = 12.5 * PT_PER_MM
    left = layout.MARGIN_LEFT_MM * PT_PER_MM
    for word in ("Mats", "Rolf"):
        offset = (found[word].x_min - left) / stop
        assert offset >= 1
        assert abs(offset - round(offset)) < 0.05, (word, offset)
    # pdftotext's default mode sees the tab stops as columns; -raw keeps the line order.
    expected = "Ordförande Mats Gerdau Ledamot Rolf Wasteson"
    assert expected in " ".join(tokens(pdftotext(pdf, tmp_path, "-raw")))
    assert " ".join(tokens(body_text_pypdf(pdf))).endswith(expected)


SPECIAL = (
    "Åsa Öberg och Ärla Ängström läste „Łukasz Ćwikła” och ”Nguyễn Thị Hoa” — "
    "därefter 25 % av 1 000 € – § 12."
)


def test_special_characters_survive_both_extractors(tmp_path: Path) -> None:
    paragraph = Paragraph(
        19, "KS 2024/1-1", "Namn från när och fjärran", (Section("Ärende", SPECIAL),)
    )
    pdf = render_extract(make_meeting(paragraph), paragraph)
    assert tokens(body_text_pdftotext(pdf, tmp_path)) == expected_tokens(paragraph)
    assert tokens(body_text_pypdf(pdf)) == expected_tokens(paragraph)


@pytest.mark.parametrize(
    "text",
    [
        # markup or page-number aliases are kept as they are
        "Sidan {nb} av **{nb}** och <b>fet</b> --  ~~x~~ __y__",
        # beyond Latin: drawn with the complete fonts
        "Ирина Петрова och Γιώργος Παπαδόπουλος",
    ],
    ids=["markup-and-aliases", "beyond-latin"],
)
def test_text_is_drawn_as_it_is_written(text: str, tmp_path: Path) -> None:
    paragraph = Paragraph(13, None, "Bokstavligt", (Section(None, text),))
    pdf = render_extract(make_meeting(paragraph), paragraph)
    assert tokens(body_text_pdftotext(pdf, tmp_path)) == expected_tokens(paragraph)


def test_decomposed_input_is_drawn_with_precomposed_glyphs(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hoa på Åland")
    paragraph = Paragraph(10, None, "NFD", (Section(None, decomposed),))
    pdf = render_extract(make_meeting(paragraph), paragraph)
    assert "Nguyễn Thị Hoa på Åland" in pdftotext(pdf, tmp_path)


def test_characters_the_fonts_lack_become_replacement_characters(tmp_path: Path) -> None:
    assert unrenderable_characters("Möte 漢 och 𝄞 漢") == "漢𝄞"
    assert unrenderable_characters(SPECIAL + "\tÅ\n") == ""
    paragraph = Paragraph(12, None, "Saknas", (Section(None, "före 漢 efter"),))
    pdf = render_extract(make_meeting(paragraph), paragraph)
    assert "före \ufffd efter" in pdftotext(pdf, tmp_path)


def test_dnr_is_omitted_when_none(tmp_path: Path) -> None:
    paragraph = replace(SEED_PARAGRAPH, dnr=None)
    pdf = render_extract(make_meeting(paragraph), paragraph)
    text = pdftotext(pdf, tmp_path)
    assert "Dnr" not in text
    assert "KFKS" not in text
    assert tokens(body_text_pdftotext(pdf, tmp_path)) == expected_tokens(paragraph)
    assert PdfReader(io.BytesIO(pdf)).metadata.title == (
        "§ 94 Styrning och ledning för öppenhet och mångfald"
    )


def test_immediate_paragraph_says_so_truthfully_before_and_after_signing(tmp_path: Path) -> None:
    """The draft is signed as it is: its wording must be true before anyone signed
    ("is justered at once", the procedure) and after ("är omedelbart justerad" would
    be false on the unsigned draft)."""
    immediate = replace(SEED_PARAGRAPH, immediate=True)
    text = " ".join(pdftotext(render_extract(make_meeting(immediate), immediate), tmp_path).split())
    assert IMMEDIATE_NOTE in text
    assert "är omedelbart justerad" not in text
    ordinary = pdftotext(render_extract(MEETING, SEED_PARAGRAPH), tmp_path)
    assert "omedelbart" not in ordinary


def test_the_boxes_of_every_page_but_the_last_say_where_the_signatures_are(
    tmp_path: Path,
) -> None:
    paragraph = long_paragraph()
    pdf = render_extract(make_meeting(paragraph), paragraph)
    pages = page_texts(pdf, tmp_path)
    assert len(pages) >= 3
    for text in pages[:-1]:
        assert " ".join(text.split()).count(SIGNED_ON_LAST_PAGE) == len(layout.FOOTER_ROLES)
    assert SIGNED_ON_LAST_PAGE not in pages[-1]  # the stamps go there
    # and inside the boxes, under their captions (where no stamp goes on those pages)
    marks = [w for w in words(pdf, tmp_path) if w.text == "Signeras"]
    assert len(marks) == len(layout.FOOTER_ROLES) * (len(pages) - 1)
    for word in marks:
        box = box_around(word)
        assert (box.y + layout.FOOTER_CAPTION_MM) * PT_PER_MM <= word.y_min
        assert word.y_max <= (box.y + box.height) * PT_PER_MM
    one_page = render_extract(MEETING, replace(SEED_PARAGRAPH, sections=()))
    assert SIGNED_ON_LAST_PAGE not in pdftotext(one_page, tmp_path)


# --- the protocol ---------------------------------------------------------------------------


def test_the_protocol_holds_every_paragraph_in_order(tmp_path: Path) -> None:
    first = replace(long_paragraph(4), number=12)
    second = replace(SEED_PARAGRAPH, number=13)
    third = replace(SEED_PARAGRAPH, number=14, immediate=True, dnr=None, title="Sista ärendet")
    meeting = make_meeting(first, second, third)
    pdf = render_protocol(meeting, meeting.paragraphs, version=2)
    pages = page_texts(pdf, tmp_path)
    whole = "\n".join(pages)
    positions = [whole.index(f"§ {n}\n") for n in (12, 13, 14)]
    assert positions == sorted(positions)
    assert IMMEDIATE_NOTE in " ".join(whole.split())
    for number, text in enumerate(pages, start=1):
        assert "PROTOKOLL\n" in text and "PROTOKOLLSUTDRAG" not in text
        assert f"{number} ({len(pages)})" in text and "Version 2" in text
        assert "Ordförandes signatur" in text and "Justerandes signatur" in text
        assert "Utdragsbestyrkande" not in text  # a protocol is justered, not certified
    for text in pages[:-1]:
        assert " ".join(text.split()).count(SIGNED_ON_LAST_PAGE) == 2
    assert PdfReader(io.BytesIO(pdf)).metadata.title == protocol_title(meeting)
    assert protocol_title(meeting) == "Protokoll Kommunstyrelsens arbetsutskott 2014-08-19"


def test_the_omedelbar_justerings_protocol_says_so_first(tmp_path: Path) -> None:
    paragraph = replace(SEED_PARAGRAPH, immediate=True)
    meeting = make_meeting(paragraph)
    text = pdftotext(render_protocol(meeting, [paragraph], immediate=True), tmp_path)
    assert text.index(IMMEDIATE_HEADING) < text.index("§ 94")
    assert "Version" not in text
    with pytest.raises(ValueError, match="at least one paragraph"):
        render_protocol(meeting, [])


def test_later_versions_carry_a_version_note_on_every_page(tmp_path: Path) -> None:
    pages = page_texts(render_extract(MEETING, SEED_PARAGRAPH, version=3), tmp_path)
    assert len(pages) == 2
    assert all("Version 3" in text for text in pages)
    with pytest.raises(ValueError, match="version"):
        render_extract(MEETING, SEED_PARAGRAPH, version=0)


def test_rendering_is_deterministic() -> None:
    first = render_extract(MEETING, SEED_PARAGRAPH, version=2)
    assert render_extract(MEETING, SEED_PARAGRAPH, version=2) == first
    assert render_extract(MEETING, SEED_PARAGRAPH, version=1) != first
    assert b"/CreationDate (D:20140819000000Z" in first


def test_rendering_is_the_same_in_a_fresh_process(tmp_path: Path) -> None:
    """Redrafting after a restart gives the same bytes (the Latin font cut is rebuilt)."""
    script = (
        "import sys; sys.path[:0] = sys.argv[1:];"
        "from test_rendering import MEETING, SEED_PARAGRAPH, render_extract;"
        "sys.stdout.buffer.write(render_extract(MEETING, SEED_PARAGRAPH))"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script, *(str(p) for p in Path(__file__).parents[:2])],
        capture_output=True,
        check=True,
    ).stdout
    assert fresh == render_extract(MEETING, SEED_PARAGRAPH)


def test_font_files_removed_under_a_running_process_are_made_again() -> None:
    expected = render_extract(MEETING, SEED_PARAGRAPH)
    directory = bundled_fonts._font_files(full=False)[""].parent
    shutil.rmtree(directory)
    assert render_extract(MEETING, SEED_PARAGRAPH) == expected
    assert bundled_fonts._font_files(full=False)[""].is_file()


def test_rendering_from_several_threads_gives_the_same_bytes() -> None:
    long = long_paragraph(4)
    cases = [(SEED_PARAGRAPH, 1), (long, 1), (SEED_PARAGRAPH, 2), (long, 5)] * 4
    expected = {(p.number, v): render_extract(make_meeting(p), p, version=v) for p, v in cases}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda c: render_extract(make_meeting(c[0]), c[0], version=c[1]), cases)
        )
    for (paragraph, version), pdf in zip(cases, results, strict=True):
        assert pdf == expected[(paragraph.number, version)]


def test_metadata_names_the_extract_and_nothing_personal() -> None:
    pdf = render_extract(MEETING, SEED_PARAGRAPH)
    metadata = PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None
    assert metadata.title == "§ 94 KFKS 2012/577-001 Styrning och ledning för öppenhet och mångfald"
    assert metadata.title == extract_title(SEED_PARAGRAPH)
    assert metadata.author == "Nacka kommun"
    assert metadata.subject == "Protokollsutdrag Kommunstyrelsens arbetsutskott 2014-08-19"
    assert metadata.producer == "justering"
    assert metadata.creation_date == dt.datetime(2014, 8, 19, tzinfo=dt.UTC)
    values = " ".join(str(value) for value in metadata.values())
    assert not PERSONNUMMER.search(values)
    for person in (MEETING.chair, *MEETING.adjusters, MEETING.certifier):
        assert person.name not in values
        assert person.email not in values
    assert b"/Metadata" not in pdf  # no XMP packet that could carry more


def test_personnummer_pattern_would_be_caught() -> None:
    """The metadata check above is only as good as its pattern."""
    for number in ("19800101-1234", "800101-1234", "198001011234", "800101+1234"):
        assert PERSONNUMMER.search(f"§ 1 {number} titel")
    assert not PERSONNUMMER.search(extract_title(SEED_PARAGRAPH))
