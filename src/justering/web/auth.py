"""The staff's accounts and sessions: archivists (the archive pages, ``/arkiv``) and
secretaries (a body's meetings, ``/sekreterare``).

Two ways in, chosen by configuration (docs/audit.md says which and why):

- **Accounts** in the file named by ``JUSTERING_ARCHIVISTS`` or else in
  ``JUSTERING_CONFIG``: a TOML table ``[archivists]`` mapping a user name to a
  scrypt hash (``python -m justering.web.auth hash`` makes one), and a table
  ``[secretaries]`` mapping a user name to ``{password = hash, bodies = [codes]}``
  (the bodies whose meetings they follow). A name is in one table only. A login
  gives a session cookie signed with itsdangerous (HMAC-SHA256, key
  ``archivist-session.key`` in the home folder, mode 0600, made on first use),
  valid in its own area only.
- **A trusted reverse proxy** that authenticates the person and sets the
  header named by ``JUSTERING_ARCHIVIST_HEADER`` (``Settings.archivist_header``);
  a secretary's bodies then still come from ``[secretaries]``.

Every form carries a CSRF token bound to the person and the area
(:meth:`Sessions.csrf_token`).
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import math
import os
import secrets
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from justering.config import Settings, home_key
from justering.errors import ConfigError

__all__ = [
    "KEY_FILE",
    "SECRETARY_REALM",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "Accounts",
    "LoginGuard",
    "LoginVerdict",
    "Sessions",
    "hash_password",
    "load_accounts",
    "main",
    "open_sessions",
    "password_matches",
    "session_key",
]

SESSION_COOKIE = "justering_arkiv"
SESSION_SECONDS = 8 * 3600
"""A session (and a CSRF token) lasts a working day."""
KEY_FILE = "archivist-session.key"
SECRETARY_REALM = "secretary"
"""The :attr:`Sessions.realm` of the secretaries' pages (the archive's is ``""``)."""

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


# --- password hashes ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for ``password`` (a fresh random salt)."""
    if not password:
        raise ConfigError("an archivist's password must not be empty")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32
    )


def _check_hash_format(who: str, stored: str) -> None:
    """Refuse a stored password that is not an scrypt hash; ``who`` names the account
    (and the file) in the message."""
    parts = stored.split("$")
    try:
        ok = parts[0] == "scrypt" and len(parts) == 6 and all(int(v) > 0 for v in parts[1:4])
        ok = ok and int(parts[1]) <= 2**20 and len(_unb64(parts[5])) == 32
    except (ValueError, IndexError):
        ok = False
    if not ok:
        raise ConfigError(
            f"{who}: the password hash is not an scrypt$… hash "
            "(make one with `python -m justering.web.auth hash`)"
        )


def password_matches(password: str, stored: str) -> bool:
    """True if ``password`` hashes to ``stored`` (constant-time comparison)."""
    _, n, r, p, salt, digest = stored.split("$")
    candidate = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    return hmac.compare_digest(candidate, _unb64(digest))


_DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + _b64(bytes(32))
"""Checked against for an unknown user, so that the answer takes as long."""


