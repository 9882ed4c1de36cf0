"""The archivists' pages (mounted at ``/arkiv``): search the ledger, read an
extract's timeline, verify its archived copy. Read-only, behind a login
(:mod:`justering.web.auth`, the door :mod:`justering.web.staff`); Swedish, plain
HTML in the web app's style.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from justering.archive.verify import Verification, verify_targets
from justering.errors import JusteringError, NotFoundError
from justering.model.process import DocumentKind, ExtractStatus
from justering.web.auth import SESSION_COOKIE, LoginGuard, open_sessions
from justering.web.staff import StaffArea, route_path
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
    area = StaffArea(
        name="archivist",
        title="Arkivet – protokollsutdrag",
        home="archivist_search",
        sessions=open_sessions(services.settings, environ),
        guard=guard or LoginGuard(),
        cookie=SESSION_COOKIE,
        proxy_header=services.settings.archivist_header,
        login_heading="Logga in – arkivet",
        login_note="Sidorna är till för arkivarier. Konton delas ut av systemets förvaltare.",
    )
    router = APIRouter()
    router.include_router(area.login_routes())
    archivist, to_login, page, message = area.user, area.to_login, area.page, area.message

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
            csrf=area.sessions.csrf_token(user),
            verify=document.path(request, verify=True) if found.archive_uri else None,
        )

    async def verify_document(request: Request, document: _Document | NotFoundError) -> Response:
        user = archivist(request)
        if user is None:
            return to_login(request)
        if isinstance(document, NotFoundError):
            return not_found(request, user, document)
        form = await request.form()
        if not area.csrf_ok(request, user, str(form.get("csrf", ""))):
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
            return route_path(request, name, meeting_id=self.meeting_id, which=self.kind.ref_suffix)
        name = "archivist_verify" if verify else "archivist_timeline"
        return route_path(request, name, meeting_id=self.meeting_id, paragraph=self.paragraph)


def _timeline_path(request: Request, row: AuditRow) -> str:
    e = row.extract
    return _Document(e.meeting_id, e.kind, e.paragraph).path(request)
