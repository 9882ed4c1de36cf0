"""Scale-out: the topology of docs/deploy.md on one machine takes a 50-paragraph
meeting to the archive with no extract processed twice.

Prefect's server and the ledger on PostgreSQL, the archive in an S3 bucket with
Object Lock (moto's server), every process's e-mail in one SMTP server, and two
``justering serve`` processes (web app, flow runner, task worker, reconciler
each), started at the same moment on an empty ledger. The meeting system posts
the meeting to one web app; the signers follow their e-mailed links through a
round-robin load balancer, so each GET and its POST land on different web apps,
and the two adjusters sign at the same time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from justering.config import Settings
from justering.errors import ConfigError
from justering.ledger.database import Ledger
from justering.model.roles import Role
from justering.orchestration.serve import (
    RECONCILE_SECONDS,
    reconcile_seconds,
    warn_unless_parameters_are_shared,
)
from support.cluster import (
    FILES_PER_BUNDLE,
    PARAMETER_BLOCK,
    Cluster,
    big_meeting,
    moto_requests,
    start_cluster,
)
from support.steps import EXTRACT_STEPS, assert_each_step_once
from support.workflow import run_in_threads

PARAGRAPHS = 50
SERVES = 2
FINISH_SECONDS = 600.0
STAGES = (
    "awaiting_chair",
    "awaiting_adjusters",
    "awaiting_protocol",
    "awaiting_certifier",
    "certified",
    "archived",
)
MESSAGE_ID_PID = re.compile(r"<\d+\.(\d+)\.")
"""Python's ``make_msgid`` puts the sending process's pid second."""


@pytest.mark.postgres
def test_processes_opening_an_empty_ledger_together_all_start(postgres_url: str) -> None:
    """Serve processes started together (a reboot) on a new PostgreSQL ledger each
    create the schema if it is missing: none may fail because another did it first."""
    results = run_in_threads(4, lambda: Ledger(postgres_url).dispose())
    assert [repr(r) for r in results if isinstance(r, BaseException)] == []


def test_the_reconciler_period_comes_from_the_environment() -> None:
    assert reconcile_seconds({}) == RECONCILE_SECONDS
    assert reconcile_seconds({"JUSTERING_RECONCILE_SECONDS": " 2.5 "}) == 2.5
    for bad in ("0", "-1", "soon", "nan"):
        with pytest.raises(ConfigError, match="JUSTERING_RECONCILE_SECONDS"):
            reconcile_seconds({"JUSTERING_RECONCILE_SECONDS": bad})


def test_serve_warns_when_other_processes_cannot_read_its_task_parameters(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.settings import PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK, temporary_settings

    shared = replace(settings, prefect_api_url="http://prefect.example/api")
    warning = "PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK is not set"
    with temporary_settings(restore_defaults={PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK}):
        warn_unless_parameters_are_shared(settings)  # a local Prefect server: one process
        assert warning not in caplog.text
        warn_unless_parameters_are_shared(shared)
        assert warning in caplog.text
    caplog.clear()
    with temporary_settings({PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK: PARAMETER_BLOCK}):
        warn_unless_parameters_are_shared(shared)
    assert warning not in caplog.text


def follow_links_until_archived(
    cluster: Cluster, meeting_id: str, emails: list[str], reached: dict[str, float]
) -> int:
    """Act as every signer: follow each new link as it arrives (in parallel, so the
    adjusters sign at the same moment), until every extract is archived; how many
    links were followed. ``reached`` gets the moment every extract reached each stage."""
    followed: set[str] = set()
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        while True:
            new = [
                link
                for email in emails
                for link in cluster.signing_links(email)
                if link not in followed
            ]
            followed.update(new)
            for done in [pool.submit(cluster.sign, link) for link in new]:
                assert done.result(), "a fresh link was already used"
            cluster.note_pids()
            statuses = cluster.statuses(meeting_id)
            if len(statuses) == PARAGRAPHS:
                lowest = min(STAGES.index(status) for status in statuses.values())
                for stage in STAGES[: lowest + 1]:
                    reached.setdefault(stage, round(time.monotonic() - started, 1))
                if lowest == STAGES.index("archived"):
                    return len(followed)
            assert time.monotonic() - started < FINISH_SECONDS, (
                f"not archived in time: {Counter(statuses.values())}\n{cluster.describe()}"
            )
            time.sleep(0.1)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def extract_pdf_requests(s3_log: list[str], bucket: str) -> Counter[str]:
    """Per archived extract, how often its ``extract.pdf`` was written (PUT, whether
    S3 took it or answered 412, already there) or read (GET: a second archiver reads
    the bundle back before it records it). One PUT per extract means one archiver."""
    requests: Counter[str] = Counter()
    pattern = re.compile(rf'"(PUT|GET) /{re.escape(bucket)}/([^ ?]+)/extract\.pdf HTTP/')
    for line in s3_log:
        found = pattern.search(ANSI.sub("", line))
        if found:
            requests[found[2]] += 1
    return requests


@pytest.mark.slow
def test_two_serve_processes_take_a_50_paragraph_meeting_to_the_archive(
    tmp_path: Path, postgres_admin_url: str, s3_endpoint: str
) -> None:
    meeting = big_meeting(PARAGRAPHS, adjusters=2)
    signers = [s for role in Role for s in meeting.signers(role)]
    emails = [s.person.email for s in signers]
    timings: dict[str, float] = {}
    begun = time.monotonic()
    with (
        moto_requests() as s3_log,
        start_cluster(
            tmp_path / "cluster",
            serves=SERVES,
            postgres_admin_url=postgres_admin_url,
            s3_endpoint=s3_endpoint,
            organisation=meeting.municipality,
        ) as cluster,
    ):
        timings["cluster started"] = round(time.monotonic() - begun, 1)
        cluster.post_meeting(meeting, via=0)
        links = follow_links_until_archived(cluster, meeting.meeting_id, emails, timings)
        archivers = extract_pdf_requests(list(s3_log), cluster.bucket)
        events = cluster.events(meeting.meeting_id)
        versions = cluster.object_versions()
        mail = {email: cluster.messages_to(email) for email in emails}
        served = dict(cluster.transport.served)
        senders = Counter(
            (e.slot, cluster.serve_of_pid(int(MESSAGE_ID_PID.search(e.detail["message_id"])[1])))
            for e in events
            if e.kind == "notified"
        )
        verify = subprocess.run(
            [sys.executable, "-m", "justering", "verify", "--json", cluster.archive_url + "/"],
            env=cluster.serves[0].env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        flow_runs = httpx.post(
            f"{cluster.prefect_api_url}/flow_runs/filter", json={}, timeout=30
        ).json()
        logs = {serve.index: serve.log_text() for serve in cluster.serves}
        early_clicks = cluster.early_clicks

    advances = {i: text.count("Submitting task run 'advance-meeting'") for i, text in logs.items()}
    print(f"\nscale-out, seconds after the meeting was posted: {timings}")
    print(f"requests per web app: {served}")
    print(f"advance-meeting task runs per serve: {advances}")
    print(f"notified events by (slot, serve that sent the e-mail): {dict(senders)}")
    print(f"links opened before their commit (404, then tried again): {early_clicks}")
    twice = {prefix: n for prefix, n in archivers.items() if n > 1}
    print(f"extracts archived by more than one process: {len(twice)} of {len(archivers)}")

    # Every extract archived, each step once in the ledger.
    assert links == len(signers), "one link per signer: one message per stage"
    justered = ("justered", None)  # by its protocol (or the omedelbar justering's)
    notified = [("notified", signer.slot) for signer in signers]
    assert_each_step_once(events, meeting, [*EXTRACT_STEPS, justered, *notified])

    # Each signer: one signing request (one link for all 50 and the protocols) and one
    # receipt; the certifier, the secretary too, also a notice of each justering (the
    # protocol, and the omedelbar justering's: the big meeting has such paragraphs).
    protocols = 1 + bool(meeting.immediate_numbers)
    for email, received in mail.items():
        subjects = [m.subject for m in received]
        assert len([m for m in received if any("/s/" in u for u in m.links)]) == 1, subjects
        expected = 2 + (protocols if email == meeting.certifier.email else 0)
        assert len(received) == expected, (email, subjects)

    # The archive: one bundle per extract and per protocol, one version per object,
    # all verified.
    assert len(versions) == (PARAGRAPHS + protocols) * FILES_PER_BUNDLE, sorted(versions)
    assert set(versions.values()) == {1}, {k: n for k, n in versions.items() if n != 1}
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-3000:]
    report = json.loads(verify.stdout)
    assert report["valid"] is True and len(report["results"]) == PARAGRAPHS + protocols

    # One flow run for the meeting, though two runners serve the deployment.
    ran = [
        run
        for run in flow_runs
        if run["parameters"].get("meeting_id") == cluster.key(meeting.meeting_id)
    ]
    assert len(ran) == 1 and ran[0]["state_type"] == "COMPLETED", ran

    # The work was spread: both web apps answered GETs and POSTs, both task workers
    # ran advances, each able to read the parameters the other process stored.
    for index in range(SERVES):
        assert served.get((index, "GET"), 0) >= 1 and served.get((index, "POST"), 0) >= 1, served
        assert advances[index] >= 1, advances
        assert "Failed to read parameters" not in logs[index]
        assert "PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK is not set" not in logs[index]

    # No extract was processed twice: one archiver wrote each bundle, nobody re-did it.
    assert len(archivers) == PARAGRAPHS, sorted(archivers)
    assert not twice, f"extracts archived by two processes: {sorted(twice.items())[:5]} …"
