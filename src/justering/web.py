"""The web app (FastAPI): the meeting system's API and the signers' pages.

Pages are Swedish, plain HTML with inline CSS (nothing fetched from a third
party). Signing happens in the request: this is the signature service, which
issues the signer's certificate and makes the PAdES signature; the next stage
is then left to orchestration through ``schedule_advance``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from justering import workflow
from justering.errors import (
    JusteringError,
    LinkError,
    ManifestError,
    SigningError,
    WorkflowError,
)
from justering.manifest import MAX_MANIFEST_BYTES, parse_manifest_json
from justering.web_archivist import archivist_router
from justering.web_noticeboard import noticeboard_router
from justering.web_pages import PRIVATE_HEADERS, page
from justering.workflow import Services

log = logging.getLogger("justering.web")


@dataclass(frozen=True)
class Hooks:
    """How the web app hands work to orchestration."""

    meeting_recorded: Callable[[str], None]
    """Start the pipeline for a newly recorded meeting."""
    schedule_advance: Callable[[str], None]
    """Move a meeting forward after a signature."""


def _error_page(error: JusteringError, status_code: int) -> HTMLResponse:
    body = (
        '<div class="card error"><h1>Det gick inte</h1>'
        f"<p>{html.escape(error.diagnostics())}</p>"
        "<p>Kontakta nämndens sekreterare om du behöver en ny länk. "
        "(Contact the secretary of the body if you need a new link.)</p></div>"
    )
    return page("Det gick inte", body, status_code)


def _extract_label(paragraph: int, dnr: str | None, title: str) -> str:
    dnr_part = f" · {html.escape(dnr)}" if dnr else ""
    return f"<strong>§ {paragraph}</strong>{dnr_part}<br>{html.escape(title)}"


def create_app(
    services: Services, hooks: Hooks, *, environ: Mapping[str, str] | None = None
) -> FastAPI:
    """The whole web app. ``environ`` (default: the process's) is where the
    archivists' accounts are configured."""
    app = FastAPI(title="justering", docs_url=None, redoc_url=None)

    app.include_router(noticeboard_router(services), prefix="/anslagstavla")
    app.include_router(archivist_router(services, environ=environ), prefix="/arkiv")

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/meetings")
    async def post_meeting(request: Request) -> JSONResponse:
        body = await _bounded_body(request, MAX_MANIFEST_BYTES)
        if body is None:
            too_large = ManifestError("(manifest)", f"larger than {MAX_MANIFEST_BYTES} bytes")
            return _api_error(too_large, 413)
        try:
            meeting = parse_manifest_json(body, base_dir=None)
        except ManifestError as error:
            return _api_error(error, 422)
        try:
            created = await run_in_threadpool(workflow.record_meeting, services, meeting)
        except ManifestError as error:
            return _api_error(error, 409)
        if created:
            await run_in_threadpool(_hand_over, hooks.meeting_recorded, meeting.meeting_id)
        return JSONResponse(
            {"meeting_id": meeting.meeting_id, "created": created},
            status_code=202 if created else 200,
        )

    @app.get("/api/meetings/{meeting_id}")
    def get_meeting(meeting_id: str) -> JSONResponse:
        try:
            states = workflow.meeting_states(services, meeting_id)
        except WorkflowError as error:
            return _api_error(error, error.status_code)
        return JSONResponse(
            {
                "meeting_id": meeting_id,
                "extracts": [
                    {
                        "paragraph": s.paragraph,
                        "dnr": s.dnr,
                        "title": s.title,
                        "version": s.version,
                        "status": s.status.value,
                        "sha256": s.document_sha256,
                        "archive_uri": s.archive_uri,
                    }
                    for s in states
                ],
            }
        )

    @app.get("/s/{token}", response_class=HTMLResponse)
    def signer_page(token: str) -> HTMLResponse:
        try:
            view = workflow.view_link(services, token)
        except LinkError as error:
            return _error_page(error, error.status_code)
        meeting = view.meeting
        items = "".join(
            f"<li>{_extract_label(e.paragraph, e.dnr, e.title)}<br>"
            f'<a href="/s/{html.escape(token)}/utdrag/{e.extract_id}.pdf">'
            f"Läs utdraget (PDF)</a></li>"
            for e in view.extracts
        )
        body = f"""
<h1>Signera som {html.escape(view.signer.role.swedish.lower())}</h1>
<p class="muted">{html.escape(meeting.body.name)}, {html.escape(meeting.municipality)},
sammanträde {meeting.date.isoformat()}, {html.escape(meeting.place)}</p>
<div class="card"><p>Hej {html.escape(view.signer.name)}! Dessa protokollsutdrag väntar
på din signatur:</p><ul class="extracts">{items}</ul></div>
<div class="card"><p>När du signerar skapas en elektronisk underskrift (PAdES) i varje
utdrag, med ett certifikat utfärdat i ditt namn och din roll. Underskriften visar att du
{_meaning(view.signer.role.value)}. Den kan inte ångras.</p>
<form method="post" action="/s/{html.escape(token)}">
<input type="hidden" name="confirm" value="yes">
<button type="submit">Signera {len(view.extracts)} utdrag</button></form></div>
<p class="muted">Länken gäller till {view.expires_at:%Y-%m-%d %H:%M} UTC
och kan användas en gång.</p>"""
        return page("Signera protokollsutdrag", body)

    @app.get("/s/{token}/utdrag/{extract_id}.pdf")
    def signer_document(token: str, extract_id: int) -> Response:
        try:
            pdf = workflow.link_document(services, token, extract_id)
        except LinkError as error:
            return _error_page(error, error.status_code)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                **PRIVATE_HEADERS,
                "Content-Disposition": f'inline; filename="utdrag-{extract_id}.pdf"',
            },
        )

    @app.post("/s/{token}", response_class=HTMLResponse)
    async def sign(token: str, request: Request) -> HTMLResponse:
        form = await request.form()
        if form.get("confirm") != "yes":
            return _error_page(LinkError("Bekräftelsen saknas. (Missing confirmation.)"), 400)
        try:
            receipt = await run_in_threadpool(workflow.sign_with_link, services, token)
        except (LinkError, WorkflowError) as error:
            return _error_page(error, error.status_code)
        except SigningError as error:  # e.g. the TSA did not answer: nothing was recorded
            log.warning("signing failed: %s", error.diagnostics())
            return _error_page(
                SigningError(
                    "Signeringen kunde inte göras just nu; inget har sparats och länken "
                    "gäller fortfarande. Försök igen om en stund. (Signing failed for now; "
                    "nothing was recorded and the link still works.)"
                ),
                503,
            )
        await run_in_threadpool(_hand_over, hooks.schedule_advance, receipt.meeting_id)
        items = "".join(
            f"<li>{_extract_label(i.paragraph, i.dnr, i.title)}<br>"
            f'<span class="muted">Dokumentets SHA-256: <code>{i.document_sha256}</code></span></li>'
            for i in receipt.items
        )
        body = f"""
<div class="card ok"><h1>Klart – du har signerat</h1>
<p>{html.escape(receipt.signer.name)}, {html.escape(receipt.signer.role.swedish.lower())},
{receipt.signed_at:%Y-%m-%d %H:%M} UTC. Kvitto: </p>
<ul class="extracts">{items}</ul></div>
<p class="muted">Nästa undertecknare meddelas automatiskt. Du kan stänga sidan.</p>"""
        return page("Signerat", body)

    return app


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes
    (by its Content-Length, or while reading it): nothing larger is held in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _hand_over(hook: Callable[[str], None], meeting_id: str) -> None:
    """Hand a meeting to orchestration. What is recorded is already committed, so a
    failure here (Prefect unreachable) must not fail the request: the service's
    reconciler moves every unfinished meeting forward once Prefect is back."""
    try:
        hook(meeting_id)
    except Exception:
        log.exception("could not hand meeting %s to orchestration; the reconciler will", meeting_id)


def _meaning(role: str) -> str:
    return {
        "chair": "som ordförande justerar protokollet för dessa paragrafer",
        "adjuster": "som justerare intygar att protokollet återger det som beslutades",
        "certifier": "bestyrker att utdraget överensstämmer med det justerade protokollet",
    }[role]


def _api_error(error: JusteringError, status_code: int) -> JSONResponse:
    detail: dict[str, Any] = {"error": error.diagnostics()}
    if isinstance(error, ManifestError):
        detail["field"] = error.field
    return JSONResponse(detail, status_code=status_code)
