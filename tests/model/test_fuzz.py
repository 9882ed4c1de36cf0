"""Property-based tests of the two input parsers: the protocol text export and
the meeting manifest. Whatever comes in, nothing escapes but the project's own
typed errors, and what is accepted keeps what was given."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from justering.documents.fonts import unrenderable_characters
from justering.errors import ManifestError, ProtocolTextError
from justering.model.manifest import parse_manifest, parse_manifest_json
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.minutes import (
    SECTION_HEADINGS,
    Paragraph,
    Section,
    parse_protocol_text,
    parse_sections,
    sections_to_text,
)
from justering.model.roles import Role
from support.manifests import with_paragraphs

FAST = settings(max_examples=150, deadline=None)
FEW = settings(max_examples=60, deadline=None)

FOOTER = "\t".join(role.footer_label for role in Role)
FOOTER_LINE = re.compile(r"\s*" + r"\s+".join(re.escape(r.footer_label) for r in Role) + r"\s*")
HEADINGS = frozenset(SECTION_HEADINGS)


def _is_footer(line: str) -> bool:
    return FOOTER_LINE.fullmatch(line) is not None


# --- text strategies -------------------------------------------------------------------------

any_text = st.text(st.characters(codec="utf-8"), max_size=300)
"""Arbitrary text: every code point but surrogates, control characters included."""

PIECES = (
    "§ 1",
    "§ 2",
    "§ 94",
    "§",
    "§ 0",
    "§ x",
    "§§",
    "KFKS 2012/577-001",
    "Dnr KS 2014/12",
    "Titel",
    "Beslut",
    "Ärende",
    "Omedelbar justering",
    FOOTER,
    "\t\t",
    "\n",
    "\r\n",
    "\r",
    "\t",
    " ",
    "\ufeff",
    "o\u0308",
    "\u2028",
    "\x0b",
)

structured_noise = st.lists(st.one_of(st.sampled_from(PIECES), any_text), max_size=25).map("".join)
"""Text assembled from pieces of real exports and arbitrary text."""

LETTERS = "abcdefghijklmnopqrstuvwxyzåäöéüABCDEFGHIJKLMNOPQRSTUVWXYZÅÄÖ"
word = st.text(st.sampled_from(LETTERS), min_size=1, max_size=10)
line_of_words = st.lists(word, min_size=1, max_size=8).map(" ".join)


def _plain(line: str) -> bool:
    """Not a heading, a dnr-like line or a paragraph start: text that stays text."""
    return line not in HEADINGS and not re.fullmatch(r"(?:Dnr\.?\s+)?[A-ZÅÄÖ -]+\s+\d.*", line)


body_line = line_of_words.filter(_plain)
title_text = st.tuples(line_of_words.filter(_plain), st.sampled_from(["", " ", "\t", "  "])).map(
    lambda pair: pair[0] + pair[1]
)
dnr_text = st.builds(
    lambda code, year, serial, dnr_label: f"{dnr_label}{code} {year}/{serial}",
    st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZÅÄÖ"), min_size=1, max_size=6),
    st.integers(1900, 2099),
    st.integers(1, 999_999),
    st.sampled_from(["", "Dnr ", "Dnr. "]),
)


@dataclass(frozen=True)
class GeneratedParagraph:
    number: int
    dnr: str | None
    title: str
    sections: tuple[tuple[str | None, tuple[str, ...]], ...]

    def lines(self) -> list[str]:
        out = [f"§ {self.number}", ""]
        if self.dnr is not None:
            out += [self.dnr, ""]
        out += [self.title, ""]
        for heading, body in self.sections:
            if heading is not None:
                out += [heading, ""]
            for line in body:
                out += [line, ""]
        return out

    @property
    def expected_dnr(self) -> str | None:
        return None if self.dnr is None else re.sub(r"^Dnr\.?\s+", "", self.dnr)

    @property
    def words(self) -> list[str]:
        return [w for _, body in self.sections for line in body for w in line.split()]


@st.composite
def generated_paragraph(draw: st.DrawFn, number: int) -> GeneratedParagraph:
    first = draw(st.lists(body_line, max_size=2))
    headed = draw(
        st.lists(
            st.tuples(st.sampled_from(SECTION_HEADINGS), st.lists(body_line, max_size=3)),
            max_size=4,
        )
    )
    sections: list[tuple[str | None, tuple[str, ...]]] = [(None, tuple(first))] if first else []
    sections += [(heading, tuple(body)) for heading, body in headed]
    return GeneratedParagraph(number, draw(st.none() | dnr_text), draw(title_text), tuple(sections))


@st.composite
def export(draw: st.DrawFn) -> tuple[str, list[GeneratedParagraph]]:
    """A plausible export: paragraphs, page footers anywhere, any line ending."""
    numbers = draw(st.lists(st.integers(1, 999_999), min_size=1, max_size=4, unique=True))
    paragraphs = [draw(generated_paragraph(n)) for n in numbers]
    lines = [line for p in paragraphs for line in p.lines()]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(1, len(lines)))
        lines[at:at] = [FOOTER, draw(st.sampled_from(["\t\t", " ", ""]))]
    lines = [line or draw(st.sampled_from(["", "", " ", "\t"])) for line in lines]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(["", *lines, FOOTER]), paragraphs


# --- the protocol text parser ----------------------------------------------------------------


def _check_parsed(paragraphs: tuple[Paragraph, ...]) -> None:
    numbers = [p.number for p in paragraphs]
    assert len(numbers) == len(set(numbers))
    for paragraph in paragraphs:
        assert paragraph.number >= 1
        assert paragraph.title and paragraph.title == paragraph.title.strip()
        assert paragraph.title not in HEADINGS
        for line in [paragraph.title, *paragraph.text.split("\n")]:
            assert not _is_footer(line), line


def _parse_or_refuse(text: str) -> None:
    try:
        paragraphs = parse_protocol_text(text)
    except ProtocolTextError as error:
        assert error.line >= 1
        assert error.line <= text.count("\n") + text.count("\r") + 1
        return
    _check_parsed(paragraphs)


@FAST
@given(any_text)
@example("\x00")
@example("§ 1\nTitel\n\u2029")
def test_arbitrary_text_parses_or_is_refused(text: str) -> None:
    _parse_or_refuse(text)


@FAST
@given(structured_noise)
@example("§ 1\nTitel\n" + FOOTER + "\nBeslut\n" + FOOTER)
@example("§ 01\nA\n§ 1\nB")
@example("§ 1\n Beslut\nJa.")
def test_text_made_of_export_pieces_parses_or_is_refused(text: str) -> None:
    _parse_or_refuse(text)


@FAST
@given(export())
@example(
    (
        "§ 1\nKS\t2014/12\nTitel\tmed tabb\nBeslut\nJa.",
        [GeneratedParagraph(1, "KS 2014/12", "Titel med tabb", (("Beslut", ("Ja.",)),))],
    )
)
def test_a_plausible_export_loses_nothing(case: tuple[str, list[GeneratedParagraph]]) -> None:
    text, generated = case
    parsed = parse_protocol_text(text)
    _check_parsed(parsed)
    assert [p.number for p in parsed] == [g.number for g in generated]
    for paragraph, expected in zip(parsed, generated, strict=True):
        assert paragraph.dnr == expected.expected_dnr
        assert paragraph.title == " ".join(expected.title.split())
        assert [s.heading for s in paragraph.sections] == [h for h, _ in expected.sections]
        assert [w for s in paragraph.sections for w in s.text.split()] == expected.words


@FAST
@given(st.one_of(any_text, structured_noise))
@example("\ufeff\ufeff")
def test_sections_survive_their_text_form(text: str) -> None:
    """``parse_sections`` inverts ``sections_to_text``: what the manifest round trip needs."""
    try:
        sections = parse_sections(text)
    except ProtocolTextError:
        return
    assert all(isinstance(s, Section) for s in sections)
    assert parse_sections(sections_to_text(sections)) == sections


def test_a_long_title_is_refused_by_the_text_parser() -> None:
    with pytest.raises(ProtocolTextError) as caught:
        parse_protocol_text("§ 1\n" + "x" * 501 + "\nBeslut\nJa.")
    assert caught.value.line == 2


# --- the manifest ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=20,
)


def _outcome(value: Any, *, as_json: bool = False) -> Meeting | str:
    """The meeting, or the field the ``ManifestError`` names (no other error may escape)."""
    try:
        return parse_manifest_json(json.dumps(value)) if as_json else parse_manifest(value)
    except ManifestError as error:
        assert isinstance(error.field, str)
        return error.field


@FAST
@given(st.binary(max_size=400))
@example(b"\xef\xbb\xbf{}")
@example(b"[" * 100_000)
@example(b'{"a": 1, "a": 2}')
@example(b"NaN")
def test_arbitrary_bytes_are_refused_with_a_manifest_error(document: bytes) -> None:
    try:
        parse_manifest_json(document)
    except ManifestError as error:
        assert error.field


@FAST
@given(json_values)
def test_arbitrary_json_is_refused_with_a_manifest_error(value: Any) -> None:
    """Decoded or as a document, the same answer (the document adds no failure of its own)."""
    assert _outcome(value) == _outcome(value, as_json=True)


def _letters() -> str:
    """Latin, Latin Extended and Vietnamese letters the extract's fonts can show."""
    ranges = [(0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1EA0, 0x1EFF)]
    chars = (chr(c) for low, high in ranges for c in range(low, high + 1))
    return "".join(
        c
        for c in chars
        if unicodedata.category(c).startswith("L")
        and unicodedata.normalize("NFC", c) == c
        and not unrenderable_characters(c)
    )


