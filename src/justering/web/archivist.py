"""The archivists' pages (mounted at ``/arkiv``): search the ledger, read an
extract's timeline, verify its archived copy. Read-only, behind a login
(:mod:`justering.web.auth`); Swedish, plain HTML in the web app's style.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from justering.archive.verify import Verification, verify_targets
from justering.errors import JusteringError, NotFoundError
from justering.model.process import ExtractStatus
from justering.model.roles import role_name
from justering.web.auth import SESSION_COOKIE, Sessions, open_sessions
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

_STYLE = """
main{max-width:72rem}
table{border-collapse:collapse;width:100%;background:#fff}
caption{text-align:left;font-weight:600;padding:.4rem 0}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e4e4e0;vertical-align:top;
overflow-wrap:break-word}
form.search{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:.75rem;
align-items:end}
label{display:block;font-weight:600;font-size:.95rem;margin-bottom:.2rem}
input,select{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;min-height:44px;
border:1px solid #767672;border-radius:.3rem;background:#fff;color:#1b1b1b}
input:focus,select:focus,button:focus-visible{outline:3px solid #a35200;outline-offset:2px}
header.top{display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap;
gap:.5rem;border-bottom:1px solid #d0d0cc;padding-bottom:.5rem}
header.top form{margin:0}
button.quiet{background:#fff;color:#00529b;border:1px solid #00529b;padding:.4rem .9rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
.good{color:#1b7f3b;font-weight:700}
.bad{color:#b00020;font-weight:700}
@media (max-width:40rem){
table.stack thead{position:absolute;left:-9999px}
table.stack tr{display:block;border-bottom:2px solid #d0d0cc;padding:.4rem 0}
table.stack td{display:block;border:0;padding:.1rem .25rem;overflow-wrap:anywhere}
table.stack td[data-label]::before{content:attr(data-label) ": ";font-weight:600}
dl.facts{grid-template-columns:1fr}
}
"""

CHECK_SWEDISH: Mapping[str, str] = {
    "checksums": "Kontrollsummor",
    "bundle": "Arkivpaketet",
    "signatures": "Underskrifter",
    "trail chain": "Händelsekedjan",
    "trail matches PDF": "Händelsekedjan stämmer med PDF-filen",
    "trail matches signatures": "Händelsekedjan stämmer med underskrifterna",
    "trail seal": "Kommunens sigill på händelsekedjan",
}
"""Swedish names of the checks of :mod:`justering.archive.verify` (others show as named)."""

_FILTERS = ("organ", "fran", "till", "dnr", "undertecknare", "status")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _path(request: Request, name: str, **params: Any) -> str:
    return request.url_for(name, **params).path


def archivist_router(services: Services, *, environ: Mapping[str, str] | None = None) -> APIRouter:
    """The archive pages; mount with ``app.include_router(router, prefix="/arkiv")``.

    Accounts are read once, here (``environ`` defaults to the process's)."""
    sessions = open_sessions(services.settings, environ)
    proxy_header = services.settings.archivist_header
    router = APIRouter()

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

    def page(request: Request, user: str, title: str, body: str, status: int = 200) -> Response:
        return _archive_page(title, _top(request, user, sessions, proxy_header) + body, status)

    @router.get("/logga-in", name="archivist_login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "") -> Response:
        if archivist(request):
            return RedirectResponse(_safe_next(request, next), status_code=303)
        if proxy_header:
            return _proxy_only(request)
        return _login_page(request, next, None)

    @router.post("/logga-in", name="archivist_login_post", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if proxy_header:
            return _proxy_only(request)
        if not same_origin(request):
            return _plain_page("Förbjudet", "Formuläret kom från en annan webbplats.", 403)
        form = await request.form()
        user, password = str(form.get("anvandare", "")), str(form.get("losenord", ""))
        next_path = str(form.get("next", ""))
        if not await run_in_threadpool(sessions.accounts.authenticate, user, password):
            log.warning("failed archivist login")
            return _login_page(request, next_path, "Fel användarnamn eller lösenord.", 401)
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
            return _plain_page("Förbjudet", "Formuläret har gått ut. Ladda om sidan.", 403)
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
            body = _search_form(values) + _error_card(error)
            return page(request, user, "Sök protokollsutdrag", body, 400)
        body = _search_form(values) + _results(request, rows)
        return page(request, user, "Sök protokollsutdrag", body)

    @router.get(
        "/utdrag/{meeting_id}/{paragraph}", name="archivist_timeline", response_class=HTMLResponse
    )
    def timeline(request: Request, meeting_id: str, paragraph: int) -> Response:
        user = archivist(request)
        if user is None:
            return to_login(request)
        try:
            found = extract_timeline(services, meeting_id, paragraph)
        except NotFoundError as error:
            return page(request, user, "Utdraget finns inte", _error_card(error), 404)
        body = _timeline(request, found, sessions.csrf_token(user))
        return page(request, user, f"§ {paragraph} – händelser", body)

    @router.post(
        "/utdrag/{meeting_id}/{paragraph}/verifiera",
        name="archivist_verify",
        response_class=HTMLResponse,
    )
    async def verify(request: Request, meeting_id: str, paragraph: int) -> Response:
        user = archivist(request)
        if user is None:
            return to_login(request)
        form = await request.form()
        if not same_origin(request) or not sessions.csrf_ok(user, str(form.get("csrf", ""))):
            return page(request, user, "Förbjudet", _card("Formuläret har gått ut.", False), 403)
        try:
            found = await run_in_threadpool(extract_timeline, services, meeting_id, paragraph)
        except NotFoundError as error:
            return page(request, user, "Utdraget finns inte", _error_card(error), 404)
        uri = found.archive_uri
        if uri is None:
            body = _card("Utdraget är inte arkiverat ännu; det finns inget att verifiera.", False)
            return page(request, user, "Inte arkiverat", body, 409)
        log.info("archivist %s verifies %s", user, uri)
        try:
            results = await run_in_threadpool(_verify, services, uri)
        except JusteringError as error:
            body = _heading(found) + _error_card(error) + _back(request, found)
            return page(request, user, "Verifieringen kunde inte göras", body, 502)
        body = _heading(found) + _verification(results) + _back(request, found)
        return page(request, user, f"§ {paragraph} – verifiering", body)

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


def _archive_page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """The web app's page with the archive's styles. Its referrer policy is relaxed
    to ``same-origin`` (nothing secret is in these URLs) so that browsers send an
    ``Origin`` with the forms' POSTs instead of ``null``."""
    response = page(title, body, status, extra_style=_STYLE)
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _plain_page(title: str, text: str, status: int) -> HTMLResponse:
    return _archive_page(title, f"<h1>{_e(title)}</h1>" + _card(text, False), status)


def _login_page(
    request: Request, next_path: str, problem: str | None, status: int = 200
) -> HTMLResponse:
    alert = f'<div class="card error" role="alert"><p>{_e(problem)}</p></div>' if problem else ""
    body = f"""<h1>Logga in – arkivet</h1>{alert}
<div class="card"><form method="post" action="{_e(_path(request, "archivist_login_post"))}">
<input type="hidden" name="next" value="{_e(next_path)}">
<p><label for="anvandare">Användarnamn</label>
<input id="anvandare" name="anvandare" autocomplete="username" required autofocus></p>
<p><label for="losenord">Lösenord</label>
<input id="losenord" name="losenord" type="password" autocomplete="current-password" required></p>
<button type="submit">Logga in</button></form></div>
<p class="muted">Sidorna är till för arkivarier. Konton delas ut av systemets förvaltare.</p>"""
    return _archive_page("Logga in", body, status)


def _proxy_only(request: Request) -> HTMLResponse:
    body = """<h1>Inte inloggad</h1><div class="card error"><p>Inloggningen till arkivet sköts
av organisationens inloggningstjänst, men din inloggning nådde inte fram. Öppna arkivet
via den vanliga adressen eller kontakta systemets förvaltare.</p></div>"""
    return _archive_page("Inte inloggad", body, 401)


def _top(request: Request, user: str, sessions: Sessions, proxy_header: str | None) -> str:
    logout = (
        ""
        if proxy_header
        else f'<form method="post" action="{_e(_path(request, "archivist_logout"))}">'
        f'<input type="hidden" name="csrf" value="{_e(sessions.csrf_token(user))}">'
        '<button type="submit" class="quiet">Logga ut</button></form>'
    )
    return (
        f'<header class="top"><a href="{_e(_path(request, "archivist_search"))}">'
        "Arkivet – protokollsutdrag</a>"
        f'<span class="muted">Inloggad som <strong>{_e(user)}</strong></span>{logout}</header>'
    )


# --- page parts ----------------------------------------------------------------------------


def _card(text: str, ok: bool) -> str:
    return f'<div class="card {"ok" if ok else "error"}" role="status"><p>{_e(text)}</p></div>'


def _error_card(error: JusteringError) -> str:
    return f'<div class="card error" role="alert"><p>{_e(error.diagnostics())}</p></div>'


def _search_form(values: Mapping[str, str]) -> str:
    def field(name: str, label: str, kind: str = "text", hint: str = "") -> str:
        placeholder = f' placeholder="{_e(hint)}"' if hint else ""
        return (
            f'<div><label for="{name}">{label}</label><input id="{name}" name="{name}" '
            f'type="{kind}" value="{_e(values.get(name, ""))}"{placeholder}></div>'
        )

    options = "".join(
        f'<option value="{value}"{" selected" if values.get("status") == value else ""}>'
        f"{_e(status.swedish.capitalize())}</option>"
        for value, status in ((status.value, status) for status in ExtractStatus)
    )
    return f"""<h1>Sök protokollsutdrag</h1>
<form class="search card" method="get" role="search" aria-label="Sök utdrag">
{field("organ", "Organ (kod)", hint="t.ex. KSAU")}
{field("fran", "Sammanträde från", "date")}
{field("till", "Sammanträde till", "date")}
{field("dnr", "Diarienummer", hint="hela eller en del")}
{field("undertecknare", "Undertecknare", hint="namn eller e-post")}
<div><label for="status">Status</label><select id="status" name="status">
<option value="">Alla</option>{options}</select></div>
<div><button type="submit">Sök</button></div></form>"""


def _signers(row: AuditRow) -> str:
    return "<br>".join(
        f"{_e(s.name)} <span class='muted'>({_e(role_name(s.role))})</span>" for s in row.signatures
    )


def _results(request: Request, rows: Iterable[AuditRow]) -> str:
    rows = list(rows)
    if not rows:
        return '<p role="status">Inga utdrag matchar sökningen.</p>'
    body = "".join(
        "<tr>"
        f'<td data-label="Organ">{_e(r.body_code)}</td>'
        f'<td data-label="Sammanträde">{r.meeting_date.isoformat()}</td>'
        f'<td data-label="Paragraf">§ {r.extract.paragraph}</td>'
        f'<td data-label="Diarienummer">{_e(r.extract.dnr or "–")}</td>'
        f'<td data-label="Rubrik"><a href="{_e(_timeline_path(request, r))}">'
        f"{_e(r.extract.title)}</a></td>"
        f'<td data-label="Status">{_e(r.extract.status.swedish)}</td>'
        f'<td data-label="Undertecknare">{_signers(r) or "–"}</td>'
        "</tr>"
        for r in rows
    )
    return f"""<table class="stack" id="resultat">
<caption role="status">{len(rows)} utdrag</caption>
<thead><tr><th scope="col">Organ</th><th scope="col">Sammanträde</th><th scope="col">§</th>
<th scope="col">Diarienummer</th><th scope="col">Rubrik</th><th scope="col">Status</th>
<th scope="col">Undertecknare</th></tr></thead><tbody>{body}</tbody></table>"""


def _timeline_path(request: Request, row: AuditRow) -> str:
    return _path(
        request,
        "archivist_timeline",
        meeting_id=row.extract.meeting_id,
        paragraph=row.extract.paragraph,
    )


def _heading(timeline: Timeline) -> str:
    row, e = timeline.row, timeline.row.extract
    dnr = f" · {_e(e.dnr)}" if e.dnr else ""
    return f"""<h1>§ {e.paragraph}{dnr}</h1><p>{_e(e.title)}</p>
<dl class="facts card"><dt>Organ</dt><dd>{_e(row.body_name)} ({_e(row.body_code)})</dd>
<dt>Sammanträde</dt><dd>{row.meeting_date.isoformat()}
<span class="muted">({_e(e.meeting_id)})</span></dd>
<dt>Status</dt><dd>{_e(e.status.swedish)}, version {e.version}</dd>
<dt>Arkivexemplar</dt><dd><code>{_e(e.archive_uri or "–")}</code></dd></dl>"""


def _timeline(request: Request, timeline: Timeline, csrf: str) -> str:
    events = "".join(
        "<tr>"
        f'<td data-label="Nr">{event.seq}</td>'
        f'<td data-label="Tid (UTC)">{event.at:%Y-%m-%d %H:%M:%S}</td>'
        f'<td data-label="Händelse">{_e(event.kind.swedish)}</td>'
        f'<td data-label="Vem">{_e(event.actor)}'
        + (f"<br><span class='muted'>{_e(event.actor_email)}</span>" if event.actor_email else "")
        + "</td>"
        f'<td data-label="Roll">{_e(role_name(event.role) or "–")}</td>'
        f'<td data-label="Version">{event.version}</td>'
        f'<td data-label="Dokument"><code>{_e((event.document_sha256 or "–")[:16])}</code></td>'
        "</tr>"
        for event in timeline.events
    )
    if timeline.chain_ok:
        chain = _card(f"Händelsekedjan är hel ({len(timeline.events)} händelser).", True)
    else:
        problems = "".join(f"<li>{_e(p)}</li>" for p in timeline.chain_problems)
        chain = (
            '<div class="card error" role="alert"><p><strong>Händelsekedjan är bruten.</strong>'
            f"</p><ul>{problems}</ul></div>"
        )
    e = timeline.row.extract
    if e.archive_uri:
        action = _path(request, "archivist_verify", meeting_id=e.meeting_id, paragraph=e.paragraph)
        verify = f"""<form method="post" action="{_e(action)}">
<input type="hidden" name="csrf" value="{_e(csrf)}">
<p>Kontrollerar arkivexemplarets kontrollsummor, underskrifter och händelsekedja mot
kommunens rotcertifikat.</p><button type="submit">Verifiera arkivexemplaret</button></form>"""
    else:
        verify = "<p>Utdraget är inte arkiverat ännu.</p>"
    return f"""{_heading(timeline)}
<h2>Händelser</h2>{chain}
<table class="stack"><caption>Händelsekedjan i registret, äldst först</caption>
<thead><tr><th scope="col">Nr</th><th scope="col">Tid (UTC)</th><th scope="col">Händelse</th>
<th scope="col">Vem</th><th scope="col">Roll</th><th scope="col">Version</th>
<th scope="col">Dokument (SHA-256)</th></tr></thead><tbody>{events}</tbody></table>
<h2>Verifiera</h2><div class="card">{verify}</div>"""


def _verification(results: list[Verification]) -> str:
    parts = []
    for result in results:
        failed = sum(1 for check in result.checks if not check.ok)
        verdict = (
            _card("Giltigt: alla kontroller godkända.", True)
            if result.ok
            else _card(f"Ogiltigt: {failed} kontroll(er) underkända.", False)
        )
        rows = "".join(
            f'<tr class="check"><td data-label="Kontroll">{_e(CHECK_SWEDISH.get(c.name, c.name))}'
            f"<br><span class='muted'>{_e(c.name)}</span></td>"
            f'<td data-label="Resultat">'
            + (
                '<span class="good">Godkänd</span>'
                if c.ok
                else '<span class="bad">Underkänd</span>'
            )
            + f'</td><td data-label="Detaljer">{_e(c.detail)}</td></tr>'
            for c in result.checks
        )
        signers = ", ".join(f"{_e(n)} ({_e(role_name(r))})" for n, r in result.signers)
        parts.append(
            f"""<h2>Verifiering</h2>{verdict}
<table class="stack"><caption>Kontroller av <code>{_e(result.target)}</code></caption>
<thead><tr><th scope="col">Kontroll</th><th scope="col">Resultat</th>
<th scope="col">Detaljer</th></tr></thead><tbody>{rows}</tbody></table>
<dl class="facts card"><dt>PDF (SHA-256)</dt><dd><code>{_e(result.sha256 or "–")}</code></dd>
<dt>Underskrifter</dt><dd>{signers or "–"}</dd></dl>"""
        )
    return "".join(parts) or _card("Inget arkivexemplar hittades.", False)


def _back(request: Request, timeline: Timeline) -> str:
    e = timeline.row.extract
    path = _path(request, "archivist_timeline", meeting_id=e.meeting_id, paragraph=e.paragraph)
    return f'<p><a href="{_e(path)}">Tillbaka till händelserna</a></p>'
