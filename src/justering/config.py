"""Settings: embedded defaults under one home folder, overridden by the environment.

With nothing configured everything runs on one machine: SQLite, the local
archive directory and the outbox folder, all under ``JUSTERING_HOME``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptography import x509

from justering.errors import ConfigError
from justering.model.assurance import LOA3, Assurance, SigningMode
from justering.model.calendar import MAX_JUSTERING_DAYS
from justering.model.roles import Person
from justering.model.statutes import justering_rules, refuse_appeal_weeks

__all__ = [
    "DEFAULT_HOME",
    "HOME_KEY_BYTES",
    "IDENTITY_KEY_FILE",
    "PERSONAL_IDENTITY_NUMBER_CLAIM",
    "TRAIL_KEY_FILE",
    "BodyRules",
    "IdentitySettings",
    "Settings",
    "home_key",
    "load_settings",
]

DEFAULT_HOME = Path("~/.justering")
TRAIL_KEY_FILE = "trail-head.key"
"""The home's key for the ledger's trail heads (:mod:`justering.ledger.heads`)."""
HOME_KEY_BYTES = 32
IDENTITY_KEY_FILE = "identity-hash.key"
"""The home's secret that personnummer are hashed with (``home_key``)."""
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


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved. Build with :func:`load_settings`."""

    home: Path
    database_url: str
    archive_url: str | None
    """``s3://bucket/prefix`` or ``file:///dir``; ``None`` is the home's archive folder."""
    public_url: str
    """Base URL of the web app as signers reach it, used in notification links."""
    link_ttl: dt.timedelta = dt.timedelta(days=21)
    """How long a signer link stays usable."""
    signer_certificate_validity: dt.timedelta = dt.timedelta(days=365)
    justering_days: int = MAX_JUSTERING_DAYS
    """Justering deadline after the meeting: at most 14 days (KL 5 kap. 69 §)."""
    prefect_api_url: str | None = None
    tsa_url: str | None = None
    """RFC 3161 time-stamping authority (``JUSTERING_TSA_URL``); None: no timestamps."""
    tsa_ca_file: Path | None = None
    """The TSA's trust root (PEM), ``JUSTERING_TSA_CA``; default ``HOME/tsa-ca.pem``."""
    archive_retention_mode: str = "COMPLIANCE"
    """S3 Object Lock mode for archived objects where the bucket has Object Lock."""
    archive_retention_days: int = 365 * 30
    """How long S3 Object Lock keeps archived objects from deletion."""
    archivist_header: str | None = None
    """Trust this request header (set by a reverse proxy) as the archivist's name."""
    smtp_url: str | None = None
    """``smtp://`` / ``smtps://`` server for notifications (``JUSTERING_SMTP_URL``);
    None: messages go to the outbox folder."""
    mail_from: str = "justering <noreply@justering.invalid>"
    """Sender of notifications (``JUSTERING_MAIL_FROM``); SMTP needs a real address."""
    reminder_days: tuple[int, ...] = (3, 1)
    """Days before the deadline on which signers who have not signed are reminded."""
    kept_at: str | None = None
    """The förvaringsplats of every body without its own (``protocol_kept_at``)."""
    immediate_days: int = 1
    """Deadline of the omedelbar justering, days after the meeting (0 or 1)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses (or networks) of the reverse proxies whose X-Forwarded-For and
    X-Forwarded-Proto are believed ([web] trusted_proxies, JUSTERING_TRUSTED_PROXIES);
    empty: none, the client's own address and scheme count."""
    max_paragraphs: int = 300
    """The most paragraphs one meeting may have: a signer signs them in one request,
    which must finish well within any proxy's timeout."""
    bodies: Mapping[str, BodyRules] = field(default_factory=dict)
    """Per-body rules by body code (``[bodies.KSAU]``)."""
    identity: IdentitySettings | None = None
    """The OpenID Connect provider for e-legitimation; None: every body signs by link."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def body_rules(self, body_code: str) -> BodyRules:
        """The rules for one body: its own table, else the defaults (e-legitimation
        when a provider is configured)."""
        found = self.bodies.get(body_code)
        if found is not None:
            return found
        rules = BodyRules(
            self.justering_days,
            self.reminder_days,
            kept_at=self.kept_at,
            immediate_days=self.immediate_days,
        )
        if self.identity is None:
            return rules
        return replace(
            rules,
            signing=SigningMode.E_LEGITIMATION,
            minimum_assurance=self.identity.minimum_assurance,
        )

    @property
    def identity_key(self) -> bytes:
        """The secret personnummer are hashed with (``HOME/identity-hash.key``, made on
        first use, mode 0600)."""
        return home_key(
            self.home / IDENTITY_KEY_FILE,
            what="the identity key",
            if_damaged="restore it from the backup: the recorded personnummer hashes need it",
        )

    @property
    def ca_dir(self) -> Path:
        return self.home / "ca"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    def tsa_root(self) -> x509.Certificate | None:
        """The TSA's trust root, if the file is there; required when a TSA is set."""
        path = self.tsa_ca_file
        if path is None or not path.is_file():
            if self.tsa_url:
                raise ConfigError(
                    f"JUSTERING_TSA_URL is set but the TSA's trust root {path} is missing: "
                    "save the TSA's root certificate (PEM) there or set JUSTERING_TSA_CA"
                )
            return None
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError:
            raise ConfigError(f"TSA trust root {path}: not a PEM certificate") from None

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def trail_key_file(self) -> Path:
        """The key that seals the ledger's trail heads: the same file in every home
        that shares the ledger (docs/deploy.md)."""
        return self.home / TRAIL_KEY_FILE

    def trail_key(self) -> bytes:
        """The key in :attr:`trail_key_file`, made on first use (mode 0600)."""
        return home_key(
            self.trail_key_file,
            what="the trail key",
            if_damaged="restore it from a backup or another home of this ledger "
            "(docs/deploy.md); a new key would break the seal of every trail",
        )

    def with_public_url(self, url: str) -> Settings:
        return replace(self, public_url=url.rstrip("/"))


