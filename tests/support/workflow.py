"""Helpers shared by the workflow, link and web tests: small meetings, the
outbox as a signer reads it, and snapshots of the ledger to prove that a
refused action changed nothing."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from justering import workflow
from justering.config import Settings
from justering.errors import LinkError, LinkProblem, Refusal, WorkflowError
from justering.ledger.extracts import event_rows, trail_of
from justering.ledger.schema import Base, DocumentRow, ExtractRow, LinkTokenRow, TrailEventRow
from justering.mail.delivery import outbox_messages
from justering.model.extract import ExtractSummary
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Person, Role
from justering.model.trail import EventKind, TrailEvent
from justering.workflow.services import Services
from support.archived import KEPT_AT as KEPT_AT  # the tests import it from here too
from support.archived import reseal_chain

T = TypeVar("T")


@pytest.fixture(name="database_url")
def sqlite_ledger(tmp_path: Path) -> str:
    """The ledger on SQLite only, for a module whose tests do not depend on the
    database (the workflow and link tests cover PostgreSQL too). Use::

        from support.workflow import sqlite_ledger  # noqa: F401
    """
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def reason(error: BaseException) -> LinkProblem | Refusal | None:
    """Why the workflow refused: a link's problem or a step's refusal."""
    if isinstance(error, LinkError):
        return error.problem
    if isinstance(error, WorkflowError):
        return error.refusal
    return None


@contextmanager
def raises_link(problem: LinkProblem) -> Iterator[pytest.ExceptionInfo[LinkError]]:
    """The block raises ``LinkError`` for ``problem``."""
    with pytest.raises(LinkError) as caught:
        yield caught
    assert caught.value.problem is problem, caught.value


@contextmanager
def raises_refusal(refusal: Refusal) -> Iterator[pytest.ExceptionInfo[WorkflowError]]:
    """The block raises ``WorkflowError`` for ``refusal``."""
    with pytest.raises(WorkflowError) as caught:
        yield caught
    assert caught.value.refusal is refusal, caught.value


SECOND_ADJUSTER = Person("Eva Andersson", "eva.andersson@nacka.example")
SHORT_PARAGRAPH = 96
"""The sample's shortest paragraph (no diarienummer): the cheapest to render."""
IMMEDIATE_PARAGRAPH = 97
"""The sample's paragraph that is omedelbart justerad."""


def small_meeting(
    meeting: Meeting,
    *,
    paragraphs: tuple[int, ...] = (SHORT_PARAGRAPH,),
    adjusters: int = 1,
    meeting_id: str | None = None,
) -> Meeting:
    """The sample meeting cut down to ``paragraphs`` (cheap to render and sign),
    with one or two adjusters."""
    kept = tuple(p for p in meeting.paragraphs if p.number in paragraphs)
    assert len(kept) == len(paragraphs), "unknown paragraph number"
    people = (meeting.adjusters[0], SECOND_ADJUSTER)[:adjusters]
    return replace(
        meeting,
        meeting_id=meeting_id or meeting.meeting_id,
        paragraphs=kept,
        adjusters=people,
    )


@dataclass(frozen=True)
class Message:
    """One notification in the outbox, as its recipient reads it."""

    name: str
    to: str
    subject: str
    text: str
    token: str = ""
    """The token of the link it carries (:func:`outbox`)."""


def delivered(services: Services, kind: str | None = None) -> list[Message]:
    """The messages delivered so far, oldest first; with ``kind``, those of that kind
    (their outbox file tag: ``receipt``, ``declined``, ``overdue``, ``reminder-chair`` …)."""
    messages = []
    for path in outbox_messages(services.settings.outbox_dir):
        if kind is not None and f"-{kind}-" not in path.name:
            continue
        email = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        body = email.get_body(preferencelist=("plain",))
        assert body is not None, f"no text part in {path.name}"
        to = email["To"].addresses[0].addr_spec
        messages.append(Message(path.name, to, str(email["Subject"]), str(body.get_content())))
    return messages


