"""The ``[bodies.CODE]`` tables: the rules that may differ between a municipality's
bodies (deadlines, reminders, secretary, förvaringsplats, how signers identify)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from justering.config.identity import IdentitySettings
from justering.config.values import choice, login_level, reminder_days
from justering.errors import ConfigError
from justering.model.assurance import Assurance, SigningMode
from justering.model.calendar import MAX_JUSTERING_DAYS
from justering.model.roles import Person
from justering.model.statutes import justering_rules

__all__ = ["BodyRules", "read_bodies"]


@dataclass(frozen=True)
class BodyRules:
    """Rules that may differ between a municipality's bodies (``[bodies.CODE]`` in the
    config file); a body without a table follows the ``[justering]`` defaults."""

    justering_days: int = MAX_JUSTERING_DAYS
    """Justering deadline after the meeting: at most 14 days (KL 5 kap. 69 §)."""
    reminder_days: tuple[int, ...] = (3, 1)
    """Days before the deadline on which signers who have not signed are reminded."""
    secretary: Person | None = None
    """Who hears about declined and overdue extracts; None: the meeting's certifier."""
    kept_at: str | None = None
    """Förvaringsplats: where the body's protocols are kept, as the announcement on the
    anslagstavla must say (KL 8 kap. 12 §). Required: a meeting of a body without one
    is refused when it is recorded."""
    immediate_days: int = 1
    """Deadline of the omedelbar justering: 0 the meeting day, 1 the day after."""
    signing: SigningMode = SigningMode.LINK
    """How the body's signers are identified: e-legitimation, or the link alone."""
    minimum_assurance: Assurance = Assurance.LOA3
    """With e-legitimation: the lowest assurance level a signer's login may have."""


_BODY_KEYS = frozenset(
    {
        "justering_days",
        "reminder_days",
        "secretary_name",
        "secretary_email",
        "protocol_kept_at",
        "immediate_justering_days",
        "signing",
        "minimum_assurance",
    }
)


def read_bodies(
    bodies: Any, defaults: BodyRules, identity: IdentitySettings | None
) -> dict[str, BodyRules]:
    """``[bodies.CODE]`` tables: justering_days, reminder_days, secretary_name/_email,
    protocol_kept_at, immediate_justering_days, signing, minimum_assurance; what a
    table leaves out is taken from ``defaults`` (and the provider, ``identity``)."""
    if not isinstance(bodies, dict):
        raise ConfigError("bodies: expected tables such as [bodies.KSAU]")
    rules: dict[str, BodyRules] = {}
    for code, table in bodies.items():
        where = f"bodies.{code}."
        if not isinstance(table, dict):
            raise ConfigError(f"bodies.{code}: expected a table")
        unknown = sorted(set(table) - _BODY_KEYS)
        if unknown:
            raise ConfigError(f"{where}{unknown[0]}: unknown setting (known: {sorted(_BODY_KEYS)})")
        days, kept_at, immediate = justering_rules(
            table, where, (defaults.justering_days, defaults.kept_at, defaults.immediate_days)
        )
        reminders = defaults.reminder_days
        if "reminder_days" in table:
            reminders = reminder_days(table["reminder_days"], where)
        secretary = None
        name, email = table.get("secretary_name"), table.get("secretary_email")
        if name is not None or email is not None:
            if not (isinstance(name, str) and name.strip() and isinstance(email, str)):
                raise ConfigError(f"{where}secretary_name and secretary_email: set both, as text")
            if "@" not in email or any(c.isspace() for c in email):
                raise ConfigError(f"{where}secretary_email: not an e-mail address: {email!r}")
            secretary = Person(name.strip(), email)
        signing, minimum = _body_signing(table, where, identity)
        rules[str(code)] = BodyRules(
            days,
            reminders,
            secretary,
            kept_at=kept_at,
            immediate_days=immediate,
            signing=signing,
            minimum_assurance=minimum,
        )
    return rules


def _body_signing(
    table: Mapping[str, Any], where: str, identity: IdentitySettings | None
) -> tuple[SigningMode, Assurance]:
    """A body's ``signing`` and ``minimum_assurance``, defaulting to the provider's."""
    default = SigningMode.LINK if identity is None else SigningMode.E_LEGITIMATION
    signing = choice(table.get("signing", default.value), f"{where}signing", SigningMode)
    if signing is SigningMode.E_LEGITIMATION and identity is None:
        raise ConfigError(
            f"{where}signing: e-legitimation needs an identity provider "
            "([identity] issuer, or JUSTERING_OIDC_ISSUER)"
        )
    minimum = identity.minimum_assurance if identity else Assurance.LOA3
    if "minimum_assurance" in table:
        minimum = login_level(table["minimum_assurance"], f"{where}minimum_assurance")
    return signing, minimum
