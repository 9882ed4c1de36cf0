"""The web app (FastAPI): the meeting system's API and the signers' pages.

The pages live in their own modules (signers and the secretary in
``web_signer``, the anslagstavla, the archive). Signing happens in the request:
this is the signature service, which issues the signer's certificate and makes
the PAdES signature; the next stage is then left to orchestration through
``schedule_advance``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from justering import workflow
from justering.errors import (
    JusteringError,
    ManifestError,
    NotFoundError,
)
from justering.model.manifest import MAX_MANIFEST_BYTES, parse_manifest_json
from justering.web.archivist import archivist_router
from justering.web.noticeboard import noticeboard_router
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
    archivists' accounts are configured."""
    app = FastAPI(title="justering", docs_url=None, redoc_url=None)

    app.include_router(
        signer_router(services, lambda meeting_id: _hand_over(hooks.schedule_advance, meeting_id))
    )
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
            # The flow run is the meeting's record in Prefect; its process takes seconds
            # to start, so the task worker starts drafting at once (a lease in the ledger
            # keeps the two from drafting the same meeting twice).
            await run_in_threadpool(_hand_over, hooks.meeting_recorded, meeting.meeting_id)
            await run_in_threadpool(_hand_over, hooks.schedule_advance, meeting.meeting_id)
        return JSONResponse(
            {"meeting_id": meeting.meeting_id, "created": created},
            status_code=202 if created else 200,
        )

    @app.get("/api/meetings/{meeting_id}")
    def get_meeting(meeting_id: str) -> JSONResponse:
        try:
            extracts = workflow.meeting_summaries(services, meeting_id)
            protocols = workflow.protocol_summaries(services, meeting_id)
        except NotFoundError as error:
            return _api_error(error, 404)
        return JSONResponse(
            {
                "meeting_id": meeting_id,
                "extracts": [e.to_json() for e in extracts],
                "protocols": [p.to_json() for p in protocols],
            }
        )

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


def _api_error(error: JusteringError, status_code: int) -> JSONResponse:
    detail: dict[str, Any] = {"error": error.diagnostics()}
    if isinstance(error, ManifestError):
        detail["field"] = error.field
    return JSONResponse(detail, status_code=status_code)
