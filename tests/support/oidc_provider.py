"""A real OpenID provider on loopback for the tests: Authlib's server side
(``authlib.integrations.flask_oauth2``: the authorization code grant with the
OpenID Connect extension and PKCE required), in Flask, served by werkzeug on
127.0.0.1 in a thread.

It speaks the Swedish OpenID Connect profile's claims: each person it can log in
has a ``sub``, ``name``/``given_name``/``family_name``, a personnummer in
``https://id.oidc.se/claim/personalIdentityNumber`` and an ``acr`` (tillitsnivå 3
unless the test says otherwise). Its login page lists them as buttons, as a test
broker does.

What a test may make it do, to play a provider that misbehaves or an attacker in
the middle: ``tamper`` changes the claims of the ID tokens it issues (another
``iss``, ``aud``, ``nonce``, an ``exp`` in the past, an old ``auth_time``) and
signs them with its own key; ``swap_id_token`` replaces the ID token of a token
response (with one issued before, or one signed by someone else); ``down`` makes
every endpoint answer 503. Every ID token it issued is in ``issued``.

    with LoopbackProvider({"chair": person(...)}) as provider:
        settings = provider.identity_settings(redirect_uri)
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import werkzeug.serving
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, Response, request
from joserfc.jwk import RSAKey

from justering.config import PERSONAL_IDENTITY_NUMBER_CLAIM, IdentitySettings
from justering.model.assurance import LOA3

CLIENT_ID = "justering-test"
CLIENT_SECRET = "loopback-client-secret"
ID_TOKEN_SECONDS = 300


def person(
    sub: str, name: str, personal_number: str | None, *, acr: str = LOA3, **claims: Any
) -> dict[str, Any]:
    """The claims a person's ID token carries (Swedish OpenID Connect profile)."""
    given, _, family = name.partition(" ")
    found: dict[str, Any] = {
        "sub": sub,
        "name": name,
        "given_name": given,
        "family_name": family,
        "acr": acr,
        **claims,
    }
    if personal_number is not None:
        found[PERSONAL_IDENTITY_NUMBER_CLAIM] = personal_number
    return found


@dataclass
class _Client(ClientMixin):  # type: ignore[misc]
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    redirect_uri: str
    scope: str
    sub: str
    nonce: str | None
    auth_time: int
    acr: str | None
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return self.acr


