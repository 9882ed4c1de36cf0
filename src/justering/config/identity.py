"""The ``[identity]`` table and the ``JUSTERING_OIDC_*`` variables: the OpenID
Connect provider signers log in with (docs/identity.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from justering.config.values import env_value, login_level, positive
from justering.errors import ConfigError
from justering.model.assurance import LOA3, Assurance

__all__ = ["PERSONAL_IDENTITY_NUMBER_CLAIM", "IdentitySettings", "read_identity"]

PERSONAL_IDENTITY_NUMBER_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
"""The Swedish OpenID Connect profile's claim for a personnummer or samordningsnummer."""


@dataclass(frozen=True)
class IdentitySettings:
    """The OpenID Connect provider signers log in with (``[identity]`` in the config
    file; ``JUSTERING_OIDC_ISSUER``, ``JUSTERING_OIDC_CLIENT_ID`` and
    ``JUSTERING_OIDC_CLIENT_SECRET`` in the environment). docs/identity.md says what
    to ask a broker for."""

    issuer: str
    """The provider's issuer identifier; discovery is read from under it."""
    client_id: str
    client_secret: str = field(repr=False)
    display_name: str = "e-legitimation"
    """What the login button names (``BankID eller Freja eID+``)."""
    scopes: tuple[str, ...] = (
        "openid",
        "profile",
        "https://id.oidc.se/scope/naturalPersonNumber",
    )
    acr_values: tuple[str, ...] = (LOA3,)
    """The assurance levels asked for (``acr_values``)."""
    identity_claim: str = PERSONAL_IDENTITY_NUMBER_CLAIM
    """The claim holding the signer's personnummer (a broker's dialect may differ)."""
    email_claim: str | None = None
    """A claim holding the signer's e-mail address, matched against the manifest's
    when it names no personnummer for the signer; None: a personnummer is needed."""
    email_verified_claim: str | None = "email_verified"
    """A claim that must be true for ``email_claim`` to count; None: not checked."""
    minimum_assurance: Assurance = Assurance.LOA3
    """The lowest level a login may have, for bodies that do not set their own."""
    max_age_seconds: int = 0
    """``max_age``: how long ago the provider may have authenticated the signer; 0
    asks for a fresh authentication at every login."""
    login_minutes: int = 15
    """How long a login lets its signer read and sign behind their link."""
    extra_acr: Mapping[str, Assurance] = field(default_factory=dict)
    """Further ``acr`` values (a broker's dialect) and the level each stands for."""
    token_auth_method: str = "client_secret_basic"  # noqa: S105 (a method, not a secret)
    timeout_seconds: float = 10.0


def read_identity(table: Any, env: Mapping[str, str]) -> IdentitySettings | None:
    """``[identity]`` and the ``JUSTERING_OIDC_*`` variables (which win); None when
    no issuer is set anywhere."""
    if not isinstance(table, dict):
        raise ConfigError("identity: expected a table [identity]")
    if "client_secret" in table:
        raise ConfigError(
            "identity.client_secret: keep the secret out of the config file; "
            "set JUSTERING_OIDC_CLIENT_SECRET in the service's environment"
        )
    known = {"issuer", "client_id", *_IDENTITY_VALUES}
    if unknown := sorted(set(table) - known):
        raise ConfigError(f"identity.{unknown[0]}: unknown setting (known: {sorted(known)})")
    issuer = env_value(env, "JUSTERING_OIDC_ISSUER") or table.get("issuer")
    if not issuer:
        if table:
            raise ConfigError("identity.issuer: missing (or set JUSTERING_OIDC_ISSUER)")
        return None
    client_id = env_value(env, "JUSTERING_OIDC_CLIENT_ID") or table.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError("identity.client_id: missing (or set JUSTERING_OIDC_CLIENT_ID)")
    secret = env_value(env, "JUSTERING_OIDC_CLIENT_SECRET")
    if not secret:
        raise ConfigError("JUSTERING_OIDC_CLIENT_SECRET is not set: the provider's client secret")
    values = {
        attribute: read(table[key], f"identity.{key}")
        for key, (attribute, read) in _IDENTITY_VALUES.items()
        if key in table
    }
    return IdentitySettings(_issuer(issuer), client_id, secret, **values)


def _issuer(value: Any) -> str:
    """An issuer identifier: https, or http on loopback (to try things out)."""
    text = _text(value, "identity.issuer")
    parts = urlsplit(text)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not (parts.scheme == "https" or loopback) or not parts.netloc:
        raise ConfigError(f"identity.issuer: expected an https:// URL, got {text!r}")
    if parts.query or parts.fragment:
        raise ConfigError("identity.issuer: must have no query or fragment")
    return text


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise ConfigError(f"{name}: expected a word or URL without spaces, got {value!r}")
    return value


def _texts(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{name}: expected a non-empty list of strings")
    return tuple(_text(item, name) for item in value)


def _scopes(value: Any, name: str) -> tuple[str, ...]:
    scopes = _texts(value, name)
    if "openid" not in scopes:
        raise ConfigError(f"{name}: must include openid")
    return scopes


def _display_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ConfigError(f"{name}: expected a name, e.g. BankID eller Freja eID+")
    return value.strip()


def _auth_method(value: Any, name: str) -> str:
    if value not in ("client_secret_basic", "client_secret_post"):
        raise ConfigError(f"{name}: expected client_secret_basic or client_secret_post")
    return str(value)


def _seconds(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise ConfigError(f"{name}: expected whole seconds >= 0")
    return value


def _acr_levels(value: Any, name: str) -> dict[str, Assurance]:
    if not isinstance(value, dict):
        raise ConfigError(f'{name}: expected a table of "acr value" = "loa3"')
    return {str(acr): login_level(level, f"{name}.{acr}") for acr, level in value.items()}


_IDENTITY_VALUES: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "display_name": ("display_name", _display_name),
    "scopes": ("scopes", _scopes),
    "acr_values": ("acr_values", _texts),
    "identity_claim": ("identity_claim", _text),
    "email_claim": ("email_claim", lambda value, name: _text(value, name) if value else None),
    "email_verified_claim": (
        "email_verified_claim",
        lambda value, name: _text(value, name) if value else None,
    ),
    "minimum_assurance": ("minimum_assurance", login_level),
    "max_age_seconds": ("max_age_seconds", _seconds),
    "login_minutes": ("login_minutes", lambda value, name: positive(value, name, "minutes")),
    "acr": ("extra_acr", _acr_levels),
    "token_auth_method": ("token_auth_method", _auth_method),
    "timeout_seconds": ("timeout_seconds", lambda v, name: float(positive(v, name, "seconds"))),
}
"""The settings of ``[identity]`` besides the issuer and client id: the attribute of
:class:`IdentitySettings` each sets, and how its value is read."""