def home_key(path: Path, *, what: str, if_damaged: str) -> bytes:
    """A secret of the home: ``HOME_KEY_BYTES`` random bytes in ``path`` (mode 0600,
    the folder made if missing), created on first use and read ever after. Two
    processes creating it at once get the same key: a key is written whole to a file
    of its own and then linked into place, which only the first link does, so no one
    ever reads a key half written. ``what`` names the key and ``if_damaged`` says what
    to do when the file is shorter than a key, in the error raised then."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fresh = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(HOME_KEY_BYTES))
        try:
            os.link(fresh, path)
        except FileExistsError:
            pass  # another process was first: its key is the key
        finally:
            fresh.unlink()
    try:
        key = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: {what} is unreadable ({error.strerror})") from None
    if len(key) < HOME_KEY_BYTES:
        raise ConfigError(f"{path}: {what} is too short; {if_damaged}") from None
    return key


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _positive(value: Any, name: str, unit: str = "days") -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a whole number of {unit}, got {value!r}") from None
    if count <= 0:
        raise ConfigError(f"{name}: must be at least 1 {unit.rstrip('s')}, got {count}")
    return count


def load_settings(
    home: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings: explicit ``home``, then ``JUSTERING_HOME``, then ``~/.justering``.

    ``JUSTERING_CONFIG`` may name a TOML file whose ``[justering]`` table sets
    ``link_ttl_days``, ``signer_certificate_days``, ``justering_days`` (at most 14),
    ``protocol_kept_at``, ``immediate_justering_days`` … and whose ``[bodies.CODE]``
    tables set a body's own; environment variables win over it.
    """
    env = os.environ if environ is None else environ
    home_path = Path(home or _env(env, "JUSTERING_HOME") or DEFAULT_HOME).expanduser().resolve()
    table: dict[str, Any] = {}
    bodies: dict[str, Any] = {}
    document_tables: dict[str, Any] = {}
    config_file = _env(env, "JUSTERING_CONFIG")
    if config_file:
        try:
            document_tables = tomllib.loads(Path(config_file).read_text("utf-8"))
            table, bodies = document_tables.get("justering", {}), document_tables.get("bodies", {})
        except OSError as error:
            raise ConfigError(f"JUSTERING_CONFIG {config_file}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"JUSTERING_CONFIG {config_file}: {error}") from None
    database_url = _env(env, "JUSTERING_DATABASE_URL") or f"sqlite:///{home_path / 'justering.db'}"
    settings = Settings(
        home=home_path,
        database_url=database_url,
        archive_url=_env(env, "JUSTERING_ARCHIVE_URL"),
        public_url=(_env(env, "JUSTERING_PUBLIC_URL") or "http://127.0.0.1:8040").rstrip("/"),
        prefect_api_url=_env(env, "PREFECT_API_URL"),
        tsa_url=_env(env, "JUSTERING_TSA_URL"),
        tsa_ca_file=Path(_env(env, "JUSTERING_TSA_CA") or home_path / "tsa-ca.pem"),
        archivist_header=_env(env, "JUSTERING_ARCHIVIST_HEADER"),
        smtp_url=_env(env, "JUSTERING_SMTP_URL"),
        mail_from=_env(env, "JUSTERING_MAIL_FROM") or "justering <noreply@justering.invalid>",
        extra=table,
    )
    if "link_ttl_days" in table:
        days = _positive(table["link_ttl_days"], "link_ttl_days")
        settings = replace(settings, link_ttl=dt.timedelta(days=days))
    if "signer_certificate_days" in table:
        days = _positive(table["signer_certificate_days"], "signer_certificate_days")
        settings = replace(settings, signer_certificate_validity=dt.timedelta(days=days))
    if "archive_retention_days" in table:
        days = _positive(table["archive_retention_days"], "archive_retention_days")
        settings = replace(settings, archive_retention_days=days)
    if "archive_retention_mode" in table:
        mode = str(table["archive_retention_mode"]).upper()
        if mode not in ("COMPLIANCE", "GOVERNANCE"):
            raise ConfigError(
                f"archive_retention_mode: expected COMPLIANCE or GOVERNANCE, got {mode!r}"
            )
        settings = replace(settings, archive_retention_mode=mode)
    if "appeal_weeks" in table:
        refuse_appeal_weeks(table["appeal_weeks"])
    days, kept_at, immediate = justering_rules(
        table, "", (settings.justering_days, settings.kept_at, settings.immediate_days)
    )
    settings = replace(settings, justering_days=days, kept_at=kept_at, immediate_days=immediate)
    proxies = _env(env, "JUSTERING_TRUSTED_PROXIES")
    web = document_tables.get("web", {})
    if proxies is not None or "trusted_proxies" in web:
        settings = replace(settings, trusted_proxies=_proxies(proxies, web))
    if "max_paragraphs" in table:
        count = _positive(table["max_paragraphs"], "max_paragraphs", "paragraphs")
        settings = replace(settings, max_paragraphs=count)
    if "reminder_days" in table:
        settings = replace(settings, reminder_days=_reminder_days(table["reminder_days"], ""))
    settings = replace(settings, identity=_identity(document_tables.get("identity", {}), env))
    return replace(settings, bodies=_body_rules(bodies, settings))


def _proxies(environment: str | None, web: Any) -> tuple[str, ...]:
    """The trusted proxies: ``JUSTERING_TRUSTED_PROXIES`` (comma-separated) or
    ``[web] trusted_proxies`` (a list), each an IP address or network."""
    if environment is not None:
        given: Any = [part.strip() for part in environment.split(",") if part.strip()]
        where = "JUSTERING_TRUSTED_PROXIES"
    else:
        given = web.get("trusted_proxies") if isinstance(web, dict) else None
        where = "web.trusted_proxies"
    if not isinstance(given, list) or not all(isinstance(item, str) for item in given):
        raise ConfigError(f"{where}: expected a list of IP addresses or networks")
    for item in given:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{where}: {item!r} is not an IP address or network") from None
    return tuple(given)


def _reminder_days(value: Any, where: str) -> tuple[int, ...]:
    name = f"{where}reminder_days"
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise ConfigError(f"{name}: expected a list of whole days >= 0, e.g. [3, 1]; got {value!r}")
    return tuple(sorted(set(value), reverse=True))


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


def _body_rules(bodies: Any, settings: Settings) -> dict[str, BodyRules]:
    """``[bodies.CODE]`` tables: justering_days, reminder_days, secretary_name/_email,
    protocol_kept_at, immediate_justering_days."""
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
            table, where, (settings.justering_days, settings.kept_at, settings.immediate_days)
        )
        reminders = settings.reminder_days
        if "reminder_days" in table:
            reminders = _reminder_days(table["reminder_days"], where)
        secretary = None
        name, email = table.get("secretary_name"), table.get("secretary_email")
        if name is not None or email is not None:
            if not (isinstance(name, str) and name.strip() and isinstance(email, str)):
                raise ConfigError(f"{where}secretary_name and secretary_email: set both, as text")
            if "@" not in email or any(c.isspace() for c in email):
                raise ConfigError(f"{where}secretary_email: not an e-mail address: {email!r}")
            secretary = Person(name.strip(), email)
        signing, minimum = _body_signing(table, where, settings.identity)
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
    signing = _choice(table.get("signing", default.value), f"{where}signing", SigningMode)
    if signing is SigningMode.E_LEGITIMATION and identity is None:
        raise ConfigError(
            f"{where}signing: e-legitimation needs an identity provider "
            "([identity] issuer, or JUSTERING_OIDC_ISSUER)"
        )
    minimum = identity.minimum_assurance if identity else Assurance.LOA3
    if "minimum_assurance" in table:
        minimum = _level(table["minimum_assurance"], f"{where}minimum_assurance")
    return signing, minimum


