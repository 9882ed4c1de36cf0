"""How a signer was identified: by holding the e-mailed link, or by a login with
e-legitimation at an assurance level (tillitsnivå).

The levels are the Swedish framework's (DIGG, *Tillitsramverk för Svensk
e-legitimation*), as the Swedish OpenID Connect profile (oidc.se) names them in the
``acr`` claim; eIDAS's levels map onto them (low ≈ 2, substantial ≈ 3, high ≈ 4).
What a signature says about its signer's identification is a
:class:`SignerIdentity`: it goes into the signer's certificate, the trail and the
certificate of completion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "KNOWN_ACR",
    "LINK_ONLY",
    "LOA2",
    "LOA3",
    "LOA4",
    "Assurance",
    "SignerIdentity",
    "SigningMode",
    "assurance_of_acr",
]

LOA2 = "http://id.elegnamnden.se/loa/1.0/loa2"
LOA3 = "http://id.elegnamnden.se/loa/1.0/loa3"
LOA4 = "http://id.elegnamnden.se/loa/1.0/loa4"
_EIDAS = "http://id.elegnamnden.se/loa/1.0/eidas-"


class SigningMode(StrEnum):
    """How a body's signers are identified (``signing`` in ``[bodies.CODE]``)."""

    E_LEGITIMATION = "e-legitimation"
    """A login with e-legitimation (OpenID Connect) before anything can be signed."""
    LINK = "link"
    """Holding the e-mailed link is enough: a simple electronic signature."""


class Assurance(StrEnum):
    """How surely the signer was identified, lowest first; the value is stable (it is
    in trails, certificates' policies and ``verify --json``)."""

    LINK = "link"
    """Only the holder of the e-mailed link: a simple electronic signature."""
    LOA2 = "loa2"
    LOA3 = "loa3"
    LOA4 = "loa4"

    @property
    def rank(self) -> int:
        """0 for the link alone, then 1, 2 and 3 for LoA 2 to 4: the members' order."""
        return list(Assurance).index(self)

    def at_least(self, minimum: Assurance) -> bool:
        return self.rank >= minimum.rank

    @property
    def swedish(self) -> str:
        """How the signer was identified, as intyg.pdf and the pages say it."""
        if self is Assurance.LINK:
            return "via e-postlänk (enkel elektronisk underskrift)"
        return f"inloggad med e-legitimation, tillitsnivå {self.rank + 1}"

    @property
    def level_name(self) -> str:
        """``tillitsnivå 3``; for link-only signing, ``ingen inloggning``."""
        return "ingen inloggning" if self is Assurance.LINK else f"tillitsnivå {self.rank + 1}"


KNOWN_ACR: Mapping[str, Assurance] = {
    LOA2: Assurance.LOA2,
    LOA3: Assurance.LOA3,
    LOA4: Assurance.LOA4,
    f"{_EIDAS}low": Assurance.LOA2,
    f"{_EIDAS}nf-low": Assurance.LOA2,
    f"{_EIDAS}sub": Assurance.LOA3,
    f"{_EIDAS}nf-sub": Assurance.LOA3,
    f"{_EIDAS}high": Assurance.LOA4,
    f"{_EIDAS}nf-high": Assurance.LOA4,
}
"""The ``acr`` values of the Swedish framework and their level. Others (a broker's
dialect) are mapped in the configuration (``[identity.acr]``); an unknown value
identifies no one well enough to sign. ``uncertified-loa3`` is deliberately absent:
it is a self-declared level, not a certified one."""


def assurance_of_acr(
    acr: str | None, extra: Mapping[str, Assurance] | None = None
) -> Assurance | None:
    """The level an ``acr`` value stands for; None when it is unknown."""
    if not acr:
        return None
    found = (extra or {}).get(acr)
    return found if found is not None else KNOWN_ACR.get(acr)


@dataclass(frozen=True)
class SignerIdentity:
    """How the signer of one signature was identified."""

    assurance: Assurance
    issuer: str | None = None
    """The identity provider (its OpenID Connect issuer), for a login."""
    acr: str | None = None
    """The authentication context the provider reported."""
    authenticated_at: dt.datetime | None = None
    """When the provider authenticated the signer (``auth_time``)."""
    id_token_sha256: str | None = None
    """SHA-256 of the ID token (the token itself is not kept)."""
    pseudonym: str | None = None
    """The certificate's subject serialNumber, derived from the identity hash."""

    @property
    def logged_in(self) -> bool:
        return self.assurance is not Assurance.LINK

    def trail_detail(self) -> dict[str, str]:
        """The signing event's detail about the identification (strings only)."""
        detail = {
            "identification": "e-legitimation" if self.logged_in else "link",
            "assurance": self.assurance.value,
        }
        if self.issuer:
            detail["issuer"] = self.issuer
        if self.acr:
            detail["acr"] = self.acr
        if self.authenticated_at is not None:
            detail["auth_time"] = self.authenticated_at.astimezone(dt.UTC).isoformat()
        if self.id_token_sha256:
            detail["id_token_sha256"] = self.id_token_sha256
        return detail

    @classmethod
    def from_trail_detail(cls, detail: Mapping[str, str]) -> SignerIdentity | None:
        """What a signing event's detail says; None for events recorded before
        signatures said how their signer was identified."""
        try:
            assurance = Assurance(detail["assurance"])
        except (KeyError, ValueError):
            return None
        auth_time = detail.get("auth_time")
        return cls(
            assurance,
            issuer=detail.get("issuer"),
            acr=detail.get("acr"),
            authenticated_at=dt.datetime.fromisoformat(auth_time) if auth_time else None,
            id_token_sha256=detail.get("id_token_sha256"),
        )


LINK_ONLY = SignerIdentity(Assurance.LINK)
"""A signer who held the link and logged in nowhere."""
