"""The meeting systems' API: ``POST /api/meetings`` starts a justering,
``GET /api/meetings/{meeting_id}`` says where it stands, ``GET
/api/webhooks/deliveries`` lists the client's own webhook deliveries and ``POST
/api/webhooks/deliveries/{id}/redeliver`` asks for a failed one again (docs/api.md).

Only registered clients (``justering clients add``) may call it, with their bearer
token: none or an unknown one is 401, a body or municipality the client may not
post for is 403, a body that is not JSON is 415 (so no web page can post a
manifest through a visitor's browser: a cross-site "simple" request cannot carry
the header nor the content type). A client's meeting ids are its own: the same id
from two clients is two meetings, and a client reads only its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from justering import workflow
from justering.errors import InputError, ManifestError, NotFoundError
from justering.ledger.clients import Client, client_for_token, scoped_meeting_id
from justering.ledger.webhooks import Delivery, client_delivery, redeliver
from justering.model.extract import ExtractSummary
from justering.model.manifest import DOCUMENT, MAX_MANIFEST_BYTES, parse_manifest_json
from justering.workflow.services import Services
from justering.workflow.webhooks import MAX_PAGE, delivery_page

__all__ = ["meetings_router"]

_JSON = "application/json"
_DELIVERY_ID = re.compile(r"msg_[0-9a-f]{32}")
"""What a delivery id looks like (``justering.ledger.webhooks.queue_webhook``)."""
_PAGE_DEFAULT = 50
_LIST_PARAMETERS = frozenset({"status", "limit", "after"})


def meetings_router(services: Services, started: Callable[[str], None]) -> APIRouter:
    """The routes under ``/api``. ``started`` hands a newly recorded meeting (its
    ledger key) to orchestration; it must not raise."""
    router = APIRouter()

    async def authenticated(request: Request) -> Client | JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "an Authorization: Bearer token is required (docs/api.md)")
        client = await run_in_threadpool(client_for_token, services.ledger, token.strip())
        if client is None:
            return _error(401, "the bearer token is not the token of an active client")
        return client

    @router.post("/meetings")
    async def post_meeting(request: Request) -> JSONResponse:
        client = await authenticated(request)
        if isinstance(client, JSONResponse):
            return client
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != _JSON:
            return _error(415, f"the body must be {_JSON}, not {media_type or 'untyped'}")
        body = await _bounded_body(request, MAX_MANIFEST_BYTES)
        if body is None:
            return _error(413, f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes", DOCUMENT)
        try:
            meeting = parse_manifest_json(body, base_dir=None)
        except ManifestError as error:
            return _error(422, error.diagnostics(), error.field)
        refusal = client.refusal(meeting.body.code, meeting.municipality)
        if refusal is not None:
            return _error(403, refusal)
        try:
            created = await run_in_threadpool(
                workflow.record_meeting, services, meeting, client=client.name
            )
        except ManifestError as error:
            status = 409 if error.field == "meeting_id" else 422
            return _error(status, error.diagnostics(), error.field)
        if created:
            key = scoped_meeting_id(client.name, meeting.meeting_id)
            await run_in_threadpool(started, key)
        return JSONResponse(
            {"meeting_id": meeting.meeting_id, "created": created},
            status_code=202 if created else 200,
        )

    @router.get("/meetings/{meeting_id}")
    async def get_meeting(meeting_id: str, request: Request) -> JSONResponse:
        client = await authenticated(request)
        if isinstance(client, JSONResponse):
            return client
        key = scoped_meeting_id(client.name, meeting_id)
        try:
            extracts = await run_in_threadpool(workflow.meeting_summaries, services, key)
            protocols = await run_in_threadpool(workflow.protocol_summaries, services, key)
        except NotFoundError:
            return _error(404, f"client {client.name!r} has no meeting {meeting_id!r}")
        return JSONResponse(
            {
                "meeting_id": meeting_id,
                "extracts": [_extract_json(e) for e in extracts],
                "protocols": [_extract_json(p) for p in protocols],
            }
        )

    @router.get("/webhooks/deliveries")
    async def list_deliveries(request: Request) -> JSONResponse:
        client = await authenticated(request)
        if isinstance(client, JSONResponse):
            return client
        query = request.query_params
        unknown = sorted(set(query.keys()) - _LIST_PARAMETERS)
        if unknown:
            return _error(400, f"unknown query parameter {unknown[0]!r}", unknown[0])
        repeated = sorted(name for name in _LIST_PARAMETERS if len(query.getlist(name)) > 1)
        if repeated:
            return _error(400, f"{repeated[0]} is given more than once", repeated[0])
        limit_text = query.get("limit", str(_PAGE_DEFAULT))
        if not re.fullmatch(r"[0-9]{1,6}", limit_text):
            return _error(400, f"limit must be a number from 1 to {MAX_PAGE}", "limit")
        try:
            page = await run_in_threadpool(
                lambda: delivery_page(
                    services.ledger,
                    client.name,
                    state=query.get("status"),
                    limit=int(limit_text),
                    after=query.get("after"),
                )
            )
        except InputError as error:  # names the parameter
            return _error(400, str(error), error.where)
        return JSONResponse(
            {"deliveries": [d.to_json() for d in page.deliveries], "next": page.after}
        )

    async def own_delivery(
        request: Request, delivery_id: str, find: Callable[[Client, str], Any]
    ) -> JSONResponse:
        client = await authenticated(request)
        if isinstance(client, JSONResponse):
            return client
        # Another client's delivery is answered exactly as one that does not exist.
        unknown = _error(404, f"no webhook delivery {delivery_id[:80]!r}")
        if not _DELIVERY_ID.fullmatch(delivery_id):
            return unknown
        try:
            found: Delivery = await run_in_threadpool(find, client, delivery_id)
        except NotFoundError:
            return unknown
        status = 202 if request.method == "POST" and found.state == "pending" else 200
        return JSONResponse(found.to_json(), status_code=status)

    @router.get("/webhooks/deliveries/{delivery_id}")
    async def get_delivery(delivery_id: str, request: Request) -> JSONResponse:
        def find(client: Client, key: str) -> Delivery:
            return client_delivery(services.ledger, client.name, key)

        return await own_delivery(request, delivery_id, find)

    @router.post("/webhooks/deliveries/{delivery_id}/redeliver")
    async def redeliver_delivery(delivery_id: str, request: Request) -> JSONResponse:
        def again(client: Client, key: str) -> Delivery:
            redeliver(services.ledger, key, client=client.name)
            return client_delivery(services.ledger, client.name, key)

        return await own_delivery(request, delivery_id, again)

    return router


def _extract_json(extract: ExtractSummary) -> dict[str, Any]:
    """An extract (or a protocol) as a meeting system sees it: where it stands, not
    where the server keeps it (no archive paths)."""
    shown = extract.to_json()
    del shown["archive_uri"]
    shown["archived"] = extract.archive_uri is not None
    return shown


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


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    detail: dict[str, Any] = {"error": message}
    if field is not None:
        detail["field"] = field
    headers = {"WWW-Authenticate": 'Bearer realm="justering"'} if status == 401 else None
    return JSONResponse(detail, status_code=status, headers=headers)