def _identity(table: Any, env: Mapping[str, str]) -> IdentitySettings | None:
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
    issuer = _env(env, "JUSTERING_OIDC_ISSUER") or table.get("issuer")
    if not issuer:
        if table:
            raise ConfigError("identity.issuer: missing (or set JUSTERING_OIDC_ISSUER)")
        return None
    client_id = _env(env, "JUSTERING_OIDC_CLIENT_ID") or table.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError("identity.client_id: missing (or set JUSTERING_OIDC_CLIENT_ID)")
    secret = _env(env, "JUSTERING_OIDC_CLIENT_SECRET")
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
    return {str(acr): _level(level, f"{name}.{acr}") for acr, level in value.items()}


def _level(value: Any, name: str) -> Assurance:
    level = _choice(value, name, Assurance)
    if level is Assurance.LINK:
        raise ConfigError(f"{name}: a login's level is loa2, loa3 or loa4")
    return level


_E = TypeVar("_E", SigningMode, Assurance)


def _choice(value: Any, name: str, kind: type[_E]) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ConfigError(f"{name}: expected one of {choices}; got {value!r}") from None


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
    "minimum_assurance": ("minimum_assurance", _level),
    "max_age_seconds": ("max_age_seconds", _seconds),
    "login_minutes": ("login_minutes", lambda value, name: _positive(value, name, "minutes")),
    "acr": ("extra_acr", _acr_levels),
    "token_auth_method": ("token_auth_method", _auth_method),
    "timeout_seconds": ("timeout_seconds", lambda v, name: float(_positive(v, name, "seconds"))),
}
"""The settings of ``[identity]`` besides the issuer and client id: the attribute of
:class:`IdentitySettings` each sets, and how its value is read."""
