"""A meeting system reads its own webhook deliveries through the API and asks for a
failed one again (``GET /api/webhooks/deliveries``, ``GET …/{id}``, ``POST
…/{id}/redeliver``), on PostgreSQL, through the real app: it sees only its own
(another's answers 404 exactly like one that does not exist), the list pages
without loss or repetition, and every malformed parameter is refused by name;
asking twice (or at once from many threads) sends the message once more, not
twice; nothing secret or personal is in any answer."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from justering import workflow
from justering.ledger.clients import add_client, revoke_client, set_webhook
from justering.ledger.schema import WebhookAttemptRow, WebhookDeliveryRow
from justering.model.meeting import Meeting
from justering.web.app import Hooks, create_app
from justering.workflow.services import Services
from justering.workflow.webhooks import MAX_PAGE, deliver_webhooks
from support.webhooks import LoopbackReceiver, loopback_receiver, queue_deliveries
from support.workflow import run_in_threads, small_meeting

PERSONAL_NUMBER = "194907012383"
LIST = "/api/webhooks/deliveries"


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def _cursor(text: str) -> str:
    """A cursor made up as this API's look (base64url of ``created_at|id``)."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@dataclass
class System:
    """A registered meeting system: its name, its token's header, its receiver."""

    name: str
    auth: dict[str, str]
    receiver: LoopbackReceiver


@dataclass
class Api:
    http: TestClient
    a: System
    b: System

    def get(self, system: System, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params, headers=system.auth)

    def redeliver(self, system: System, delivery_id: str) -> httpx.Response:
        return self.http.post(f"{LIST}/{delivery_id}/redeliver", headers=system.auth)


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    """Two meeting systems, each with a loopback receiver, and the app."""
    systems = []
    with loopback_receiver("whsec_" + "A" * 44) as ra, loopback_receiver("whsec_" + "B" * 44) as rb:
        for name, receiver in (("system-a", ra), ("system-b", rb)):
            token = add_client(services.ledger, name, ["KSAU"]).token
            secret = set_webhook(services.ledger, name, receiver.url)
            assert secret is not None
            receiver.use_secret(secret)
            systems.append(System(name, {"Authorization": f"Bearer {token}"}, receiver))
        app = create_app(services, Hooks(lambda _: None, lambda _: None))
        with TestClient(app) as http:
            yield Api(http, *systems)


def _record(services: Services, meeting: Meeting, system: System) -> None:
    workflow.record_meeting(services, meeting, client=system.name)


def _state(services: Services, delivery_id: str) -> tuple[str, int, int]:
    """A delivery's state, back-off count and attempts logged, as the ledger has them."""
    with services.ledger.reading() as session:
        row = session.get(WebhookDeliveryRow, delivery_id)
        assert row is not None
        logged = session.execute(
            select(WebhookAttemptRow.id).where(WebhookAttemptRow.delivery_id == delivery_id)
        ).all()
        return row.state, row.attempts, len(logged)


def _fail_all(services: Services, receiver: LoopbackReceiver) -> None:
    """Deliver what is due with the receiver down and no retries: all ``failed``."""
    receiver.outage = 503
    deliver_webhooks(services.ledger, limit=500, delays=())
    receiver.outage = None


