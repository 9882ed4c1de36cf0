"""Swedish personal identity numbers (personnummer, and samordningsnummer), checked
and kept only as a keyed hash.

A personnummer is written ``ÅÅÅÅMMDDNNNK`` here (twelve digits; a hyphen after the
date is accepted and dropped): the date of birth, a serial number and a check digit
(the Luhn algorithm over the last ten digits). A samordningsnummer (coordination
number, for people who are or were not registered in Sweden) has 60 added to the
day. Both are what e-legitimation reports in the Swedish OpenID Connect profile's
``https://id.oidc.se/claim/personalIdentityNumber`` claim.

justering needs the number for one thing only: to tell whether a login with
e-legitimation is the signer the manifest names. It keeps it only as an HMAC-SHA256
under a secret of the home (:func:`identity_hash`), so the ledger, the trail, the
certificates and the archive never hold it in clear text; without that secret the
hash cannot be turned back into the number by trying them all (there are only about
10⁹). Nothing here puts a number in an error message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import replace

from justering.model.meeting import Meeting
from justering.model.roles import Person

__all__ = [
    "EARLIEST_BIRTH_YEAR",
    "IDENTITY_HASH",
    "PersonalNumberError",
    "claim_hash",
    "hash_personal_numbers",
    "identity_hash",
    "normalise_personal_number",
    "pseudonym",
]

EARLIEST_BIRTH_YEAR = 1870
"""No one alive, or signing a protocol, was born before this."""
IDENTITY_HASH = re.compile(r"[0-9a-f]{64}")
"""What an identity hash looks like: HMAC-SHA256, lowercase hex."""

_FORM = re.compile(r"(\d{8})-?(\d{4})", re.ASCII)
_COORDINATION_OFFSET = 60


class PersonalNumberError(ValueError):
    """A personnummer is malformed; the message says how, never what the number was."""


def normalise_personal_number(text: str, *, today: dt.date | None = None) -> str:
    """The twelve digits of a valid personnummer or samordningsnummer written
    ``ÅÅÅÅMMDDNNNK`` or ``ÅÅÅÅMMDD-NNNK``; raises :class:`PersonalNumberError`.

    Valid: a real date of birth (day + 60 for a samordningsnummer) from
    :data:`EARLIEST_BIRTH_YEAR` up to ``today``, and the Luhn check digit."""
    match = _FORM.fullmatch(text.strip())
    if match is None:
        raise PersonalNumberError(
            "must be twelve digits, ÅÅÅÅMMDDNNNK (a hyphen after the date is allowed)"
        )
    digits = match[1] + match[2]
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    if day > _COORDINATION_OFFSET:
        day -= _COORDINATION_OFFSET  # a samordningsnummer
    try:
        born = dt.date(year, month, day)
    except ValueError:
        raise PersonalNumberError("does not begin with a real date of birth") from None
    if born.year < EARLIEST_BIRTH_YEAR or born > (today or dt.date.today()):
        raise PersonalNumberError("does not begin with a plausible date of birth")
    if not _luhn_ok(digits[2:]):
        raise PersonalNumberError("has the wrong check digit (the last digit)")
    return digits


def _luhn_ok(ten: str) -> bool:
    """The Luhn check over ``ÅÅMMDDNNNK``: weights 2, 1, 2, … from the left."""
    total = 0
    for position, char in enumerate(ten):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def identity_hash(key: bytes, personal_number: str) -> str:
    """The keyed hash justering keeps instead of a personnummer (already normalised)."""
    return _mac(key, "personnummer", personal_number)


def claim_hash(key: bytes, claim: str, value: str) -> str:
    """The keyed hash of another identifying claim (when a provider names people by
    something other than a personnummer), kept apart from personnummer hashes."""
    return _mac(key, f"claim:{claim}", value)


def _mac(key: bytes, purpose: str, value: str) -> str:
    if len(key) < 32:
        raise ValueError("the identity key must be at least 32 bytes")
    message = f"justering-identity\x00{purpose}\x00{value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def pseudonym(identity: str) -> str:
    """What a signer certificate's subject serialNumber says instead of the
    personnummer: derived from the identity hash, the same for the same person under
    the same home, and telling nothing about the number without the home's secret."""
    digest = hashlib.sha256(f"justering-pseudonym\x00{identity}".encode()).hexdigest()
    return f"ID-{digest[:32].upper()}"


def hash_personal_numbers(meeting: Meeting, key: bytes) -> Meeting:
    """``meeting`` with every signer's personnummer replaced by its keyed hash: what
    the ledger may keep."""

    def hashed(person: Person) -> Person:
        if person.personal_number is None:
            return person
        digest = identity_hash(key, person.personal_number)
        return replace(person, personal_number=None, identity_hash=digest)

    return replace(
        meeting,
        chair=hashed(meeting.chair),
        adjusters=tuple(hashed(person) for person in meeting.adjusters),
        certifier=hashed(meeting.certifier),
    )
