"""The meeting manifest: validation with field paths, files, the bundled sample, round trip."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import justering
from justering.documents.fonts import check_printable
from justering.errors import ManifestError
from justering.model.manifest import (
    MAX_MANIFEST_BYTES,
    load_manifest,
    load_sample_meeting,
    parse_manifest,
    parse_manifest_json,
)
from justering.model.meeting import Body, Meeting, meeting_to_dict
from justering.model.minutes import MAX_PROTOCOL_TEXT_BYTES, Section
from justering.model.roles import Person, Role, Signer
from support.manifests import PROTOCOL, manifest, with_paragraphs

DATA = Path(__file__).parents[1] / "data" / "protocols"


PARAGRAPH = {"number": 7, "dnr": None, "title": "Titel", "text": "Beslut\n\nJa."}


def refuse(data: Any, base_dir: Path | None = None) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, base_dir=base_dir)
    return info.value


# --- valid manifests ---------------------------------------------------------------------------


def test_inline_manifest_parses() -> None:
    meeting = parse_manifest(manifest())
    assert meeting.meeting_id == "nacka-ksau-2014-08-19"
    assert meeting.body == Body("KSAU", "Kommunstyrelsens arbetsutskott")
    assert meeting.date == dt.date(2014, 8, 19)
    assert meeting.adjusters[1] == Person("Nguyễn Thị Hoa", "hoa.nguyen@nacka.example")
    (paragraph,) = meeting.paragraphs
    assert (paragraph.number, paragraph.dnr, paragraph.title) == (5, "KS 2014/12", "Titel")
    assert paragraph.sections == (Section("Beslut", "Ja."),)
    assert meeting.signers(Role.ADJUSTER)[1] == Signer(meeting.adjusters[1], Role.ADJUSTER, 1)


def test_strings_are_stripped_and_nfc() -> None:
    decomposed = "Nguye\u0302\u0303n Thi\u0323 Hoa"
    meeting = parse_manifest(
        manifest(
            place="  Nacka stadshus\t",
            chair={"name": decomposed, "email": " hoa@nacka.example "},
            adjusters=[{"name": "Rolf Wasteson", "email": "rolf.wasteson@nacka.example"}],
        )
    )
    assert meeting.place == "Nacka stadshus"
    assert meeting.chair == Person("Nguyễn Thị Hoa", "hoa@nacka.example")


def test_paragraphs_form_parses_text_into_sections() -> None:
    meeting = parse_manifest(
        with_paragraphs(
            {
                "number": 97,
                "dnr": "KFKS 2014/233-311",
                "title": "Yttrande",
                "text": "Beslut\r\n\r\n1.\tYttrandet antas.\r\n\r\n2.\tParagrafen förklaras "
                "omedelbart justerad.\r\n\r\nOrdförandes signatur\tJusterandes signatur\t"
                "Utdragsbestyrkande\r\n",
            },
            {"number": 96, "title": "Information", "text": "Noteras.", "immediate": False},
            {
                **PARAGRAPH,
                "number": 98,
                "text": "Paragrafen justeras omedelbart.",
                "immediate": False,
            },
        )
    )
    first, second, third = meeting.paragraphs
    assert first.sections == (
        Section("Beslut", "1.\tYttrandet antas.\n\n2.\tParagrafen förklaras omedelbart justerad."),
    )
    assert first.immediate is True, "detected from the text when not given"
    assert (second.number, second.dnr, second.sections) == (96, None, (Section(None, "Noteras."),))
    assert third.immediate is False, "an explicit value wins"


def test_sample_meeting_loads() -> None:
    meeting = load_sample_meeting()
    assert meeting.meeting_id == "nacka-ksau-2014-08-19"
    assert meeting.municipality == "Nacka kommun"
    assert meeting.body == Body("KSAU", "Kommunstyrelsens arbetsutskott")
    assert meeting.date == dt.date(2014, 8, 19)
    assert meeting.chair == Person("Mats Gerdau", "mats.gerdau@nacka.example")
    assert meeting.adjusters == (Person("Rolf Wasteson", "rolf.wasteson@nacka.example"),)
    assert meeting.certifier == Person("Lena Sekreterare", "lena.sekreterare@nacka.example")
    assert [p.number for p in meeting.paragraphs] == [94, 95, 96, 97]
    sample_dir = Path(justering.__file__).parent / "samples"
    assert load_manifest(sample_dir / "meeting.json") == meeting


def test_sample_meeting_loads_from_a_zipped_package(tmp_path: Path) -> None:
    """importlib.resources, not file paths: works however the package is installed."""
    package = Path(justering.__file__).parent
    archive = tmp_path / "justering.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in package.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, Path("justering") / path.relative_to(package))
    code = (
        "import justering, justering.model.manifest as m; "
        f"assert justering.__file__.startswith({str(archive)!r}), justering.__file__; "
        "print(len(m.load_sample_meeting().paragraphs))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        # -S keeps the editable install's path hook out; third-party packages
        # (the renderer's fonttools) still come from site-packages, after the zip.
        env={"PYTHONPATH": os.pathsep.join([str(archive), sysconfig.get_paths()["purelib"]])},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"


# --- round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "meeting",
    [
        load_sample_meeting(),
        parse_manifest(manifest(protocol_text_inline=(DATA / "msn_2014.txt").read_text())),
        parse_manifest(with_paragraphs(PARAGRAPH, {**PARAGRAPH, "number": 8, "text": ""})),
    ],
    ids=["sample", "msn", "paragraphs"],
)
def test_round_trip(meeting: Meeting) -> None:
    as_dict = meeting_to_dict(meeting)
    assert parse_manifest(as_dict) == meeting
    assert parse_manifest(json.loads(json.dumps(as_dict))) == meeting
    assert parse_manifest_json(json.dumps(as_dict, ensure_ascii=False)) == meeting


def test_canonical_form() -> None:
    as_dict = meeting_to_dict(parse_manifest(manifest()))
    assert set(as_dict) == {
        "meeting_id",
        "municipality",
        "body",
        "date",
        "place",
        "chair",
        "adjusters",
        "certifier",
        "paragraphs",
    }
    assert as_dict["date"] == "2014-08-19"
    assert as_dict["paragraphs"] == [
        {
            "number": 5,
            "dnr": "KS 2014/12",
            "title": "Titel",
            "text": "Beslut\n\nJa.",
            "immediate": False,
        }
    ]


# --- refusals of fields ------------------------------------------------------------------------


def change(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set (or with ``...`` delete) the field at a dotted/indexed path."""

    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        key: Any = int(last) if last.isdigit() else last
        if value is ...:
            del target[key]
        else:
            target[key] = value

    return apply