def test_a_client_lists_its_own_deliveries_with_how_each_went(
    api: Api, services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    _record(services, meeting, api.a)
    _record(services, replace(meeting, place="Annat rum"), api.b)
    api.a.receiver.outage = 503
    deliver_webhooks(services.ledger, limit=10, delays=())
    listed = api.get(api.a, LIST)
    assert listed.status_code == 200, listed.text
    [failed] = listed.json()["deliveries"]
    assert listed.json()["next"] is None
    assert failed["type"] == "meeting.recorded"
    assert failed["meeting_id"] == meeting.meeting_id  # the client's own id
    assert failed["status"] == "failed"
    assert failed["attempts"] == 1 and failed["last_http_status"] == 503
    assert failed["last_error"] == "HTTP 503" and failed["last_attempt_at"]
    assert failed["next_attempt_at"] is None and failed["delivered_at"] is None
    assert api.get(api.a, f"{LIST}/{failed['id']}").json() == failed
    [delivered] = api.get(api.b, LIST).json()["deliveries"]
    assert delivered["id"] != failed["id"]
    assert delivered["status"] == "delivered" and delivered["last_http_status"] == 204
    assert delivered["last_error"] is None and delivered["delivered_at"]
    assert api.get(api.a, LIST, status="delivered").json()["deliveries"] == []
    assert [d["id"] for d in api.get(api.b, LIST, status="delivered").json()["deliveries"]] == [
        delivered["id"]
    ]


def test_another_clients_delivery_answers_as_one_that_does_not_exist(
    api: Api, services: Services
) -> None:
    [theirs] = queue_deliveries(services.ledger, api.b.name, 1)
    _fail_all(services, api.b.receiver)
    posts_before = len(api.b.receiver.posts)
    missing = "msg_" + "0" * 32
    for request in (
        lambda i: api.get(api.a, f"{LIST}/{i}"),
        lambda i: api.redeliver(api.a, i),
    ):
        other, absent = request(theirs), request(missing)
        assert other.status_code == absent.status_code == 404
        assert other.json()["error"].replace(theirs, "ID") == absent.json()["error"].replace(
            missing, "ID"
        )
        assert set(other.json()) == set(absent.json()) == {"error"}
        assert dict(other.headers) | {"content-length": ""} == dict(absent.headers) | {
            "content-length": ""
        }
    assert _state(services, theirs) == ("failed", 1, 1)  # A's redeliver changed nothing
    deliver_webhooks(services.ledger, limit=10)
    assert len(api.b.receiver.posts) == posts_before
    assert api.get(api.a, LIST).json()["deliveries"] == []
    # B itself may.
    assert api.redeliver(api.b, theirs).status_code == 202


@pytest.mark.parametrize(
    "delivery_id",
    [
        "1",
        "-1",
        "0",
        "msg_",
        "msg_" + "g" * 32,
        "MSG_" + "0" * 32,
        "msg_" + "0" * 33,
        "msg_" + "0" * 32 + "%00",
        "%00",
        "' OR '1'='1",
        "msg_%2E%2E%2Fclients",
        "x" * 5000,
    ],
)
def test_a_malformed_delivery_id_is_not_found(api: Api, delivery_id: str) -> None:
    for response in (
        api.get(api.a, f"{LIST}/{delivery_id}"),
        api.redeliver(api.a, delivery_id),
    ):
        assert response.status_code == 404, response.text
        # Ours, or the router's own for a path that matches no route ("/" decoded).
        assert set(response.json()) in ({"error"}, {"detail"}), response.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": str(MAX_PAGE + 1)}, "limit"),
        ({"limit": "100000000"}, "limit"),
        ({"limit": "9" * 5000}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": ["5", "500"]}, "limit"),
        ({"status": "delivered'--"}, "status"),
        ({"status": "FAILED"}, "status"),
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "A" * 1000}, "after"),
        ({"after": ""}, "after"),
        ({"after": _cursor("0001-01-01T00:00:00+14:00|msg_x")}, "after"),  # before year 1 in UTC
        ({"after": _cursor("2014-08-19T12:00:00|msg_x")}, "after"),  # no time zone
        ({"after": _cursor("2014-08-19T12:00:00+00:00|msg_\x00")}, "after"),
        ({"after": _cursor("yesterday|msg_x")}, "after"),
        ({"client": "system-b"}, "client"),
    ],
)
def test_bad_list_parameters_are_refused_by_name(
    api: Api, params: dict[str, Any], field: str
) -> None:
    response = api.get(api.a, LIST, **params)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field


