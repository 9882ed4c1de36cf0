"""The roles a signer can hold on an extract, and the order they sign in."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

__all__ = ["JUSTERING_ROLES", "SIGNING_ORDER", "Person", "Role", "Signer", "role_name"]


class Role(StrEnum):
    """A signer's role; the value is stable (stored in the trail and in certificates)."""

    CHAIR = "chair"
    ADJUSTER = "adjuster"
    CERTIFIER = "certifier"

    @property
    def swedish(self) -> str:
        """The Swedish name of the role, as signers and archivists read it."""
        return _WORDS[self].swedish

    @property
    def capacity(self) -> str:
        """In what capacity the role signs, to follow a verb: "signera som ordförande",
        "signera för utdragsbestyrkande" (the certifier's act is the utdragsbestyrkande;
        the certifier is not one)."""
        return _WORDS[self].capacity

    @property
    def footer_label(self) -> str:
        """The caption of the footer box this role signs in."""
        return _WORDS[self].footer_label


class _Words(NamedTuple):
    swedish: str
    capacity: str
    footer_label: str


_WORDS = {
    Role.CHAIR: _Words("Ordförande", "som ordförande", "Ordförandes signatur"),
    Role.ADJUSTER: _Words("Justerare", "som justerare", "Justerandes signatur"),
    Role.CERTIFIER: _Words("Utdragsbestyrkande", "för utdragsbestyrkande", "Utdragsbestyrkande"),
}
"""What each role is called: its name, the capacity it signs in, its footer box."""

#: The stages in signing order. Adjusters sign in parallel with each other.
SIGNING_ORDER: tuple[Role, ...] = (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER)

#: Who justers a protocol (KL 5 kap. 69 §): the chair, then the adjusters.
JUSTERING_ROLES: tuple[Role, ...] = (Role.CHAIR, Role.ADJUSTER)


def role_name(value: str | None) -> str:
    """The Swedish name (lower case) of a stored role value, or the value itself if
    it is no role (a secretary's link, say)."""
    if value is None:
        return ""
    try:
        return Role(value).swedish.lower()
    except ValueError:
        return value


@dataclass(frozen=True)
class Person:
    """Someone named in a manifest."""

    name: str
    email: str
    personal_number: str | None = field(default=None, repr=False)
    """Their personnummer (twelve digits) as the manifest gave it: only between
    reading a manifest and recording it, which keeps :attr:`identity_hash` instead."""
    identity_hash: str | None = field(default=None, repr=False)
    """The keyed hash of their personnummer (``justering.model.personnummer``), which
    a login with e-legitimation must match."""


@dataclass(frozen=True)
class Signer:
    """A person in a role on an extract. ``index`` tells adjusters apart (0 or 1)."""

    person: Person
    role: Role
    index: int = 0

    @property
    def name(self) -> str:
        return self.person.name

    @property
    def email(self) -> str:
        return self.person.email

    @property
    def slot(self) -> str:
        """A stable identifier for this signer's place on the extract, e.g. ``adjuster-1``."""
        return f"{self.role.value}-{self.index}"