ADJUSTER = {"name": "Tredje Person", "email": "tredje@nacka.example"}

FIELD_REFUSALS: list[tuple[Callable[[dict[str, Any]], None], str, str]] = [
    (change("adjuster", []), "adjuster", "unknown field"),
    (change("meeting_id", ...), "meeting_id", "is missing"),
    (change("meeting_id", 20140819), "meeting_id", "must be a string, not a number"),
    (change("meeting_id", ""), "meeting_id", "must not be empty"),
    (change("meeting_id", "../etc"), "meeting_id", "A-Z a-z 0-9 . _ -"),
    (change("meeting_id", "nacka/ksau"), "meeting_id", "A-Z a-z 0-9"),
    (change("meeting_id", "möte-1"), "meeting_id", "A-Z a-z 0-9"),
    (change("meeting_id", "a" * 101), "meeting_id", "1 to 100"),
    (change("meeting_id", ".hidden"), "meeting_id", "starting with a letter or digit"),
    (change("municipality", "  "), "municipality", "must not be empty"),
    (change("municipality", "x" * 501), "municipality", "longer than 500"),
    (change("body", "KSAU"), "body", "must be a JSON object, not a string"),
    (change("body.code", "KS/AU"), "body.code", "short code"),
    (change("body.code", "K" * 21), "body.code", "short code"),
    (change("body.name", ...), "body.name", "is missing"),
    (change("body.kod", "KSAU"), "body.kod", "unknown field"),
    (change("date", "2014-02-30"), "date", "not a real date"),
    (change("date", "19 augusti 2014"), "date", "YYYY-MM-DD"),
    (change("date", "20140819"), "date", "YYYY-MM-DD"),
    (change("date", "2014-08-19T10:00"), "date", "YYYY-MM-DD"),
    (change("date", 20140819), "date", "YYYY-MM-DD"),
    (change("place", None), "place", "must be a string, not null"),
    (change("chair", ["Mats Gerdau"]), "chair", "must be a JSON object, not a list"),
    (change("chair.email", "mats.gerdau"), "chair.email", "is not one e-mail address"),
    (change("chair.email", "mats gerdau@nacka.example"), "chair.email", "one e-mail address"),
    (change("chair.email", "mats@nacka"), "chair.email", "one e-mail address"),
    (change("chair.email", "mats@@nacka.example"), "chair.email", "one e-mail address"),
    (change("certifier.name", "Lena\nSekreterare"), "certifier.name", "U+000A"),
    (change("certifier.name", "Lena\tSekreterare"), "certifier.name", "control"),
    (change("certifier.phone", "08"), "certifier.phone", "unknown field"),
    (change("adjusters", []), "adjusters", "one or two"),
    (change("adjusters", {"name": "x"}), "adjusters", "one or two"),
    (
        change("adjusters", [{**ADJUSTER, "email": f"p{i}@nacka.example"} for i in range(3)]),
        "adjusters",
        "one or two",
    ),
    (change("adjusters.1.email", "Rolf.Wasteson@NACKA.example"), "adjusters[1].email", "different"),
    (change("adjusters.0.email", "mats.gerdau@nacka.example"), "adjusters[0].email", "chair"),
    (change("adjusters.1.name", ...), "adjusters[1].name", "is missing"),
    (change("adjusters.1.email", 5), "adjusters[1].email", "must be a string"),
    (change("protocol_text_inline", ...), "protocol_text", "exactly one of"),
    (change("paragraphs", [PARAGRAPH]), "protocol_text_inline", "conflicts with paragraphs"),
    (change("protocol_text", "p.txt"), "protocol_text", "conflicts with protocol_text_inline"),
    (change("protocol_text_inline", ["§ 1"]), "protocol_text_inline", "must be a string"),
    (change("protocol_text_inline", ""), "protocol_text_inline", "line 1: the text is empty"),
    (change("protocol_text_inline", "§ 1\nA\n§ 1\nB"), "protocol_text_inline", "line 3: duplicate"),
]


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    FIELD_REFUSALS,
    ids=[f"{field}-{i}" for i, (_, field, _) in enumerate(FIELD_REFUSALS)],
)
def test_field_refusals(
    mutate: Callable[[dict[str, Any]], None], field: str, fragment: str
) -> None:
    data = copy.deepcopy(manifest())
    mutate(data)
    error = refuse(data)
    assert error.field == field
    assert fragment in error.problem
    assert str(error) == f"manifest field '{field}': {error.problem}"


