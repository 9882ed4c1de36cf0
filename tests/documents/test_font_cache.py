"""Tests of the fonts parsed once per process (:mod:`justering.documents.fonts`).

Every document is compared with the same document made through fpdf2's own
``add_font``, which parses the font file anew for each document: the same bytes,
the same text for pdftotext, the same fonts for pdffonts. The embedded font
programs are read back with pypdf and fontTools.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import TTFFont
from pypdf import PdfReader
from test_rendering import MEETING, SEED_PARAGRAPH, long_paragraph, make_meeting

from justering.documents import fonts as bundled_fonts
from justering.documents.fonts import FONT_FAMILY, add_fonts
from justering.documents.rendering import render_extract, render_protocol
from justering.model.minutes import Paragraph, Section
from support.poppler import pdftotext

GREEK_MEETING = dataclasses.replace(MEETING, place="Αθήνα, Δημαρχείο")
"""A meeting the Latin cut cannot draw: its documents embed the complete fonts."""
REGULAR, BOLD = "DejaVuSansBook", "DejaVuSansBold"
"""The embedded fonts' names (after the subset's tag)."""


def fpdf2_add_font(document: FPDF, style: str, path: Path) -> None:
    """What ``add_fonts`` did before the cache: fpdf2 parses the file for the document."""
    document.add_font(FONT_FAMILY, style, path)
    document.fonts[f"{FONT_FAMILY.lower()}{style}"].ttfont.recalcBBoxes = False  # type: ignore[union-attr]


@pytest.fixture
def uncached(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[], bytes]], bytes]]:
    """Make a document with fonts parsed by fpdf2 for it alone."""

    def make(render: Callable[[], bytes]) -> bytes:
        with monkeypatch.context() as patch:
            patch.setattr(bundled_fonts, "_add_font", fpdf2_add_font)
            return render()

    yield make


def pdffonts(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    """pdffonts' rows: name, type, encoding, emb, sub, uni, object number, generation."""
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    return [line.split() for line in listing.stdout.splitlines()[2:]]


def embedded_characters(pdf: bytes) -> dict[str, frozenset[str]]:
    """The characters each embedded font program has a glyph for, by the font's name."""
    found: dict[str, frozenset[str]] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources: Any = page["/Resources"]
        for reference in resources["/Font"].values():
            font = reference.get_object()
            descendant = font["/DescendantFonts"][0].get_object()
            program = descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data()
            with ttLib.TTFont(io.BytesIO(program)) as parsed:
                found[str(font["/BaseFont"])] = frozenset(map(chr, parsed.getBestCmap()))
    return found


def shared_tables(font: ttLib.TTFont) -> tuple[object, ...]:
    """What the documents' fonts copy from the fontTools font decompiled once."""
    post = font["post"]
    return (
        list(font.getGlyphOrder()),
        dict(font["hmtx"].metrics),
        [(t.platformID, t.platEncID, dict(t.cmap)) for t in font["cmap"].tables],
        post.formatType,
        dict(post.mapping),
        list(post.extraNames),
    )


def paragraph_with(number: int, text: str) -> Paragraph:
    return Paragraph(number, f"KS 2026/{number}", f"Ärende {text}", (Section(None, text),))


DOCUMENTS: dict[str, Callable[[], bytes]] = {
    "extract, Latin cut": lambda: render_extract(MEETING, SEED_PARAGRAPH),
    "extract, complete fonts": lambda: render_extract(GREEK_MEETING, SEED_PARAGRAPH),
    "protocol of two paragraphs": lambda: render_protocol(
        MEETING, [SEED_PARAGRAPH, long_paragraph(3)], immediate=True, version=2
    ),
}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_a_document_is_the_same_as_with_fonts_parsed_for_it_alone(
    name: str, uncached: Callable[[Callable[[], bytes]], bytes], tmp_path: Path
) -> None:
    render = DOCUMENTS[name]
    cached = render()
    reference = uncached(render)
    assert pdftotext(cached, tmp_path) == pdftotext(reference, tmp_path)
    fonts = pdffonts(cached, tmp_path)
    assert fonts == pdffonts(reference, tmp_path)
    assert len(fonts) == 2
    for row in fonts:
        assert row[0].split("+")[1] in (REGULAR, BOLD), row
        assert row[-5:-2] == ["yes", "yes", "yes"], row  # embedded, subset, ToUnicode
    assert embedded_characters(cached) == embedded_characters(reference)
    assert cached == reference


