"""The signers' and the secretary's pages, behind the links in their e-mails.

``/s/{token}``: a signer reads every extract waiting for them (page images
rendered on the server, the PDF to download), signs all or a chosen subset in
one action, or declines one with a comment. ``/r/{token}``: the secretary sends
the corrected text of a declined extract. Every POST carries a CSRF token bound
to the link (HMAC with the home's key) and must come from this site.

Pages are Swedish, work without JavaScript, at phone width, and fetch nothing
from a third party (``web_pages``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import logging
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from justering import workflow
from justering.documents.page_images import DEFAULT_WIDTH_PX, PageImageCache, PageImageError
from justering.errors import (
    JusteringError,
    LinkError,
    ManifestError,
    NotFoundError,
    ProtocolTextError,
    Refusal,
    SigningError,
    WorkflowError,
)
from justering.model.calendar import SWEDISH_TIME, local_minute
from justering.model.extract import ExtractSummary
from justering.model.roles import Person, Role
from justering.web.auth import session_key
from justering.web.pages import PRIVATE_HEADERS, page, same_origin
from justering.web.refusals import Answer, answer_for
from justering.workflow import redraft
from justering.workflow.services import Services
from justering.workflow.signer_links import GrantedExtract, GrantState, LinkView

__all__ = [
    "EXTRA_STYLE",
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

_STATE_TEXT = {
    GrantState.SIGNED: "Signerat av dig.",
    GrantState.DECLINED: "Avböjt – utdraget har gått tillbaka till sekreteraren.",
    GrantState.REPLACED: "Har ändrats sedan länken skickades; du får en ny länk.",
    GrantState.HELD: "Väntar: en paragraf har avböjts och rättas. Du får en ny länk till den "
    "rättade versionen.",
    GrantState.NOT_YOUR_TURN: "Inte din tur ännu: du får ett meddelande när det är dags.",
}

EXTRA_STYLE = """
.card>h2{font-size:1.15rem;margin:0 0 .5rem}
.extract h2{margin:0 0 .25rem}
.flag{display:inline-block;background:#8a1c00;color:#fff;font-size:.85rem;font-weight:600;
padding:.1rem .5rem;border-radius:.25rem;margin:.25rem 0}
.pages img{display:block;width:100%;height:auto;border:1px solid #c8c8c4;margin:.5rem 0;
background:#fff}
details>summary{cursor:pointer;padding:.5rem 0;font-weight:600;color:#00437f}
.choose{display:flex;align-items:center;gap:.6rem;padding:.6rem .2rem;font-size:1.05rem}
.choose input{width:1.6rem;height:1.6rem;flex:none}
.state{font-weight:600}
label.block{display:block;font-weight:600;margin:.5rem 0 .25rem}
textarea{width:100%;box-sizing:border-box;min-height:7rem;font:inherit;padding:.5rem;
border:2px solid #6b6b68;border-radius:.3rem}
textarea.text{min-height:20rem;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.95rem}
input[type=text]{width:100%;box-sizing:border-box;font:inherit;padding:.5rem;
border:2px solid #6b6b68;border-radius:.3rem}
button.secondary{background:#fff;color:#8a1c00;border:2px solid #8a1c00}
blockquote{margin:.5rem 0;padding:.5rem 1rem;border-left:4px solid #6b6b68;background:#f0f0ee;
white-space:pre-wrap}
a{color:#00437f}
time,.nowrap{white-space:nowrap}
"""


def form_token(key: bytes, token: str) -> str:
    """The CSRF token of the forms behind one link: bound to the link, unguessable
    without the home's key."""
    return hmac.new(key, f"link-form|{token}".encode(), hashlib.sha256).hexdigest()


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

    def csrf(token: str) -> str:
        return form_token(key, token)

    def refused(error: JusteringError, token: str) -> HTMLResponse:
        """The error page, naming whom to contact when the token is a link at all."""
        return _error_page(answer_for(error), contact=workflow.link_contact(services, token))

    async def run(token: str, call: Callable[[], _T]) -> _T | HTMLResponse:
        """Run a workflow step in the thread pool; its refusals become error pages."""
        try:
            return await run_in_threadpool(call)
        except (LinkError, WorkflowError, NotFoundError) as error:
            return await run_in_threadpool(refused, error, token)
        except SigningError as error:  # e.g. the TSA did not answer: nothing was recorded
            log.warning("signing failed: %s", error.diagnostics())
            return _error_page(answer_for(error))

    async def checked_form(request: Request, token: str) -> FormData | HTMLResponse:
        """The POSTed form if it comes from this site with this link's CSRF token."""
        form = await request.form()
        sent = str(form.get("csrf", ""))
        if not same_origin(request) or not hmac.compare_digest(sent, csrf(token)):
            return _error_page(Answer(403, _FOREIGN_FORM))
        return form

    @router.get("/s/{token}", response_class=HTMLResponse)
    def signer_page(token: str) -> HTMLResponse:
        try:
            view = workflow.view_link(services, token)
            counts = {
                e.extract.extract_id: _page_count(services, cache, token, e.extract)
                for e in view.extracts
                if e.state.readable
            }
        except (LinkError, WorkflowError, NotFoundError) as error:
            return refused(error, token)
        return page(
            f"Signera {view.signer.role.capacity}",
            _signer_body(services, view, token, csrf(token), counts),
            extra_style=EXTRA_STYLE,
        )

    @router.get("/s/{token}/utdrag/{extract_id}.pdf")
    def signer_document(token: str, extract_id: int) -> Response:
        try:
            pdf = workflow.link_document(services, token, extract_id)
        except (LinkError, WorkflowError, NotFoundError) as error:
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
    def page_image(token: str, extract_id: int, number: int, w: int = DEFAULT_WIDTH_PX) -> Response:
        if w not in IMAGE_WIDTHS:
            return Response(f"width must be one of {IMAGE_WIDTHS}", status_code=400)
        try:
            pdf = workflow.link_document(services, token, extract_id)
            png = cache.get(hashlib.sha256(pdf).hexdigest(), lambda: pdf, number, w)
        except PageImageError as error:
            return Response(error.diagnostics(), status_code=error.status_code)
        except (LinkError, WorkflowError, NotFoundError) as error:
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
        receipt = await run(token, lambda: workflow.sign_with_link(services, token, chosen))
        if isinstance(receipt, HTMLResponse):
            return receipt
        await run_in_threadpool(schedule_advance, receipt.meeting_id)
        return page("Signerat", _receipt_body(receipt, token), extra_style=EXTRA_STYLE)

    @router.post("/s/{token}/avbojning", response_class=HTMLResponse)
    async def decline(token: str, request: Request) -> HTMLResponse:
        form = await checked_form(request, token)
        if isinstance(form, HTMLResponse):
            return form
        extract_text = str(form.get("extract", ""))
        paragraph_text = str(form.get("paragraph", ""))
        if not extract_text.isdigit() or not (paragraph_text.isdigit() or not paragraph_text):
            return _error_page(Answer(400, "Utdraget saknas."))
        comment = str(form.get("comment", ""))
        paragraph = int(paragraph_text) if paragraph_text else None
        receipt = await run(
            token,
            lambda: workflow.decline_with_link(
                services, token, int(extract_text), comment, paragraph=paragraph
            ),
        )
        if isinstance(receipt, HTMLResponse):
            return receipt
        # The chair and the adjusters hear that the protocol waits (the next advance).
        await run_in_threadpool(schedule_advance, receipt.meeting_id)
        return page("Avböjt", _declined_body(receipt, token), extra_style=EXTRA_STYLE)

    @router.get("/r/{token}", response_class=HTMLResponse)
    def redraft_page(token: str) -> HTMLResponse:
        try:
            view = redraft.view_redraft(services, token)
        except (LinkError, WorkflowError, NotFoundError) as error:
            return refused(error, token)
        return page(
            f"Rätta § {view.paragraph}",
            _redraft_body(view, token, csrf(token)),
            extra_style=EXTRA_STYLE,
        )

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
        except (ManifestError, ProtocolTextError) as error:
            view = await run_in_threadpool(redraft.view_redraft, services, token)
            body = _redraft_body(view, token, csrf(token), error=error, text=text, title=title)
            return page(f"Rätta § {view.paragraph}", body, 422, extra_style=EXTRA_STYLE)
        except (LinkError, WorkflowError, NotFoundError) as error:
            return refused(error, token)
        await run_in_threadpool(schedule_advance, result.meeting_id)
        body = (
            f'<div class="card ok"><h1>Ny version skickad</h1>'
            f"<p>§ {result.paragraph} är nu version {result.version}. Signeringen börjar om "
            "från ordföranden, som får en ny länk.</p>"
            f'<p class="muted">Dokumentets SHA-256: <code>{result.document_sha256}</code></p>'
            "</div>"
        )
        return page("Ny version skickad", body, extra_style=EXTRA_STYLE)

    return router


_FOREIGN_FORM = "Formuläret kom inte från den här sidan. Öppna länken i e-postmeddelandet igen."


def _page_count(services: Services, cache: PageImageCache, token: str, e: ExtractSummary) -> int:
    return cache.page_count(
        e.document_sha256, lambda: workflow.link_document(services, token, e.extract_id)
    )


def _e(value: object) -> str:
    return html.escape(str(value))


def _time(moment: dt.date | dt.datetime) -> str:
    """A date, or a Swedish local time to the minute, that never wraps inside."""
    if isinstance(moment, dt.datetime):
        local = moment.astimezone(SWEDISH_TIME)
        return (
            f'<time datetime="{local.isoformat(timespec="minutes")}">{local_minute(local)}</time>'
        )
    return f'<time datetime="{moment.isoformat()}">{moment.isoformat()}</time>'


def _error_page(
    answer: Answer,
    *,
    back: str | None = None,
    contact: Person | None = None,
) -> HTMLResponse:
    again = f'<p><a href="{_e(back)}">Tillbaka till utdragen</a></p>' if back else ""
    who = "nämndens sekreterare"
    if contact is not None:
        who = (
            f"nämndens sekreterare {_e(contact.name)}, "
            f'<a href="mailto:{_e(contact.email)}">{_e(contact.email)}</a>,'
        )
    body = (
        '<div class="card error" role="alert"><h1>Det gick inte</h1>'
        f"<p>{_e(answer.swedish)}</p>{again}"
        f"<p>Frågor? Kontakta {who} som kan skicka en ny länk.</p></div>"
    )
    return page("Det gick inte", body, answer.status, extra_style=EXTRA_STYLE)


def _label(e: ExtractSummary) -> str:
    dnr = f" · {_e(e.dnr)}" if e.dnr else ""
    return f"{_e(e.label)}{dnr}"


def _images(token: str, e: ExtractSummary, pages: int) -> str:
    base = f"/s/{_e(token)}/utdrag/{e.extract_id}/sida"
    figures = []
    for number in range(1, pages + 1):
        srcset = ", ".join(f"{base}/{number}.png?w={w} {w}w" for w in IMAGE_WIDTHS)
        figures.append(
            f'<img src="{base}/{number}.png?w={DEFAULT_WIDTH_PX}" srcset="{srcset}" '
            'sizes="(max-width: 44rem) 100vw, 42rem" width="1000" height="1414" '
            f'loading="lazy" alt="{_e(e.label)}, sida {number} av {pages}">'
        )
    return "".join(figures)


def _extract_card(
    token: str, csrf: str, granted: GrantedExtract, pages: int | None, *, open_pages: bool
) -> str:
    e = granted.extract
    name = _e(e.label)
    flag = '<p class="flag">Omedelbar justering</p>' if e.immediate else ""
    title = _e(e.title)
    if e.is_protocol:
        title = "Paragrafer: " + ", ".join(f"§ {p.number}" for p in granted.paragraphs)
    heading = f'<h2 id="x{e.extract_id}">{_label(e)}</h2>{flag}<p>{title}</p>'
    pdf = f"/s/{_e(token)}/utdrag/{e.extract_id}.pdf"
    reading = ""
    if pages is not None:
        noun = "sida" if pages == 1 else "sidor"
        reading = (
            f'<details class="pages"{" open" if open_pages else ""}>'
            f"<summary>Läs {name} ({pages} {noun})</summary>{_images(token, e, pages)}"
            "</details>"
            f'<p><a href="{pdf}" download>Ladda ned PDF ({name})</a></p>'
        )
    if granted.state is not GrantState.PENDING:
        return (
            f'<section class="card extract" aria-labelledby="x{e.extract_id}">{heading}'
            f'<p class="state">{_STATE_TEXT[granted.state]}</p>{reading}</section>'
        )
    choose = (
        f'<div class="choose"><input type="checkbox" form="sign" name="extract" '
        f'value="{e.extract_id}" id="c{e.extract_id}" checked>'
        f'<label for="c{e.extract_id}">Signera {name}</label></div>'
    )
    return (
        f'<section class="card extract" aria-labelledby="x{e.extract_id}">'
        f"{heading}{reading}{choose}{_decline_form(token, csrf, granted)}</section>"
    )


def _decline_form(token: str, csrf: str, granted: GrantedExtract) -> str:
    """Decline an extract, or (on the protocol) one of its paragraphs."""
    e = granted.extract
    which, what = f"§ {e.paragraph}", f"i § {e.paragraph}"
    choose = ""
    if e.is_protocol:
        which, what = "en paragraf", "i paragrafen"
        options = "".join(
            f'<option value="{p.number}">§ {p.number} {_e(p.title)}</option>'
            for p in granted.paragraphs
        )
        choose = (
            f'<label class="block" for="p{e.extract_id}">Paragraf</label>'
            f'<select id="p{e.extract_id}" name="paragraph" required>{options}</select>'
        )
    return (
        f'<details class="decline"><summary>Avböj {which} …</summary>'
        f'<form method="post" action="/s/{_e(token)}/avbojning">'
        f'<input type="hidden" name="csrf" value="{csrf}">'
        f'<input type="hidden" name="extract" value="{e.extract_id}">{choose}'
        f'<label class="block" for="d{e.extract_id}">Vad behöver ändras {what}? '
        "(krävs)</label>"
        f'<textarea id="d{e.extract_id}" name="comment" required maxlength="2000" '
        f'aria-describedby="h{e.extract_id}"></textarea>'
        f'<p class="muted" id="h{e.extract_id}">Paragrafen går tillbaka till sekreteraren '
        "med din kommentar, och protokollet väntar tills den rättade versionen är signerad. "
        "Utdragen ur de andra paragraferna påverkas inte.</p>"
        f'<button type="submit" class="secondary">Avböj {which}</button></form>'
        "</details>"
    )


def _signer_body(
    services: Services, view: LinkView, token: str, csrf: str, counts: dict[int, int]
) -> str:
    meeting, signer = view.meeting, view.signer
    pending = view.pending
    deadline = workflow.deadline_of(meeting, services.settings)
    secretary = workflow.secretary_of(meeting, services.settings)
    cards = "".join(
        _extract_card(
            token, csrf, e, counts.get(e.extract.extract_id), open_pages=len(view.extracts) == 1
        )
        for e in view.extracts
    )
    if pending:
        intro = (
            f"<p>Hej {_e(signer.name)}! {len(pending)} protokollsutdrag väntar på din "
            "signatur. Läs dem, "
            "markera de du vill signera och tryck på knappen längst ned. Är något fel, "
            "avböj det utdraget med en kommentar.</p>"
        )
        action = f"""
<div class="card"><h2>Signera</h2>
<p>När du signerar skapas en elektronisk underskrift (PAdES) i varje markerat utdrag, med ett
certifikat utfärdat i ditt namn och din roll. Underskriften visar att du
{MEANING[signer.role]}. Den kan inte ångras.</p>
<form method="post" action="/s/{_e(token)}" id="sign">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">Signera markerade utdrag</button></form></div>"""
    else:
        intro = f"<p>Hej {_e(signer.name)}! Inget väntar på din signatur just nu.</p>"
        action = ""
    return f"""
<h1>Signera som {_e(signer.role.swedish.lower())}</h1>
<p class="muted">{_e(meeting.body.name)}, {_e(meeting.municipality)},
sammanträde {_time(meeting.date)}, {_e(meeting.place)}</p>
<div class="card">{intro}<p><strong>Sista dag för justering: {_time(deadline)}</strong></p>
</div>
{cards}
{action}
<p class="muted">Länken är personlig och <span class="nowrap">gäller till
{local_minute(view.expires_at)}</span>. Är du inte {_e(signer.name)}, eller har du
frågor? Kontakta sekreteraren
{_e(secretary.name)}, <a href="mailto:{_e(secretary.email)}">{_e(secretary.email)}</a>.</p>"""


def _receipt_body(receipt: workflow.SigningReceipt, token: str) -> str:
    items = "".join(
        f"<li><strong>§ {i.paragraph}</strong>{' · ' + _e(i.dnr) if i.dnr else ''}<br>"
        f"{_e(i.title)}<br>"
        f'<span class="muted">Dokumentets SHA-256: <code>{i.document_sha256}</code></span></li>'
        for i in (item.extract for item in receipt.items)
    )
    more = ""
    if receipt.remaining:
        more = (
            f'<p><a href="/s/{_e(token)}">{receipt.remaining} utdrag väntar fortfarande på '
            "dig – tillbaka till dem</a></p>"
        )
    return f"""
<div class="card ok" role="status"><h1>Klart – du har signerat</h1>
<p>{_e(receipt.signer.name)}, {_e(receipt.signer.role.swedish.lower())},
{_time(receipt.signed_at)}. Kvitto:</p>
<ul class="extracts">{items}</ul>
<p>Ett kvitto har också skickats till {_e(receipt.signer.email)}.</p>{more}</div>
<p class="muted">Nästa undertecknare meddelas automatiskt. Du kan stänga sidan.</p>"""


def _declined_body(receipt: workflow.DeclineReceipt, token: str) -> str:
    back = ""
    if receipt.remaining:
        back = (
            f'<p><a href="/s/{_e(token)}">Tillbaka till de {receipt.remaining} utdrag som '
            "väntar på dig</a></p>"
        )
    return f"""
<div class="card ok" role="status"><h1>Du har avböjt § {receipt.paragraph}</h1>
<p>{_e(receipt.title)}</p>
<p>Din kommentar har skickats till sekreteraren {_e(receipt.secretary.name)}:</p>
<blockquote>{_e(receipt.comment)}</blockquote>
<p>När texten är rättad får du en ny länk till den nya versionen.</p>{back}</div>"""


def _redraft_body(
    view: redraft.RedraftView,
    token: str,
    csrf: str,
    *,
    error: JusteringError | None = None,
    text: str | None = None,
    title: str | None = None,
) -> str:
    declines = "".join(
        f"<p><strong>{_e(who)}</strong>, {_time(when)}:</p><blockquote>{_e(comment)}</blockquote>"
        for who, comment, when in view.declines
    )
    problem = (
        f'<div class="card error" role="alert"><p>{_e(error.diagnostics())}</p></div>'
        if error
        else ""
    )
    dnr = f" · {_e(view.dnr)}" if view.dnr else ""
    return f"""
<h1>Rätta § {view.paragraph}{dnr}</h1>
<p class="muted">{_e(view.meeting.body.name)}, sammanträde {_time(view.meeting.date)}.
Version {view.version}, nu: {_e(view.status.swedish)}.</p>
<div class="card"><h2>Kommentarer</h2>{declines or "<p>Inga.</p>"}</div>
{problem}
<form method="post" action="/r/{_e(token)}" class="card">
<input type="hidden" name="csrf" value="{csrf}">
<label class="block" for="title">Rubrik</label>
<input type="text" id="title" name="title" value="{_e(view.title if title is None else title)}"
 maxlength="200" required>
<label class="block" for="text">Paragrafens text</label>
<p class="muted" id="text-help">Samma form som i mötessystemets export: rubriker på egen rad
(t.ex. "Beslut"), stycken åtskilda av tomma rader.</p>
<textarea class="text" id="text" name="text" required aria-describedby="text-help">{
        _e(view.text if text is None else text)
    }</textarea>
<p>När du skickar skapas version {view.version + 1}. Alla underskrifter görs om, med
början hos ordföranden.</p>
<button type="submit">Skicka rättad version</button></form>
<p class="muted">Länken <span class="nowrap">gäller till {local_minute(view.expires_at)}</span>
och kan användas en gång.</p>"""
