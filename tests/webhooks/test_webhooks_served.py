"""Webhooks delivered by orchestration, as an operator runs it: ``justering clients
add`` and ``clients webhook`` on the command line, ``justering serve`` (its task
worker and reconciler deliver), a meeting posted with the client's token and signed
through the links in the outbox, the receiver (docs/api.md's example on loopback)
down for its first posts. Then ``justering webhooks`` lists every delivery as
delivered and ``webhooks replay`` sends one again; the meeting system pages through
the same deliveries with the API and asks for one again."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from justering.devtools.mail_sink import parse_received
from justering.devtools.signer_client import sign_everything
from justering.ledger.database import Ledger
from justering.ledger.schema import WebhookDeliveryRow
from justering.ledger.webhooks import RETRY_DELAYS
from justering.mail.delivery import outbox_messages
from justering.model.manifest import load_sample_meeting
from justering.model.meeting import meeting_to_dict
from justering.orchestration.prefect_server import free_port, stop_process, wait_until_healthy
from support.archived import clean_environment, run_cli
from support.webhooks import LIFECYCLE, LoopbackReceiver, loopback_receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPOSITORY = Path(__file__).parents[2]
FINISH_SECONDS = 300
DOWN_FOR = 3
"""The receiver answers 503 to its first posts."""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, LoopbackReceiver, str]]:
    """A home with a meeting system whose webhooks go to a loopback receiver, and
    ``justering serve`` on it: (home, base URL, receiver, the client's token)."""
    home = tmp_path / "home"
    home.mkdir()
    added = run_cli(home, "clients", "add", "nacka-ns", "--body", "KSAU")
    assert added.returncode == 0, added.stderr
    token = added.stdout.splitlines()[-1]
    with loopback_receiver("whsec_" + "A" * 44) as receiver:
        hooked = run_cli(home, "clients", "webhook", "nacka-ns", receiver.url)
        assert hooked.returncode == 0, hooked.stderr
        receiver.use_secret(hooked.stdout.splitlines()[-1])
        receiver.fail_next = DOWN_FOR
        port = free_port()
        log = (tmp_path / "serve.log").open("ab")
        service = subprocess.Popen(
            [sys.executable, "-m", "justering", "--home", str(home), "serve", "--port", str(port)],
            env=clean_environment(
                JUSTERING_CONFIG=str(REPOSITORY / "config" / "justering.toml"),
                JUSTERING_RECONCILE_SECONDS="1",
                JUSTERING_DEADLINE_PASSES="paused",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(f"{base}/healthz", service, 180)
            yield home, base, receiver, token
        finally:
            stop_process(service)


def _deliveries(home: Path) -> list[dict[str, object]]:
    listed = run_cli(home, "webhooks", "--json", "--limit", "500")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout)["deliveries"])


def test_serve_delivers_every_event_once_per_id_across_an_outage(
    served: tuple[Path, str, LoopbackReceiver, str],
) -> None:
    home, base, receiver, token = served
    meeting = load_sample_meeting()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=120, headers=auth) as client:
        answer = client.post(f"{base}/api/meetings", json=meeting_to_dict(meeting))
        assert answer.status_code == 202, answer.text
        followed: set[Path] = set()
        deadline = time.monotonic() + FINISH_SECONDS
        while True:
            for path in outbox_messages(home / "outbox"):
                if path not in followed:
                    followed.add(path)
                    for link in parse_received(path).links:
                        if link.startswith(f"{base}/s/"):
                            assert sign_everything(client, link) is not None
            state = client.get(f"{base}/api/meetings/{meeting.meeting_id}").json()
            documents = state.get("extracts", []) + state.get("protocols", [])
            if documents and all(d["status"] == "archived" for d in documents):
                break
            assert time.monotonic() < deadline, f"not archived in time: {documents}"
            time.sleep(0.3)

    deadline = time.monotonic() + 60
    listed = _deliveries(home)
    while {d["status"] for d in listed} != {"delivered"}:
        assert time.monotonic() < deadline, listed
        time.sleep(1)
        listed = _deliveries(home)

    ids = [str(d["id"]) for d in listed]
    assert sorted(receiver.handled_ids) == sorted(ids)
    assert len(set(receiver.handled_ids)) == len(ids)
    assert all(post.verified for post in receiver.posts), receiver.posts
    refused = [p.webhook_id for p in receiver.posts if p.status == 503]
    assert len(refused) == DOWN_FOR
    types = {str(d["type"]) for d in listed}
    assert types >= LIFECYCLE, types
    paragraphs = {p.number for p in meeting.paragraphs}
    for kind in ("extract.signed", "extract.certified", "extract.archived"):
        seen = [e["data"]["paragraph"] for e in receiver.handled if e["type"] == kind]
        assert set(seen) == paragraphs, (kind, seen)
    archived = [e for e in receiver.handled if e["type"] == "extract.archived"]
    assert len(archived) == len(paragraphs)  # each event once
    assert all(e["data"]["meeting_id"] == meeting.meeting_id for e in receiver.handled)

    # Each refused delivery was retried after its back-off (5 s, then 1 min), not at once.
    for refused_id in set(refused):
        times = [p.at for p in receiver.posts if p.webhook_id == refused_id]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        waits = [delay.total_seconds() for delay in RETRY_DELAYS[: len(gaps)]]
        assert gaps and all(gap >= wait - 0.5 for gap, wait in zip(gaps, waits, strict=True))

    first = refused[0]
    tries = [p.webhook_id for p in receiver.posts].count(first)
    replayed = run_cli(home, "webhooks", "replay", first)
    assert replayed.returncode == 0, replayed.stderr
    assert [p.webhook_id for p in receiver.posts].count(first) == tries + 1
    assert receiver.handled_ids.count(first) == 1
    listed = run_cli(home, "webhooks", "--client", "nacka-ns")
    assert listed.returncode == 0 and first in listed.stdout and "delivered" in listed.stdout
    unknown = run_cli(home, "webhooks", "replay", "msg_nope")
    assert unknown.returncode == 2 and "msg_nope" in unknown.stderr
    _the_meeting_system_reads_and_redelivers_through_the_api(base, auth, receiver, home, ids)


