"""The public anslagstavla in the web app: an HTML page and a JSON feed.

Mounted at ``/anslagstavla`` (``app.include_router(noticeboard_router(services),
prefix="/anslagstavla")``). No login: the notice board is public by law. It shows
what :func:`justering.workflow.noticeboard.current_notices` returns and nothing about the
signers (no names, no e-mail addresses).

``GET /anslagstavla`` is the page (Swedish). ``GET /anslagstavla/feed.json`` is the
feed, format ``justering-anslagstavla/2``, one notice per justered protocol::

    {
      "format": "justering-anslagstavla/2",
      "today": "2024-01-10",              # the Swedish date the feed is for
      "notices": [                         # newest announcement first
        {
          "id": "nacka-ksau-2014-08-19/protokoll@1",   # protocol reference @ version
          "meeting_id": "nacka-ksau-2014-08-19",
          "municipality": "Nacka kommun",
          "body": "Kommunstyrelsens arbetsutskott",
          "meeting_date": "2014-08-19",
          "immediate": false,              # true: the omedelbar justering's own protocol
          "paragraphs": [                  # the paragraphs this justering covers
            {"paragraph": 94, "dnr": "KFKS 2014/1-1", "title": "…"}   # dnr may be null
          ],
          "immediate_paragraphs": [97],    # justered at once and announced on their own
          "justered_on": "2014-08-21",
          "announced_on": "2014-08-21",
          "appeal_deadline": "2014-09-11",   # last day an appeal can reach the court
          "taken_down_on": "2014-09-12",     # the notice leaves the board that day
          "kept_at": "Kommunstyrelsens kansli, Nacka stadshus",   # the förvaringsplats
          "archived": true                   # the justered protocol is in the archive
        }
      ]
    }

Every key is always present; dates are ISO dates in Swedish local time.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from justering.model.calendar import SWEDISH_TIME
from justering.web.pages import document
from justering.workflow.noticeboard import Notice, current_notices
from justering.workflow.services import Services

__all__ = [
    "FEED_FORMAT",
    "noticeboard_router",
]

FEED_FORMAT = "justering-anslagstavla/2"

_HEADERS = {
    "Cache-Control": "public, max-age=60",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_STYLE = """