NAME_LETTERS = _letters()
name = st.lists(
    # At most 2 × 10 letters of up to 3 bytes: within a certificate's 64-byte names.
    st.text(st.sampled_from(NAME_LETTERS), min_size=1, max_size=10),
    min_size=1,
    max_size=2,
).map(" ".join)
emails = st.lists(
    st.builds(
        "{}@{}.{}".format,
        st.from_regex(r"[a-z0-9+_-]{1,12}(\.[a-z0-9+_-]{1,12}){0,2}", fullmatch=True),
        st.sampled_from(["nacka", "kommun", "example"]),
        st.sampled_from(["se", "org"]),
    ),
    min_size=4,
    max_size=4,
    unique_by=str.casefold,
)


@st.composite
def paragraph_dict(draw: st.DrawFn, number: int) -> dict[str, Any]:
    generated = draw(generated_paragraph(number))
    text = "\n\n".join(
        line
        for heading, body in generated.sections
        for line in ([heading] if heading else []) + list(body)
    )
    item: dict[str, Any] = {
        "number": number,
        "title": draw(name),
        "text": text,
    }
    if draw(st.booleans()):
        item["dnr"] = draw(st.none() | dnr_text)
    if draw(st.booleans()):
        item["immediate"] = draw(st.none() | st.booleans())
    return item


