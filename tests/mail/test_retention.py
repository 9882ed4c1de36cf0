"""Retention of the outboxes (``justering.workflow.retention``): sent e-mail and
delivered webhooks older than their retention are deleted; a message not sent yet
(queued, failing, being sent at that very moment) and a pending or failed webhook
never are, however old; a delivery locked by a replay is left alone; a dry run
deletes nothing. On SQLite and PostgreSQL, with real SMTP (a sink on loopback) and a
real webhook receiver; ``justering outbox prune`` as an operator runs it; the
reconciler of ``justering serve`` prunes on its pass."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from justering.config import Settings, load_settings
from justering.devtools.mail_sink import MailSink
from justering.errors import ConfigError
from justering.ledger.clients import add_client, set_webhook
from justering.ledger.database import Ledger, utcnow
from justering.ledger.schema import MailOutboxRow, WebhookAttemptRow, WebhookDeliveryRow
from justering.ledger.webhooks import replay
from justering.mail.compose import MeetingHeader, Message
from justering.mail.delivery import NotificationError, SmtpNotifier
from justering.mail.messages import SigningRequest
from justering.mail.outbox import queue_message, send_due
from justering.model.roles import Person, Role
from justering.workflow.retention import (
    PruneSchedule,
    RetentionReport,
    prune_outboxes,
)
from justering.workflow.services import Services
from justering.workflow.webhooks import deliver_webhooks
from support.archived import run_cli
from support.webhooks import loopback_receiver, queue_deliveries

SENDER = "Justering <justering@kommun.example>"
DAY = dt.timedelta(days=1)


def _settings(tmp_path: Path, ledger: Ledger) -> Settings:
    return replace(load_settings(tmp_path / "home", environ={}), database_url=ledger.database_url)


def _message(number: int) -> Message:
    return SigningRequest(
        to=Person("Rolf Wasteson", f"person{number}@kommun.example"),
        role=Role.ADJUSTER,
        meeting=MeetingHeader(
            "m", "Nacka kommun", "Kommunstyrelsens arbetsutskott", dt.date(2014, 8, 19)
        ),
        link=f"http://justering.test/s/token-{number}",
        expires_at=dt.datetime(2014, 9, 9, 12, 0, tzinfo=dt.UTC),
        deadline=dt.date(2014, 9, 2),
        extracts=(),
    )


def _queue(ledger: Ledger, count: int) -> list[str]:
    with ledger.transaction() as session:
        return [
            queue_message(session, _message(n), sender=SENDER, meeting_id="m") for n in range(count)
        ]


def _age(ledger: Ledger, message_ids: list[str], days: float, *, sent: bool) -> None:
    """Make these messages ``days`` old: queued then and, if ``sent``, sent then."""
    moment = utcnow() - dt.timedelta(days=days)
    values = {"queued_at": moment} | ({"sent_at": moment} if sent else {})
    with ledger.transaction() as session:
        session.execute(
            update(MailOutboxRow).where(MailOutboxRow.message_id.in_(message_ids)).values(values)
        )


def _mail_left(ledger: Ledger) -> set[str]:
    with ledger.reading() as session:
        return set(session.execute(select(MailOutboxRow.message_id)).scalars())


def test_sent_mail_past_its_retention_goes_and_unsent_mail_stays(
    ledger: Ledger, sink: MailSink, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, ledger)
    old_sent, recent_sent, old_unsent, old_failing = (_queue(ledger, 2) for _ in range(4))
    assert send_due(ledger, SmtpNotifier(sink.smtp_url, sender=SENDER)).sent
    # Two that never left: queued 90 days ago, one of them failing ever since.
    with ledger.transaction() as session:
        session.execute(
            update(MailOutboxRow)
            .where(MailOutboxRow.message_id.in_(old_unsent + old_failing))
            .values(sent_at=None, text="Länk: http://justering.test/s/secret", html="<p>x</p>")
        )
        session.execute(
            update(MailOutboxRow)
            .where(MailOutboxRow.message_id.in_(old_failing))
            .values(attempts=40, last_error="SMTP 451")
        )
    _age(ledger, old_sent, 31, sent=True)
    _age(ledger, recent_sent, 29, sent=True)
    _age(ledger, old_unsent + old_failing, 90, sent=False)
    dry = prune_outboxes(ledger, settings, dry_run=True)
    assert (dry.mail.rows, dry.dry_run) == (2, True) and len(_mail_left(ledger)) == 8
    assert dry.mail.oldest is not None and utcnow() - dry.mail.oldest > dt.timedelta(days=30)
    report = prune_outboxes(ledger, settings)
    assert report.mail.rows == 2
    assert _mail_left(ledger) == set(recent_sent + old_unsent + old_failing)
    assert prune_outboxes(ledger, settings).mail.rows == 0  # nothing twice
    assert prune_outboxes(ledger, settings, older_than_days=28).mail.rows == 2
    assert _mail_left(ledger) == set(old_unsent + old_failing)
    # The unsent ones still leave, with their text intact.
    with ledger.transaction() as session:
        session.execute(update(MailOutboxRow).values(next_attempt_at=utcnow() - DAY))
    assert len(send_due(ledger, SmtpNotifier(sink.smtp_url, sender=SENDER)).sent) == 4


class _PruneWhileSending:
    """A notifier that, with a message claimed and not yet sent, first lets a prune run
    in another thread (its own connection and transaction), then sends it over
    ``smtp``, or fails as a server that is down when there is none."""

    def __init__(self, ledger: Ledger, settings: Settings, smtp: SmtpNotifier | None) -> None:
        self.ledger, self.settings, self.smtp = ledger, settings, smtp
        self.reports: list[RetentionReport] = []

    def send(
        self, message: Message, *, message_id: str | None = None, date: dt.datetime | None = None
    ) -> str:
        worker = threading.Thread(target=self._prune)
        worker.start()
        worker.join(30)
        assert not worker.is_alive()
        if self.smtp is None:
            raise NotificationError("SMTP server down")
        return self.smtp.send(message, message_id=message_id, date=date)

    def _prune(self) -> None:
        self.reports.append(prune_outboxes(self.ledger, self.settings, older_than_days=1))


def test_a_message_being_sent_while_a_prune_runs_is_kept(
    ledger: Ledger, sink: MailSink, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, ledger)
    [message_id] = _queue(ledger, 1)
    _age(ledger, [message_id], 400, sent=False)  # queued long ago, still unsent
    sending = _PruneWhileSending(ledger, settings, SmtpNotifier(sink.smtp_url, sender=SENDER))

    assert send_due(ledger, sending).sent == (message_id,)
    assert [r.mail.rows for r in sending.reports] == [0]
    assert _mail_left(ledger) == {message_id}
    assert len(sink.received()) == 1
    _age(ledger, [message_id], 2, sent=True)
    assert prune_outboxes(ledger, settings, older_than_days=1).mail.rows == 1
    assert _mail_left(ledger) == set()


def test_a_failed_send_during_a_prune_is_kept_for_its_retry(ledger: Ledger, tmp_path: Path) -> None:
    settings = _settings(tmp_path, ledger)
    [message_id] = _queue(ledger, 1)
    _age(ledger, [message_id], 400, sent=False)
    failing = _PruneWhileSending(ledger, settings, None)

    assert send_due(ledger, failing).failed
    assert [r.mail.rows for r in failing.reports] == [0]
    assert _mail_left(ledger) == {message_id}
    assert prune_outboxes(ledger, settings, older_than_days=1).mail.rows == 0


@pytest.fixture
def hooked(ledger: Ledger) -> Iterator[str]:
    """A client whose webhooks go to a receiver on loopback: its name."""
    with loopback_receiver("whsec_" + "A" * 44) as receiver:
        add_client(ledger, "system-a", ["KSAU"])
        secret = set_webhook(ledger, "system-a", receiver.url)
        assert secret is not None
        receiver.use_secret(secret)
        yield "system-a"


def _delivered_ago(ledger: Ledger, ids: list[str], days: float) -> None:
    with ledger.transaction() as session:
        session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id.in_(ids))
            .values(delivered_at=utcnow() - dt.timedelta(days=days))
        )


def _webhooks_left(ledger: Ledger) -> dict[str, str]:
    with ledger.reading() as session:
        rows = session.execute(select(WebhookDeliveryRow.id, WebhookDeliveryRow.state)).all()
        return {row.id: row.state for row in rows}


def _attempts(ledger: Ledger) -> int:
    with ledger.reading() as session:
        return int(session.execute(select(func.count()).select_from(WebhookAttemptRow)).scalar())


def test_delivered_webhooks_past_retention_go_and_failed_or_pending_stay(
    ledger: Ledger, hooked: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, ledger)
    old, recent = queue_deliveries(ledger, hooked, 3), queue_deliveries(ledger, hooked, 2)
    assert len(deliver_webhooks(ledger, limit=50).delivered) == 5
    _delivered_ago(ledger, old, 45)
    _delivered_ago(ledger, recent, 10)
    failed, pending = queue_deliveries(ledger, hooked, 1), queue_deliveries(ledger, hooked, 1)
    with ledger.transaction() as session:  # long ago, and never delivered
        session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id.in_(failed + pending))
            .values(created_at=utcnow() - 400 * DAY)
        )
        session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id.in_(failed))
            .values(state="failed")
        )
    assert prune_outboxes(ledger, settings, dry_run=True).webhooks.rows == 3
    assert len(_webhooks_left(ledger)) == 7
    attempts = _attempts(ledger)
    assert prune_outboxes(ledger, settings).webhooks.rows == 3
    left = _webhooks_left(ledger)
    assert set(left) == set(recent + failed + pending)
    assert _attempts(ledger) == attempts - 3  # their attempts went with them
    assert prune_outboxes(ledger, settings, older_than_days=1).webhooks.rows == 2
    assert _webhooks_left(ledger) == {failed[0]: "failed", pending[0]: "pending"}


@pytest.mark.postgres
def test_a_delivery_being_replayed_is_not_pruned(postgres_url: str, tmp_path: Path) -> None:
    ledger = Ledger(postgres_url)
    try:
        with loopback_receiver("whsec_" + "A" * 44) as receiver:
            add_client(ledger, "system-a", ["KSAU"])
            receiver.use_secret(str(set_webhook(ledger, "system-a", receiver.url)))
            [one, other] = queue_deliveries(ledger, "system-a", 2)
            assert len(deliver_webhooks(ledger, limit=10).delivered) == 2
            _delivered_ago(ledger, [one, other], 60)
            settings = _settings(tmp_path, ledger)
            # A replay holds ``one`` (its row locked) while the prune runs: the prune
            # neither waits for it nor deletes it; it takes ``other``.
            replaying = threading.Event()
            finish = threading.Event()

            def hold() -> None:
                with ledger.transaction() as session:
                    row = session.execute(
                        select(WebhookDeliveryRow)
                        .where(WebhookDeliveryRow.id == one)
                        .with_for_update()
                    ).scalar_one()
                    replaying.set()
                    finish.wait(30)
                    row.state, row.delivered_at = "pending", None

            holder = threading.Thread(target=hold)
            holder.start()
            assert replaying.wait(30)
            report = prune_outboxes(ledger, settings)
            assert holder.is_alive()  # the prune did not wait for the replay's lock
            finish.set()
            holder.join(30)
            assert report.webhooks.rows == 1
            assert _webhooks_left(ledger) == {one: "pending"}
            assert prune_outboxes(ledger, settings).webhooks.rows == 0
            replay(ledger, one)  # the replay's own function, after the prune: still there
            assert deliver_webhooks(ledger, limit=10).delivered == (one,)
    finally:
        ledger.dispose()


def test_retention_is_configured_in_days(tmp_path: Path) -> None:
    defaults = load_settings(tmp_path / "home", environ={})
    assert (defaults.mail_retention_days, defaults.webhook_retention_days) == (30, 30)
    config = tmp_path / "justering.toml"
    config.write_text("[justering]\nmail_retention_days = 7\nwebhook_retention_days = 90\n")
    read = load_settings(tmp_path / "home", environ={"JUSTERING_CONFIG": str(config)})
    assert (read.mail_retention_days, read.webhook_retention_days) == (7, 90)
    for bad in ("0", "-3", '"forever"'):
        config.write_text(f"[justering]\nmail_retention_days = {bad}\n")
        with pytest.raises(ConfigError, match="mail_retention_days"):
            load_settings(tmp_path / "home", environ={"JUSTERING_CONFIG": str(config)})
    with pytest.raises(ValueError, match="at least 1 day"):
        prune_outboxes(Ledger(f"sqlite:///{tmp_path / 'l.db'}"), defaults, older_than_days=0)


def test_the_outbox_prune_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert run_cli(home, "outbox", "prune").returncode == 2  # no ledger: nothing created
    assert not (home / "justering.db").exists()
    ledger = Ledger(load_settings(home, environ={}).database_url)
    try:
        old, recent = _queue(ledger, 3), _queue(ledger, 1)
        with ledger.transaction() as session:
            session.execute(update(MailOutboxRow).values(sent_at=utcnow(), text=None, html=None))
        _age(ledger, old, 40, sent=True)
        _age(ledger, recent, 5, sent=True)
        unsent = _queue(ledger, 1)
        _age(ledger, unsent, 40, sent=False)
        dry = run_cli(home, "outbox", "prune", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        shown = json.loads(dry.stdout)
        assert shown["dry_run"] is True
        assert (shown["mail"]["rows"], shown["webhooks"]["rows"]) == (3, 0)
        assert len(_mail_left(ledger)) == 5
        refused = run_cli(home, "outbox", "prune", "--older-than", "0")
        assert refused.returncode == 2 and "--older-than" in refused.stderr
        pruned = run_cli(home, "outbox", "prune", "--older-than", "3")
        assert pruned.returncode == 0, pruned.stderr
        assert "sent e-mail: deleted 4 from before" in pruned.stdout
        assert "delivered webhooks: deleted 0" in pruned.stdout
        assert _mail_left(ledger) == set(unsent)
    finally:
        ledger.dispose()


def test_the_reconciler_prunes_on_its_pass(services: Services, sink: MailSink) -> None:
    from justering.orchestration.serve import _reconcile

    services = replace(services, notifier=SmtpNotifier(sink.smtp_url, sender=SENDER))
    old, kept = _queue(services.ledger, 2), _queue(services.ledger, 1)
    assert len(send_due(services.ledger, services.notifier).sent) == 3
    _age(services.ledger, old, 31, sent=True)
    unsent = _queue(services.ledger, 1)
    _age(services.ledger, unsent, 31, sent=False)
    with services.ledger.transaction() as session:  # not due: the pass must not send it
        session.execute(
            update(MailOutboxRow)
            .where(MailOutboxRow.message_id.in_(unsent))
            .values(next_attempt_at=utcnow() + DAY)
        )

    async def one_pass() -> None:
        task = asyncio.create_task(_reconcile(services, 3600))
        for _ in range(600):
            await asyncio.sleep(0.05)
            if _mail_left(services.ledger) == set(kept + unsent):
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(one_pass())
    assert _mail_left(services.ledger) == set(kept + unsent)


def test_the_reconcilers_prune_runs_at_most_every_ten_minutes(
    ledger: Ledger, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, ledger)
    clock = [1000.0]
    schedule = PruneSchedule(clock=lambda: clock[0])
    first = _queue(ledger, 1)
    _age(ledger, first, 40, sent=True)
    report = schedule.prune_if_due(ledger, settings)
    assert report is not None and report.mail.rows == 1
    second = _queue(ledger, 1)
    _age(ledger, second, 40, sent=True)
    clock[0] += 599
    assert schedule.prune_if_due(ledger, settings) is None  # the next passes leave it
    assert _mail_left(ledger) == set(second)
    clock[0] += 1
    report = schedule.prune_if_due(ledger, settings)  # ten minutes on: again
    assert report is not None and report.mail.rows == 1
    third = _queue(ledger, 1)
    _age(ledger, third, 40, sent=True)
    assert prune_outboxes(ledger, settings).mail.rows == 1  # by hand: at once
