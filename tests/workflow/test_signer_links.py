"""Signer links under abuse: reused, expired, unknown, foreign, early and stale
links are refused and change nothing; tokens are strong and stored only as hashes."""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from justering import workflow
from justering.errors import LinkError, LinkProblem, Refusal, WorkflowError
from justering.ledger.database import utcnow
from justering.ledger.extracts import load_document
from justering.ledger.links import claim_link, find_link, hash_token, issue_link
from justering.ledger.schema import ExtractRow, LinkGrantRow, LinkTokenRow, aware_utc
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Role, Signer
from justering.pades.sign import sign_extract
from justering.workflow.services import Services
from support.workflow import (
    IMMEDIATE_PARAGRAPH,
    SHORT_PARAGRAPH,
    assert_chair_signed_once,
    dump_database,
    extract_rows,
    newest_token,
    outbox,
    protocol_row,
    protocol_rows,
    raises_link,
    reason,
    run_in_threads,
    sign_as,
    small_meeting,
    snapshot,
    start,
    start_at_adjusters,
    trail,
)

WELL_FORMED_UNKNOWN = "A" * 43
SAMPLE_ID = "nacka-ksau-2014-08-19"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""For rules that do not depend on the database (PostgreSQL costs a fresh database)."""


@pytest.fixture
def meeting(sample_meeting: Meeting) -> Meeting:
    return small_meeting(sample_meeting)


@pytest.fixture
def started(services: Services, meeting: Meeting) -> Meeting:
    """The meeting recorded, drafted and its chair notified."""
    start(services, meeting)
    return meeting


def _forge(
    services: Services,
    meeting: Meeting,
    signer: Signer,
    *,
    ttl: dt.timedelta = dt.timedelta(days=1),
    now: dt.datetime | None = None,
) -> str:
    """A link issued straight into the ledger, bypassing the workflow's turn-taking."""
    with services.ledger.transaction() as session:
        extracts = list(
            session.execute(
                select(ExtractRow).where(ExtractRow.meeting_id == meeting.meeting_id)
            ).scalars()
        )
        return issue_link(
            session,
            meeting_id=meeting.meeting_id,
            signer=signer,
            extracts=extracts,
            ttl=ttl,
            now=now,
        ).token


def _refused(services: Services, token: str, why: LinkProblem | Refusal) -> None:
    """Signing with ``token`` is refused for ``why`` and changes nothing."""
    before = snapshot(services)
    with pytest.raises((LinkError, WorkflowError)) as refused:
        workflow.sign_with_link(services, token)
    assert reason(refused.value) is why
    assert snapshot(services) == before


# --- single use, expiry -----------------------------------------------------------------


def test_a_used_link_is_refused_and_changes_nothing(services: Services, started: Meeting) -> None:
    token = newest_token(services, started.chair.email)
    receipt = workflow.sign_with_link(services, token)
    assert len(receipt.items) == 2  # the protocol and the extract of its one paragraph
    _refused(services, token, LinkProblem.USED)
    with raises_link(LinkProblem.USED):
        workflow.view_link(services, token)
    [extract] = extract_rows(services, started.meeting_id)
    with raises_link(LinkProblem.USED):
        workflow.link_document(services, token, extract.id)


def test_an_expired_link_is_refused(services: Services, started: Meeting) -> None:
    chair = started.signers(Role.CHAIR)[0]
    token = _forge(
        services, started, chair, ttl=dt.timedelta(minutes=5), now=utcnow() - dt.timedelta(hours=1)
    )
    _refused(services, token, LinkProblem.EXPIRED)
    with raises_link(LinkProblem.EXPIRED):
        workflow.view_link(services, token)


def test_a_link_expires_at_its_expiry_time(services: Services, started: Meeting) -> None:
    token = newest_token(services, started.chair.email)
    with services.ledger.transaction() as session:
        row = find_link(session, token)
        expires = aware_utc(row.expires_at)
        assert expires - aware_utc(row.created_at) == services.settings.link_ttl
        assert find_link(session, token, now=expires - dt.timedelta(seconds=1)) is not None
        with raises_link(LinkProblem.EXPIRED):
            find_link(session, token, now=expires)


def test_a_revoked_link_is_refused(services: Services, started: Meeting) -> None:
    token = newest_token(services, started.chair.email)
    with services.ledger.transaction() as session:
        row = session.get(LinkTokenRow, hash_token(token))
        assert row is not None
        row.revoked_at = utcnow()
    _refused(services, token, LinkProblem.REVOKED)


