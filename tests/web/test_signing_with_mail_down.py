"""A failing SMTP server never blocks signing: over real HTTP (uvicorn on loopback),
a signer signs while the mail server accepts connections and never answers; the page
comes back at once, the signatures are recorded, and the receipt waits in the
outbox, its failed attempt recorded after the page was answered."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from justering.devtools.signer_client import sign_everything
from justering.ledger.schema import MailOutboxRow
from justering.mail.delivery import SmtpNotifier
from justering.model.meeting import Meeting
from justering.model.trail import EventKind
from justering.web.app import Hooks, create_app
from justering.workflow.services import Services
from support.browser import serve_app
from support.workflow import extract_rows, newest_token, small_meeting, start, trail

SENDER = "Justering <justering@nacka.example>"
HANG_SECONDS = 15.0
"""How long the SMTP client waits for the silent server before it gives up."""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def _receipt_row(services: Services, email: str) -> MailOutboxRow | None:
    with services.ledger.reading() as session:
        row = session.execute(
            select(MailOutboxRow).where(
                MailOutboxRow.kind == "receipt", MailOutboxRow.recipient_email == email
            )
        ).scalar_one_or_none()
        session.expunge_all()
    return row


def test_a_silent_smtp_server_never_holds_up_the_signers_page(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)  # the chair's request leaves through the outbox folder
    token = newest_token(services, meeting.chair.email)
    with socket.create_server(("127.0.0.1", 0), backlog=16) as silent:
        # Connections are accepted (by the kernel) and never greeted.
        url = f"smtp://127.0.0.1:{silent.getsockname()[1]}"
        down = replace(
            services,
            settings=replace(services.settings, mail_from=SENDER),
            notifier=SmtpNotifier(url, sender=SENDER, timeout=HANG_SECONDS),
        )
        app = create_app(down, Hooks(lambda _m: None, lambda _m: None), environ={})
        with serve_app(app) as base, httpx.Client(timeout=120) as client:
            started = time.monotonic()
            signed = sign_everything(client, f"{base}/s/{token}")
            answered = time.monotonic() - started
            assert signed is not None
            assert answered < HANG_SECONDS, f"the page waited {answered:.1f} s for the mail"
            [row] = extract_rows(services, meeting.meeting_id)
            assert [e.role for e in trail(services, row.id) if e.kind is EventKind.SIGNED] == [
                "chair"
            ]
            receipt = _receipt_row(services, meeting.chair.email)
            assert receipt is not None and receipt.sent_at is None  # queued with the signature
            deadline = time.monotonic() + 3 * HANG_SECONDS
            while (receipt := _receipt_row(services, meeting.chair.email)) is not None and (
                receipt.last_error is None
            ):
                assert time.monotonic() < deadline, "the receipt was never tried"
                time.sleep(0.2)
    assert receipt is not None and receipt.sent_at is None and receipt.attempts == 1
    assert receipt.last_error is not None and "timed out" in receipt.last_error, receipt.last_error
