"""Findings 6 and 13: a name or municipality that no certificate can hold is refused
when the manifest is read, not by every signing attempt afterwards; invisible
characters that make one name look like another (bidi overrides, zero-width
spaces) are refused in names, and bidi controls in the text."""

from __future__ import annotations

from typing import Any

import pytest

from justering.errors import ManifestError
from justering.model.manifest import MAX_CERTIFICATE_NAME_BYTES, parse_manifest
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.roles import Role
from justering.pades.ca import SigningCA
from support.workflow import small_meeting

LOOK_ALIKES = {
    "right-to-left override": "Mats \u202egadreG",
    "zero-width space": "Mats\u200b Gerdau",
    "zero-width joiner": "Mats Ger\u200ddau",
    "left-to-right mark": "Mats Gerdau\u200e",
    "word joiner": "Mats\u2060Gerdau",
    "byte order mark": "\ufeffMats Gerdau",
}


def document(meeting: Meeting) -> dict[str, Any]:
    return meeting_to_dict(small_meeting(meeting))


@pytest.mark.parametrize("field", ["chair", "adjusters", "certifier", "municipality"])
def test_a_name_longer_than_a_certificate_holds_is_refused(
    sample_meeting: Meeting, field: str
) -> None:
    data = document(sample_meeting)
    long = "Å" * (MAX_CERTIFICATE_NAME_BYTES // 2 + 1)  # 33 characters, 66 bytes
    if field == "municipality":
        data["municipality"] = long
        where = "municipality"
    elif field == "adjusters":
        data["adjusters"][0]["name"] = long
        where = "adjusters[0].name"
    else:
        data[field]["name"] = long
        where = f"{field}.name"
    with pytest.raises(ManifestError) as refused:
        parse_manifest(data)
    assert refused.value.field == where
    assert "66 bytes" in refused.value.problem and "64" in refused.value.problem


def test_the_longest_name_accepted_is_one_a_certificate_holds(
    sample_meeting: Meeting, tmp_path: Any
) -> None:
    data = document(sample_meeting)
    data["chair"]["name"] = "Å" * (MAX_CERTIFICATE_NAME_BYTES // 2)  # 64 bytes
    data["municipality"] = "x" * MAX_CERTIFICATE_NAME_BYTES
    meeting = parse_manifest(data)
    ca = SigningCA.create(tmp_path / "ca", organisation="Nacka kommun")
    [chair] = meeting.signers(Role.CHAIR)
    credential = ca.issue(chair, organisation=meeting.municipality)
    assert credential.certificate.subject.rfc4514_string().count("Å") == 32


@pytest.mark.parametrize(("what", "name"), LOOK_ALIKES.items())
def test_invisible_characters_are_refused_in_names(
    sample_meeting: Meeting, what: str, name: str
) -> None:
    data = document(sample_meeting)
    data["chair"]["name"] = name
    with pytest.raises(ManifestError) as refused:
        parse_manifest(data)
    assert refused.value.field == "chair.name"
    assert "U+" in refused.value.problem


@pytest.mark.parametrize("control", ["\u202e", "\u2066", "\u200f", "\u061c"])
def test_bidi_controls_are_refused_in_the_text(sample_meeting: Meeting, control: str) -> None:
    data = document(sample_meeting)
    data["paragraphs"][0]["text"] = f"Beslut\n\nKommunstyrelsen beslutar att {control}sälja"
    with pytest.raises(ManifestError) as refused:
        parse_manifest(data)
    assert refused.value.field == "paragraphs[0].text"
    assert f"U+{ord(control):04X}" in refused.value.problem