def test_claiming_a_link_is_atomic(services: Services, started: Meeting) -> None:
    """A claim made with a row read before another claim committed still fails."""
    token = newest_token(services, started.chair.email)
    with services.ledger.transaction() as session:
        stale = find_link(session, token)
    with services.ledger.transaction() as session:
        claim_link(session, find_link(session, token))
    with (
        raises_link(LinkProblem.USED),
        services.ledger.transaction() as session,
    ):
        claim_link(session, stale)


def test_a_reload_of_the_page_records_one_view(services: Services, started: Meeting) -> None:
    token = newest_token(services, started.chair.email)
    [extract] = extract_rows(services, started.meeting_id)
    protocol = protocol_row(services, started.meeting_id)
    for _ in range(3):
        view = workflow.view_link(services, token)
    # the protocol first, then the extract of its paragraph
    assert [e.extract.extract_id for e in view.extracts] == [protocol.id, extract.id]
    for row in (extract, protocol):
        assert [e.kind.value for e in trail(services, row.id)] == ["drafted", "notified", "viewed"]


# --- unknown and foreign tokens ------------------------------------------------------------


MALFORMED = [
    WELL_FORMED_UNKNOWN,
    "short",
    "x" * 101,
    "../../etc/passwd-aaaaaaaaaaaaaaa",
    "a b" * 10,
    "",
]


@SQLITE_ONLY
def test_an_unknown_or_malformed_token_is_not_found(services: Services, started: Meeting) -> None:
    [extract] = extract_rows(services, started.meeting_id)
    for token in MALFORMED:
        _refused(services, token, LinkProblem.INVALID)
        with raises_link(LinkProblem.INVALID):
            workflow.view_link(services, token)
        with raises_link(LinkProblem.INVALID):
            workflow.link_document(services, token, extract.id)


@SQLITE_ONLY
def test_a_token_differing_in_one_character_is_not_found(
    services: Services, started: Meeting
) -> None:
    token = newest_token(services, started.chair.email)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    _refused(services, altered, LinkProblem.INVALID)


def test_a_link_cannot_reach_an_extract_it_does_not_grant(
    services: Services, sample_meeting: Meeting
) -> None:
    one = small_meeting(sample_meeting, meeting_id="meeting-one")
    two = small_meeting(sample_meeting, meeting_id="meeting-two", paragraphs=(IMMEDIATE_PARAGRAPH,))
    start(services, one)
    start(services, two)
    [extract_one] = extract_rows(services, "meeting-one")
    [extract_two] = extract_rows(services, "meeting-two")
    token_two = newest_token(services, two.chair.email)
    assert token_two != outbox(services)[0].token

    with raises_link(LinkProblem.NOT_GRANTED):
        workflow.link_document(services, token_two, extract_one.id)
    with raises_link(LinkProblem.NOT_GRANTED):
        workflow.link_document(services, token_two, 10_000)
    assert workflow.link_document(services, token_two, extract_two.id).startswith(b"%PDF-")

    view = workflow.view_link(services, token_two)
    protocols = protocol_rows(services, "meeting-two")
    assert [e.extract.extract_id for e in view.extracts] == [
        protocols[DocumentKind.IMMEDIATE_PROTOCOL].id,
        extract_two.id,
        protocols[DocumentKind.PROTOCOL].id,
    ]
    for protocol in protocol_rows(services, "meeting-one").values():
        with raises_link(LinkProblem.NOT_GRANTED):
            workflow.link_document(services, token_two, protocol.id)
    events_one = trail(services, extract_one.id)
    receipt = workflow.sign_with_link(services, token_two)
    assert [item.extract.ref for item in receipt.items] == [
        "meeting-two/protokoll-omedelbar",
        f"meeting-two/{IMMEDIATE_PARAGRAPH}",
        "meeting-two/protokoll",
    ]
    assert trail(services, extract_one.id) == events_one
    [state_one] = workflow.meeting_summaries(services, "meeting-one")
    assert state_one.status is ExtractStatus.AWAITING_CHAIR


# --- order ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ADJUSTER, Role.CERTIFIER])
def test_an_early_link_cannot_sign_out_of_turn(
    services: Services, started: Meeting, role: Role
) -> None:
    signer = started.signers(role)[0]
    token = _forge(services, started, signer)
    _refused(services, token, Refusal.NOT_YOUR_TURN)
    # the refused attempt did not use the link up: it still opens
    assert workflow.view_link(services, token).signer == signer


@pytest.mark.parametrize(
    ("forged_for", "refusal"),
    [(Role.CERTIFIER, Refusal.NOT_YOUR_TURN), (Role.ADJUSTER, Refusal.ALREADY_SIGNED)],
    ids=["the-certifier-before-every-adjuster", "an-adjuster-twice-with-a-second-link"],
)
def test_a_forged_link_once_the_first_adjuster_signed_is_refused(
    services: Services, sample_meeting: Meeting, forged_for: Role, refusal: Refusal
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2)
    start_at_adjusters(services, meeting)
    sign_as(services, meeting.adjusters[0].email)
    token = _forge(services, meeting, meeting.signers(forged_for)[0])
    _refused(services, token, refusal)


