"""Crash anywhere: SIGKILL every ``justering serve`` process (web app, flow runner,
task worker, and the flow-run processes they started) at each stage boundary of
an extract, restart them, and the meeting still ends with every extract archived,
exactly one signature per signer, nothing lost and nothing doubled.

The cluster is the scale-out topology of ``cluster.py`` (PostgreSQL for Prefect
and the ledger, S3 with Object Lock on moto's server, one SMTP server). Kill
points are found by polling the ledger (or by holding the SMTP server's answer),
not by sleeping:

1. while the extracts are being drafted (at least one is in the ledger);
2. while the chair's POST is in flight (it is signing: before or after its commit);
3. right after the first adjuster's signatures are committed, before anything else;
4. while the outbox's sender is sending the certifier's e-mail (the SMTP server
   holds its answer): the message is out, its outbox row not yet marked sent. The
   link and the ``notified`` events were committed before it left, so the link in
   the message works, and after the restart the message is sent again with the
   same Message-ID (once its sender's claim has run out);
5. while the certifier's POST is in flight;
6. while archiving: the first extract is archived, others are still certified.

A signer whose request was cut off follows their link again, as a person would.
No link in any message ever answers 404 (no dead link).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from justering.devtools.mail_sink import ReceivedMail
from justering.model.meeting import Meeting
from support.cluster import FILES_PER_BUNDLE, Cluster, big_meeting, start_cluster

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]

PARAGRAPHS = 6
SERVES = 2
STAGE_SECONDS = 180.0
IN_FLIGHT_SECONDS = 0.15
"""How long after a POST leaves the signer the web apps are killed: signing six
extracts takes longer, so the kill lands while it runs (before the commit, as a
rule; the test holds either way, and says which it was)."""


class Crashes:
    """Drives the meeting through the kill points and keeps what happened."""

    def __init__(self, cluster: Cluster, meeting: Meeting) -> None:
        self.cluster = cluster
        self.meeting = meeting
        self.log: list[str] = []
        self.started = time.monotonic()
        self.restarts: list[float] = []

    def note(self, text: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:6.1f} s  {text}")

    def count(self, kind: str, slot: str | None = None) -> int:
        return self.cluster.count_events(self.meeting.meeting_id, kind, slot)

    def statuses(self) -> Counter[str]:
        return Counter(self.cluster.statuses(self.meeting.meeting_id).values())

    def wait(self, what: str, check: Callable[[], bool]) -> None:
        self.cluster.wait_for(what, check, STAGE_SECONDS)

    def crash_and_restart(self, where: str) -> None:
        self.cluster.kill_all()
        self.note(f"killed {where}: {dict(self.statuses())}")
        self.restarts.append(self.cluster.start_all())

    def newest_link(self, email: str) -> str:
        """The link in the newest message to ``email``, once one has arrived (its
        ``notified`` events are committed just before it leaves)."""
        links = self.cluster.wait_for(
            f"a link for {email}", lambda: self.cluster.signing_links(email), STAGE_SECONDS
        )
        return links[-1]

    def sign_in_background(self, link: str) -> tuple[threading.Thread, list[object]]:
        """Follow ``link`` in a thread; the list gets its result or the exception."""
        outcome: list[object] = []

        def run() -> None:
            try:
                outcome.append(self.cluster.sign(link))
            except (httpx.HTTPError, AssertionError) as error:
                outcome.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread, outcome

    def kill_during_post(self, slot: str, email: str) -> None:
        """Sign as ``email``; kill every process while the POST is being handled; the
        signer then follows the link again."""
        posted = threading.Event()
        self.cluster.transport.before_post = posted.set
        link = self.newest_link(email)
        thread, outcome = self.sign_in_background(link)
        assert posted.wait(STAGE_SECONDS), f"{slot} never posted: {outcome}"
        self.cluster.transport.before_post = None
        time.sleep(IN_FLIGHT_SECONDS)
        self.crash_and_restart(f"during {slot}'s POST")
        thread.join(60)
        recorded = self.count("signed", slot) + self.count("certified", slot)
        assert recorded in (0, PARAGRAPHS), f"{slot}: {recorded} of {PARAGRAPHS}: not all or none"
        self.note(f"{slot}'s cut-off POST: {outcome}; {recorded} signatures recorded")
        again = self.cluster.sign(link)
        assert again is (recorded == 0), f"{slot}: the link was used {again}, recorded {recorded}"
        self.note(f"{slot} followed the link again: {'signed' if again else 'already signed'}")


def hold_mail_to(cluster: Cluster, email: str) -> tuple[threading.Event, threading.Event]:
    """Make the SMTP server hold its answer to the first signing request to ``email``
    (the message is stored; the sender waits): returns (held, release)."""
    held, release = threading.Event(), threading.Event()

    def gate(mail: ReceivedMail) -> None:
        if email in mail.recipients and not held.is_set() and any("/s/" in u for u in mail.links):
            held.set()
            release.wait(STAGE_SECONDS)

    cluster.mail_gate = gate
    return held, release


def test_killing_every_process_at_each_stage_loses_and_doubles_nothing(
    tmp_path: Path, postgres_admin_url: str, s3_endpoint: str
) -> None:
    meeting = big_meeting(PARAGRAPHS, adjusters=2)
    chair, (adjuster0, adjuster1), certifier = (
        meeting.chair.email,
        [a.email for a in meeting.adjusters],
        meeting.certifier.email,
    )
    started = time.monotonic()
    with start_cluster(
        tmp_path / "cluster",
        serves=SERVES,
        postgres_admin_url=postgres_admin_url,
        s3_endpoint=s3_endpoint,
        organisation=meeting.municipality,
    ) as cluster:
        run = Crashes(cluster, meeting)
        cluster.post_meeting(meeting, via=0)

        # 1. While drafting.
        run.wait("the first extract drafted", lambda: run.count("drafted") >= 1)
        run.crash_and_restart("while drafting")

        # 2. The chair, mid-POST.
        run.wait("the chair's link", lambda: run.count("notified", "chair-0") == PARAGRAPHS)
        run.kill_during_post("chair-0", chair)

        # 3. The first adjuster, right after the commit.
        run.wait(
            "the adjusters' links",
            lambda: (
                run.count("notified", "adjuster-0") == PARAGRAPHS
                and run.count("notified", "adjuster-1") == PARAGRAPHS
            ),
        )
        thread, outcome = run.sign_in_background(run.newest_link(adjuster0))
        run.wait("adjuster-0's signatures", lambda: run.count("signed", "adjuster-0") > 0)
        run.crash_and_restart("right after adjuster-0's commit")
        thread.join(60)
        assert run.count("signed", "adjuster-0") == PARAGRAPHS
        assert cluster.sign(run.newest_link(adjuster0)) is False, "adjuster-0 signed twice"
        run.note(f"adjuster-0's POST: {outcome}; the link again: already signed")

        # 4. Killed after the certifier's message left, before it was marked sent.
        held, release = hold_mail_to(cluster, certifier)
        thread, outcome = run.sign_in_background(run.newest_link(adjuster1))
        assert held.wait(STAGE_SECONDS), f"no request to the certifier\n{cluster.describe()}"
        held_link = run.newest_link(certifier)
        held_id = cluster.messages_to(certifier)[-1].message_id
        cluster.kill_all()
        release.set()
        cluster.mail_gate = None
        run.note(f"killed while the certifier's message was being sent: {dict(run.statuses())}")
        # Queued, with its link and events, before it left: nothing to roll back.
        assert run.count("notified", "certifier-0") == PARAGRAPHS
        recorded_ids = {
            e.detail.get("message_id")
            for e in cluster.events(meeting.meeting_id)
            if e.kind == "notified" and e.slot == "certifier-0"
        }
        assert recorded_ids == {held_id}, (recorded_ids, held_id)
        run.restarts.append(cluster.start_all())
        thread.join(60)
        assert run.count("signed", "adjuster-1") == PARAGRAPHS  # committed before the advance
        with cluster.client() as client:
            assert client.get(held_link).status_code == 200, "the link in the message is dead"

        # 5. The certifier, mid-POST.
        run.wait("the certifier's notice", lambda: run.count("notified", "certifier-0") > 0)
        run.kill_during_post("certifier-0", certifier)

        # 6. While archiving.
        assert run.statuses()["certified"] + run.statuses()["archived"] == PARAGRAPHS
        run.wait(
            "archiving under way",
            lambda: run.statuses()["archived"] >= 1 or run.statuses()["certified"] == 0,
        )
        partial = run.statuses()
        run.crash_and_restart("while archiving")
        run.wait("every extract archived", lambda: run.statuses()["archived"] == PARAGRAPHS)

        # The message that was out when its sender died is sent again (its claim ran
        # out), once, as the same message.
        def copies() -> list[str]:
            return [m.message_id for m in cluster.messages_to(certifier) if held_link in m.links]

        run.wait("the certifier's message sent again", lambda: len(copies()) >= 2)
        run.note(f"the certifier's message was sent again: {copies()}")
        seconds = time.monotonic() - started

        events = cluster.events(meeting.meeting_id)
        versions = cluster.object_versions()
        verify = subprocess.run(
            [sys.executable, "-m", "justering", "verify", "--json", cluster.archive_url + "/"],
            env=cluster.serves[0].env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        mail = {
            email: len(cluster.signing_links(email))
            for email in (chair, adjuster0, adjuster1, certifier)
        }
        resent = copies()
        dead_links = cluster.early_clicks

    print("\n" + "\n".join(run.log))
    print(f"restarts took {[round(s, 1) for s in run.restarts]} s; whole test {seconds:.0f} s")
    print(f"signing requests per signer: {mail}")
    assert partial["certified"] >= 1, f"archiving finished before the kill: {partial}"
    assert resent == [held_id, held_id], "the message sent again is not the same message once"
    assert dead_links == 0, f"{dead_links} times a link in a message answered 404"

    by_extract: dict[int, Counter[tuple[str, str | None]]] = {}
    for event in events:
        assert event.version == 1
        by_extract.setdefault(event.paragraph, Counter())[(event.kind, event.slot)] += 1
    assert sorted(by_extract) == [p.number for p in meeting.paragraphs]
    once = {
        ("drafted", None): 1,
        ("notified", "chair-0"): 1,
        ("signed", "chair-0"): 1,
        ("notified", "adjuster-0"): 1,
        ("signed", "adjuster-0"): 1,
        ("notified", "adjuster-1"): 1,
        ("signed", "adjuster-1"): 1,
        ("notified", "certifier-0"): 1,
        ("certified", "certifier-0"): 1,
        ("archived", None): 1,
    }
    for paragraph, counts in by_extract.items():
        assert {k: counts[k] for k in once} == once, (paragraph, counts)

    # one bundle per extract, and each protocol's (archived once it was justered: the
    # protocol, and the omedelbar justering's, the big meeting having such paragraphs)
    protocols = 1 + bool(meeting.immediate_numbers)
    assert len(versions) == (PARAGRAPHS + protocols) * FILES_PER_BUNDLE, sorted(versions)
    assert set(versions.values()) == {1}, {k: n for k, n in versions.items() if n != 1}
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    report = json.loads(verify.stdout)
    assert report["valid"] is True and len(report["results"]) == PARAGRAPHS + protocols