@dataclass
class LoopbackProvider:
    """The provider; a context manager that serves it on a free 127.0.0.1 port."""

    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Who can log in, by ``sub``: their claims (see :func:`person`)."""
    tamper: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    swap_id_token: Callable[[str], str] | None = None
    down: bool = False
    auth_time_offset: int = 0
    """Seconds added to ``auth_time`` (negative: an authentication from before)."""
    issued: list[str] = field(default_factory=list)
    logins: int = 0
    """Authorization requests it received (its login page shown)."""
    issuer: str = ""
    redirect_uris: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8)})
        self._codes: dict[str, _Code] = {}
        self._nonces: set[str] = set()
        self._lock = threading.Lock()

    # -- serving -----------------------------------------------------------------------

    def __enter__(self) -> LoopbackProvider:
        self._server = werkzeug.serving.make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._app = self._flask()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.down:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"the identity provider is down"]
        return self._app(environ, start_response)

    def identity_settings(self, **overrides: Any) -> IdentitySettings:
        """Settings for a justering that logs in here."""
        return IdentitySettings(
            issuer=self.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            display_name="Test-e-legitimation",
            **overrides,
        )

    def environment(self) -> dict[str, str]:
        """The ``JUSTERING_OIDC_*`` variables for a justering that logs in here."""
        return {
            "JUSTERING_OIDC_ISSUER": self.issuer,
            "JUSTERING_OIDC_CLIENT_ID": CLIENT_ID,
            "JUSTERING_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }

    @contextmanager
    def unavailable(self) -> Iterator[None]:
        self.down = True
        try:
            yield
        finally:
            self.down = False

    # -- the OpenID Connect endpoints ----------------------------------------------------

    def _flask(self) -> Flask:
        app = Flask("loopback-provider")
        provider = self
        server = AuthorizationServer(
            app, query_client=self._query_client, save_token=lambda token, req: None
        )

        class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]  # noqa: RUF012

            def save_authorization_code(self, code: str, req: Any) -> None:
                data = req.payload.data
                with provider._lock:
                    provider._nonces.add(data.get("nonce"))
                    provider._codes[code] = _Code(
                        code=code,
                        redirect_uri=req.payload.redirect_uri,
                        scope=req.scope,
                        sub=req.user["sub"],
                        nonce=data.get("nonce"),
                        auth_time=int(time.time()) + provider.auth_time_offset,
                        acr=req.user.get("acr"),
                        code_challenge=data.get("code_challenge"),
                        code_challenge_method=data.get("code_challenge_method"),
                    )

            def query_authorization_code(self, code: str, client: Any) -> _Code | None:
                with provider._lock:
                    return provider._codes.get(code)

            def delete_authorization_code(self, code: _Code) -> None:
                with provider._lock:
                    provider._codes.pop(code.code, None)

            def authenticate_user(self, code: _Code) -> dict[str, Any]:
                return provider.people[code.sub]

        class Code(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, req: Any) -> bool:
                with provider._lock:
                    return nonce in provider._nonces

            def resolve_client_private_key(self, client: Any) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Any) -> str:
                return "RS256"

            def get_encode_header(self, client: Any) -> dict[str, str]:
                return {"alg": "RS256", "kid": str(provider.key.kid)}

            def get_client_claims(self, client: Any) -> dict[str, Any]:
                now = int(time.time())
                return {"iss": provider.issuer, "aud": [CLIENT_ID], "exp": now + ID_TOKEN_SECONDS}

            def generate_user_info(self, user: Mapping[str, Any], scope: str) -> dict[str, Any]:
                claims = {k: v for k, v in user.items() if k != "acr"}
                return provider.tamper(claims) if provider.tamper else claims

        server.register_grant(CodeGrant, [Code(require_nonce=True), CodeChallenge(required=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            return {
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "acr_values_supported": [LOA3],
                "claims_supported": ["sub", "name", PERSONAL_IDENTITY_NUMBER_CLAIM, "acr"],
            }

        @app.get("/jwks")
        def jwks() -> Any:
            return {"keys": [provider.key.as_dict(private=False)]}

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize() -> Any:
            if request.method == "GET":
                grant = server.get_consent_grant(end_user=None)
                provider.logins += 1
                return provider._login_page(grant.client.get_client_id())
            user = provider.people.get(request.form.get("sub", ""))
            grant = server.get_consent_grant(end_user=user)
            return server.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def token() -> Any:
            response: Response = server.create_token_response()
            body = json.loads(response.get_data())
            if "id_token" in body:
                provider.issued.append(body["id_token"])
                if provider.swap_id_token is not None:
                    body["id_token"] = provider.swap_id_token(body["id_token"])
                    response.set_data(json.dumps(body))
            return response

        return app

    def _query_client(self, client_id: str) -> _Client | None:
        return _Client(self.redirect_uris) if client_id == CLIENT_ID else None

    def _login_page(self, client_id: str) -> str:
        buttons = "".join(
            f'<button type="submit" name="sub" value="{html.escape(sub)}">'
            f"Logga in som {html.escape(str(claims['name']))}</button> "
            for sub, claims in self.people.items()
        )
        return (
            '<!doctype html><html lang="sv"><head><meta charset="utf-8">'
            "<title>Test-e-legitimation</title></head><body><main>"
            "<h1>Test-e-legitimation</h1>"
            f"<p>Tjänsten {html.escape(client_id)} vill veta vem du är.</p>"
            f'<form method="post">{buttons}</form></main></body></html>'
        )