# --- accounts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accounts:
    """The configured staff: user name → scrypt hash; secretaries also have bodies."""

    hashes: Mapping[str, str] = field(default_factory=dict)
    bodies: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Secretaries: user name → the codes of the bodies whose meetings they follow.
    Everyone else in ``hashes`` is an archivist."""

    def archivists(self) -> Accounts:
        """Only the archivists (who may log in to the archive)."""
        return Accounts({u: h for u, h in self.hashes.items() if u not in self.bodies})

    def secretaries(self) -> Accounts:
        """Only the secretaries (who may log in to the secretaries' pages)."""
        return Accounts(
            {u: h for u, h in self.hashes.items() if u in self.bodies}, dict(self.bodies)
        )

    def bodies_of(self, user: str) -> frozenset[str]:
        """The bodies a secretary follows (none for anyone else)."""
        return self.bodies.get(user, frozenset())

    def authenticate(self, user: str, password: str) -> bool:
        """True for a known user with the right password. An unknown user costs
        the same scrypt run, so timing does not tell which users exist."""
        stored = self.hashes.get(user)
        matches = password_matches(password, stored or _DUMMY_HASH)
        return stored is not None and matches

    def fingerprint(self, user: str) -> str | None:
        """Changes when the user's password changes; None for an unknown user."""
        stored = self.hashes.get(user)
        return None if stored is None else hashlib.sha256(stored.encode()).hexdigest()[:16]


def load_accounts(environ: Mapping[str, str] | None = None) -> Accounts:
    """The ``[archivists]`` and ``[secretaries]`` tables of ``JUSTERING_ARCHIVISTS``,
    else of ``JUSTERING_CONFIG``; no accounts if neither names a file."""
    env = os.environ if environ is None else environ
    for variable in ("JUSTERING_ARCHIVISTS", "JUSTERING_CONFIG"):
        name = env.get(variable, "").strip()
        if name:
            return _read_accounts(variable, Path(name))
    return Accounts()


def _read_accounts(variable: str, path: Path) -> Accounts:
    try:
        document = tomllib.loads(path.read_text("utf-8"))
    except OSError as error:
        raise ConfigError(f"{variable} {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{variable} {path}: {error}") from None
    table = document.get("archivists", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{variable} {path}: [archivists] must be a table of name = hash")
    hashes: dict[str, str] = {}
    for user, stored in table.items():
        if not isinstance(stored, str):
            raise ConfigError(f"{variable} {path}: archivist {user!r}: expected a hash string")
        _check_hash_format(f"{variable} {path}: archivist {user!r}", stored)
        hashes[user] = stored
    bodies = _read_secretaries(f"{variable} {path}", document.get("secretaries", {}), hashes)
    return Accounts(hashes, bodies)


def _read_secretaries(
    where: str, table: object, hashes: dict[str, str]
) -> dict[str, frozenset[str]]:
    """The ``[secretaries]`` table (``name = {password = hash, bodies = [codes]}``);
    their hashes are added to ``hashes``."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [secretaries] must be a table of name = {{password, bodies}}")
    bodies: dict[str, frozenset[str]] = {}
    for user, entry in table.items():
        who = f"{where}: secretary {user!r}"
        if user in hashes:
            raise ConfigError(f"{who} is also an archivist; a name may be in one table only")
        if not isinstance(entry, dict) or set(entry) - {"password", "bodies"}:
            raise ConfigError(f'{who}: expected {{password = "scrypt$…", bodies = ["KSAU"]}}')
        stored, codes = entry.get("password"), entry.get("bodies")
        if not isinstance(stored, str):
            raise ConfigError(f"{who}: password: expected a hash string")
        if (
            not isinstance(codes, list)
            or not codes
            or not all(isinstance(c, str) and c.strip() for c in codes)
        ):
            raise ConfigError(f'{who}: bodies: expected a list of body codes, e.g. ["KSAU"]')
        _check_hash_format(who, stored)
        hashes[user] = stored
        bodies[user] = frozenset(c.strip() for c in codes)
    return bodies


# --- sessions and CSRF tokens -------------------------------------------------------------


def session_key(home: Path) -> bytes:
    """The HMAC key of archivist sessions, of the signers' forms and login cookies,
    made on first use (mode 0600)."""
    return home_key(home / KEY_FILE, what="the session key", if_damaged="delete it to renew")


class _ClockedSigner(TimestampSigner):
    """itsdangerous's timestamp signer (HMAC-SHA256) with the clock as a parameter:
    a test's ``now`` both stamps a value and ages it (None: the real time)."""

    default_digest_method = staticmethod(hashlib.sha256)

    def __init__(self, *args: Any, now: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

    def get_timestamp(self) -> int:
        return int(time.time() if self._now is None else self._now)


@dataclass(frozen=True)
class Sessions:
    """Signs and checks session cookies and CSRF tokens with one key, for one area
    (``realm``): a cookie or token of another area is no session and no token here.

    Both are itsdangerous ``URLSafeTimedSerializer`` values, salted per area and
    purpose and valid for :attr:`lifetime` seconds; a cookie carries the user and
    their password's fingerprint, a token the user it was shown to."""

    key: bytes
    accounts: Accounts
    lifetime: int = SESSION_SECONDS
    realm: str = ""
    """``""``: the archive; :data:`SECRETARY_REALM`: the secretaries' pages."""

    def _serializer(self, purpose: str, now: float | None) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self.key,
            salt=f"justering.staff.{purpose}|{self.realm}",
            signer=_ClockedSigner,
            signer_kwargs={"now": now},
        )

    def _loads(self, purpose: str, value: str | None, now: float | None) -> object:
        """The signed value, or None if it is not genuine, not for this area and
        purpose, or older than the lifetime (or stamped in the future)."""
        if not value:
            return None
        try:
            data: object = self._serializer(purpose, now).loads(value, max_age=self.lifetime)
        except BadData:
            return None
        return data

    def issue(self, user: str, now: float | None = None) -> str:
        """A cookie value naming ``user`` until the session expires."""
        fingerprint = self.accounts.fingerprint(user)
        return str(self._serializer("session", now).dumps({"u": user, "f": fingerprint}))

    def user_of(self, cookie: str | None, now: float | None = None) -> str | None:
        """The person a cookie names, if it is genuine, unexpired and the account
        (with the same password) still exists."""
        data = self._loads("session", cookie, now)
        if not isinstance(data, dict):
            return None
        user, fingerprint = data.get("u"), data.get("f")
        if not isinstance(user, str) or fingerprint is None:
            return None
        return user if self.accounts.fingerprint(user) == fingerprint else None

    def csrf_token(self, user: str, now: float | None = None) -> str:
        """A token for the forms shown to ``user``; valid for one session lifetime."""
        return str(self._serializer("csrf", now).dumps(user))

    def csrf_ok(self, user: str, token: str | None, now: float | None = None) -> bool:
        """True for a genuine, unexpired token of this area shown to ``user``."""
        return self._loads("csrf", token, now) == user


def open_sessions(
    settings: Settings, environ: Mapping[str, str] | None = None, *, realm: str = ""
) -> Sessions:
    """The sessions of the archive (archivists' accounts only) or, with
    :data:`SECRETARY_REALM`, of the secretaries' pages (secretaries' accounts only)."""
    accounts = load_accounts(environ)
    if realm == SECRETARY_REALM:
        return Sessions(session_key(settings.home), accounts.secretaries(), realm=realm)
    return Sessions(session_key(settings.home), accounts.archivists())


# --- python -m justering.web.auth hash ----------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m justering.web.auth hash [USER] [--bodies CODE,…]``: read a password
    twice (or once from a pipe) and print the TOML line for ``[archivists]``, or with
    ``--bodies`` for ``[secretaries]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    bodies: list[str] = []
    if "--bodies" in args:
        at = args.index("--bodies")
        value = args[at + 1] if at + 1 < len(args) else ""
        bodies = [code.strip() for code in value.split(",") if code.strip()]
        del args[at : at + 2]
        if not bodies:
            print("--bodies needs body codes, e.g. --bodies KSAU,KS", file=sys.stderr)
            return 2
    if not args or args[0] != "hash" or len(args) > 2:
        print("usage: python -m justering.web.auth hash [USER] [--bodies CODE,…]", file=sys.stderr)
        return 2
    user = args[1] if len(args) == 2 else ("sekreterare" if bodies else "arkivarie")
    if sys.stdin.isatty():
        password = getpass.getpass("Lösenord: ")
        if getpass.getpass("Igen: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        stored = json.dumps(hash_password(password))
    except ConfigError as error:
        print(f"justering: {error.diagnostics()}", file=sys.stderr)
        return 2
    name = json.dumps(user, ensure_ascii=False)
    if bodies:
        codes = ", ".join(json.dumps(code, ensure_ascii=False) for code in bodies)
        print(f"{name} = {{ password = {stored}, bodies = [{codes}] }}")
    else:
        print(f"{name} = {stored}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# --- login attempts ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginVerdict:
    """Whether a login attempt may be tried now; if not, for how long to wait."""

    allowed: bool
    retry_after: int = 0
    """Seconds until another attempt will be considered (when not allowed)."""


class LoginGuard:
    """Limits on password logins, so that guessing is slow and costs the service
    little: per account and per client address, a moving window of attempts (the
    ``limits`` library; after too many, the wait grows as the window slides), and at
    most ``concurrent`` password checks at once (each scrypt run takes 32 MiB)."""

    def __init__(
        self,
        *,
        per_account: str = "5 per 15 minutes",
        per_address: str = "20 per 15 minutes",
        concurrent: int = 2,
        wait_seconds: float = 2.0,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_account = parse(per_account)
        self._per_address = parse(per_address)
        self._hashing = threading.BoundedSemaphore(concurrent)
        self._wait = wait_seconds

    def attempt(self, user: str, address: str) -> LoginVerdict:
        """Count an attempt for ``user`` from ``address``; refused while either has
        used up its window (the refused attempt is not counted again)."""
        keys = (
            (self._per_account, "account", user.casefold()),
            (self._per_address, "address", address),
        )
        for limit, kind, key in keys:
            if not self._limiter.test(limit, kind, key):
                reset = self._limiter.get_window_stats(limit, kind, key).reset_time
                return LoginVerdict(False, max(1, math.ceil(reset - time.time())))
        for limit, kind, key in keys:
            self._limiter.hit(limit, kind, key)
        return LoginVerdict(True)

    def succeeded(self, user: str) -> None:
        """A right password clears the account's count (not the address's)."""
        self._limiter.clear(self._per_account, "account", user.casefold())

    @contextmanager
    def hashing(self) -> Iterator[bool]:
        """A slot for one password check: True if got within a short wait, else
        False (too many at once: answer "try again" without hashing)."""
        got = self._hashing.acquire(timeout=self._wait)
        try:
            yield got
        finally:
            if got:
                self._hashing.release()
