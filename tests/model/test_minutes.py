"""The protocol text parser on the real seed extract, the bundled sample and written inputs."""

from __future__ import annotations

import unicodedata
from importlib import resources
from pathlib import Path

import pytest

from justering.errors import ProtocolTextError
from justering.model.minutes import (
    MAX_PROTOCOL_TEXT_BYTES,
    SECTION_HEADINGS,
    Paragraph,
    Section,
    declares_immediate,
    parse_protocol_text,
    parse_sections,
    sections_to_text,
)
from support.seed import SEED_HEADINGS, seed_text

DATA = Path(__file__).parents[1] / "data" / "protocols"
FOOTER = "Ordförandes signatur\tJusterandes signatur\tUtdragsbestyrkande"


def sample_text() -> str:
    return (
        resources.files("justering").joinpath("samples", "protocol.txt").read_text(encoding="utf-8")
    )


def content_lines(paragraph: Paragraph) -> list[str]:
    """Every non-blank line the parser kept, in order, as the export would show it."""
    lines = [paragraph.label]
    if paragraph.dnr is not None:
        lines.append(paragraph.dnr)
    lines.append(paragraph.title)
    for section in paragraph.sections:
        if section.heading is not None:
            lines.append(section.heading)
        lines.extend(line for line in section.text.split("\n") if line)
    return lines


def section(paragraph: Paragraph, heading: str | None) -> str:
    texts = [s.text for s in paragraph.sections if s.heading == heading]
    assert len(texts) == 1, f"{paragraph.label} has {len(texts)} sections {heading!r}"
    return texts[0]


# --- the real seed -----------------------------------------------------------------------------


def test_seed_is_one_paragraph_with_dnr_title_and_sections_in_order() -> None:
    (paragraph,) = parse_protocol_text(seed_text())
    assert paragraph.number == 94
    assert paragraph.label == "§ 94"
    assert paragraph.dnr == "KFKS 2012/577-001"
    assert paragraph.title == "Styrning och ledning för öppenhet och mångfald"
    assert paragraph.immediate is False
    assert [s.heading for s in paragraph.sections] == [None, *SEED_HEADINGS]
    assert paragraph.sections[0] == Section(None, "Lägesrapport augusti 2014")
    assert section(paragraph, "Handlingar i ärendet") == (
        "Stadsledningskontorets tjänsteskrivelse den 7 augusti 2014"
    )


def test_seed_keeps_all_text_except_the_footer() -> None:
    text = seed_text()
    (paragraph,) = parse_protocol_text(text)
    expected = [
        line.rstrip() for line in text.split("\n") if line.strip() and line.rstrip() != FOOTER
    ]
    assert content_lines(paragraph) == expected
    joined = "\n".join(s.text for s in paragraph.sections)
    assert "signatur" not in joined
    assert "Utdragsbestyrkande" not in joined
    notes = section(paragraph, "Protokollsanteckningar")
    assert "i ”New Public Management”, där" in notes
    assert notes.startswith("Rolf Wasteson (V) lät anteckna följande.\n\n”Det projekt")
    assert notes.endswith("både för tjänstemän och invånare.”")


def test_seed_whitespace_only_lines_collapse_to_one_blank_line() -> None:
    (paragraph,) = parse_protocol_text(seed_text())
    history = section(paragraph, "Ärendets tidigare behandling")
    assert history.startswith(
        "Beslut i kommunstyrelsen den 11 februari 2013 § 53\n\nKommunstyrelsen ställer"
    )
    assert "\n\n\n" not in history
    assert all(line == line.rstrip() for line in history.split("\n"))


# --- the bundled sample ------------------------------------------------------------------------


def test_sample_starts_with_the_seed_verbatim() -> None:
    assert sample_text().startswith(seed_text())


def test_sample_paragraphs() -> None:
    paragraphs = parse_protocol_text(sample_text())
    assert [(p.number, p.dnr, p.immediate) for p in paragraphs] == [
        (94, "KFKS 2012/577-001", False),
        (95, "KFKS 2014/412-251", False),
        (96, None, False),
        (97, "KFKS 2014/233-311", True),
    ]
    assert paragraphs[2].title == "Information om mottagandet av ensamkommande barn och unga"
    long = paragraphs[1]
    assert [s.heading for s in long.sections] == [
        "Beslut",
        "Ärende",
        "Handlingar i ärendet",
        "Yrkanden",
        "Beslutsgång",
        "Reservationer",
        "Protokollsanteckningar",
    ]
    text = sample_text()
    assert text.count(FOOTER) == 6, "the long paragraph must span two pages"
    for paragraph in paragraphs:
        assert FOOTER not in paragraph.text


