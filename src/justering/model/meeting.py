"""A meeting: who met, when and where, who signs, and the paragraphs of its minutes.

:func:`meeting_to_dict` is the canonical form the ledger stores;
:func:`meeting_from_dict` reads it back without validating it again (it was
validated once, when it was recorded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from justering.model.minutes import Paragraph, parse_sections
from justering.model.roles import Person, Role, Signer

__all__ = ["Body", "Meeting", "meeting_from_dict", "meeting_to_dict"]


@dataclass(frozen=True)
class Body:
    """The municipal body that met (nämnd, kommunstyrelse, arbetsutskott)."""

    code: str
    name: str


@dataclass(frozen=True)
class Meeting:
    """A validated meeting manifest with its paragraphs parsed."""

    meeting_id: str
    municipality: str
    body: Body
    date: dt.date
    place: str
    chair: Person
    adjusters: tuple[Person, ...]
    certifier: Person
    paragraphs: tuple[Paragraph, ...]

    def signers(self, role: Role) -> tuple[Signer, ...]:
        """The signers of ``role`` in a stable order (adjusters by manifest order)."""
        if role is Role.CHAIR:
            return (Signer(self.chair, Role.CHAIR),)
        if role is Role.CERTIFIER:
            return (Signer(self.certifier, Role.CERTIFIER),)
        return tuple(Signer(p, Role.ADJUSTER, i) for i, p in enumerate(self.adjusters))

    def paragraph(self, number: int) -> Paragraph | None:
        """The paragraph § ``number``, if the meeting has one."""
        return next((p for p in self.paragraphs if p.number == number), None)

    @property
    def immediate_numbers(self) -> frozenset[int]:
        """The § numbers under omedelbar justering."""
        return frozenset(p.number for p in self.paragraphs if p.immediate)


def meeting_to_dict(meeting: Meeting) -> dict[str, Any]:
    """The canonical JSON form, with ``paragraphs`` inline: ``parse_manifest`` of it
    gives back an equal ``Meeting``. This is what the ledger stores."""
    return {
        "meeting_id": meeting.meeting_id,
        "municipality": meeting.municipality,
        "body": {"code": meeting.body.code, "name": meeting.body.name},
        "date": meeting.date.isoformat(),
        "place": meeting.place,
        "chair": _person_to_dict(meeting.chair),
        "adjusters": [_person_to_dict(p) for p in meeting.adjusters],
        "certifier": _person_to_dict(meeting.certifier),
        "paragraphs": [
            {
                "number": p.number,
                "dnr": p.dnr,
                "title": p.title,
                "text": p.text,
                "immediate": p.immediate,
            }
            for p in meeting.paragraphs
        ],
    }


def _person_to_dict(person: Person) -> dict[str, str]:
    """A person as a manifest names them: the personnummer as given (a manifest
    on its way to the web API), or its keyed hash (what the ledger keeps)."""
    stored = {"name": person.name, "email": person.email}
    if person.personal_number is not None:
        stored["personal_number"] = person.personal_number
    if person.identity_hash is not None:
        stored["personal_number_hash"] = person.identity_hash
    return stored


def meeting_from_dict(stored: dict[str, Any]) -> Meeting:
    """The meeting the ledger stored (:func:`meeting_to_dict`), read back as it was
    validated when recorded: nothing is checked again."""
    return Meeting(
        meeting_id=stored["meeting_id"],
        municipality=stored["municipality"],
        body=Body(stored["body"]["code"], stored["body"]["name"]),
        date=dt.date.fromisoformat(stored["date"]),
        place=stored["place"],
        chair=_person_from_dict(stored["chair"]),
        adjusters=tuple(_person_from_dict(p) for p in stored["adjusters"]),
        certifier=_person_from_dict(stored["certifier"]),
        paragraphs=tuple(
            Paragraph(p["number"], p["dnr"], p["title"], parse_sections(p["text"]), p["immediate"])
            for p in stored["paragraphs"]
        ),
    )


def _person_from_dict(stored: dict[str, str]) -> Person:
    return Person(stored["name"], stored["email"], identity_hash=stored.get("personal_number_hash"))
