"""Logging in with e-legitimation before signing: the gate in front of a signer's
link, and the OpenID Connect routes.

Where a body signs with e-legitimation, every page behind ``/s/{token}`` first asks
for a login (``signer/login.html``). Its button, ``GET /s/{token}/logga-in``, begins
one (``justering.workflow.identity.start_login``) and sends the browser to the
identity provider, with a cookie that ties the answer to this browser and this link
(``justering_inloggning``: the ``state`` and the link, signed, ten minutes, only
sent to ``/inloggning``). The provider answers at ``GET /inloggning/retur``
(:data:`CALLBACK_PATH`, the redirect URI to register with it); a login that matches
the link's signer opens a session for that link alone: ``justering_signer``, signed,
only sent to ``/s/{token}``, its secret stored in the ledger only as a hash.

Cookies are signed with itsdangerous under the home's key; they are ``HttpOnly``,
``SameSite=Lax`` (the provider's answer is a top-level navigation from its site)
and ``Secure`` when the service is reached over https.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from justering import workflow
from justering.errors import (
    IdentityError,
    JusteringError,
    LinkError,
    LoginProblem,
    NotFoundError,
    WorkflowError,
)
from justering.identity.oidc import OpenIdProvider
from justering.ledger.logins import ANSWER_WITHIN
from justering.web.pages import PRIVATE_HEADERS, page
from justering.web.refusals import answer_for
from justering.workflow.identity import LoginView, finish_login, login_view, start_login
from justering.workflow.services import Services

__all__ = [
    "CALLBACK_PATH",
    "PENDING_COOKIE",
    "SESSION_COOKIE",
    "LoginGate",
    "login_page",
    "login_routes",
]

log = logging.getLogger(__name__)

CALLBACK_PATH = "/inloggning/retur"
"""Where the identity provider sends the browser back (the redirect URI)."""
PENDING_COOKIE = "justering_inloggning"
"""A login under way: its ``state`` and link, for the provider's answer."""
SESSION_COOKIE = "justering_signer"
"""A login that lets its browser use one link."""


class LoginGate:
    """What stands in front of a signer's link: the provider, and the cookies."""

    def __init__(self, services: Services, key: bytes) -> None:
        self.services = services
        identity = services.settings.identity
        self.provider = (
            None
            if identity is None
            else OpenIdProvider(identity, f"{services.settings.public_url}{CALLBACK_PATH}")
        )
        self.minutes = identity.login_minutes if identity else 0
        self._pending = URLSafeTimedSerializer(key, salt="justering.login.pending")
        self._session = URLSafeTimedSerializer(key, salt="justering.login.session")
        self.secure = services.settings.public_url.startswith("https://")

    def session_of(self, request: Request) -> str | None:
        """The session secret the browser holds for this link, if its cookie is genuine
        and recent (the ledger decides whether it is still good)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie or self.provider is None:
            return None
        try:
            secret = self._session.loads(cookie, max_age=self.minutes * 60)
        except BadSignature:
            return None
        return secret if isinstance(secret, str) else None

    def login_view(self, request: Request, token: str) -> LoginView | None:
        """What the login page shows, when this browser must log in first."""
        return login_view(self.services, token, self.session_of(request))

    def _cookie(self, response: Response, name: str, value: str, path: str, seconds: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=seconds,
            path=path,
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def pending(self, response: Response, token: str, state: str) -> None:
        value = self._pending.dumps({"state": state, "link": token})
        self._cookie(
            response, PENDING_COOKIE, value, "/inloggning", int(ANSWER_WITHIN.total_seconds())
        )

    def pending_of(self, request: Request) -> tuple[str, str] | None:
        """(state, link token) of the login this browser began, if any."""
        cookie = request.cookies.get(PENDING_COOKIE)
        if not cookie:
            return None
        try:
            data = self._pending.loads(cookie, max_age=int(ANSWER_WITHIN.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        state, token = data.get("state"), data.get("link")
        return (state, token) if isinstance(state, str) and isinstance(token, str) else None

    def opened(self, response: Response, token: str, secret: str) -> None:
        value = self._session.dumps(secret)
        self._cookie(response, SESSION_COOKIE, value, f"/s/{token}", self.minutes * 60)
        response.delete_cookie(PENDING_COOKIE, path="/inloggning")


def login_page(services: Services, view: LoginView, token: str, minutes: int) -> HTMLResponse:
    """The page that asks the signer to log in before they may read and sign."""
    return page(
        "signer/login.html",
        view=view,
        token=token,
        minutes=minutes,
        secretary=workflow.secretary_of(view.meeting, services.settings),
    )


def login_routes(
    services: Services,
    gate: LoginGate,
    error_page: Callable[..., HTMLResponse],
) -> APIRouter:
    """``GET /s/{token}/logga-in`` and ``GET /inloggning/retur``. ``error_page(answer,
    back=…, contact=…)`` draws a refusal."""
    router = APIRouter()

    def refused(error: JusteringError, token: str | None) -> HTMLResponse:
        contact = workflow.link_contact(services, token) if token else None
        back = f"/s/{token}" if token and not isinstance(error, LinkError) else None
        return error_page(answer_for(error), back=back, contact=contact)

    async def attempt(token: str | None, call: Callable[[], Any]) -> Any:
        try:
            return await run_in_threadpool(call)
        except IdentityError as error:
            log.info("login on a link: %s", error.diagnostics())
            return await run_in_threadpool(refused, error, token)
        except (LinkError, WorkflowError, NotFoundError) as error:
            return await run_in_threadpool(refused, error, token)

    @router.get("/s/{token}/logga-in")
    async def begin(token: str, request: Request) -> Response:
        needed = await attempt(token, lambda: gate.login_view(request, token))
        if isinstance(needed, HTMLResponse):
            return needed
        provider = gate.provider
        if provider is None or needed is None:  # the link needs no (further) login
            return RedirectResponse(f"/s/{token}", status_code=303, headers=PRIVATE_HEADERS)
        begun = await attempt(token, lambda: start_login(services, provider, token))
        if isinstance(begun, HTMLResponse):
            return begun
        response = RedirectResponse(begun.url, status_code=303, headers=PRIVATE_HEADERS)
        gate.pending(response, token, begun.state)
        return response

    @router.get(CALLBACK_PATH)
    async def answer(request: Request) -> Response:
        provider = gate.provider
        pending = gate.pending_of(request)
        state = request.query_params.get("state", "")
        if provider is None or pending is None or pending[0] != state:
            # Not begun in this browser (or a forged answer): nothing to match it to.
            return refused(IdentityError(LoginProblem.NOT_STARTED), None)
        token = pending[1]
        session = await attempt(
            token,
            lambda: finish_login(
                services,
                provider,
                token=token,
                state=state,
                code=request.query_params.get("code"),
                error=request.query_params.get("error"),
            ),
        )
        if isinstance(session, HTMLResponse):
            session.delete_cookie(PENDING_COOKIE, path="/inloggning")
            return session
        response = RedirectResponse(f"/s/{token}", status_code=303, headers=PRIVATE_HEADERS)
        gate.opened(response, token, session.secret)
        return response

    return router