@st.composite
def manifest_dict(draw: st.DrawFn) -> dict[str, Any]:
    people = [{"name": draw(name), "email": email} for email in draw(emails)]
    numbers = draw(st.lists(st.integers(1, 999_999), min_size=1, max_size=3, unique=True))
    # a meeting that has been held: a future date is refused (tests/model/test_manifest.py)
    date = draw(st.dates(max_value=dt.date.today() - dt.timedelta(days=1))).isoformat()
    return {
        "meeting_id": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)),
        "municipality": draw(name),
        "body": {"code": draw(st.sampled_from(["KS", "KSAU", "MSN", "KFKS"])), "name": draw(name)},
        "date": date,
        "place": draw(name),
        "chair": people[0],
        "adjusters": people[1 : 1 + draw(st.integers(1, 2))],
        "certifier": people[3],
        "paragraphs": [draw(paragraph_dict(n)) for n in numbers],
    }


SMALL_MANIFEST = with_paragraphs({"number": 1, "title": "T", "text": "\ufeff\ufeffJa."})
"""A small valid manifest; its text once lost a byte order mark in the round trip."""


@FEW
@given(manifest_dict())
@example(SMALL_MANIFEST)
def test_a_valid_manifest_survives_its_canonical_form(data: dict[str, Any]) -> None:
    meeting = parse_manifest(copy.deepcopy(data))
    assert meeting.chair.name == data["chair"]["name"]
    assert [p.name for p in meeting.adjusters] == [p["name"] for p in data["adjusters"]]
    assert [p.number for p in meeting.paragraphs] == [p["number"] for p in data["paragraphs"]]
    assert [p.title for p in meeting.paragraphs] == [p["title"] for p in data["paragraphs"]]
    canonical = meeting_to_dict(meeting)
    assert parse_manifest(canonical) == meeting
    assert parse_manifest_json(json.dumps(canonical, ensure_ascii=False).encode()) == meeting