def outbox(services: Services, kind: str = "s") -> list[Message]:
    """The messages delivered so far with a link of ``kind`` (``s``: signing requests,
    ``r``: redraft links to the secretary), oldest first."""
    link = re.compile(re.escape(services.settings.public_url) + f"/{kind}/" + r"([A-Za-z0-9_-]+)")
    return [
        replace(message, token=found.group(1))
        for message in delivered(services)
        if (found := link.search(message.text))
    ]


def mails(services: Services, kind: str) -> list[str]:
    """The plain text of every delivered message of ``kind`` (see :func:`delivered`)."""
    return [message.text for message in delivered(services, kind)]


def newest_token(services: Services, email: str) -> str:
    """The link in the newest message to ``email``."""
    tokens = [m.token for m in outbox(services) if m.to == email]
    assert tokens, f"no message to {email}"
    return tokens[-1]


def sign_as(services: Services, email: str) -> workflow.SigningReceipt:
    """Follow the newest link sent to ``email``: view the page, then sign."""
    token = newest_token(services, email)
    workflow.view_link(services, token)
    return workflow.sign_with_link(services, token)


def start_at_adjusters(services: Services, meeting: Meeting) -> None:
    """Record and advance the meeting, sign as the chair, notify the adjusters."""
    start(services, meeting)
    sign_as(services, meeting.chair.email)
    workflow.advance_meeting(services, meeting.meeting_id)


def start(services: Services, meeting: Meeting) -> workflow.AdvanceReport:
    """Record the meeting and advance it once (drafts, notifies the chair)."""
    workflow.record_meeting(services, meeting)
    return workflow.advance_meeting(services, meeting.meeting_id)


def extract_rows(services: Services, meeting_id: str) -> list[ExtractRow]:
    """The meeting's extracts by § (not its protocols: :func:`protocol_rows`)."""
    with services.ledger.transaction() as session:
        return list(
            session.execute(
                select(ExtractRow)
                .where(ExtractRow.meeting_id == meeting_id, ExtractRow.kind == DocumentKind.EXTRACT)
                .order_by(ExtractRow.paragraph)
            ).scalars()
        )


def protocol_rows(services: Services, meeting_id: str) -> dict[DocumentKind, ExtractRow]:
    """The meeting's protocols by kind."""
    with services.ledger.transaction() as session:
        rows = session.execute(
            select(ExtractRow).where(
                ExtractRow.meeting_id == meeting_id, ExtractRow.kind != DocumentKind.EXTRACT
            )
        ).scalars()
        return {row.kind: row for row in rows}


def protocol_row(services: Services, meeting_id: str) -> ExtractRow:
    """The meeting's protocol (all its paragraphs)."""
    return protocol_rows(services, meeting_id)[DocumentKind.PROTOCOL]


def trail(services: Services, extract_id: int) -> tuple[TrailEvent, ...]:
    with services.ledger.transaction() as session:
        return trail_of(session, extract_id)


def trail_kinds(services: Services, extract_id: int) -> list[str]:
    return [event.kind.value for event in trail(services, extract_id)]


@dataclass(frozen=True)
class Snapshot:
    """What a refused action must leave as it was."""

    extracts: tuple[tuple[int, int, str, str], ...]
    """(id, version, status, head document) of every extract."""
    events: int
    documents: int
    used_links: int


def snapshot(services: Services) -> Snapshot:
    with services.ledger.transaction() as session:
        extracts = tuple(
            (row.id, row.version, row.status, row.head_sha256)
            for row in session.execute(select(ExtractRow).order_by(ExtractRow.id)).scalars()
        )

        def count(*where: Any, model: Any) -> int:
            return int(
                session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
            )

        return Snapshot(
            extracts=extracts,
            events=count(model=TrailEventRow),
            documents=count(model=DocumentRow),
            used_links=count(LinkTokenRow.used_at.is_not(None), model=LinkTokenRow),
        )