def _new_versions(services: Services) -> ExtractRow:
    """What a redraft does to the versions of the extract and the protocol; the extract."""
    with services.ledger.transaction() as session:
        for row in session.execute(select(ExtractRow)).scalars():
            row.version += 1
    [extract] = extract_rows(services, SAMPLE_ID)
    return extract


def test_a_link_for_an_older_version_is_refused(services: Services, started: Meeting) -> None:
    token = newest_token(services, started.chair.email)
    _new_versions(services)
    _refused(services, token, LinkProblem.REPLACED)


@SQLITE_ONLY
def test_a_link_for_an_older_version_does_not_open(services: Services, started: Meeting) -> None:
    token = newest_token(services, started.chair.email)
    extract = _new_versions(services)
    with raises_link(LinkProblem.REPLACED):
        workflow.view_link(services, token)
    with raises_link(LinkProblem.REPLACED):
        workflow.link_document(services, token, extract.id)


# --- the tokens themselves -------------------------------------------------------------------


def test_tokens_are_stored_only_as_hashes(services: Services, sample_meeting: Meeting) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2)
    start_at_adjusters(services, meeting)
    tokens = [m.token for m in outbox(services)]
    assert len(tokens) == 3
    dump = dump_database(services)
    stored = {row for row in dump.splitlines() if row.startswith("link_tokens:")}
    assert len(stored) == 3
    for token in tokens:
        assert token not in dump
        assert hash_token(token) in dump
    if services.settings.database_url.startswith("sqlite"):
        database = Path(services.settings.database_url.removeprefix("sqlite:///"))
        files = [database, database.with_name(database.name + "-wal")]
        raw = b"".join(f.read_bytes() for f in files if f.exists())
        assert raw and not any(token.encode() in raw for token in tokens)


@SQLITE_ONLY
def test_tokens_carry_at_least_128_bits(services: Services, started: Meeting) -> None:
    chair = started.signers(Role.CHAIR)[0]
    tokens = [newest_token(services, started.chair.email)] + [
        _forge(services, started, chair) for _ in range(20)
    ]
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128
    assert len(set(tokens)) == len(tokens)


def test_a_link_grants_the_versions_it_was_issued_for(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=(SHORT_PARAGRAPH, IMMEDIATE_PARAGRAPH))
    start(services, meeting)
    token = newest_token(services, meeting.chair.email)
    rows = [
        *extract_rows(services, meeting.meeting_id),
        *protocol_rows(services, meeting.meeting_id).values(),
    ]
    expected = sorted((row.id, 1) for row in rows)
    assert len(expected) == 4  # two extracts, the protocol, the omedelbar justering's
    with services.ledger.transaction() as session:
        grants = session.execute(
            select(LinkGrantRow).where(LinkGrantRow.token_hash == hash_token(token))
        ).scalars()
        assert sorted((g.extract_id, g.version) for g in grants) == expected
        row = session.get(LinkTokenRow, hash_token(token))
        assert row is not None
        assert (row.role, row.slot, row.signer_email) == ("chair", "chair-0", meeting.chair.email)


# --- concurrency --------------------------------------------------------------------------------


def _warm_up_signing(services: Services, meeting: Meeting) -> None:
    """Sign the draft once, unrecorded: a process's first signature loads fonts for
    about half a second, and threads that start cold all pay it at once."""
    chair = meeting.signers(Role.CHAIR)[0]
    [extract] = extract_rows(services, meeting.meeting_id)
    with services.ledger.reading() as session:
        draft = load_document(session, extract.head_sha256)
    credential = services.ca.issue(chair, organisation=meeting.municipality)
    sign_extract(draft, credential, chair, adjuster_count=1, location=meeting.place)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_concurrent_use_of_one_link_signs_once(services: Services, started: Meeting) -> None:
    token = newest_token(services, started.chair.email)
    _warm_up_signing(services, started)
    before = snapshot(services)
    results = run_in_threads(20, lambda: workflow.sign_with_link(services, token))
    receipts = [r for r in results if isinstance(r, workflow.SigningReceipt)]
    refusals = [r for r in results if isinstance(r, LinkError)]
    assert len(receipts) == 1, results
    assert len(refusals) == 19, [r for r in results if not isinstance(r, LinkError)]
    assert all(r.problem is LinkProblem.USED for r in refusals)
    extract, protocol = assert_chair_signed_once(services, started.meeting_id, before)
    assert {item.extract.document_sha256 for item in receipts[0].items} == {
        extract.head_sha256,
        protocol.head_sha256,
    }
