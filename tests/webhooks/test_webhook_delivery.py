"""Webhooks end to end over loopback HTTP: a meeting system's meeting taken from the
manifest to the archive while its receiver (the receiver example of docs/api.md) is
down, then up; every post's signature verified with standardwebhooks' own
``Webhook.verify``; each event seen once per ``webhook-id``; the back-off; a dead or
hanging receiver never holding up a signature; replay."""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from justering import workflow
from justering.errors import NotFoundError
from justering.ledger.clients import add_client, scoped_meeting_id, set_webhook
from justering.ledger.schema import ClientRow, WebhookAttemptRow, WebhookDeliveryRow
from justering.ledger.webhooks import (
    CLAIM_SECONDS,
    DELIVERED,
    FAILED,
    PENDING,
    RETRY_DELAYS,
    claim_due,
    list_deliveries,
)
from justering.model.meeting import Meeting
from justering.model.roles import Role
from justering.webhooks.sender import post_webhook
from justering.workflow.services import Services
from justering.workflow.webhooks import deliver_webhooks, replay_delivery
from support.webhooks import LIFECYCLE, LoopbackReceiver, loopback_receiver
from support.workflow import extract_rows, newest_token, run_in_threads, sign_as, small_meeting

CLIENT = "nacka-ns"
LATER = dt.timedelta(days=3)


def register(services: Services, name: str = CLIENT, url: str = "http://127.0.0.1:9/") -> str:
    add_client(services.ledger, name, ["KSAU"])
    secret = set_webhook(services.ledger, name, url)
    assert secret is not None and secret.startswith("whsec_")
    return secret


def start_for(services: Services, meeting: Meeting, client: str = CLIENT) -> str:
    workflow.record_meeting(services, meeting, client=client)
    scoped = scoped_meeting_id(client, meeting.meeting_id)
    workflow.advance_meeting(services, scoped)
    return scoped


def sign_all(services: Services, meeting: Meeting, scoped: str) -> None:
    for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
        for signer in meeting.signers(role):
            sign_as(services, signer.email)
        workflow.advance_meeting(services, scoped)


def deliveries(services: Services) -> list[WebhookDeliveryRow]:
    with services.ledger.transaction() as session:
        return list(session.execute(select(WebhookDeliveryRow)).scalars())


def attempts(services: Services, delivery_id: str) -> list[WebhookAttemptRow]:
    with services.ledger.transaction() as session:
        return list(
            session.execute(
                select(WebhookAttemptRow)
                .where(WebhookAttemptRow.delivery_id == delivery_id)
                .order_by(WebhookAttemptRow.id)
            ).scalars()
        )


def use(services: Services, receiver: LoopbackReceiver, name: str = CLIENT) -> None:
    """Point the client's webhooks at ``receiver`` (started with the client's secret),
    keeping the secret (``set_webhook`` would make a new one)."""
    with services.ledger.transaction() as session:
        row = session.get(ClientRow, name)
        assert row is not None and row.webhook_secret == receiver.secret
        row.webhook_url = receiver.url


@pytest.fixture
def receiver(services: Services) -> Iterator[LoopbackReceiver]:
    """The client registered, its webhooks going to the docs' receiver on loopback."""
    with loopback_receiver(register(services)) as receiver:
        use(services, receiver)
        yield receiver