def test_documents_made_one_after_another_each_carry_their_own_fonts(
    uncached: Callable[[Callable[[], bytes]], bytes],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = paragraph_with(1, "Quixotic QXZ: 1 2 3")
    second = paragraph_with(2, "Bjärred, Ödeshög & Åmål – 9 %")

    def render_first() -> bytes:
        return render_extract(make_meeting(first), first)

    def render_second() -> bytes:
        return render_extract(make_meeting(second), second)

    # A document that is never written, with characters neither of the others has,
    # and one its fonts have no glyph for (fpdf2 notes it, and warns when writing).
    abandoned = FPDF()
    add_fonts(abandoned, ["ŁŻŹ€"])
    abandoned.add_page()
    abandoned.set_font(FONT_FAMILY, "", 12)
    abandoned.cell(text="ŁŻŹ€ ÿ Ω")
    with caplog.at_level("WARNING", logger="fpdf"):
        made = [render_first(), render_second(), render_first()]
    assert not [r for r in caplog.records if "missing" in r.getMessage()]
    assert made[0] == made[2]
    assert made[0] == uncached(render_first)
    assert made[1] == uncached(render_second)

    programs = [embedded_characters(pdf) for pdf in made[:2]]
    for pdf, embedded in zip(made[:2], programs, strict=True):
        assert len(embedded) == 2  # the regular and the bold font, each embedded
        drawn = set(pdftotext(pdf, tmp_path)) - set(" \n\f")
        assert drawn <= set().union(*embedded.values())
        assert "\ufffd" not in drawn
    regular = [
        next(c for n, c in embedded.items() if n.endswith(f"+{REGULAR}")) for embedded in programs
    ]
    assert {"Q", "X", "Z"} <= regular[0] and not {"Ö", "Å", "%"} & regular[0]
    assert {"Ö", "Å", "%"} <= regular[1] and not {"Q", "X", "Z"} & regular[1]
    assert not {"Ł", "Ż", "€"} & (regular[0] | regular[1])


def test_each_font_file_is_parsed_once_and_never_changed_by_a_document() -> None:
    render_extract(MEETING, SEED_PARAGRAPH)
    render_extract(GREEK_MEETING, SEED_PARAGRAPH)
    templates = {key: parsed.template for key, parsed in bundled_fonts._parsed.items()}
    decoded = {key: shared_tables(parsed.decoded) for key, parsed in bundled_fonts._parsed.items()}
    latin = bundled_fonts._font_files(full=False)
    assert {(path, style) for style, path in latin.items()} <= set(templates)
    render_extract(MEETING, long_paragraph(2))
    render_extract(GREEK_MEETING, SEED_PARAGRAPH)
    for key, template in templates.items():
        assert bundled_fonts._parsed[key].template is template
        assert shared_tables(bundled_fonts._parsed[key].decoded) == decoded[key]
        # The subset of the parsed font holds only what fpdf2 reserves in every font.
        assert len(template.subset) == 2
        assert template.missing_glyphs == []
        document = FPDF()
        bundled_fonts._add_font(document, key[1], key[0])
        font = document.fonts[f"{FONT_FAMILY.lower()}{key[1]}"]
        assert isinstance(font, TTFFont)
        assert font is not template and font.subset is not template.subset
        assert font.ttfont is not template.ttfont and font.cw is not template.cw
        assert font.desc is not template.desc


def test_a_font_file_that_changes_is_parsed_again(tmp_path: Path) -> None:
    regular, bold = (bundled_fonts._font_files(full=False)[style] for style in ("", "B"))
    path = tmp_path / "font.ttf"
    shutil.copyfile(regular, path)

    def embedded_name() -> str:
        document = FPDF()
        bundled_fonts._add_font(document, "", path)
        document.add_page()
        document.set_font(FONT_FAMILY, "", 12)
        document.cell(text="Åmål")
        return next(iter(embedded_characters(bytes(document.output()))))

    assert embedded_name().endswith(f"+{REGULAR}")
    shutil.copyfile(bold, path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert embedded_name().endswith(f"+{BOLD}")


def test_documents_made_in_several_threads_are_the_same_as_one_by_one() -> None:
    renders = list(DOCUMENTS.values()) * 4
    expected = [render() for render in renders]
    with ThreadPoolExecutor(max_workers=4) as pool:
        made = list(pool.map(lambda render: render(), renders))
    assert made == expected


def test_text_widths_are_fpdf2s_in_any_order_of_measuring() -> None:
    """Lines grown a character at a time (as fpdf2's line breaking measures them), the
    character alone in between, other texts, a text that shrinks: fpdf2's widths."""
    mine, theirs = FPDF(), FPDF()
    add_fonts(mine, [])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bundled_fonts, "_add_font", fpdf2_add_font)
        add_fonts(theirs, [])
    line = "Kommunstyrelsens arbetsutskott – § 94, Ωmega € 12,5 %"
    texts = [line[:end] for end in range(len(line) + 1)]
    texts += [char for char in line] + ["", "x", line, line[:10], line[5:], line + line]
    texts = [text for pair in zip(texts, reversed(texts), strict=True) for text in pair] + texts
    for style in ("", "B"):
        key = f"{FONT_FAMILY.lower()}{style}"
        font, reference = mine.fonts[key], theirs.fonts[key]
        assert isinstance(font, TTFFont) and isinstance(reference, TTFFont)
        for size in (7.5, 10.5):
            for text in texts:
                expected = reference.get_text_width(text, size, None)
                assert font.get_text_width(text, size, None) == expected, (style, size, text)