def test_sample_keeps_tabs_numbered_lists_names_and_quotes() -> None:
    paragraphs = {p.number: p for p in parse_protocol_text(sample_text())}
    decision = section(paragraphs[95], "Beslut")
    assert "\n\n1.\tKommunstyrelsen godkänner att markanvisning" in decision
    assert "\n\n3.\tKommunstyrelsen uppdrar åt exploateringsenheten" in decision
    case = section(paragraphs[95], "Ärende")
    assert (
        "Kvarter\tBruttoarea (BTA)\tAntal bostäder\tUpplåtelseform\n"
        "Torgkvarteret\t14 000 kvm\tca 160\tbostadsrätt\n"
    ) in case
    assert "Łukasz Ćwikła (S) reserverade sig" in section(paragraphs[95], "Reservationer")
    assert section(paragraphs[95], "Protokollsanteckningar").count("”") == 4
    assert "Enhetschef Nguyễn Thị Hoa, sociala tjänster" in section(paragraphs[96], "Ärende")


# --- written inputs ----------------------------------------------------------------------------


def test_dnr_forms_and_immediate_heading_and_negation() -> None:
    paragraphs = parse_protocol_text((DATA / "msn_2014.txt").read_text(encoding="utf-8"))
    assert [(p.number, p.dnr) for p in paragraphs] == [
        (12, "MSN 2013/221-214"),
        (13, "KS 2014/12"),
        (14, None),
    ]
    assert paragraphs[0].immediate is True
    assert paragraphs[1].immediate is False, "'justeras inte omedelbart' is not immediate"
    assert paragraphs[2].immediate is False
    assert [s.heading for s in paragraphs[0].sections] == [
        "Beslut",
        "Ärende",
        "Yrkanden",
        "Omröstning",
        "Reservationer",
        "Omedelbar justering",
    ]
    assert section(paragraphs[0], "Omröstning") == "Ja-röster\t6\nNej-röster\t3\nAvstår\t0"
    assert "„Huset är för högt för platsen”" in section(paragraphs[0], "Reservationer")
    assert "Łukasz Ćwikła, Ćwikła Bygg AB" in section(paragraphs[0], "Ärende")


def test_footer_inside_a_sentence_is_removed_with_its_whitespace_lines() -> None:
    paragraphs = parse_protocol_text((DATA / "msn_2014.txt").read_text(encoding="utf-8"))
    assert section(paragraphs[2], "Ärende") == (
        "Följande delegationsbeslut anmäls till nämnden, vilka har fattats under perioden\n"
        "1 juni–31 juli 2014 med stöd av nämndens delegationsordning.\n"
        "\n"
        "  a) beslut om bygglov, 48 st\n"
        "  b) beslut om strandskyddsdispens, 3 st, se § 5 i delegationsordningen\n"
        "§ 5 i delegationsordningen gäller även beslut om förhandsbesked."
    )


def test_line_endings_bom_and_unicode_are_normalised() -> None:
    text = (DATA / "msn_2014.txt").read_text(encoding="utf-8")
    expected = parse_protocol_text(text)
    assert parse_protocol_text(text.replace("\n", "\r\n")) == expected
    assert parse_protocol_text(text.replace("\n", "\r")) == expected
    assert parse_protocol_text("\ufeff" + text) == expected
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    assert parse_protocol_text(decomposed) == expected
    assert parse_protocol_text(text.replace("\n", "   \t\n")) == expected


def test_blank_line_runs_collapse_and_trailing_whitespace_goes() -> None:
    (paragraph,) = parse_protocol_text("§ 3\nTitel  \n\nBeslut\n\n\n\nEtt.  \n\n\n\nTvå.\t\n\n")
    assert paragraph.title == "Titel"
    assert paragraph.sections == (Section("Beslut", "Ett.\n\nTvå."),)


def test_headings_match_only_whole_lines() -> None:
    (paragraph,) = parse_protocol_text("§ 3\nTitel\nBeslut\nBeslut i kommunstyrelsen\n Beslut\n")
    assert paragraph.sections == (Section("Beslut", "Beslut i kommunstyrelsen\n Beslut"),)


def test_every_listed_heading_starts_a_section() -> None:
    text = "§ 1\nTitel\n" + "".join(f"{h}\n\nText om {h}.\n\n" for h in SECTION_HEADINGS)
    (paragraph,) = parse_protocol_text(text)
    assert paragraph.sections == tuple(Section(h, f"Text om {h}.") for h in SECTION_HEADINGS)


def test_paragraph_start_variants() -> None:
    paragraphs = parse_protocol_text("§94\nEtt\n  § 95  \nTvå\n")
    assert [(p.number, p.title, p.sections) for p in paragraphs] == [
        (94, "Ett", ()),
        (95, "Två", ()),
    ]


def test_footer_and_blank_lines_before_the_first_paragraph_are_allowed() -> None:
    (paragraph,) = parse_protocol_text(f"\n{FOOTER}\n\t\t\n\n§ 1\nTitel\n")
    assert paragraph.title == "Titel"


