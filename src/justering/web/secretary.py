"""The secretaries' pages (mounted at ``/sekreterare``): the meetings of the bodies a
secretary follows, and a page per meeting with where its protocol and every paragraph
stand (who has signed, who is waited for and since when, the deadline, the decline
comments, the announcement), a button that sends a signer a new link (their old ones
revoked) and one that opens the redraft page of a declined paragraph.

Behind the staff login (:mod:`justering.web.staff`), with the secretaries' accounts
only (``[secretaries]``, each with their bodies, :mod:`justering.web.auth`). Another
body's meeting answers exactly as one that does not exist: 404, nothing of it shown.
What the page shows is :func:`justering.workflow.meeting_view.meeting_view`'s, the
same view ``justering status`` prints. Swedish, Swedish local times, readable on a
phone; every POST carries the secretary's CSRF token and must come from this site.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from justering.errors import LinkError, NotFoundError, WorkflowError
from justering.model.process import ExtractStatus
from justering.web.auth import SECRETARY_REALM, LoginGuard, open_sessions
from justering.web.refusals import answer_for
from justering.web.staff import StaffArea, route_path
from justering.workflow.mailing import send_queued_mail
from justering.workflow.meeting_view import MeetingView, meeting_view
from justering.workflow.secretary import meetings_of_bodies, open_redraft, resend_link
from justering.workflow.services import Services

__all__ = [
    "SESSION_COOKIE",
    "secretary_router",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "justering_sekreterare"

_NO_MEETING = (
    "Det finns inget sådant sammanträde bland sammanträdena i de organ du är sekreterare för."
)


def secretary_router(
    services: Services,
    *,
    environ: Mapping[str, str] | None = None,
    guard: LoginGuard | None = None,
) -> APIRouter:
    """The secretaries' pages; mount with ``app.include_router(router,
    prefix="/sekreterare")``. Accounts are read once, here (``environ`` defaults to
    the process's); ``guard`` limits password logins as in the archive."""
    sessions = open_sessions(services.settings, environ, realm=SECRETARY_REALM)
    area = StaffArea(
        name="secretary",
        title="Sekreterarens sidor",
        home="secretary_meetings",
        sessions=sessions,
        guard=guard or LoginGuard(),
        cookie=SESSION_COOKIE,
        proxy_header=services.settings.archivist_header,
        login_heading="Logga in – sekreterare",
        login_note=(
            "Sidorna är till för nämndernas sekreterare. Konton delas ut av systemets förvaltare."
        ),
    )
    router = APIRouter()
    router.include_router(area.login_routes())

    def bodies(user: str) -> frozenset[str]:
        return sessions.accounts.bodies_of(user)

    def no_meeting(request: Request, user: str) -> Response:
        return area.message(request, user, "Sammanträdet finns inte", _NO_MEETING, 404, alert=True)

    def meeting_page(
        request: Request,
        user: str,
        view: MeetingView,
        status: int = 200,
        *,
        problem: str | None = None,
        done: str | None = None,
    ) -> Response:
        meeting_id = view.meeting.meeting_id
        return area.page(
            request,
            user,
            "secretary/meeting.html",
            status,
            view=view,
            problem=problem,
            done=done,
            csrf=sessions.csrf_token(user),
            resend=route_path(request, "secretary_resend", meeting_id=meeting_id),
            redraft={
                p.number: route_path(
                    request, "secretary_redraft", meeting_id=meeting_id, paragraph=p.number
                )
                for p in view.paragraphs
                if p.status is ExtractStatus.DECLINED
            },
            noticeboard=route_path(request, "noticeboard"),
        )

    async def checked(request: Request) -> tuple[str, Any] | Response:
        """The logged-in secretary and the POSTed form, if it carries their token."""
        user = area.user(request)
        if user is None:
            return area.to_login(request)
        form = await request.form()
        if not area.csrf_ok(request, user, str(form.get("csrf", ""))):
            return area.message(
                request, user, "Förbjudet", "Formuläret har gått ut. Ladda om sidan.", 403
            )
        return user, form

    async def refused(
        request: Request, user: str, meeting_id: str, error: WorkflowError | LinkError
    ) -> Response:
        view = await run_in_threadpool(meeting_view, services, meeting_id, bodies=bodies(user))
        answer = answer_for(error)
        return meeting_page(request, user, view, answer.status, problem=answer.swedish)

    @router.get("/", name="secretary_meetings", response_class=HTMLResponse)
    def meetings(request: Request) -> Response:
        user = area.user(request)
        if user is None:
            return area.to_login(request)
        lines = meetings_of_bodies(services, bodies(user))
        paths = {
            line.meeting_id: route_path(request, "secretary_meeting", meeting_id=line.meeting_id)
            for line in lines
        }
        return area.page(
            request,
            user,
            "secretary/meetings.html",
            lines=lines,
            paths=paths,
            bodies=sorted(bodies(user)),
        )

    @router.get("/moten/{meeting_id}", name="secretary_meeting", response_class=HTMLResponse)
    def meeting(request: Request, meeting_id: str, skickad: str = "") -> Response:
        user = area.user(request)
        if user is None:
            return area.to_login(request)
        try:
            view = meeting_view(services, meeting_id, bodies=bodies(user))
        except NotFoundError:
            return no_meeting(request, user)
        sent_to = next((w for w, _ in view.waiting_signers if w.slot == skickad), None)
        done = (
            f"En ny länk har skickats till {sent_to.name} ({sent_to.email}). "
            "De tidigare länkarna gäller inte längre."
            if sent_to
            else None
        )
        return meeting_page(request, user, view, done=done)

    @router.post("/moten/{meeting_id}/ny-lank", name="secretary_resend")
    async def resend(request: Request, meeting_id: str) -> Response:
        checked_form = await checked(request)
        if isinstance(checked_form, Response):
            return checked_form
        user, form = checked_form
        slot = str(form.get("slot", ""))
        try:
            resent = await run_in_threadpool(
                lambda: resend_link(services, meeting_id, slot, asked_by=user, bodies=bodies(user))
            )
        except NotFoundError:
            return no_meeting(request, user)
        except (WorkflowError, LinkError) as error:
            return await refused(request, user, meeting_id, error)
        log.info(
            "secretary %s sent %s a new link for meeting %s (%d old revoked)",
            user,
            resent.signer.slot,
            meeting_id,
            resent.revoked,
        )
        page = route_path(request, "secretary_meeting", meeting_id=meeting_id)
        # The new link was queued with its events; it leaves once the page has answered.
        return RedirectResponse(
            f"{page}?skickad={resent.signer.slot}",
            status_code=303,
            background=BackgroundTask(send_queued_mail, services, meeting_id),
        )

    @router.post("/moten/{meeting_id}/ratta/{paragraph}", name="secretary_redraft")
    async def redraft(request: Request, meeting_id: str, paragraph: int) -> Response:
        checked_form = await checked(request)
        if isinstance(checked_form, Response):
            return checked_form
        user, _ = checked_form
        try:
            token = await run_in_threadpool(
                lambda: open_redraft(
                    services, meeting_id, paragraph, asked_by=user, bodies=bodies(user)
                )
            )
        except NotFoundError:
            return no_meeting(request, user)
        except (WorkflowError, LinkError) as error:
            return await refused(request, user, meeting_id, error)
        log.info("secretary %s opened the redraft of § %d of %s", user, paragraph, meeting_id)
        return RedirectResponse(f"/r/{token}", status_code=303)

    return router
