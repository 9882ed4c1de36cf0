"""The OpenID Connect relying party: justering asks an identity provider (a broker
for BankID, Freja eID+, SITHS …) who is at the browser, before they may sign.

The authorization code flow with PKCE (S256), ``state``, ``nonce``, ``max_age`` and
``acr_values``, as the Swedish OpenID Connect profile (oidc.se) has it. The
provider's endpoints and keys come from its discovery document and JWKS; the
authorization URL and the code exchange are made by Authlib's OAuth 2 client
(``authlib.integrations.httpx_client``), and the ID token is checked by Authlib's
OpenID Connect claims (``authlib.oidc.core.CodeIDToken``) on top of joserfc's
signature check: the signature against the provider's keys with an asymmetric
algorithm it announces, the issuer, the audience (and ``azp``), the expiry, the
issue time, the nonce, the access token hash. Here only the one rule the libraries
cannot know: the authentication must be fresh (``auth_time`` after the login began,
less ``max_age``).

Nothing here records anything or decides who may sign; ``justering.workflow.identity``
does. Errors are :class:`~justering.errors.IdentityError` with a typed problem; the
detail (for the operator's log) never holds a claim's value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

with warnings.catch_warnings():
    # Authlib 1.9 would rather drive httpx2 (a fork of httpx) and says so, always, on
    # import; it works with httpx, which the rest of justering uses. Its filter that
    # shows the warning always is set and dropped again inside this block.
    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from justering.config import IdentitySettings
from justering.errors import IdentityError, LoginProblem

__all__ = [
    "ID_TOKEN_ALGORITHMS",
    "LEEWAY_SECONDS",
    "Authentication",
    "LoginRequest",
    "OpenIdProvider",
]

log = logging.getLogger(__name__)

ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
"""Signatures an ID token may have: asymmetric ones only (never ``none``, never an
HMAC keyed with the client secret); of these, those the provider announces."""
LEEWAY_SECONDS = 60
"""Clock difference tolerated between the provider and this machine."""
KEYS_SECONDS = 3600
"""How long the provider's keys are kept before they are read again (sooner when a
token names a key not among them: the provider rolled its keys)."""
_TRANSIENT = frozenset({"server_error", "temporarily_unavailable"})


@dataclass(frozen=True)
class LoginRequest:
    """A login about to start: where to send the browser, and what to keep until the
    provider answers (``state``, ``nonce``, the PKCE ``code_verifier``)."""

    url: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class Authentication:
    """What a valid ID token says: who, how surely, when, and by whom."""

    issuer: str
    subject: str
    acr: str | None
    authenticated_at: dt.datetime
    id_token_sha256: str
    claims: Mapping[str, Any] = field(repr=False)
    """Every claim of the ID token (the identifying ones among them); never logged."""


class OpenIdProvider:
    """One identity provider, as ``settings`` configure it; answers go to
    ``redirect_uri``. Safe to share between threads; keeps the provider's keys."""

    def __init__(
        self,
        settings: IdentitySettings,
        redirect_uri: str,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.redirect_uri = redirect_uri
        self._transport = transport
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._keys_read = 0.0

    # -- discovery and keys ------------------------------------------------------------

    def _http(self) -> httpx.Client:
        return httpx.Client(timeout=self.settings.timeout_seconds, transport=self._transport)

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            with self._http() as client:
                answer = client.get(url, headers={"Accept": "application/json"})
                answer.raise_for_status()
                document = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise IdentityError(LoginProblem.PROVIDER_DOWN, detail=f"{url}: {error}") from None
        if not isinstance(document, dict):
            raise IdentityError(LoginProblem.PROVIDER_DOWN, detail=f"{url}: not a JSON object")
        return document

    def discover(self) -> dict[str, Any]:
        """The provider's discovery document, read now (a login begins only when the
        provider answers) and checked: its issuer is the configured one, and it
        names its endpoints over https (or loopback http, as the issuer)."""
        issuer = self.settings.issuer
        metadata = self._get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        if metadata.get("issuer") != issuer:
            raise IdentityError(
                LoginProblem.PROVIDER_DOWN,
                detail=f"the discovery document names another issuer: {metadata.get('issuer')!r}",
            )
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not _same_security(str(metadata.get(name, "")), issuer):
                raise IdentityError(
                    LoginProblem.PROVIDER_DOWN,
                    detail=f"the discovery document's {name} is unusable",
                )
        with self._lock:
            self._metadata = metadata
        return metadata

    def _known_metadata(self) -> dict[str, Any]:
        with self._lock:
            metadata = self._metadata
        return metadata if metadata is not None else self.discover()

    def _key_set(self, *, fresh: bool = False) -> KeySet:
        with self._lock:
            keys, read = self._keys, self._keys_read
        if keys is not None and not fresh and time.monotonic() - read < KEYS_SECONDS:
            return keys
        document = self._get_json(str(self._known_metadata()["jwks_uri"]))
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise IdentityError(LoginProblem.PROVIDER_DOWN, detail=f"JWKS: {error}") from None
        with self._lock:
            self._keys, self._keys_read = keys, time.monotonic()
        return keys

    # -- the flow ----------------------------------------------------------------------

    def _client(self, **extra: Any) -> Any:
        settings = self.settings
        return OAuth2Client(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_endpoint_auth_method=settings.token_auth_method,
            scope=" ".join(settings.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=settings.timeout_seconds,
            transport=self._transport,
            **extra,
        )

    def login_request(self) -> LoginRequest:
        """A fresh login: new ``state``, ``nonce`` and PKCE verifier, and the
        authorization URL asking for them, the configured ``acr_values`` and a fresh
        authentication (``max_age``; with 0 also ``prompt=login``). Reads the
        discovery document: a provider that does not answer raises PROVIDER_DOWN."""
        metadata = self.discover()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)
        settings = self.settings
        extra = {"prompt": "login"} if settings.max_age_seconds == 0 else {}
        with self._client() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=state,
                code_verifier=verifier,
                nonce=nonce,
                max_age=str(settings.max_age_seconds),
                acr_values=" ".join(settings.acr_values),
                ui_locales="sv",
                **extra,
            )
        return LoginRequest(str(url), state, nonce, verifier)

    def authenticate(
        self,
        code: str,
        *,
        nonce: str,
        code_verifier: str,
        started_at: dt.datetime,
        now: dt.datetime | None = None,
    ) -> Authentication:
        """Exchange ``code`` (with the PKCE verifier) for tokens, and check the ID
        token (see the module docstring); raises ``IdentityError``."""
        metadata = self._known_metadata()
        try:
            with self._client() as client:
                tokens = client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
        except OAuthError as error:
            problem = (
                LoginProblem.PROVIDER_DOWN
                if error.error in _TRANSIENT
                else LoginProblem.CODE_REFUSED
            )
            raise IdentityError(problem, detail=f"token endpoint: {error.error}") from None
        except (httpx.HTTPError, ValueError) as error:
            raise IdentityError(
                LoginProblem.PROVIDER_DOWN, detail=f"token endpoint: {error}"
            ) from None
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise IdentityError(LoginProblem.INVALID_TOKEN, detail="the answer has no ID token")
        claims = self._checked_claims(id_token, metadata, nonce, tokens.get("access_token"), now)
        return self._authentication(id_token, claims, started_at, now)

    def _checked_claims(
        self,
        id_token: str,
        metadata: Mapping[str, Any],
        nonce: str,
        access_token: Any,
        now: dt.datetime | None,
    ) -> CodeIDToken:
        announced = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in ID_TOKEN_ALGORITHMS if a in announced]
        settings = self.settings
        options = {
            "iss": {"essential": True, "value": settings.issuer},
            "aud": {"essential": True, "value": settings.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "auth_time": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        }
        params = {
            "nonce": nonce,
            "client_id": settings.client_id,
            "max_age": settings.max_age_seconds or None,
            **({"access_token": access_token} if isinstance(access_token, str) else {}),
        }
        try:
            try:
                token = jwt.decode(id_token, self._key_set(), algorithms=algorithms)
            except InvalidKeyIdError:  # the provider rolled its keys: read them again
                token = jwt.decode(id_token, self._key_set(fresh=True), algorithms=algorithms)
            claims = CodeIDToken(token.claims, token.header, options, params)
            moment = int((now or dt.datetime.now(dt.UTC)).timestamp())
            claims.validate(now=moment, leeway=LEEWAY_SECONDS)
        except JoseError as error:
            raise IdentityError(
                LoginProblem.INVALID_TOKEN, detail=f"{type(error).__name__}: {error.error}"
            ) from None
        except (ValueError, TypeError) as error:
            raise IdentityError(LoginProblem.INVALID_TOKEN, detail=type(error).__name__) from None
        return claims

    def _authentication(
        self,
        id_token: str,
        claims: Mapping[str, Any],
        started_at: dt.datetime,
        now: dt.datetime | None,
    ) -> Authentication:
        auth_time = claims["auth_time"]
        authenticated_at = dt.datetime.fromtimestamp(auth_time, dt.UTC)
        oldest = started_at - dt.timedelta(seconds=self.settings.max_age_seconds + LEEWAY_SECONDS)
        latest = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=LEEWAY_SECONDS)
        if not oldest <= authenticated_at <= latest:
            raise IdentityError(
                LoginProblem.NOT_FRESH,
                detail=f"auth_time {authenticated_at:%Y-%m-%d %H:%M:%S} UTC, the login began "
                f"{started_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
            )
        acr = claims.get("acr")
        return Authentication(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            acr=acr if isinstance(acr, str) else None,
            authenticated_at=authenticated_at,
            id_token_sha256=hashlib.sha256(id_token.encode()).hexdigest(),
            claims=dict(claims),
        )


def _same_security(url: str, issuer: str) -> bool:
    """An endpoint over https, or over http on loopback when the issuer is so too."""
    parts, base = urlsplit(url), urlsplit(issuer)
    if not parts.netloc:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == base.scheme == "http" and parts.hostname == base.hostname