@pytest.mark.parametrize("data", [None, [], "manifest", 5])
def test_document_must_be_an_object(data: Any) -> None:
    assert refuse(data).field == "(manifest)"


PARAGRAPH_REFUSALS: list[tuple[Any, str, str]] = [
    ([], "paragraphs", "non-empty list"),
    ({"1": PARAGRAPH}, "paragraphs", "non-empty list"),
    ([PARAGRAPH, "§ 8"], "paragraphs[1]", "must be a JSON object"),
    ([PARAGRAPH, {**PARAGRAPH, "number": "8"}], "paragraphs[1].number", "whole number"),
    ([PARAGRAPH, {**PARAGRAPH, "number": True}], "paragraphs[1].number", "whole number"),
    ([PARAGRAPH, {**PARAGRAPH, "number": 8.0}], "paragraphs[1].number", "whole number"),
    ([PARAGRAPH, {**PARAGRAPH, "number": 0}], "paragraphs[1].number", "from 1"),
    ([PARAGRAPH, PARAGRAPH], "paragraphs[1].number", "duplicate § 7 (also paragraphs[0])"),
    ([{**PARAGRAPH, "title": " "}], "paragraphs[0].title", "must not be empty"),
    ([{**PARAGRAPH, "title": "A\nB"}], "paragraphs[0].title", "one line"),
    ([{k: v for k, v in PARAGRAPH.items() if k != "title"}], "paragraphs[0].title", "missing"),
    ([{**PARAGRAPH, "dnr": ""}], "paragraphs[0].dnr", "must not be empty"),
    ([{**PARAGRAPH, "dnr": 2014}], "paragraphs[0].dnr", "must be a string"),
    ([{**PARAGRAPH, "text": None}], "paragraphs[0].text", "must be a string, not null"),
    ([{**PARAGRAPH, "text": "Beslut\n\nJa\x00"}], "paragraphs[0].text", "line 3: control"),
    ([{**PARAGRAPH, "immediate": "ja"}], "paragraphs[0].immediate", "true or false"),
    ([{**PARAGRAPH, "titel": "x"}], "paragraphs[0].titel", "unknown field"),
]


