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
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from justering.model.calendar import SWEDISH_TIME
from justering.web.pages import PUBLIC_HEADERS, public_page
from justering.workflow.noticeboard import Notice, current_notices
from justering.workflow.services import Services

__all__ = [
    "FEED_FORMAT",
    "noticeboard_router",
]

FEED_FORMAT = "justering-anslagstavla/2"


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

    @router.get("", name="noticeboard", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        day, shown = notices()
        return public_page("noticeboard.html", today=day, notices=shown)

    @router.get("/feed.json")
    def feed() -> JSONResponse:
        day, shown = notices()
        return JSONResponse(
            {
                "format": FEED_FORMAT,
                "today": day.isoformat(),
                "notices": [_feed_item(n) for n in shown],
            },
            headers={**PUBLIC_HEADERS, "Access-Control-Allow-Origin": "*"},
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
