"""Personnummer: twelve digits with a real date of birth and the Luhn check digit,
accepted in a manifest (each signer's ``personal_number``), refused without ever
being repeated, and kept only as a keyed hash."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import pytest

from justering.errors import ManifestError
from justering.model.manifest import parse_manifest
from justering.model.meeting import meeting_from_dict, meeting_to_dict
from justering.model.personnummer import (
    PersonalNumberError,
    claim_hash,
    hash_personal_numbers,
    identity_hash,
    normalise_personal_number,
    pseudonym,
)
from support.eid import with_check_digit
from support.manifests import manifest

TOLVAN = "191212121212"
"""Skatteverket's test personnummer (Tolvan Tolvansson): 19121212-1212."""
COORDINATION = "197010632391"
"""A samordningsnummer: the day of birth plus 60."""
KEY = secrets.token_bytes(32)


def test_valid_numbers_are_twelve_digits() -> None:
    assert normalise_personal_number(TOLVAN) == TOLVAN
    assert normalise_personal_number("19121212-1212") == TOLVAN
    assert normalise_personal_number(" 191212121212 ") == TOLVAN
    assert normalise_personal_number(COORDINATION) == COORDINATION


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("121212-1212", "twelve digits"),
        ("1212121212", "twelve digits"),
        ("19121212+1212", "twelve digits"),
        ("191212121213", "check digit"),
        ("191213321212", "real date"),
        ("19120230123", "twelve digits"),
        ("186501011234", "plausible"),
        ("２０１２１２１２１２１２", "twelve digits"),  # full-width digits
    ],
)
def test_malformed_numbers_are_refused_without_repeating_them(text: str, fragment: str) -> None:
    with pytest.raises(PersonalNumberError) as refused:
        normalise_personal_number(text)
    assert fragment in str(refused.value)
    assert text.strip() not in str(refused.value) and text[-4:] not in str(refused.value)


def test_a_birth_in_the_future_is_refused() -> None:
    today = dt.date(2014, 8, 19)
    assert normalise_personal_number(with_check_digit("20140819999"), today=today)
    with pytest.raises(PersonalNumberError) as refused:
        normalise_personal_number(with_check_digit("20140820999"), today=today)
    assert "plausible" in str(refused.value)


def test_the_hash_is_keyed_and_kept_apart_from_other_claims() -> None:
    digest = identity_hash(KEY, TOLVAN)
    assert digest == identity_hash(KEY, TOLVAN) and len(digest) == 64
    assert digest != identity_hash(secrets.token_bytes(32), TOLVAN)
    assert digest != claim_hash(KEY, "email", TOLVAN)
    assert TOLVAN not in digest
    assert pseudonym(digest) == pseudonym(digest) and TOLVAN not in pseudonym(digest)
    with pytest.raises(ValueError):
        identity_hash(b"short", TOLVAN)


# --- in a manifest -------------------------------------------------------------------


def with_numbers(**people: str) -> dict[str, Any]:
    """The manifest with one adjuster, and a personnummer for each role named."""
    data = manifest()
    del data["adjusters"][1:]
    for role, number in people.items():
        target = data["adjusters"][0] if role == "adjuster" else data[role]
        target["personal_number"] = number
    return data


def test_each_signer_may_carry_a_personal_number() -> None:
    meeting = parse_manifest(with_numbers(chair="19121212-1212", adjuster=COORDINATION))
    assert meeting.chair.personal_number == TOLVAN
    assert meeting.adjusters[0].personal_number == COORDINATION
    assert meeting.certifier.personal_number is None
    assert TOLVAN not in repr(meeting)  # nor in any log line that prints a meeting


@pytest.mark.parametrize(
    ("number", "field", "fragment"),
    [
        ("191212121213", "chair.personal_number", "check digit"),
        (191212121212, "chair.personal_number", "must be a string"),
        ("19121212", "chair.personal_number", "twelve digits"),
    ],
)
def test_a_bad_personal_number_is_refused_naming_the_field_not_the_number(
    number: Any, field: str, fragment: str
) -> None:
    with pytest.raises(ManifestError) as refused:
        parse_manifest(with_numbers(chair=number))
    assert refused.value.field == field and fragment in refused.value.problem
    assert str(number) not in refused.value.diagnostics()


def test_the_chair_cannot_also_adjust_under_another_address() -> None:
    with pytest.raises(ManifestError) as refused:
        parse_manifest(with_numbers(chair=TOLVAN, adjuster="19121212-1212"))
    assert refused.value.field == "adjusters[0].personal_number"


def test_the_ledgers_form_keeps_only_the_hash_and_reads_back() -> None:
    meeting = hash_personal_numbers(parse_manifest(with_numbers(chair=TOLVAN)), KEY)
    assert meeting.chair.personal_number is None
    stored = meeting_to_dict(meeting)
    assert stored["chair"] == {
        "name": "Mats Gerdau",
        "email": "mats.gerdau@nacka.example",
        "personal_number_hash": identity_hash(KEY, TOLVAN),
    }
    assert TOLVAN not in str(stored)
    assert meeting_from_dict(stored) == meeting
    assert parse_manifest(stored) == meeting  # the canonical form round-trips


@pytest.mark.parametrize(
    "change",
    [
        {"personal_number_hash": "ABC"},
        {"personal_number_hash": "0" * 64, "personal_number": TOLVAN},
    ],
)
def test_a_malformed_hash_is_refused(change: dict[str, str]) -> None:
    data = with_numbers()
    data["chair"].update(change)
    with pytest.raises(ManifestError) as refused:
        parse_manifest(data)
    assert refused.value.field == "chair.personal_number_hash"