def test_an_outage_delays_but_loses_and_repeats_nothing(
    services: Services, sample_meeting: Meeting
) -> None:
    secret = register(services)
    meeting = small_meeting(sample_meeting, paragraphs=(96, 97))
    with loopback_receiver(secret) as receiver:
        use(services, receiver)
        receiver.outage = 503
        scoped = start_for(services, meeting)
        sign_all(services, meeting, scoped)
        rows = deliveries(services)
        types = {row.event_type for row in rows}
        assert types >= LIFECYCLE, types

        # The outage: every due delivery is tried, refused, and backs off.
        now = dt.datetime.now(dt.UTC)
        first = deliver_webhooks(services.ledger, now=now, limit=100)
        assert len(first.retrying) == len(rows) and not first.delivered
        assert deliver_webhooks(services.ledger, now=now + RETRY_DELAYS[0] / 2).retrying == ()
        second = deliver_webhooks(services.ledger, now=now + RETRY_DELAYS[0], limit=100)
        assert len(second.retrying) == len(rows)
        # After two failures the next try waits the second delay, not the first.
        too_soon = now + RETRY_DELAYS[0] + RETRY_DELAYS[0]
        assert deliver_webhooks(services.ledger, now=too_soon, limit=100).retrying == ()

        receiver.outage = None
        back = now + RETRY_DELAYS[0] + RETRY_DELAYS[1]
        third = deliver_webhooks(services.ledger, now=back, limit=100)
        assert len(third.delivered) == len(rows), third
        assert deliver_webhooks(services.ledger, now=back + LATER, limit=100) == type(third)()

    assert receiver.posts and all(post.verified for post in receiver.posts)
    assert sorted(receiver.handled_ids) == sorted(row.id for row in rows)
    assert len(set(receiver.handled_ids)) == len(receiver.handled_ids)
    # Each event once: no two ids carry the same event.
    events = [json.dumps(event, sort_keys=True) for event in receiver.handled]
    assert len(set(events)) == len(events)
    assert [p.status for p in receiver.posts].count(503) == 2 * len(rows)
    for row in rows:
        logged = attempts(services, row.id)
        assert [a.status_code for a in logged] == [503, 503, 204]
        assert logged[0].error == "HTTP 503" and logged[-1].error is None
    assert {d.state for d in list_deliveries(services.ledger)} == {DELIVERED}
    # The events say which of the client's meetings, as the client named it.
    meeting_ids = {event["data"]["meeting_id"] for event in receiver.handled}
    assert meeting_ids == {meeting.meeting_id}
    signed = [e for e in receiver.handled if e["type"] == "extract.signed"]
    assert {(e["data"]["paragraph"], e["data"]["role"]) for e in signed} == {
        (96, "chair"),
        (96, "adjuster"),
        (97, "chair"),
        (97, "adjuster"),
    }


def test_deliveries_give_up_after_the_last_retry_and_replay_sends_again(
    services: Services, sample_meeting: Meeting, receiver: LoopbackReceiver
) -> None:
    receiver.outage = 500
    workflow.record_meeting(services, small_meeting(sample_meeting), client=CLIENT)
    now = dt.datetime.now(dt.UTC)
    delays = (dt.timedelta(seconds=1), dt.timedelta(seconds=2))
    for offset in (0, 1, 3):
        report = deliver_webhooks(
            services.ledger, now=now + dt.timedelta(seconds=offset), delays=delays
        )
    assert len(report.failed) == 1
    (delivery,) = list_deliveries(services.ledger)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (FAILED, 3, 500)
    assert deliver_webhooks(services.ledger, now=now + LATER) == type(report)()

    receiver.outage = None
    assert replay_delivery(services.ledger, delivery.id).delivered == (delivery.id,)
    again = replay_delivery(services.ledger, delivery.id)  # the receiver has it already
    assert again.delivered == (delivery.id,)
    assert receiver.handled_ids == [delivery.id]  # handled once, posted twice
    assert [p.status for p in receiver.posts] == [500, 500, 500, 204, 204]
    assert all(p.verified for p in receiver.posts)
    assert list_deliveries(services.ledger)[0].state == DELIVERED
    with pytest.raises(NotFoundError):
        replay_delivery(services.ledger, "msg_unknown")