def _the_meeting_system_reads_and_redelivers_through_the_api(
    base: str, auth: dict[str, str], receiver: LoopbackReceiver, home: Path, ids: list[str]
) -> None:
    """The same deliveries through the served API, page by page; one made ``failed``
    (as after every retry) is asked for again and the service's reconciler sends it."""
    seen: list[str] = []
    with httpx.Client(base_url=base, headers=auth, timeout=30) as api:
        after: str | None = None
        while True:
            params = {"limit": "7"} | ({"after": after} if after else {})
            page = api.get("/api/webhooks/deliveries", params=params).json()
            seen += [d["id"] for d in page["deliveries"]]
            after = page["next"]
            if after is None:
                break
        assert sorted(seen) == sorted(ids)
        target = seen[-1]  # the oldest: meeting.recorded
        ledger = Ledger(f"sqlite:///{home / 'justering.db'}")
        try:
            with ledger.transaction() as session:
                session.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id == target)
                    .values(state="failed", delivered_at=None)
                )
        finally:
            ledger.dispose()
        posts = [p.webhook_id for p in receiver.posts].count(target)
        asked = api.post(f"/api/webhooks/deliveries/{target}/redeliver")
        assert asked.status_code == 202 and asked.json()["status"] == "pending", asked.text
        deadline = time.monotonic() + 60
        while api.get(f"/api/webhooks/deliveries/{target}").json()["status"] != "delivered":
            assert time.monotonic() < deadline, "not redelivered by the service"
            time.sleep(0.5)
        assert [p.webhook_id for p in receiver.posts].count(target) == posts + 1
        assert api.post(f"/api/webhooks/deliveries/{target}/redeliver").status_code == 200
        assert [p.webhook_id for p in receiver.posts].count(target) == posts + 1