@pytest.mark.parametrize(("paragraphs", "field", "fragment"), PARAGRAPH_REFUSALS)
def test_paragraph_refusals(paragraphs: Any, field: str, fragment: str) -> None:
    data = with_paragraphs()
    data["paragraphs"] = paragraphs
    error = refuse(data)
    assert error.field == field
    assert fragment in error.problem


# --- files -------------------------------------------------------------------------------------


def write_manifest(directory: Path, **changes: Any) -> Path:
    data = manifest(**changes)
    del data["protocol_text_inline"]
    path = directory / "meeting.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_load_manifest_reads_protocol_text_relative_to_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "p.txt").write_text(PROTOCOL.replace("\n", "\r\n"), encoding="utf-8")
    meeting = load_manifest(write_manifest(tmp_path, protocol_text="texts/p.txt"))
    assert [p.label for p in meeting.paragraphs] == ["§ 5"]
    assert meeting == parse_manifest(manifest())


def test_protocol_text_may_point_anywhere(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "p.txt").write_text(PROTOCOL, encoding="utf-8")
    (tmp_path / "m").mkdir()
    absolute = load_manifest(write_manifest(tmp_path / "m", protocol_text=str(elsewhere / "p.txt")))
    relative = load_manifest(write_manifest(tmp_path / "m", protocol_text="../elsewhere/p.txt"))
    assert absolute == relative == parse_manifest(manifest())


def test_protocol_text_is_refused_without_base_dir() -> None:
    data = manifest(protocol_text="protocol.txt")
    del data["protocol_text_inline"]
    error = refuse(data)
    assert error.field == "protocol_text"
    assert "protocol_text_inline" in error.problem


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: (d / "p.txt").mkdir(), "is not a file"),
        (lambda d: (d / "p.txt").write_bytes(b"\xa7 1\nTitel\n"), "is not UTF-8 text (byte 0)"),
        (lambda d: (d / "p.txt").write_text("§ 1\n\n§ 2\nT\n"), "p.txt, line 1: § 1 has no title"),
        (lambda d: (d / "p.txt").write_text(""), "p.txt, line 1: the text is empty"),
    ],
)
def test_protocol_text_file_refusals(
    tmp_path: Path, setup: Callable[[Path], object], fragment: str
) -> None:
    setup(tmp_path)
    data = manifest(protocol_text="p.txt")
    del data["protocol_text_inline"]
    error = refuse(data, base_dir=tmp_path)
    assert error.field == "protocol_text"
    assert fragment in error.problem