def test_a_dead_or_hanging_receiver_never_holds_up_a_signature(
    services: Services, sample_meeting: Meeting
) -> None:
    secret = register(services)
    meeting = small_meeting(sample_meeting)
    with loopback_receiver(secret) as receiver:
        use(services, receiver)
        receiver.hang = threading.Event()
        scoped = start_for(services, meeting)
        started = time.monotonic()
        sign_as(services, meeting.chair.email)  # queues webhooks; posts none
        assert time.monotonic() - started < 5
        assert all(row.state == PENDING for row in deliveries(services))
        # The sender gives up on a hanging receiver after its timeout, once per pass:
        # its other deliveries wait, untried.
        quick = functools.partial(post_webhook, timeout=0.5)
        started = time.monotonic()
        report = deliver_webhooks(services.ledger, post=quick, limit=100)
        assert time.monotonic() - started < 3
        assert len(report.retrying) == len(deliveries(services)) >= 3
        logged = [a for d in report.retrying for a in attempts(services, d)]
        assert len(logged) == 1
        assert logged[0].status_code is None and "Timeout" in (logged[0].error or "")
        assert deliver_webhooks(services.ledger, post=quick, limit=100).retrying == ()
        receiver.hang.set()
        workflow.advance_meeting(services, scoped)
    # And with nothing listening at all: refused at once, retried later.
    later = dt.datetime.now(dt.UTC) + LATER
    before = {a.id for d in deliveries(services) for a in attempts(services, d.id)}
    report = deliver_webhooks(services.ledger, now=later, limit=100)
    assert report.retrying and not report.delivered
    new = [a for d in deliveries(services) for a in attempts(services, d.id) if a.id not in before]
    assert len(new) == 1 and "ConnectError" in (new[0].error or "")


@pytest.mark.postgres
def test_senders_in_several_processes_never_claim_the_same_delivery(
    services: Services, sample_meeting: Meeting
) -> None:
    register(services)
    for number in range(12):
        meeting = replace(small_meeting(sample_meeting), meeting_id=f"m-{number}")
        workflow.record_meeting(services, meeting, client=CLIENT)
    claims = run_in_threads(4, lambda: claim_due(services.ledger, limit=5))
    ids = [c.id for batch in claims if isinstance(batch, list) for c in batch]
    assert all(isinstance(batch, list) for batch in claims), claims
    assert len(ids) == 12 and len(set(ids)) == 12
    assert claim_due(services.ledger) == []  # claimed: not due again until the lease ends


def test_a_meeting_from_the_command_line_or_a_client_without_url_sends_nothing(
    services: Services, sample_meeting: Meeting
) -> None:
    add_client(services.ledger, "polling", ["KSAU"])
    workflow.record_meeting(services, small_meeting(sample_meeting))
    workflow.record_meeting(services, small_meeting(sample_meeting), client="polling")
    workflow.advance_meeting(services, sample_meeting.meeting_id)
    assert deliveries(services) == []


def test_a_decline_and_its_redraft_are_told_with_the_comment(
    services: Services, sample_meeting: Meeting
) -> None:
    register(services)
    meeting = small_meeting(sample_meeting)
    scoped = start_for(services, meeting)
    (extract,) = extract_rows(services, scoped)
    token = newest_token(services, meeting.chair.email)
    workflow.decline_with_link(services, token, extract.id, "Fel beslutsdatum.")
    workflow.redraft_extract(
        services, scoped, extract.paragraph, text="Rättad text.", actor="Lena Sekreterare"
    )
    told = [(row.event_type, row.payload["data"]) for row in deliveries(services)]
    by_type = {kind: data for kind, data in told}
    assert by_type["extract.declined"]["comment"] == "Fel beslutsdatum."
    assert by_type["extract.declined"]["role"] == "chair"
    assert by_type["protocol.held"]["paragraph"] == str(extract.paragraph)
    assert by_type["extract.redrafted"]["version"] == 2
    assert by_type["protocol.redrafted"]["paragraph"] is None
    assert "Rättad text." not in json.dumps(told)  # the text is the client's own


def test_a_sender_that_dies_after_its_claim_leaves_the_delivery_due_again(
    services: Services, sample_meeting: Meeting, receiver: LoopbackReceiver
) -> None:
    workflow.record_meeting(services, small_meeting(sample_meeting), client=CLIENT)
    now = dt.datetime.now(dt.UTC)
    (claimed,) = claim_due(services.ledger, now=now)  # ... and the sender is killed
    assert deliver_webhooks(services.ledger, now=now).delivered == ()
    lease_over = now + dt.timedelta(seconds=CLAIM_SECONDS)
    assert deliver_webhooks(services.ledger, now=lease_over).delivered == (claimed.id,)
    assert receiver.handled_ids == [claimed.id]
