"""The README's "trying it by hand" path, as a new user runs it: ``justering
mailbox``, ``justering serve`` sending e-mail to it over SMTP, ``justering
meeting-ended --url``; then each signer follows the link in their e-mail and signs
through the page's own form, until every extract is archived. Every process is the
real command line; nothing is called in-process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from justering.devtools.mail_sink import parse_received
from justering.devtools.signer_client import sign_everything
from justering.model.manifest import load_sample_meeting
from justering.orchestration.prefect_server import free_port, stop_process, wait_until_healthy
from support.archived import clean_environment, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPOSITORY = Path(__file__).parents[2]
SAMPLE = REPOSITORY / "src" / "justering" / "samples" / "meeting.json"
FINISH_SECONDS = 300


def _start(home: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (home.parent / f"{args[0]}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "justering", "--home", str(home), *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, str, Path]]:
    """The mailbox and the service, as the README starts them: (home, base URL, mailbox)."""
    home, mailbox = tmp_path / "home", tmp_path / "mailbox"
    home.mkdir()
    smtp_port, web_port = free_port(), free_port()
    env = clean_environment()
    sink = _start(home, "mailbox", "--port", str(smtp_port), "--folder", str(mailbox), env=env)
    service = _start(
        home,
        "serve",
        "--port",
        str(web_port),
        env=clean_environment(
            JUSTERING_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
            JUSTERING_MAIL_FROM="Justering <justering@kommun.example>",
            JUSTERING_CONFIG=str(REPOSITORY / "config" / "justering.toml"),
        ),
    )
    base = f"http://127.0.0.1:{web_port}"
    try:
        wait_until_healthy(f"{base}/healthz", service, 180)
        yield home, base, mailbox
    finally:
        stop_process(service)
        stop_process(sink)


def test_a_new_user_takes_the_sample_meeting_to_the_archive_by_e_mail(
    running: tuple[Path, str, Path],
) -> None:
    home, base, mailbox = running
    meeting = load_sample_meeting()
    added = run_cli(home, "clients", "add", "nacka-ns", "--body", "KSAU")
    assert added.returncode == 0, added.stderr
    token = added.stdout.splitlines()[-1]  # the README takes it with `tail -n 1`
    sent = run_cli(
        home,
        "meeting-ended",
        str(SAMPLE),
        "--url",
        base,
        env=clean_environment(JUSTERING_API_TOKEN=token),
    )
    assert sent.returncode == 0, sent.stderr
    assert f"meeting {meeting.meeting_id} started" in sent.stdout

    followed: set[Path] = set()
    deadline = time.monotonic() + FINISH_SECONDS
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            for path in sorted(mailbox.glob("*.eml")):
                if path in followed:
                    continue
                followed.add(path)
                for link in parse_received(path).links:
                    if link.startswith(f"{base}/s/"):
                        assert sign_everything(client, link) is not None
            state = client.get(f"{base}/api/meetings/{meeting.meeting_id}").json()
            extracts = state.get("extracts", [])
            if extracts and all(e["status"] == "archived" for e in extracts):
                break
            assert time.monotonic() < deadline, f"not archived in time: {extracts}"
            time.sleep(0.3)

    mails = [parse_received(path) for path in sorted(mailbox.glob("*.eml"))]
    by_subject = [m.subject for m in mails]
    people = (meeting.chair, *meeting.adjusters, meeting.certifier)
    for person in people:
        to_them = [m for m in mails if person.email in m.recipients]
        requests = [m for m in to_them if m.subject.startswith(("Att signera", "Omedelbar"))]
        receipts = [m for m in to_them if m.subject.startswith("Kvitto")]
        assert len(requests) == 1, by_subject
        assert len(receipts) == 1, by_subject
        assert all(m.sender == "justering@kommun.example" for m in to_them)
    assert len(extracts) == len(meeting.paragraphs)
    verified = run_cli(home, "verify", str(home / "archive"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
