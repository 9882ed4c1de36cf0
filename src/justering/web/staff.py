"""The door of a staff area: the archivists' pages (``/arkiv``) and the secretaries'
(``/sekreterare``) each have one. A login form (rate limited, the password checked
in a worker thread, a few at once), a session cookie scoped to the area's path,
logout, the redirect of a logged-out visitor, and the header of a logged-in one's
pages; or, behind a trusted reverse proxy, the person its header names.

Accounts and sessions are :mod:`justering.web.auth`'s; a :class:`StaffArea` uses the
sessions of its own realm, so one area's cookie or form token is nothing in another.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from justering.web.auth import LoginGuard, Sessions
from justering.web.pages import page as private_page
from justering.web.pages import same_origin

__all__ = [
    "StaffArea",
    "StaffTop",
    "route_path",
]

log = logging.getLogger(__name__)


def route_path(request: Request, name: str, **params: Any) -> str:
    """The path of the route ``name`` (with its path parameters)."""
    return request.url_for(name, **params).path


@dataclass(frozen=True)
class StaffTop:
    """The header of a logged-in person's pages in a staff area."""

    user: str
    title: str
    """The area's name, linking to its first page."""
    home: str
    logout: str | None
    """Where *Logga ut* posts; None when a proxy logs people in."""
    csrf: str