def test_the_list_pages_newest_first_without_loss_or_repetition(
    api: Api, services: Services
) -> None:
    ours = queue_deliveries(services.ledger, api.a.name, 11)
    queue_deliveries(services.ledger, api.b.name, 4)
    # Four of ours queued at the very same moment: the order still holds across pages.
    same = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    with services.ledger.transaction() as session:
        session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id.in_(ours[3:7]))
            .values(created_at=same)
        )
    seen: list[dict[str, Any]] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": "3"} | ({"after": after} if after else {})
        page = api.get(api.a, LIST, **params).json()
        pages += 1
        assert len(page["deliveries"]) <= 3
        seen += page["deliveries"]
        after = page["next"]
        if after is None:
            break
    assert pages == 4
    assert sorted(d["id"] for d in seen) == sorted(ours)
    with services.ledger.reading() as session:
        stored = session.execute(
            select(WebhookDeliveryRow.created_at, WebhookDeliveryRow.id).where(
                WebhookDeliveryRow.client == api.a.name
            )
        ).all()
    assert [d["id"] for d in seen] == [row.id for row in sorted(stored, reverse=True)]
    # B's cursor in A's hands is only a position: A still sees only its own.
    b_page = api.get(api.b, LIST, limit="1").json()
    a_after_b = api.get(api.a, LIST, after=b_page["next"]).json()["deliveries"]
    assert {d["id"] for d in a_after_b} <= set(ours)
    # Within bounds: the largest page is allowed, the default lists 50.
    assert len(api.get(api.a, LIST, limit=str(MAX_PAGE)).json()["deliveries"]) == 11


def test_redelivering_a_failed_delivery_sends_it_once(api: Api, services: Services) -> None:
    [mine] = queue_deliveries(services.ledger, api.a.name, 1)
    _fail_all(services, api.a.receiver)
    assert _state(services, mine) == ("failed", 1, 1)
    first = api.redeliver(api.a, mine)
    assert first.status_code == 202 and first.json()["status"] == "pending"
    assert first.json()["next_attempt_at"] is not None
    again = api.redeliver(api.a, mine)  # a retried request: nothing more happens
    assert again.status_code == 202 and again.json() == first.json()
    posts = len(api.a.receiver.posts)
    report = deliver_webhooks(services.ledger, limit=10)
    assert report.delivered == (mine,)
    assert len(api.a.receiver.posts) == posts + 1 and api.a.receiver.posts[-1].verified
    assert api.a.receiver.handled_ids[-1] == mine  # the same webhook-id as before
    done = api.redeliver(api.a, mine)  # delivered: not sent again
    assert done.status_code == 200 and done.json()["status"] == "delivered"
    assert deliver_webhooks(services.ledger, limit=10).delivered == ()
    assert len(api.a.receiver.posts) == posts + 1
    assert _state(services, mine) == ("delivered", 0, 2)  # two attempts logged


def test_many_redeliveries_at_once_send_it_once(api: Api, services: Services) -> None:
    [mine] = queue_deliveries(services.ledger, api.a.name, 1)
    _fail_all(services, api.a.receiver)
    results = run_in_threads(8, lambda: api.redeliver(api.a, mine).status_code)
    assert results == [202] * 8
    posts = len(api.a.receiver.posts)
    deliver_webhooks(services.ledger, limit=10)
    deliver_webhooks(services.ledger, limit=10)
    assert len(api.a.receiver.posts) == posts + 1


def test_no_token_or_a_revoked_one_reads_nothing(api: Api, services: Services) -> None:
    [mine] = queue_deliveries(services.ledger, api.a.name, 1)
    for path in (LIST, f"{LIST}/{mine}"):
        assert api.http.get(path).status_code == 401
        assert api.http.get(path, headers={"Authorization": "Bearer jst_nope"}).status_code == 401
    assert api.http.post(f"{LIST}/{mine}/redeliver").status_code == 401
    revoke_client(services.ledger, api.a.name)
    assert api.get(api.a, LIST).status_code == 401
    assert api.redeliver(api.a, mine).status_code == 401


def test_answers_carry_no_secrets_or_personal_data(
    api: Api, services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    meeting = replace(meeting, chair=replace(meeting.chair, personal_number=PERSONAL_NUMBER))
    _record(services, meeting, api.a)
    _fail_all(services, api.a.receiver)
    listed = api.get(api.a, LIST).json()
    [one] = listed["deliveries"]
    answers = json.dumps([listed, api.get(api.a, f"{LIST}/{one['id']}").json()])
    answers += api.redeliver(api.a, one["id"]).text
    for person in (meeting.chair, *meeting.adjusters, meeting.certifier):
        assert person.email not in answers and person.name not in answers
    assert PERSONAL_NUMBER not in answers and PERSONAL_NUMBER[2:] not in answers
    assert "whsec_" not in answers and "jst_" not in answers
    assert api.a.receiver.url not in answers and "127.0.0.1" not in answers
    assert f"{api.a.name}:" not in answers and str(services.settings.home) not in answers
