"""The archivists' pages (mounted at ``/arkiv``): search the ledger, read an
extract's timeline, verify its archived copy. Read-only, behind a login
(:mod:`justering.web.auth`); Swedish, plain HTML in the web app's style.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from justering.archive.verify import Verification, verify_targets
from justering.errors import JusteringError, NotFoundError
from justering.model.process import DocumentKind, ExtractStatus
from justering.web.auth import SESSION_COOKIE, LoginGuard, open_sessions
from justering.web.pages import page, same_origin
from justering.workflow.audit import (
    AuditRow,
    FilterError,
    Timeline,
    extract_timeline,
    find_extracts,
    parse_date,
)
from justering.workflow.services import Services

__all__ = [
    "CHECK_SWEDISH",
    "archivist_router",
]

log = logging.getLogger(__name__)

CHECK_SWEDISH: Mapping[str, str] = {
    "checksums": "Kontrollsummor",
    "bundle": "Arkivpaketet",
    "signatures": "Underskrifter",
    "trail chain": "Händelsekedjan",
    "trail matches PDF": "Händelsekedjan stämmer med PDF-filen",
    "trail matches signatures": "Händelsekedjan stämmer med underskrifterna",
    "justered protocol": "Det justerade protokollet",
    "trail seal": "Kommunens sigill på händelsekedjan",
}
"""Swedish names of the checks of :mod:`justering.archive.verify` (others show as named)."""

_FILTERS = ("organ", "fran", "till", "dnr", "undertecknare", "status")


def _path(request: Request, name: str, **params: Any) -> str:
    return request.url_for(name, **params).path


def archivist_router(
    services: Services,
    *,
    environ: Mapping[str, str] | None = None,
    guard: LoginGuard | None = None,
) -> APIRouter:
    """The archive pages; mount with ``app.include_router(router, prefix="/arkiv")``.

    Accounts are read once, here (``environ`` defaults to the process's); ``guard``
    limits password logins (default: 5 per account and 20 per address in 15 minutes,
    two password checks at once)."""
    sessions = open_sessions(services.settings, environ)
    guard = guard or LoginGuard()
    proxy_header = services.settings.archivist_header
    router = APIRouter()

    def check_password(user: str, password: str) -> bool | None:
        """The password check, in a worker thread, at most a few at once: None when
        no slot came free in time."""
        with guard.hashing() as slot:
            return sessions.accounts.authenticate(user, password) if slot else None

    def archivist(request: Request) -> str | None:
        if proxy_header:
            name = request.headers.get(proxy_header, "").strip()
            return name or None
        return sessions.user_of(request.cookies.get(SESSION_COOKIE))

    def to_login(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        query = urlencode({"next": target}) if request.method == "GET" else ""
        login = _path(request, "archivist_login")
        return RedirectResponse(f"{login}?{query}" if query else login, status_code=303)

    def page(
        request: Request, user: str, template: str, status: int = 200, **context: Any
    ) -> Response:
        """An archive page with the header of the archivist ``user``."""
        logout = None if proxy_header else _path(request, "archivist_logout")
        top = _Top(user, _path(request, "archivist_search"), logout, sessions.csrf_token(user))
        return _archive_page(template, status, top=top, **context)

    def message(
        request: Request, user: str, title: str, text: str, status: int, *, alert: bool = False
    ) -> Response:
        """A page that says one thing: ``alert`` a problem, else a status."""
        context = {"title": title, "text": text, "alert": alert}
        return page(request, user, "archivist/message.html", status, **context)

    def not_found(request: Request, user: str, error: NotFoundError) -> Response:
        return message(request, user, "Utdraget finns inte", error.diagnostics(), 404, alert=True)

    def search_page(
        request: Request,
        user: str,
        values: Mapping[str, str],
        *,
        problem: str | None = None,
        results: list[tuple[AuditRow, str]] | None = None,
    ) -> Response:
        return page(
            request,
            user,
            "archivist/search.html",
            200 if problem is None else 400,
            values=values,
            statuses=list(ExtractStatus),
            problem=problem,
            results=results or [],
        )

    @router.get("/logga-in", name="archivist_login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "") -> Response:
        if archivist(request):
            return RedirectResponse(_safe_next(request, next), status_code=303)
        if proxy_header:
            return _proxy_only()
        return _login_page(request, next, None)

    @router.post("/logga-in", name="archivist_login_post", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if proxy_header:
            return _proxy_only()
        if not same_origin(request):
            return _message("Förbjudet", "Formuläret kom från en annan webbplats.", 403)
        form = await request.form()
        user, password = str(form.get("anvandare", "")), str(form.get("losenord", ""))
        next_path = str(form.get("next", ""))
        address = request.client.host if request.client else "okänd"
        verdict = guard.attempt(user, address)
        if not verdict.allowed:
            log.warning("archivist login refused for now: too many attempts (%s)", address)
            return _too_many(verdict.retry_after)
        right = await run_in_threadpool(check_password, user, password)
        if right is None:
            log.warning("archivist login refused for now: too many at once")
            return _too_many(5)
        if not right:
            log.warning("failed archivist login from %s", address)
            return _login_page(request, next_path, "Fel användarnamn eller lösenord.", 401)
        guard.succeeded(user)
        log.info("archivist %s logged in", user)
        response = RedirectResponse(_safe_next(request, next_path), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sessions.issue(user),
            max_age=sessions.lifetime,
            path=_cookie_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    @router.post("/logga-ut", name="archivist_logout")
    async def logout(request: Request) -> Response:
        user = archivist(request)
        form = await request.form()
        if user and not sessions.csrf_ok(user, str(form.get("csrf", ""))):
            return _message("Förbjudet", "Formuläret har gått ut. Ladda om sidan.", 403)
        response = RedirectResponse(_path(request, "archivist_login"), status_code=303)
        response.delete_cookie(
            SESSION_COOKIE, path=_cookie_path(request), httponly=True, samesite="strict"
        )
        return response

    @router.get("/", name="archivist_search", response_class=HTMLResponse)
    def search(request: Request) -> Response:
        user = archivist(request)
        if user is None:
            return to_login(request)
        values = {name: request.query_params.get(name, "").strip() for name in _FILTERS}
        try:
            rows = find_extracts(
                services,
                body=values["organ"] or None,
                date_from=parse_date(values["fran"], "från") if values["fran"] else None,
                date_to=parse_date(values["till"], "till") if values["till"] else None,
                dnr=values["dnr"] or None,
                signer=values["undertecknare"] or None,
                status=values["status"] or None,
            )
        except FilterError as error:
            return search_page(request, user, values, problem=error.diagnostics())
        results = [(row, _timeline_path(request, row)) for row in rows]
        return search_page(request, user, values, results=results)

    def show_timeline(request: Request, document: _Document | NotFoundError) -> Response:
        user = archivist(request)
        if user is None:
            return to_login(request)
        if isinstance(document, NotFoundError):
            return not_found(request, user, document)
        try:
            found = extract_timeline(
                services, document.meeting_id, document.paragraph, document.kind
            )
        except NotFoundError as error:
            return not_found(request, user, error)
        return page(
            request,
            user,
            "archivist/timeline.html",
            timeline=found,
            csrf=sessions.csrf_token(user),
            verify=document.path(request, verify=True) if found.archive_uri else None,
        )

    async def verify_document(request: Request, document: _Document | NotFoundError) -> Response:
        user = archivist(request)
        if user is None:
            return to_login(request)
        if isinstance(document, NotFoundError):
            return not_found(request, user, document)
        form = await request.form()
        if not same_origin(request) or not sessions.csrf_ok(user, str(form.get("csrf", ""))):
            return message(request, user, "Förbjudet", "Formuläret har gått ut.", 403)
        try:
            found = await run_in_threadpool(document.timeline, services)
        except NotFoundError as error:
            return not_found(request, user, error)
        uri = found.archive_uri
        if uri is None:
            nothing = "Det är inte arkiverat ännu; det finns inget att verifiera."
            return message(request, user, "Inte arkiverat", nothing, 409)
        log.info("archivist %s verifies %s", user, uri)
        back = document.path(request)
        shown: dict[str, Any] = {"timeline": found, "back": back, "check_names": CHECK_SWEDISH}
        try:
            results = await run_in_threadpool(_verify, services, uri)
        except JusteringError as error:
            problem = error.diagnostics()
            return page(request, user, "archivist/verification.html", 502, **shown, problem=problem)
        return page(
            request, user, "archivist/verification.html", **shown, results=results, problem=None
        )

    @router.get(
        "/utdrag/{meeting_id}/{paragraph}", name="archivist_timeline", response_class=HTMLResponse
    )
    def timeline(request: Request, meeting_id: str, paragraph: int) -> Response:
        return show_timeline(request, _Document(meeting_id, DocumentKind.EXTRACT, paragraph))

    @router.post(
        "/utdrag/{meeting_id}/{paragraph}/verifiera",
        name="archivist_verify",
        response_class=HTMLResponse,
    )
    async def verify(request: Request, meeting_id: str, paragraph: int) -> Response:
        return await verify_document(
            request, _Document(meeting_id, DocumentKind.EXTRACT, paragraph)
        )

    @router.get(
        "/protokoll/{meeting_id}/{which}",
        name="archivist_protocol",
        response_class=HTMLResponse,
    )
    def protocol_timeline(request: Request, meeting_id: str, which: str) -> Response:
        return show_timeline(request, _Document.protocol(meeting_id, which))

    @router.post(
        "/protokoll/{meeting_id}/{which}/verifiera",
        name="archivist_verify_protocol",
        response_class=HTMLResponse,
    )
    async def verify_protocol(request: Request, meeting_id: str, which: str) -> Response:
        return await verify_document(request, _Document.protocol(meeting_id, which))

    return router


def _verify(services: Services, uri: str) -> list[Verification]:
    return list(verify_targets([uri], trust_roots=services.trust_roots))


# --- login -------------------------------------------------------------------------------


def _cookie_path(request: Request) -> str:
    return _path(request, "archivist_search").rstrip("/") or "/"


def _safe_next(request: Request, next_path: str) -> str:
    """``next_path`` if it is a page of the archive on this site, else the search page."""
    home = _path(request, "archivist_search")
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


@dataclass(frozen=True)
class _Top:
    """The header of a logged-in archivist's pages."""

    user: str
    home: str
    logout: str | None
    """Where *Logga ut* posts; None when a proxy logs archivists in."""
    csrf: str


def _archive_page(template: str, status: int = 200, /, **context: Any) -> HTMLResponse:
    """A private page of the archive (``top`` None unless passed). Its referrer
    policy is relaxed to ``same-origin`` (nothing secret is in these URLs) so that
    browsers send an ``Origin`` with the forms' POSTs instead of ``null``."""
    response = page(template, status, **{"top": None, **context})
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _message(title: str, text: str, status: int) -> HTMLResponse:
    """A page that says one thing, for someone not logged in."""
    return _archive_page("archivist/message.html", status, title=title, text=text, alert=False)


def _login_page(
    request: Request, next_path: str, problem: str | None, status: int = 200
) -> HTMLResponse:
    action = _path(request, "archivist_login_post")
    return _archive_page(
        "archivist/login.html", status, action=action, next=next_path, problem=problem
    )


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
    return _archive_page("archivist/proxy_only.html", 401)


@dataclass(frozen=True)
class _Document:
    """An extract (by its §) or a protocol of a meeting, as the archive's paths name it."""

    meeting_id: str
    kind: DocumentKind
    paragraph: int = 0

    @classmethod
    def protocol(cls, meeting_id: str, which: str) -> _Document | NotFoundError:
        """The protocol ``which`` names (``protokoll``, ``protokoll-omedelbar``)."""
        kind = next((k for k in DocumentKind if k.is_protocol and k.ref_suffix == which), None)
        if kind is None:
            return NotFoundError("protocol", f"{which!r} of meeting {meeting_id!r}")
        return cls(meeting_id, kind)

    def timeline(self, services: Services) -> Timeline:
        return extract_timeline(services, self.meeting_id, self.paragraph, self.kind)

    def path(self, request: Request, *, verify: bool = False) -> str:
        if self.kind.is_protocol:
            name = "archivist_verify_protocol" if verify else "archivist_protocol"
            return _path(request, name, meeting_id=self.meeting_id, which=self.kind.ref_suffix)
        name = "archivist_verify" if verify else "archivist_timeline"
        return _path(request, name, meeting_id=self.meeting_id, paragraph=self.paragraph)


def _timeline_path(request: Request, row: AuditRow) -> str:
    e = row.extract
    return _Document(e.meeting_id, e.kind, e.paragraph).path(request)
