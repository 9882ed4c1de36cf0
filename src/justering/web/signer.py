"""The signers' and the secretary's pages, behind the links in their e-mails.

``/s/{token}``: a signer reads everything waiting for them (the protocol and the
extracts, as text on the page, with the page images and the PDF, the signed
original, beside it), signs it in one action (the protocol and the extracts of its
paragraphs together; extracts alone, a chosen subset, when no protocol waits), or
declines a paragraph with a comment. ``/r/{token}``: the secretary sends
the corrected text of a declined extract. Every POST carries a CSRF token bound
to the link (HMAC with the home's key) and must come from this site.

Pages are Swedish, work without JavaScript, at phone width, and fetch nothing
from a third party (their templates are in ``web/templates/signer/``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TypeVar

import itsdangerous
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from justering import workflow
from justering.documents.page_images import DEFAULT_WIDTH_PX, PageImageCache, PageImageError
from justering.documents.rendering import IMMEDIATE_NOTE
from justering.errors import (
    IdentityError,
    InputError,
    JusteringError,
    Refusal,
    SigningError,
    WorkflowError,
)
from justering.mail.compose import ExtractLine, count_of
from justering.model.extract import ExtractSummary
from justering.model.roles import Person, Role
from justering.web.auth import session_key
from justering.web.login import LoginGate, login_page, login_routes
from justering.web.pages import PRIVATE_HEADERS, page, same_origin
from justering.web.refusals import REFUSED, Answer, answer_for
from justering.workflow import redraft
from justering.workflow.mailing import send_queued_mail
from justering.workflow.services import Services

__all__ = [
    "IMAGE_WIDTHS",
    "MEANING",
    "form_token",
    "signer_router",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

IMAGE_WIDTHS = (600, 1000, 1600)
"""Widths the page images are offered in (``srcset``); others are refused."""

MEANING = {
    Role.CHAIR: "som ordförande justerar protokollet för dessa paragrafer",
    Role.ADJUSTER: "som justerare intygar att protokollet återger det som beslutades",
    Role.CERTIFIER: "bestyrker att utdraget överensstämmer med det justerade protokollet",
}


def _form_signer(key: bytes) -> itsdangerous.Signer:
    return itsdangerous.Signer(key, salt="justering.link-form", digest_method=hashlib.sha256)


def form_token(key: bytes, token: str) -> str:
    """The CSRF token of the forms behind one link: bound to the link, unguessable
    without the home's key (an itsdangerous signature of the link, salted for these
    forms; it lives as long as the link)."""
    return _form_signer(key).get_signature(token).decode()


def signer_router(
    services: Services,
    schedule_advance: Callable[[str], None],
    *,
    images: PageImageCache | None = None,
) -> APIRouter:
    """The routes under ``/s`` (signers) and ``/r`` (the secretary).
    ``schedule_advance`` hands a meeting to orchestration after a signature or a
    redraft (it must not raise)."""
    router = APIRouter()
    cache = images or PageImageCache()
    key = session_key(services.settings.home)
    gate = LoginGate(services, key)
    router.include_router(login_routes(services, gate, _error_page))

    def csrf(token: str) -> str:
        return form_token(key, token)

    def csrf_ok(token: str, sent: str) -> bool:
        return _form_signer(key).verify_signature(token, sent)

    def refused(error: JusteringError, token: str) -> HTMLResponse:
        """The error page, naming whom to contact when the token is a link at all."""
        return _error_page(answer_for(error), contact=workflow.link_contact(services, token))

    def login_first(request: Request, token: str) -> HTMLResponse | None:
        """The login page, where the body signs with e-legitimation and this browser
        has no login for this link; None when it may go on."""
        try:
            view = gate.login_view(request, token)
        except REFUSED as error:
            return refused(error, token)
        return None if view is None else login_page(services, view, token, gate.minutes)

    def mail_after(
        response: HTMLResponse, step: workflow.SigningReceipt | workflow.DeclineReceipt
    ) -> HTMLResponse:
        """``response``, after which the step's queued e-mail (the receipt, the notice
        to the secretary) is sent: a slow or failing SMTP server never holds up the
        signer's page (what it does not take is retried, :mod:`justering.workflow.mailing`)."""
        response.background = BackgroundTask(send_queued_mail, services, step.meeting_id)
        return response

    async def run(token: str, call: Callable[[], _T]) -> _T | HTMLResponse:
        """Run a workflow step in the thread pool; its refusals become error pages."""
        try:
            return await run_in_threadpool(call)
        except IdentityError as error:  # no login (any more) for this link
            return _error_page(answer_for(error), back=f"/s/{token}")
        except REFUSED as error:
            return await run_in_threadpool(refused, error, token)
        except SigningError as error:  # e.g. the TSA did not answer: nothing was recorded
            log.warning("signing failed: %s", error.diagnostics())
            return _error_page(answer_for(error))

    async def checked_form(request: Request, token: str) -> FormData | HTMLResponse:
        """The POSTed form if it comes from this site with this link's CSRF token."""
        form = await request.form()
        sent = str(form.get("csrf", ""))
        if not same_origin(request) or not csrf_ok(token, sent):
            return _error_page(Answer(403, _FOREIGN_FORM))
        return form

    @router.get("/s/{token}", response_class=HTMLResponse)
    def signer_page(token: str, request: Request) -> HTMLResponse:
        if (login := login_first(request, token)) is not None:
            return login
        try:
            view = workflow.view_link(services, token, user_agent=request.headers.get("user-agent"))
            counts = {
                e.extract.extract_id: _page_count(services, cache, token, e.extract)
                for e in view.extracts
                if e.state.readable
            }
        except REFUSED as error:
            return refused(error, token)
        justering = view.signer.role in (Role.CHAIR, Role.ADJUSTER)
        return page(
            "signer/sign.html",
            view=view,
            token=token,
            csrf=csrf(token),
            pages=counts,
            deadline=workflow.deadline_of(view.meeting, services.settings) if justering else None,
            immediate_note=IMMEDIATE_NOTE,
            waiting=count_of([ExtractLine.of(e.extract) for e in view.pending]),
            secretary=workflow.secretary_of(view.meeting, services.settings),
            meaning=MEANING[view.signer.role],
            widths=IMAGE_WIDTHS,
            default_width=DEFAULT_WIDTH_PX,
        )

    @router.get("/s/{token}/utdrag/{extract_id}.pdf")
    def signer_document(token: str, extract_id: int, request: Request) -> Response:
        if (login := login_first(request, token)) is not None:
            return login
        try:
            pdf = workflow.link_document(services, token, extract_id)
        except REFUSED as error:
            return refused(error, token)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                **PRIVATE_HEADERS,
                "Content-Disposition": f'inline; filename="utdrag-{extract_id}.pdf"',
            },
        )

    @router.get("/s/{token}/utdrag/{extract_id}/sida/{number}.png")
    def page_image(
        token: str, extract_id: int, number: int, request: Request, w: int = DEFAULT_WIDTH_PX
    ) -> Response:
        if w not in IMAGE_WIDTHS:
            return Response(f"width must be one of {IMAGE_WIDTHS}", status_code=400)
        if (login := login_first(request, token)) is not None:
            status = 401 if login.status_code == 200 else login.status_code
            return Response("log in first", status_code=status, headers=PRIVATE_HEADERS)
        try:
            pdf = workflow.link_document(services, token, extract_id)
            png = cache.get(hashlib.sha256(pdf).hexdigest(), lambda: pdf, number, w)
        except PageImageError as error:
            return Response(error.diagnostics(), status_code=error.status_code)
        except REFUSED as error:
            return Response(error.diagnostics(), status_code=answer_for(error).status)
        return Response(
            png,
            media_type="image/png",
            headers={**PRIVATE_HEADERS, "Cache-Control": "private, max-age=600"},
        )

    @router.post("/s/{token}", response_class=HTMLResponse)
    async def sign(token: str, request: Request) -> HTMLResponse:
        form = await checked_form(request, token)
        if isinstance(form, HTMLResponse):
            return form
        try:
            chosen = [int(str(value)) for value in form.getlist("extract")]
        except ValueError:
            chosen = []
        if not chosen:
            return _error_page(
                answer_for(WorkflowError(Refusal.NOTHING_CHOSEN)), back=f"/s/{token}"
            )
        login = gate.session_of(request)
        receipt = await run(
            token,
            lambda: workflow.sign_with_link(services, token, chosen, login=login, send_mail=False),
        )
        if isinstance(receipt, HTMLResponse):
            return receipt
        await run_in_threadpool(schedule_advance, receipt.meeting_id)
        return mail_after(page("signer/receipt.html", receipt=receipt, token=token), receipt)

    @router.post("/s/{token}/avbojning", response_class=HTMLResponse)
    async def decline(token: str, request: Request) -> HTMLResponse:
        form = await checked_form(request, token)
        if isinstance(form, HTMLResponse):
            return form
        extract_text = str(form.get("extract", ""))
        paragraph_text = str(form.get("paragraph", ""))
        if not extract_text.isdigit() or not (paragraph_text.isdigit() or not paragraph_text):
            return _error_page(Answer(400, "Utdraget saknas."))
        comment, login = str(form.get("comment", "")), gate.session_of(request)
        paragraph = int(paragraph_text) if paragraph_text else None
        receipt = await run(
            token,
            lambda: workflow.decline_with_link(
                services,
                token,
                int(extract_text),
                comment,
                paragraph=paragraph,
                login=login,
                send_mail=False,
            ),
        )
        if isinstance(receipt, HTMLResponse):
            return receipt
        # The chair and the adjusters hear that the protocol waits (the next advance).
        await run_in_threadpool(schedule_advance, receipt.meeting_id)
        return mail_after(page("signer/declined.html", receipt=receipt, token=token), receipt)

    @router.get("/r/{token}", response_class=HTMLResponse)
    def redraft_page(token: str) -> HTMLResponse:
        try:
            view = redraft.view_redraft(services, token)
        except REFUSED as error:
            return refused(error, token)
        return _redraft_page(view, token, csrf(token))

    @router.post("/r/{token}", response_class=HTMLResponse)
    async def submit_redraft(token: str, request: Request) -> HTMLResponse:
        form = await checked_form(request, token)
        if isinstance(form, HTMLResponse):
            return form
        text, title = str(form.get("text", "")), str(form.get("title", ""))
        try:
            result = await run_in_threadpool(
                redraft.redraft_with_link, services, token, text, title or None
            )
        except InputError as error:
            view = await run_in_threadpool(redraft.view_redraft, services, token)
            return _redraft_page(view, token, csrf(token), error=error, text=text, title=title)
        except REFUSED as error:
            return refused(error, token)
        await run_in_threadpool(schedule_advance, result.meeting_id)
        return page("signer/redrafted.html", result=result)

    return router


_FOREIGN_FORM = "Formuläret kom inte från den här sidan. Öppna länken i e-postmeddelandet igen."


def _page_count(services: Services, cache: PageImageCache, token: str, e: ExtractSummary) -> int:
    return cache.page_count(
        e.document_sha256, lambda: workflow.link_document(services, token, e.extract_id)
    )


def _error_page(
    answer: Answer,
    *,
    back: str | None = None,
    contact: Person | None = None,
) -> HTMLResponse:
    return page("signer/error.html", answer.status, answer=answer, back=back, contact=contact)


def _redraft_page(
    view: redraft.RedraftView,
    token: str,
    csrf: str,
    *,
    error: JusteringError | None = None,
    text: str | None = None,
    title: str | None = None,
) -> HTMLResponse:
    """The redraft form: the extract's text, or what was sent and why it was refused."""
    return page(
        "signer/redraft.html",
        200 if error is None else 422,
        view=view,
        token=token,
        csrf=csrf,
        problem=error.diagnostics() if error else None,
        title=view.title if title is None else title,
        text=view.text if text is None else text,
    )