@dataclass(frozen=True)
class StaffArea:
    """One staff area's login and pages. Its routes are named ``{name}_login``,
    ``{name}_login_post`` and ``{name}_logout``; ``home`` names its first page."""

    name: str
    title: str
    """Swedish, in the header of every page: "Arkivet – protokollsutdrag"."""
    home: str
    sessions: Sessions
    guard: LoginGuard
    cookie: str
    proxy_header: str | None
    login_heading: str
    login_note: str
    """Under the login form: who the pages are for."""

    def user(self, request: Request) -> str | None:
        """The person logged in to this area, if any."""
        if self.proxy_header:
            name = request.headers.get(self.proxy_header, "").strip()
            return name or None
        return self.sessions.user_of(request.cookies.get(self.cookie))

    def to_login(self, request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode({"next": target}) if request.method == "GET" else ""
        login = route_path(request, f"{self.name}_login")
        return RedirectResponse(f"{login}?{query}" if query else login, status_code=303)

    def page(
        self, request: Request, user: str, template: str, status: int = 200, **context: Any
    ) -> Response:
        """A page of the area with the header of ``user``."""
        logout = None if self.proxy_header else route_path(request, f"{self.name}_logout")
        home = route_path(request, self.home)
        top = StaffTop(user, self.title, home, logout, self.sessions.csrf_token(user))
        return staff_page(template, status, top=top, **context)

    def message(
        self,
        request: Request,
        user: str,
        title: str,
        text: str,
        status: int,
        *,
        alert: bool = False,
    ) -> Response:
        """A page that says one thing: ``alert`` a problem, else a status."""
        context = {"title": title, "text": text, "alert": alert}
        return self.page(request, user, "staff/message.html", status, **context)

    def csrf_ok(self, request: Request, user: str, token: str) -> bool:
        """A form POST from this site with ``user``'s token for this area."""
        return same_origin(request) and self.sessions.csrf_ok(user, token)

    def login_routes(self) -> APIRouter:
        """``GET``/``POST /logga-in`` and ``POST /logga-ut``, under the area's prefix."""
        router = APIRouter()

        def check_password(user: str, password: str) -> bool | None:
            """The password check, at most a few at once: None when no slot came free."""
            with self.guard.hashing() as slot:
                return self.sessions.accounts.authenticate(user, password) if slot else None

        @router.get("/logga-in", name=f"{self.name}_login", response_class=HTMLResponse)
        def login_form(request: Request, next: str = "") -> Response:
            if self.user(request):
                return RedirectResponse(self._safe_next(request, next), status_code=303)
            if self.proxy_header:
                return _proxy_only()
            return self._login_page(request, next, None)

        @router.post("/logga-in", name=f"{self.name}_login_post", response_class=HTMLResponse)
        async def login(request: Request) -> Response:
            if self.proxy_header:
                return _proxy_only()
            if not same_origin(request):
                return _message("Förbjudet", "Formuläret kom från en annan webbplats.", 403)
            form = await request.form()
            user, password = str(form.get("anvandare", "")), str(form.get("losenord", ""))
            next_path = str(form.get("next", ""))
            address = request.client.host if request.client else "okänd"
            verdict = self.guard.attempt(user, address)
            if not verdict.allowed:
                log.warning("%s login refused for now: too many attempts (%s)", self.name, address)
                return _too_many(verdict.retry_after)
            right = await run_in_threadpool(check_password, user, password)
            if right is None:
                log.warning("%s login refused for now: too many at once", self.name)
                return _too_many(5)
            if not right:
                log.warning("failed %s login from %s", self.name, address)
                problem = "Fel användarnamn eller lösenord."
                return self._login_page(request, next_path, problem, 401)
            self.guard.succeeded(user)
            log.info("%s %s logged in", self.name, user)
            response = RedirectResponse(self._safe_next(request, next_path), status_code=303)
            response.set_cookie(
                self.cookie,
                self.sessions.issue(user),
                max_age=self.sessions.lifetime,
                path=self._cookie_path(request),
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="strict",
            )
            return response

        @router.post("/logga-ut", name=f"{self.name}_logout")
        async def logout(request: Request) -> Response:
            user = self.user(request)
            form = await request.form()
            if user and not self.sessions.csrf_ok(user, str(form.get("csrf", ""))):
                return _message("Förbjudet", "Formuläret har gått ut. Ladda om sidan.", 403)
            response = RedirectResponse(route_path(request, f"{self.name}_login"), status_code=303)
            response.delete_cookie(
                self.cookie, path=self._cookie_path(request), httponly=True, samesite="strict"
            )
            return response

        return router

    def _cookie_path(self, request: Request) -> str:
        return route_path(request, self.home).rstrip("/") or "/"

    def _safe_next(self, request: Request, next_path: str) -> str:
        """``next_path`` if it is a page of this area on this site, else its first page."""
        home = route_path(request, self.home)
        parts = urlsplit(next_path)
        if (
            parts.scheme
            or parts.netloc
            or not next_path.startswith(home)
            or "\\" in next_path
            or ".." in parts.path
        ):
            return home
        return next_path

    def _login_page(
        self, request: Request, next_path: str, problem: str | None, status: int = 200
    ) -> HTMLResponse:
        return staff_page(
            "staff/login.html",
            status,
            action=route_path(request, f"{self.name}_login_post"),
            next=next_path,
            problem=problem,
            heading=self.login_heading,
            note=self.login_note,
        )


def staff_page(template: str, status: int = 200, /, **context: Any) -> HTMLResponse:
    """A private page of a staff area (``top`` None unless passed). Its referrer
    policy is relaxed to ``same-origin`` (nothing secret is in these URLs) so that
    browsers send an ``Origin`` with the forms' POSTs instead of ``null``."""
    response = private_page(template, status, **{"top": None, **context})
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _message(title: str, text: str, status: int) -> HTMLResponse:
    """A page that says one thing, for someone not logged in."""
    return staff_page("staff/message.html", status, title=title, text=text, alert=False)


def _too_many(seconds: int) -> HTMLResponse:
    """429: wait before trying again (in Swedish, with Retry-After)."""
    minutes = max(1, math.ceil(seconds / 60))
    wait = "en minut" if minutes == 1 else f"{minutes} minuter"
    response = _message(
        "För många inloggningsförsök",
        f"För många försök att logga in. Vänta {wait} och försök sedan igen.",
        429,
    )
    response.headers["Retry-After"] = str(seconds)
    return response


def _proxy_only() -> HTMLResponse:
    return staff_page("staff/proxy_only.html", 401)