def test_protocol_text_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "p.txt").open("wb") as handle:
        handle.truncate(MAX_PROTOCOL_TEXT_BYTES + 1)
    data = manifest(protocol_text="p.txt")
    del data["protocol_text_inline"]
    error = refuse(data, base_dir=tmp_path)
    assert error.field == "protocol_text"
    assert f"the limit is {MAX_PROTOCOL_TEXT_BYTES} bytes" in error.problem


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (b'{\n  "meeting_id": "x",\n  "date" "2014-08-19"\n}', "invalid JSON at line 3 column 10"),
        (b"", "invalid JSON at line 1 column 1"),
        (b'{"meeting_id": "a", "meeting_id": "b"}', "'meeting_id' appears twice"),
        (b'{"meeting_id": NaN}', "NaN is not allowed"),
        (b'{"meeting_id": "\xe5"}', "is not UTF-8 (byte 16)"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_document_refusals(tmp_path: Path, document: bytes, fragment: str) -> None:
    path = tmp_path / "meeting.json"
    path.write_bytes(document)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.field == "(manifest)"
    assert fragment in info.value.problem


def test_manifest_file_with_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "meeting.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(manifest()).encode())
    assert load_manifest(path) == parse_manifest(manifest())


def test_missing_and_oversized_manifest_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.json")
    assert "does not exist" in info.value.problem
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_MANIFEST_BYTES + 1)
    with pytest.raises(ManifestError) as info:
        load_manifest(big)
    assert f"the limit is {MAX_MANIFEST_BYTES} bytes" in info.value.problem


def test_oversized_manifest_document_is_refused() -> None:
    document = json.dumps(manifest(place="x" * MAX_MANIFEST_BYTES))
    with pytest.raises(ManifestError) as info:
        parse_manifest_json(document)
    assert info.value.field == "(manifest)"
    assert "the limit is" in info.value.problem


@pytest.mark.parametrize(
    ("path", "value", "field", "shown"),
    [
        (("paragraphs", 1, "text"), "Beslut\n\nNamnet 漢字 finns.", "paragraphs[1]", "漢"),
        (("paragraphs", 0, "title"), "Titel 𝄞", "paragraphs[0]", "𝄞"),
        (("chair", "name"), "Mats 𝄞", "chair.name", "𝄞"),
        (("place",), "Stadshuset 𒀀", "place", "𒀀"),
    ],
)
def test_text_the_fonts_cannot_show_is_refused_naming_field_and_character(
    path: tuple[str | int, ...], value: str, field: str, shown: str
) -> None:
    from justering.model.manifest import load_sample_meeting

    data = meeting_to_dict(load_sample_meeting())
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    meeting = parse_manifest(data)  # the structure is fine: the fonts are checked apart
    with pytest.raises(ManifestError) as caught:
        check_printable(meeting)
    assert caught.value.field == field
    assert shown in caught.value.problem


def test_a_meeting_in_the_future_is_refused_naming_the_date() -> None:
    """A meeting is sent once it has been held (its protocol is justered after it);
    today is Sweden's today."""
    today = dt.date(2026, 3, 2)
    accepted = parse_manifest(manifest(date="2026-03-02"), base_dir=None, today=today)
    assert accepted.date == today
    with pytest.raises(ManifestError) as refused:
        parse_manifest(manifest(date="2026-03-03"), base_dir=None, today=today)
    assert refused.value.field == "date"
    assert "2026-03-03 is in the future (today is 2026-03-02 in Sweden)" in str(refused.value)
    assert "5 kap. 69 §" in str(refused.value)
    with pytest.raises(ManifestError, match="in the future"):
        parse_manifest(manifest(date="2099-01-01"))  # today by the clock
