"""The web app (FastAPI): the meeting systems' API and the pages.

The API (``api``), the signers' pages and the secretary's redraft page
(``signer``), the secretaries' pages (``secretary``), the anslagstavla
(``noticeboard``) and the archive (``archivist``) live in their own
modules, the pages' templates in ``templates/``; this module serves the front
page. Signing happens in the request: this is the signature service, which issues
the signer's certificate and makes the PAdES signature; the next stage is then left
to orchestration through ``schedule_advance``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from justering.web.api import meetings_router
from justering.web.archivist import archivist_router
from justering.web.auth import LoginGuard
from justering.web.noticeboard import noticeboard_router
from justering.web.pages import public_page
from justering.web.secretary import secretary_router
from justering.web.signer import signer_router
from justering.workflow.services import Services

__all__ = [
    "Hooks",
    "create_app",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hooks:
    """How the web app hands work to orchestration."""

    meeting_recorded: Callable[[str], None]
    """Start the pipeline for a newly recorded meeting."""
    schedule_advance: Callable[[str], None]
    """Move a meeting forward after a signature."""


def create_app(
    services: Services, hooks: Hooks, *, environ: Mapping[str, str] | None = None
) -> FastAPI:
    """The whole web app. ``environ`` (default: the process's) is where the
    archivists' and secretaries' accounts are configured."""
    app = FastAPI(title="justering", docs_url=None, redoc_url=None)
    if services.settings.trusted_proxies:
        # Behind a reverse proxy: the client's address (the login limits) and the
        # scheme (https: the archivists' cookie is Secure) come from its
        # X-Forwarded-For and X-Forwarded-Proto, believed only from these addresses.
        app.add_middleware(
            ProxyHeadersMiddleware, trusted_hosts=list(services.settings.trusted_proxies)
        )

    app.include_router(
        signer_router(services, lambda meeting_id: _hand_over(hooks.schedule_advance, meeting_id))
    )
    app.include_router(noticeboard_router(services), prefix="/anslagstavla")
    # One count of password attempts for both staff logins: an address guessing at
    # one is slowed at the other too.
    guard = LoginGuard()
    app.include_router(archivist_router(services, environ=environ, guard=guard), prefix="/arkiv")
    app.include_router(
        secretary_router(services, environ=environ, guard=guard), prefix="/sekreterare"
    )

    @app.get("/", name="home", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        """What the service is, for whoever types its address (signers use their link)."""
        return public_page(
            "home.html",
            noticeboard=request.url_for("noticeboard").path,
            archive=request.url_for("archivist_search").path,
            secretary=request.url_for("secretary_meetings").path,
        )

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    def started(meeting_id: str) -> None:
        # The flow run is the meeting's record in Prefect; its process takes seconds
        # to start, so the task worker starts drafting at once (a lease in the ledger
        # keeps the two from drafting the same meeting twice).
        _hand_over(hooks.meeting_recorded, meeting_id)
        _hand_over(hooks.schedule_advance, meeting_id)

    app.include_router(meetings_router(services, started), prefix="/api")

    return app


def _hand_over(hook: Callable[[str], None], meeting_id: str) -> None:
    """Hand a meeting to orchestration. What is recorded is already committed, so a
    failure here (Prefect unreachable) must not fail the request: the service's
    reconciler moves every unfinished meeting forward once Prefect is back."""
    try:
        hook(meeting_id)
    except Exception:
        log.exception("could not hand meeting %s to orchestration; the reconciler will", meeting_id)