def assert_chair_signed_once(
    services: Services, meeting_id: str, before: Snapshot
) -> tuple[ExtractRow, ExtractRow]:
    """However many requests raced: the chair signed the meeting's one extract and its
    protocol once each (one new version of each, one link used up); the two rows."""
    [extract] = extract_rows(services, meeting_id)
    protocol = protocol_row(services, meeting_id)
    for document in (extract, protocol):  # the chair signs the protocol with its extract
        signed = [e for e in trail(services, document.id) if e.kind is EventKind.SIGNED]
        assert len(signed) == 1
    after = snapshot(services)
    assert after.documents == before.documents + 2
    assert after.used_links == before.used_links + 1
    return extract, protocol


def dump_database(services: Services) -> str:
    """Every row of every table as text (binary columns decoded as Latin-1)."""
    lines = []
    with services.ledger.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(table.select()):
                values = [
                    value.decode("latin-1") if isinstance(value, bytes) else repr(value)
                    for value in row
                ]
                lines.append(f"{table.name}: {' | '.join(values)}")
    return "\n".join(lines)


def sign_to_certified(services: Services, meeting: Meeting) -> None:
    """Record the meeting and have each signer sign in turn, the certifier last: every
    extract certified, nothing archived yet (the next advance archives)."""
    start(services, meeting)
    for role in (Role.CHAIR, Role.ADJUSTER):
        for signer in meeting.signers(role):
            sign_as(services, signer.email)
        workflow.advance_meeting(services, meeting.meeting_id)
    sign_as(services, meeting.certifier.email)


def sign_through(services: Services, meeting: Meeting) -> None:
    """Record the meeting and take it all the way to the archive, each signer in turn."""
    sign_to_certified(services, meeting)
    workflow.advance_meeting(services, meeting.meeting_id)


def rewrite_ledger_trail(
    services: Services, extract_id: int, change: Callable[[TrailEvent], TrailEvent]
) -> None:
    """Rewrite the extract's trail in the database as an attacker with write access to
    it would: each event through ``change``, the chain rehashed and ``trail_head``
    set to its new end. The attacker has no trail key: ``trail_head_mac`` stays."""
    with services.ledger.transaction() as session:
        rows = event_rows(session, extract_id)
        events = list(reseal_chain([change(row.to_event()) for row in rows]))
        for row, event in zip(rows, events, strict=True):
            row.actor, row.actor_email, row.at = event.actor, event.actor_email, event.at
            row.detail = dict(event.detail)
            row.prev_hash, row.hash = event.prev_hash, event.hash
        extract = session.get(ExtractRow, extract_id)
        assert extract is not None
        extract.trail_head = events[-1].hash


def archived_meeting(settings: Settings, meeting: Meeting) -> tuple[ExtractSummary, ...]:
    """Open the services on ``settings`` (whose home has a CA), take ``meeting`` to the
    archive (:func:`sign_through`) and return its extracts, each checked archived."""
    services = workflow.open_services(settings)
    try:
        sign_through(services, meeting)
        states = workflow.meeting_summaries(services, meeting.meeting_id)
    finally:
        services.ledger.dispose()
    assert [s.status for s in states] == [ExtractStatus.ARCHIVED] * len(states), states
    return tuple(states)


def recording(failures: list[BaseException], call: Callable[[str], None]) -> Callable[[str], None]:
    """``call`` (a web app's hook), keeping whatever it raises in ``failures`` (the app
    logs it and carries on; the test asserts there was none)."""

    def run(meeting_id: str) -> None:
        try:
            call(meeting_id)
        except BaseException as error:
            failures.append(error)
            raise

    return run


def run_in_threads(count: int, action: Callable[[], T]) -> list[T | BaseException]:
    """Run ``action`` in ``count`` threads released at the same moment; each
    thread's result or exception."""
    gate = threading.Barrier(count)

    def run() -> T:
        gate.wait(timeout=30)
        return action()

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(run) for _ in range(count)]
    results: list[T | BaseException] = []
    for future in futures:
        error = future.exception()
        results.append(error if error is not None else future.result())
    return results