h2{font-size:1.15rem;margin:0 0 .5rem}
h3{font-size:1rem;margin:.75rem 0 .25rem}
ul.items{padding-left:1.2rem;margin:.25rem 0}
ul.items li{margin:.35rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.75rem 0}
dt{font-weight:600}dd{margin:0}
@media (max-width:30rem){dl{grid-template-columns:1fr}dd{margin-bottom:.4rem}}
"""
"""What the notice board adds to the shared style of :mod:`justering.web.pages`."""


def _swedish_today() -> dt.date:
    return dt.datetime.now(SWEDISH_TIME).date()


def noticeboard_router(
    services: Services, *, today: Callable[[], dt.date] = _swedish_today
) -> APIRouter:
    """The notice board's page (``""``) and feed (``/feed.json``), to mount at
    ``/anslagstavla``. ``today`` gives the Swedish date (replaceable in tests)."""
    router = APIRouter()

    def notices() -> tuple[dt.date, list[Notice]]:
        day = today()
        with services.ledger.reading() as session:
            return day, current_notices(session, today=day)

    @router.get("", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        day, shown = notices()
        return HTMLResponse(
            _page(day, shown),
            headers={
                **_HEADERS,
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "frame-ancestors 'none'",
            },
        )

    @router.get("/feed.json")
    def feed() -> JSONResponse:
        day, shown = notices()
        return JSONResponse(
            {
                "format": FEED_FORMAT,
                "today": day.isoformat(),
                "notices": [_feed_item(n) for n in shown],
            },
            headers={**_HEADERS, "Access-Control-Allow-Origin": "*"},
        )

    return router


def _feed_item(notice: Notice) -> dict[str, Any]:
    return {
        "id": f"{notice.reference}@{notice.version}",
        "meeting_id": notice.meeting_id,
        "municipality": notice.municipality,
        "body": notice.body,
        "meeting_date": notice.meeting_date.isoformat(),
        "immediate": notice.immediate,
        "paragraphs": [
            {"paragraph": p.number, "dnr": p.dnr, "title": p.title} for p in notice.paragraphs
        ],
        "immediate_paragraphs": list(notice.immediate_paragraphs),
        "justered_on": notice.justered_on.isoformat(),
        "announced_on": notice.announced_on.isoformat(),
        "appeal_deadline": notice.appeal_deadline.isoformat(),
        "taken_down_on": notice.taken_down_on.isoformat(),
        "kept_at": notice.kept_at,
        "archived": notice.archive_uri is not None,
    }


def _card(notice: Notice) -> str:
    e = html.escape
    paragraphs = "".join(
        f"<li><strong>§ {p.number}</strong>"
        + (f" · {e(p.dnr)}" if p.dnr else "")
        + f"<br>{e(p.title)}</li>"
        for p in notice.paragraphs
    )
    what = (
        "Paragraferna nedan justerades omedelbart (kommunallagen 5 kap. 70 §). "
        "Justeringen har tillkännagivits genom anslag."
        if notice.immediate
        else "Protokollet är justerat. Justeringen har tillkännagivits genom anslag."
    )
    earlier = ""
    if notice.immediate_paragraphs:
        numbers = ", ".join(f"§ {n}" for n in notice.immediate_paragraphs)
        earlier = (
            f'<p class="muted">{numbers} justerades omedelbart och har tillkännagivits för sig.</p>'
        )
    heading = "Omedelbart justerade paragrafer" if notice.immediate else "Paragrafer"
    archived = '<p class="muted">Protokollet är arkiverat.</p>' if notice.archive_uri else ""
    return f"""<article class="card">
<h2>{e(notice.body)}, {e(notice.municipality)}</h2>
<p>{what}</p>
<dl>
<dt>Sammanträdesdatum</dt><dd>{notice.meeting_date.isoformat()}</dd>
<dt>Datum för justering</dt><dd>{notice.justered_on.isoformat()}</dd>
<dt>Anslaget sattes upp</dt><dd>{notice.announced_on.isoformat()}</dd>
<dt>Sista dag för överklagande</dt><dd>{notice.appeal_deadline.isoformat()}</dd>
<dt>Anslaget tas ned</dt><dd>{notice.taken_down_on.isoformat()}</dd>
<dt>Förvaringsplats för protokollet</dt><dd>{e(notice.kept_at)}</dd>
</dl>
<h3>{heading}</h3><ul class="items">{paragraphs}</ul>{earlier}{archived}
</article>"""


def _page(today: dt.date, notices: list[Notice]) -> str:
    cards = [_card(notice) for notice in notices]
    listing = "".join(cards) or '<p class="card">Det finns inga anslag just nu.</p>'
    return document(
        "Anslagstavla",
        "<h1>Anslagstavla</h1>"
        '<p class="muted">Tillkännagivanden om justerade protokoll '
        "(kommunallagen 8 kap. 12 §). Den som är medlem i kommunen kan överklaga "
        "ett beslut genom laglighetsprövning hos förvaltningsrätten. Överklagandet "
        "ska ha kommit in till förvaltningsrätten inom tre veckor från den dag då "
        "justeringen tillkännagavs på anslagstavlan (kommunallagen 13 kap. 5 §).</p>"
        f'<p class="muted">Anslag per {today.isoformat()}.</p>'
        f"{listing}"
        '<p class="muted">Samma uppgifter som <a href="anslagstavla/feed.json">JSON</a>.'
        "</p>",
        extra_style=_STYLE,
        head='<link rel="alternate" type="application/json" href="anslagstavla/feed.json">',
    )
