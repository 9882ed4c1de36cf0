"""The resolved settings and how they are read: the home folder, the environment,
and the config file's ``[justering]`` and ``[web]`` tables (its ``[bodies.CODE]``
tables: ``justering.config.bodies``; ``[identity]``: ``justering.config.identity``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509

from justering.config.bodies import BodyRules, read_bodies
from justering.config.identity import IdentitySettings, read_identity
from justering.config.values import env_value, positive, reminder_days
from justering.errors import ConfigError
from justering.model.assurance import SigningMode
from justering.model.calendar import MAX_JUSTERING_DAYS
from justering.model.statutes import justering_rules, refuse_appeal_weeks

__all__ = [
    "DEFAULT_HOME",
    "HOME_KEY_BYTES",
    "IDENTITY_KEY_FILE",
    "TRAIL_KEY_FILE",
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
    mail_retention_days: int = 30
    """Days a sent message's row is kept in ``mail_outbox`` (its text was erased when
    it was sent); an unsent one is kept until it leaves."""
    webhook_retention_days: int = 30
    """Days a delivered webhook delivery (and its attempts) is kept; a pending or
    failed one is kept until it is delivered."""
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


def load_settings(
    home: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolve settings: explicit ``home``, then ``JUSTERING_HOME``, then ``~/.justering``.

    ``JUSTERING_CONFIG`` may name a TOML file whose ``[justering]`` table sets
    ``link_ttl_days``, ``signer_certificate_days``, ``justering_days`` (at most 14),
    ``protocol_kept_at``, ``immediate_justering_days``, ``mail_retention_days``,
    ``webhook_retention_days`` … and whose ``[bodies.CODE]``
    tables set a body's own; environment variables win over it.
    """
    env = os.environ if environ is None else environ
    home_path = (
        Path(home or env_value(env, "JUSTERING_HOME") or DEFAULT_HOME).expanduser().resolve()
    )
    table: dict[str, Any] = {}
    bodies: dict[str, Any] = {}
    document_tables: dict[str, Any] = {}
    config_file = env_value(env, "JUSTERING_CONFIG")
    if config_file:
        try:
            document_tables = tomllib.loads(Path(config_file).read_text("utf-8"))
            table, bodies = document_tables.get("justering", {}), document_tables.get("bodies", {})
        except OSError as error:
            raise ConfigError(f"JUSTERING_CONFIG {config_file}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"JUSTERING_CONFIG {config_file}: {error}") from None
    database_url = (
        env_value(env, "JUSTERING_DATABASE_URL") or f"sqlite:///{home_path / 'justering.db'}"
    )
    settings = Settings(
        home=home_path,
        database_url=database_url,
        archive_url=env_value(env, "JUSTERING_ARCHIVE_URL"),
        public_url=(env_value(env, "JUSTERING_PUBLIC_URL") or "http://127.0.0.1:8040").rstrip("/"),
        prefect_api_url=env_value(env, "PREFECT_API_URL"),
        tsa_url=env_value(env, "JUSTERING_TSA_URL"),
        tsa_ca_file=Path(env_value(env, "JUSTERING_TSA_CA") or home_path / "tsa-ca.pem"),
        archivist_header=env_value(env, "JUSTERING_ARCHIVIST_HEADER"),
        smtp_url=env_value(env, "JUSTERING_SMTP_URL"),
        mail_from=env_value(env, "JUSTERING_MAIL_FROM") or "justering <noreply@justering.invalid>",
        extra=table,
    )
    if "link_ttl_days" in table:
        days = positive(table["link_ttl_days"], "link_ttl_days")
        settings = replace(settings, link_ttl=dt.timedelta(days=days))
    if "signer_certificate_days" in table:
        days = positive(table["signer_certificate_days"], "signer_certificate_days")
        settings = replace(settings, signer_certificate_validity=dt.timedelta(days=days))
    if "archive_retention_days" in table:
        days = positive(table["archive_retention_days"], "archive_retention_days")
        settings = replace(settings, archive_retention_days=days)
    if "archive_retention_mode" in table:
        mode = str(table["archive_retention_mode"]).upper()
        if mode not in ("COMPLIANCE", "GOVERNANCE"):
            raise ConfigError(
                f"archive_retention_mode: expected COMPLIANCE or GOVERNANCE, got {mode!r}"
            )
        settings = replace(settings, archive_retention_mode=mode)
    if "mail_retention_days" in table:
        days = positive(table["mail_retention_days"], "mail_retention_days")
        settings = replace(settings, mail_retention_days=days)
    if "webhook_retention_days" in table:
        days = positive(table["webhook_retention_days"], "webhook_retention_days")
        settings = replace(settings, webhook_retention_days=days)
    if "appeal_weeks" in table:
        refuse_appeal_weeks(table["appeal_weeks"])
    days, kept_at, immediate = justering_rules(
        table, "", (settings.justering_days, settings.kept_at, settings.immediate_days)
    )
    settings = replace(settings, justering_days=days, kept_at=kept_at, immediate_days=immediate)
    proxies = env_value(env, "JUSTERING_TRUSTED_PROXIES")
    web = document_tables.get("web", {})
    if proxies is not None or "trusted_proxies" in web:
        settings = replace(settings, trusted_proxies=_proxies(proxies, web))
    if "max_paragraphs" in table:
        count = positive(table["max_paragraphs"], "max_paragraphs", "paragraphs")
        settings = replace(settings, max_paragraphs=count)
    if "reminder_days" in table:
        settings = replace(settings, reminder_days=reminder_days(table["reminder_days"], ""))
    identity = read_identity(document_tables.get("identity", {}), env)
    defaults = BodyRules(
        settings.justering_days,
        settings.reminder_days,
        kept_at=settings.kept_at,
        immediate_days=settings.immediate_days,
    )
    return replace(settings, identity=identity, bodies=read_bodies(bodies, defaults, identity))


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
