"""What a secretary does from their pages (``workflow.secretary``), on SQLite and on
PostgreSQL: the meetings of their bodies only, a signer's link sent again (the old
ones revoked, who asked on the trail), the refusals (nothing to sign, a finished
meeting, a redraft awaited), the redraft link; another body's meeting is exactly as
unknown as a meeting that does not exist."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import update

from justering import workflow
from justering.cli.status import describe_meeting
from justering.errors import LinkProblem, NotFoundError, Refusal
from justering.ledger.schema import LinkTokenRow
from justering.model.calendar import local_minute, local_today
from justering.model.meeting import Body, Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Role
from justering.model.trail import EventKind
from justering.workflow import redraft
from justering.workflow.declining import decline_with_link
from justering.workflow.mailing import send_queued_mail
from justering.workflow.meeting_view import meeting_view
from justering.workflow.secretary import (
    Resent,
    meetings_of_bodies,
    open_redraft,
    resend_link,
)
from justering.workflow.services import Services
from support.workflow import (
    SHORT_PARAGRAPH,
    extract_rows,
    newest_token,
    outbox,
    protocol_row,
    raises_link,
    raises_refusal,
    sign_as,
    sign_through,
    small_meeting,
    snapshot,
    start,
    start_at_adjusters,
    trail,
)

KSAU = frozenset({"KSAU"})
SECRETARY = "lena"
COMMENT = "Fel belopp."


def _meeting(sample: Meeting, *, paragraphs: tuple[int, ...] = (94, SHORT_PARAGRAPH)) -> Meeting:
    meeting = small_meeting(sample, paragraphs=paragraphs, meeting_id="ksau-sekr")
    return replace(meeting, date=local_today())


def _other_body(sample: Meeting) -> Meeting:
    return replace(
        _meeting(sample, paragraphs=(SHORT_PARAGRAPH,)),
        meeting_id="ks-annan",
        body=Body("KS", "Kommunstyrelsen"),
        date=local_today() - dt.timedelta(days=3),
    )


def _resend(services: Services, meeting_id: str, slot: str) -> Resent:
    """A new link as the secretary's page asks for it: queued with its events, sent
    once the transaction is over (the page sends after answering)."""
    resent = resend_link(services, meeting_id, slot, asked_by=SECRETARY, bodies=KSAU)
    send_queued_mail(services, meeting_id)
    return resent


def test_a_new_link_replaces_the_old_and_the_trail_says_who_asked(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting)
    start(services, meeting)
    chair = meeting.chair.email
    old = newest_token(services, chair)
    before = len(outbox(services))

    resent = _resend(services, meeting.meeting_id, "chair-0")

    assert (resent.signer.email, resent.signer.role) == (chair, Role.CHAIR)
    assert resent.documents == 3 and resent.revoked == 1  # the protocol and two extracts
    messages = outbox(services)
    assert len(messages) == before + 1 and messages[-1].to == chair
    new = messages[-1].token
    assert new != old
    with raises_link(LinkProblem.REVOKED):
        workflow.view_link(services, old)
    view = workflow.view_link(services, new)
    assert len(view.pending) == 3
    rows = [*extract_rows(services, meeting.meeting_id), protocol_row(services, meeting.meeting_id)]
    for row in rows:
        notified = [e for e in trail(services, row.id) if e.kind is EventKind.NOTIFIED]
        assert [e.detail.get("resent_by") for e in notified] == [None, SECRETARY]
        assert notified[-1].detail["message_id"] == resent.message_id
    # the view shows the first message and the latest, and whom to send a link
    view = meeting_view(services, meeting.meeting_id)
    assert view.to_json()["protocols"][0]["waiting"][0]["slot"] == "chair-0"
    ((asked, documents),) = view.waiting_signers
    assert (asked.slot, documents) == ("chair-0", 3)
    waiting = view.protocols[0].waiting[0]
    assert waiting.notified_at is not None and waiting.last_notified_at is not None
    assert waiting.slot == "chair-0" and waiting.last_notified_at > waiting.notified_at
    first, last = local_minute(waiting.notified_at), local_minute(waiting.last_notified_at)
    assert f"underrättad {first}, senast {last}" in describe_meeting(view)

    sign_as(services, chair)  # the new link signs
    assert {r.status for r in extract_rows(services, meeting.meeting_id)} == {
        ExtractStatus.AWAITING_ADJUSTERS
    }


def test_a_signer_with_nothing_to_sign_gets_no_link(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting)
    start_at_adjusters(services, meeting)
    adjuster_link = newest_token(services, meeting.adjusters[0].email)
    before, mail = snapshot(services), len(outbox(services))

    for slot in ("chair-0", "certifier-0"):
        with raises_refusal(Refusal.NOTHING_TO_SIGN) as caught:
            resend_link(services, meeting.meeting_id, slot, asked_by=SECRETARY, bodies=KSAU)
        assert caught.value.detail in (meeting.chair.name, meeting.certifier.name)
    assert snapshot(services) == before and len(outbox(services)) == mail
    workflow.view_link(services, adjuster_link)  # untouched

    resent = _resend(services, meeting.meeting_id, "adjuster-0")
    assert resent.signer.email == meeting.adjusters[0].email and resent.revoked == 1
    with raises_link(LinkProblem.REVOKED):
        workflow.view_link(services, adjuster_link)


def test_no_link_while_a_declined_paragraph_waits_for_its_redraft(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting, paragraphs=(SHORT_PARAGRAPH,))
    start(services, meeting)
    (extract,) = extract_rows(services, meeting.meeting_id)
    decline_with_link(services, newest_token(services, meeting.chair.email), extract.id, COMMENT)
    before = snapshot(services)

    for slot in ("chair-0", "adjuster-0"):
        with raises_refusal(Refusal.AWAITING_REDRAFT):
            resend_link(services, meeting.meeting_id, slot, asked_by=SECRETARY, bodies=KSAU)
    assert snapshot(services) == before

    # the secretary opens the redraft page from theirs; the trail names them
    token = open_redraft(
        services, meeting.meeting_id, SHORT_PARAGRAPH, asked_by=SECRETARY, bodies=KSAU
    )
    view = redraft.view_redraft(services, token)
    assert view.secretary_name == SECRETARY and view.version == 1
    assert view.expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=2)
    redraft.redraft_with_link(services, token, "Rättad text.", None)
    redrafted = [e for e in trail(services, extract.id) if e.kind is EventKind.REDRAFTED]
    assert [e.actor for e in redrafted] == [SECRETARY]
    with raises_link(LinkProblem.USED):
        redraft.view_redraft(services, token)

    with raises_refusal(Refusal.NOT_DECLINED):
        open_redraft(services, meeting.meeting_id, SHORT_PARAGRAPH, asked_by=SECRETARY, bodies=KSAU)


def test_a_finished_meeting_needs_no_link(services: Services, sample_meeting: Meeting) -> None:
    meeting = _meeting(sample_meeting, paragraphs=(SHORT_PARAGRAPH,))
    sign_through(services, meeting)
    for slot in ("chair-0", "adjuster-0", "certifier-0"):
        with raises_refusal(Refusal.MEETING_FINISHED):
            resend_link(services, meeting.meeting_id, slot, asked_by=SECRETARY, bodies=KSAU)


def test_another_bodys_meeting_is_as_unknown_as_none(
    services: Services, sample_meeting: Meeting
) -> None:
    other = _other_body(sample_meeting)
    start(services, other)
    (extract,) = extract_rows(services, other.meeting_id)
    decline_with_link(services, newest_token(services, other.chair.email), extract.id, COMMENT)
    before, mail = snapshot(services), len(outbox(services))

    for meeting_id in (other.meeting_id, "finns-inte"):
        with pytest.raises(NotFoundError) as viewed:
            meeting_view(services, meeting_id, bodies=KSAU)
        with pytest.raises(NotFoundError) as resent:
            resend_link(services, meeting_id, "chair-0", asked_by="x", bodies=KSAU)
        with pytest.raises(NotFoundError) as opened:
            open_redraft(services, meeting_id, SHORT_PARAGRAPH, asked_by="x", bodies=KSAU)
        for caught in (viewed, resent, opened):
            assert (caught.value.what, caught.value.key) == ("meeting", meeting_id)
    with pytest.raises(NotFoundError):  # no bodies at all: nothing
        meeting_view(services, other.meeting_id, bodies=frozenset())
    assert snapshot(services) == before and len(outbox(services)) == mail
    assert meeting_view(services, other.meeting_id, bodies={"KS"}).meeting.body.code == "KS"


def test_an_unknown_signer_is_not_found(services: Services, sample_meeting: Meeting) -> None:
    meeting = _meeting(sample_meeting, paragraphs=(SHORT_PARAGRAPH,))
    start(services, meeting)
    for slot in ("adjuster-1", "secretary", "", "chair-0' OR 1=1"):
        with pytest.raises(NotFoundError) as caught:
            resend_link(services, meeting.meeting_id, slot, asked_by=SECRETARY, bodies=KSAU)
        assert caught.value.what == "signer"


def test_the_list_holds_the_bodies_meetings_the_latest_first(
    services: Services, sample_meeting: Meeting
) -> None:
    ours = _meeting(sample_meeting)
    older = replace(ours, meeting_id="ksau-aldre", date=ours.date - dt.timedelta(days=30))
    other = _other_body(sample_meeting)
    start(services, ours)
    workflow.record_meeting(services, older)  # not drafted yet
    workflow.record_meeting(services, other)
    (extract, _) = extract_rows(services, ours.meeting_id)
    decline_with_link(services, newest_token(services, ours.chair.email), extract.id, COMMENT)

    lines = meetings_of_bodies(services, KSAU)
    assert [line.meeting_id for line in lines] == [ours.meeting_id, older.meeting_id]
    first, second = lines
    assert (first.body_code, first.paragraphs, first.protocol) == ("KSAU", 2, ExtractStatus.HELD)
    assert first.statuses == ((ExtractStatus.AWAITING_CHAIR, 1), (ExtractStatus.DECLINED, 1))
    assert first.declined == 1 and first.deadline > first.date
    assert (second.protocol, second.statuses) == (None, ())
    assert [line.meeting_id for line in meetings_of_bodies(services, {"KS", "KSAU"})] == [
        ours.meeting_id,
        other.meeting_id,
        older.meeting_id,
    ]
    assert meetings_of_bodies(services, frozenset()) == ()
    assert meetings_of_bodies(services, {"KSA"}) == ()  # a code, not a prefix


def test_a_signer_whose_link_ran_out_gets_a_working_one(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _meeting(sample_meeting, paragraphs=(SHORT_PARAGRAPH,))
    start(services, meeting)
    old = newest_token(services, meeting.chair.email)
    with services.ledger.transaction() as session:
        session.execute(
            update(LinkTokenRow).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        )
    with raises_link(LinkProblem.EXPIRED):
        workflow.view_link(services, old)

    _resend(services, meeting.meeting_id, "chair-0")
    new = newest_token(services, meeting.chair.email)
    assert new != old
    assert len(workflow.view_link(services, new).pending) == 2  # the protocol and § 96
    sign_as(services, meeting.chair.email)