def test_title_that_looks_like_no_dnr_is_kept_as_title() -> None:
    (paragraph,) = parse_protocol_text("§ 1\nKS 2014 budget\nBeslut\nJa.\n")
    assert paragraph.dnr is None
    assert paragraph.title == "KS 2014 budget"


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "empty"),
        ("\n \n\t\n", 1, "empty"),
        (f"{FOOTER}\n", 1, "empty"),
        ("Protokoll\n§ 1\nTitel\n", 1, "before the first paragraph"),
        ("\n\nNACKA KOMMUN\n§ 1\nTitel\n", 3, "before the first paragraph"),
        ("\n\n§\nTitel\n", 3, "without a paragraph number"),
        ("§ 9a\nTitel\n", 1, "'§ 9a': the paragraph number must be a whole number"),
        ("§ 0\nTitel\n", 1, "whole number from 1"),
        ("§ -3\nTitel\n", 1, "whole number"),
        ("§ ９\nTitel\n", 1, "whole number"),
        ("§ " + "9" * 5000 + "\nTitel\n", 1, "whole number"),
        ("§ 1\nA\n§ 2\nB\n\n§ 1\nC\n", 6, "duplicate paragraph § 1 (first at line 1)"),
        ("§ 1\n\nKS 2014/12\n\n", 1, "§ 1 has no title"),
        ("§ 1\nBeslut\nText\n", 1, "§ 1 has no title"),
        ("§ 1\nTitel\n§ 2\n\n", 3, "§ 2 has no title"),
        ("§ 1\nTitel\nA\x00\n", 3, "U+0000"),
        ("§ 1\nTitel\n\nA\x0bB\n", 4, "U+000B"),
        ("§ 1\r\nTitel\r\n\x1b[31m\r\n", 3, "U+001B"),
        ("§ 1\nTitel\nA\u2028B\n", 3, "U+2028"),
        ("§ 1\nTitel\nA\x85B\n", 3, "U+0085"),
    ],
)
def test_refusals_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ProtocolTextError) as info:
        parse_protocol_text(text)
    assert info.value.line == line
    assert fragment in info.value.problem
    assert str(info.value).startswith(f"protocol text line {line}: ")


def test_refuses_text_over_the_size_limit() -> None:
    head = "§ 1\nTitel\nÄ"
    just_fits = head + "a" * (MAX_PROTOCOL_TEXT_BYTES - len(head.encode()))
    assert len(parse_protocol_text(just_fits)) == 1
    with pytest.raises(ProtocolTextError) as info:
        parse_protocol_text(just_fits + "a")
    assert info.value.line == 1
    assert f"the limit is {MAX_PROTOCOL_TEXT_BYTES} bytes" in info.value.problem


# --- sections on their own ---------------------------------------------------------------------


def test_parse_sections_and_back() -> None:
    (paragraph,) = parse_protocol_text(seed_text())
    text = paragraph.text
    assert text.startswith("Lägesrapport augusti 2014\n\nBeslut\n\nKommunstyrelsens")
    assert parse_sections(text) == paragraph.sections
    assert sections_to_text(paragraph.sections) == text


def test_parse_sections_keeps_empty_headed_sections() -> None:
    sections = (Section("Beslut", ""), Section("Ärende", "Text.\n\n\tIndrag."))
    assert sections_to_text(sections) == "Beslut\n\nÄrende\n\nText.\n\n\tIndrag."
    assert parse_sections(sections_to_text(sections)) == sections


def test_parse_sections_refuses_control_characters_with_line() -> None:
    with pytest.raises(ProtocolTextError) as info:
        parse_sections("Beslut\n\nJa\x07")
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("text", "immediate"),
    [
        ("Paragrafen förklaras omedelbart justerad.", True),
        ("Paragrafen förklarades omedelbart\njusterad.", True),
        ("Beslutet justeras omedelbart.", True),
        ("Arbetsutskottet beslutade att paragrafen skulle justeras omedelbart.", True),
        ("Nämnden beslutar om omedelbar justering.", True),
        ("PARAGRAFEN FÖRKLARAS OMEDELBART JUSTERAD.", True),
        ("Paragrafen justeras inte omedelbart.", False),
        ("Paragrafen är inte omedelbart justerad.", False),
        ("Ingen ej omedelbar justering.", False),
        ("Protokollet justeras den 26 augusti 2014.", False),
        ("Beslutet verkställs omedelbart.", False),
    ],
)
def test_declares_immediate(text: str, immediate: bool) -> None:
    assert declares_immediate((Section("Beslut", text),)) is immediate


def test_declares_immediate_by_heading() -> None:
    assert declares_immediate((Section("Omedelbar justering", ""),)) is True
    assert declares_immediate((Section("Beslut", "Ja."),)) is False
