"""Attacks on webhooks: one meeting system neither receives nor lists another's
events, and cannot verify them with its own secret; the receiver example of
docs/api.md refuses a forged, altered or stale message (and handles a repeated one
once); a webhook carries no personnummer, name, e-mail, server path or link token;
receiver URLs that would leak credentials or go out in clear are refused."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from justering import workflow
from justering.errors import ConfigError, NotFoundError
from justering.ledger.clients import add_client, revoke_client, scoped_meeting_id, set_webhook
from justering.ledger.schema import ClientRow
from justering.ledger.webhooks import list_deliveries, replay
from justering.model.meeting import Meeting
from justering.model.webhooks import check_webhook_url, new_webhook_secret
from justering.webhooks.sender import signed_headers
from justering.workflow.deadlines import send_due_reminders
from justering.workflow.services import Services
from justering.workflow.webhooks import deliver_webhooks
from support.webhooks import Post, loopback_receiver
from support.workflow import sign_as, small_meeting

PERSONAL_NUMBER = "194907012383"


def hook(services: Services, name: str, url: str) -> str:
    add_client(services.ledger, name, ["KSAU"])
    secret = set_webhook(services.ledger, name, url)
    assert secret is not None
    return secret


def point(services: Services, name: str, url: str) -> None:
    with services.ledger.transaction() as session:
        row = session.get(ClientRow, name)
        assert row is not None
        row.webhook_url = url


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_a_client_gets_and_sees_only_its_own_meetings_events(
    services: Services, sample_meeting: Meeting
) -> None:
    secret_a = hook(services, "system-a", "http://127.0.0.1:9/")
    secret_b = hook(services, "system-b", "http://127.0.0.1:9/")
    meeting = small_meeting(sample_meeting)
    with loopback_receiver(secret_a) as a, loopback_receiver(secret_b) as b:
        point(services, "system-a", a.url)
        point(services, "system-b", b.url)
        # Both use the same meeting id: each its own meeting, its own events.
        workflow.record_meeting(services, meeting, client="system-a")
        workflow.record_meeting(services, replace(meeting, place="Annat rum"), client="system-b")
        workflow.advance_meeting(services, scoped_meeting_id("system-b", meeting.meeting_id))
        sign_as(services, meeting.chair.email)  # the only link: system-b's meeting
        deliver_webhooks(services.ledger, limit=100)
        assert a.posts and b.posts and all(p.verified for p in a.posts + b.posts)
        # B's messages posted to A's receiver do not verify with A's secret.
        for post in list(b.posts):
            answer = httpx.post(a.url, content=post.body, headers=_headers_of(post, secret_b))
            assert answer.status_code == 401
    a_types = sorted(e["type"] for e in a.handled)
    b_types = sorted(e["type"] for e in b.handled)
    assert a_types == ["meeting.recorded"]
    assert b_types == ["extract.signed", "meeting.recorded", "protocol.signed"]
    assert {d.client for d in list_deliveries(services.ledger, client="system-a")} == {"system-a"}
    assert len(list_deliveries(services.ledger, client="system-a")) == 1
    b_id = list_deliveries(services.ledger, client="system-b")[0].id
    with pytest.raises(NotFoundError):
        replay(services.ledger, b_id, client="system-a")


def _headers_of(post: Post, secret: str) -> dict[str, str]:
    """Fresh, valid headers for ``post`` under ``secret`` (another client's)."""
    return signed_headers(secret, str(post.webhook_id), post.body.decode())


def test_the_receiver_example_refuses_forged_altered_and_stale_messages() -> None:
    secret = new_webhook_secret()
    body = json.dumps({"type": "extract.signed", "timestamp": "2014-08-19T12:00:00Z", "data": {}})
    with loopback_receiver(secret) as receiver:

        def post(headers: dict[str, str], content: str = body) -> int:
            return httpx.post(receiver.url, content=content, headers=headers).status_code

        good = signed_headers(secret, "msg_1", body)
        assert post(good) == 204
        assert post(good) == 204  # the same delivery again: accepted, handled once
        assert post(signed_headers(new_webhook_secret(), "msg_2", body)) == 401  # forged
        assert post(good, body.replace("signed", "declined")) == 401  # altered body
        assert post({**good, "webhook-id": "msg_3"}) == 401  # the signature is another id's
        stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        assert post(signed_headers(secret, "msg_4", body, now=stale)) == 401  # replayed late
        ahead = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
        assert post(signed_headers(secret, "msg_5", body, now=ahead)) == 401
        assert post({k: v for k, v in good.items() if k != "webhook-signature"}) == 401
        assert post({**good, "webhook-signature": "v1,not-base64!"}) == 401
        assert post({**good, "webhook-signature": "garbage"}) == 401
    assert receiver.handled_ids == ["msg_1"]


def test_webhooks_carry_no_identities_paths_or_tokens(
    services: Services, sample_meeting: Meeting
) -> None:
    hook(services, "nacka-ns", "https://ns.nacka.example/hook")
    meeting = small_meeting(sample_meeting, paragraphs=(96, 97))
    chair = replace(meeting.chair, personal_number=PERSONAL_NUMBER)
    meeting = replace(meeting, chair=chair)
    workflow.record_meeting(services, meeting, client="nacka-ns")
    scoped = scoped_meeting_id("nacka-ns", meeting.meeting_id)
    workflow.advance_meeting(services, scoped)
    sign_as(services, meeting.chair.email)
    workflow.advance_meeting(services, scoped)
    sign_as(services, meeting.adjusters[0].email)
    workflow.advance_meeting(services, scoped)
    sign_as(services, meeting.certifier.email)
    workflow.advance_meeting(services, scoped)  # archives: the bundle's path is not told
    # Overdue: the sample meeting of 2014 is long past its deadline.
    send_due_reminders(services, today=dt.date(2030, 1, 1))
    payloads = json.dumps([d.payload for d in list_deliveries(services.ledger, limit=500)])
    types = {d.event_type for d in list_deliveries(services.ledger, limit=500)}
    assert {"meeting.recorded", "protocol.justered", "extract.archived"} <= types, types
    people = [meeting.chair, *meeting.adjusters, meeting.certifier]
    for person in people:
        assert person.email not in payloads and person.name not in payloads
    assert PERSONAL_NUMBER not in payloads and PERSONAL_NUMBER[2:] not in payloads
    assert str(services.settings.home) not in payloads and "file:" not in payloads
    assert "/s/" not in payloads and "jst_" not in payloads and "whsec_" not in payloads
    assert "nacka-ns:" not in payloads  # the client's own id, not the server's key


def test_the_overdue_notice_is_a_deadline_overdue_webhook(
    services: Services, sample_meeting: Meeting
) -> None:
    hook(services, "nacka-ns", "https://ns.nacka.example/hook")
    meeting = small_meeting(sample_meeting)
    workflow.record_meeting(services, meeting, client="nacka-ns")
    workflow.advance_meeting(services, scoped_meeting_id("nacka-ns", meeting.meeting_id))
    send_due_reminders(services, today=dt.date(2030, 1, 1))
    send_due_reminders(services, today=dt.date(2030, 1, 2))  # told once
    overdue = [d for d in list_deliveries(services.ledger) if d.event_type == "deadline.overdue"]
    assert {(d.payload["data"]["kind"], d.payload["data"]["deadline"]) for d in overdue} == {
        ("extract", "2014-09-02"),
        ("protocol", "2014-09-02"),
    }


def test_a_revoked_client_or_a_removed_url_gets_nothing_more(
    services: Services, sample_meeting: Meeting
) -> None:
    hook(services, "nacka-ns", "https://ns.nacka.example/hook")
    workflow.record_meeting(services, small_meeting(sample_meeting), client="nacka-ns")
    revoke_client(services.ledger, "nacka-ns")
    report = deliver_webhooks(services.ledger, limit=10)
    assert len(report.failed) == 1  # queued before the revocation: never posted
    (delivery,) = list_deliveries(services.ledger)
    assert "no webhook URL" in (delivery.last_error or "")
    with pytest.raises(ConfigError, match="revoked"):
        set_webhook(services.ledger, "nacka-ns", "https://ns.nacka.example/hook")
    assert set_webhook(services.ledger, "nacka-ns", None) is None
    with pytest.raises(NotFoundError):
        set_webhook(services.ledger, "nobody", "https://x.example/")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://ns.nacka.example/hook", "https"),
        ("http://10.0.0.5/hook", "https"),
        ("https://user:pass@ns.nacka.example/hook", "password"),
        ("https://token@ns.nacka.example/hook", "password"),
        ("ftp://ns.nacka.example/hook", "https"),
        ("file:///etc/passwd", "https"),
        ("https:///hook", "no host"),
        ("https://ns.nacka.example/hook#x", "fragment"),
        ("https://ns.nacka.example:99999/", "(?i)port"),
        ("https://ns.nacka.example/a b", "URL"),
        ("", "URL"),
        ("https://x.example/" + "a" * 2000, "URL"),
    ],
)
def test_receiver_urls_that_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        check_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://ns.nacka.example/justering/webhook?kommun=nacka",
        "https://ns.nacka.example:8443/hook",
        "http://127.0.0.1:8081/hook",
        "http://[::1]:8081/",
        "http://localhost/hook",
    ],
)
def test_receiver_urls_that_are_accepted(url: str) -> None:
    assert check_webhook_url(url) == url


def test_each_registration_makes_a_new_secret_of_the_standard_form() -> None:
    import base64

    secrets = {new_webhook_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