@FEW
@given(manifest_dict(), export())
@example(SMALL_MANIFEST, ("§ 1\nKS\t2014/12\nTitel\tmed tabb\nBeslut\nJa.", []))
def test_a_meeting_from_protocol_text_survives_its_canonical_form(
    data: dict[str, Any], case: tuple[str, list[GeneratedParagraph]]
) -> None:
    """What the ledger stores for a meeting given as text must load back equal."""
    data = {key: value for key, value in data.items() if key != "paragraphs"}
    data["protocol_text_inline"] = case[0]
    meeting = parse_manifest(data)
    assert parse_manifest(meeting_to_dict(meeting)) == meeting


# One wrong-typed value per field; ``None`` is right for ``dnr`` and ``immediate``.
STRING_FIELDS = ("meeting_id", "municipality", "place", "date")
WRONG_FOR_STRING: tuple[Any, ...] = (None, 1, 1.5, True, [], {}, ["x"])
WRONG_FOR_OBJECT: tuple[Any, ...] = (None, 1, "x", True, [], [{}])
WRONG_FOR_LIST: tuple[Any, ...] = (None, 1, "x", True, {})


def _leaf_paths(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], tuple[Any, ...]]]:
    """Every field of ``data`` with the wrong-typed values to try there."""
    paths: list[tuple[tuple[str | int, ...], tuple[Any, ...]]] = [
        ((key,), WRONG_FOR_STRING) for key in STRING_FIELDS
    ]
    paths += [(("body",), WRONG_FOR_OBJECT), (("adjusters",), WRONG_FOR_LIST)]
    paths += [(("paragraphs",), WRONG_FOR_LIST)]
    paths += [(("body", key), WRONG_FOR_STRING) for key in ("code", "name")]
    people: list[tuple[str | int, ...]] = [("chair",), ("certifier",)]
    people += [("adjusters", i) for i in range(len(data["adjusters"]))]
    for person in people:
        paths.append((person, WRONG_FOR_OBJECT))
        paths += [((*person, key), WRONG_FOR_STRING) for key in ("name", "email")]
    for i in range(len(data["paragraphs"])):
        paths.append((("paragraphs", i), WRONG_FOR_OBJECT))
        paths.append((("paragraphs", i, "number"), (None, "1", 1.0, True, [], {})))
        paths.append((("paragraphs", i, "dnr"), (1, True, [], {})))
        paths.append((("paragraphs", i, "title"), WRONG_FOR_STRING))
        paths.append((("paragraphs", i, "text"), WRONG_FOR_STRING))
        paths.append((("paragraphs", i, "immediate"), ("true", 1, 0, [], {})))
    return paths


def _field_name(path: tuple[str | int, ...]) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else f"{'.' if name else ''}{part}"
    return name


@FEW
@given(manifest_dict(), st.data())
def test_a_wrong_typed_field_is_named(data: dict[str, Any], draw: st.DataObject) -> None:
    path, wrong = draw.draw(st.sampled_from(_leaf_paths(data)))
    value = draw.draw(st.sampled_from(wrong))
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data)
    assert caught.value.field == _field_name(path)
