"""The workflow rules, on SQLite and on PostgreSQL: recording, drafting, notifying,
the signing order chair → adjuster(s) → certifier, and archiving."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import threading
from dataclasses import replace
from typing import Any

import boto3
import pytest
from sqlalchemy import func, select

from justering import workflow
from justering.archive.bundle import read_bundle, write_bundle
from justering.archive.verify import verify_targets
from justering.config import BodyRules, Settings
from justering.errors import ManifestError, NotFoundError, Refusal
from justering.ledger.database import utcnow as utcnow_in_ledger
from justering.ledger.extracts import load_document
from justering.ledger.schema import DocumentRow, ExtractRow, MeetingRow
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Role
from justering.model.trail import chain_problems, trail_from_json
from justering.pades.ca import SigningCA
from justering.pades.validate import validate_extract
from justering.workflow.meetings import kept_at_of
from justering.workflow.services import Services
from support.workflow import (
    IMMEDIATE_PARAGRAPH,
    SHORT_PARAGRAPH,
    extract_rows,
    newest_token,
    outbox,
    protocol_rows,
    raises_refusal,
    run_in_threads,
    sign_as,
    sign_through,
    small_meeting,
    start,
    start_at_adjusters,
    trail,
    trail_kinds,
)


@pytest.fixture
def meeting(sample_meeting: Meeting) -> Meeting:
    return small_meeting(sample_meeting)


def _status(services: Services, meeting_id: str) -> list[ExtractStatus]:
    return [state.status for state in workflow.meeting_summaries(services, meeting_id)]


def _head(services: Services, extract_id: int) -> bytes:
    with services.ledger.transaction() as session:
        row = session.get(ExtractRow, extract_id)
        assert row is not None
        return load_document(session, row.head_sha256)


def _count(services: Services, model: Any) -> int:
    with services.ledger.transaction() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


# --- recording and drafting ------------------------------------------------------------


def test_recording_a_meeting_is_idempotent(services: Services, meeting: Meeting) -> None:
    assert workflow.record_meeting(services, meeting) is True
    assert workflow.record_meeting(services, meeting) is False
    assert _count(services, MeetingRow) == 1
    assert workflow.get_meeting(services, meeting.meeting_id) == meeting


@pytest.mark.parametrize(
    "change",
    [{"place": "Fisksätra"}, {"adjusters": ()}, {"paragraphs": ()}],
    ids=["place", "adjusters", "paragraphs"],
)
def test_a_different_manifest_under_the_same_id_is_refused(
    services: Services, sample_meeting: Meeting, meeting: Meeting, change: dict[str, Any]
) -> None:
    workflow.record_meeting(services, meeting)
    other = replace(meeting, **change)
    if not other.paragraphs:
        other = small_meeting(sample_meeting, paragraphs=(IMMEDIATE_PARAGRAPH,))
    with pytest.raises(ManifestError) as refused:
        workflow.record_meeting(services, other)
    assert refused.value.field == "meeting_id"
    assert meeting.meeting_id in str(refused.value)
    assert workflow.get_meeting(services, meeting.meeting_id) == meeting


def test_drafting_is_idempotent(services: Services, meeting: Meeting) -> None:
    workflow.record_meeting(services, meeting)
    first = workflow.draft_extract(services, meeting.meeting_id, SHORT_PARAGRAPH)
    assert workflow.draft_extract(services, meeting.meeting_id, SHORT_PARAGRAPH) == first
    assert trail_kinds(services, first) == ["drafted"]
    assert _count(services, DocumentRow) == 1
    assert _count(services, ExtractRow) == 1
    [row] = extract_rows(services, meeting.meeting_id)
    assert row.status == ExtractStatus.AWAITING_CHAIR and row.version == 1
    assert _head(services, first).startswith(b"%PDF-")


def test_a_meeting_of_a_body_without_a_forvaringsplats_is_not_recorded(
    services: Services, meeting: Meeting
) -> None:
    """The announcement must say where the protocol is kept (8 kap. 12 § KL): a body
    the config gives no förvaringsplats is refused before anything starts."""
    bare = replace(services, settings=replace(services.settings, kept_at=None))
    with pytest.raises(ManifestError) as refused:
        workflow.record_meeting(bare, meeting)
    assert refused.value.field == "body.code"
    assert "no förvaringsplats is configured for body 'KSAU'" in str(refused.value)
    assert "[bodies.KSAU]" in str(refused.value) and "8 kap. 12 §" in str(refused.value)
    assert _count(services, MeetingRow) == 0
    # A body with rules of its own but no förvaringsplats takes [justering]'s.
    own = {"KSAU": BodyRules(justering_days=7)}
    default = replace(services, settings=replace(services.settings, bodies=own))
    assert kept_at_of(meeting, default.settings) == services.settings.kept_at
    bare_body = replace(bare, settings=replace(bare.settings, bodies=own))
    with pytest.raises(ManifestError, match="no förvaringsplats"):
        workflow.record_meeting(bare_body, meeting)


def test_a_meeting_the_fonts_cannot_show_is_not_recorded(
    services: Services, meeting: Meeting
) -> None:
    unprintable = replace(meeting, place="Stadshuset 𒀀")
    with pytest.raises(ManifestError, match="'𒀀'") as refused:
        workflow.record_meeting(services, unprintable)
    assert refused.value.field == "place"
    assert _count(services, MeetingRow) == 0


def test_drafting_an_unknown_paragraph_or_meeting_is_refused(
    services: Services, meeting: Meeting
) -> None:
    workflow.record_meeting(services, meeting)
    with pytest.raises(NotFoundError, match="no paragraph § 4711"):
        workflow.draft_extract(services, meeting.meeting_id, 4711)
    with pytest.raises(NotFoundError, match="no meeting no-such-meeting"):
        workflow.draft_extract(services, "no-such-meeting", SHORT_PARAGRAPH)
    assert _count(services, ExtractRow) == 0


# --- notifying -------------------------------------------------------------------------


def test_advance_sends_one_message_per_signer_per_stage(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(
        sample_meeting, paragraphs=(SHORT_PARAGRAPH, IMMEDIATE_PARAGRAPH), adjusters=2
    )
    report = start(services, meeting)
    # two extracts, the protocol and the small protocol of the omedelbar justering
    assert len(report.drafted) == 4
    assert report.notified == (f"chair-0:{meeting.chair.email}",)
    assert report.remaining == 4
    [message] = outbox(services)
    assert message.to == meeting.chair.email
    assert "2 protokoll och 2 protokollsutdrag" in message.subject
    assert message.subject.startswith("Omedelbar justering – Att signera som ordförande")
    # one message covers every document; what is under omedelbar justering comes first
    assert message.text.index(f"§ {IMMEDIATE_PARAGRAPH}") < message.text.index(
        f"§ {SHORT_PARAGRAPH}"
    )
    assert "(omedelbar justering)" in message.text
    rows = extract_rows(services, meeting.meeting_id)
    for row in [*rows, *protocol_rows(services, meeting.meeting_id).values()]:
        assert trail_kinds(services, row.id) == ["drafted", "notified"]

    again = workflow.advance_meeting(services, meeting.meeting_id)
    assert again.notified == () and again.drafted == ()
    assert len(outbox(services)) == 1

    receipt = sign_as(services, meeting.chair.email)
    assert sorted(item.extract.ref for item in receipt.items) == sorted(
        [
            f"{meeting.meeting_id}/{SHORT_PARAGRAPH}",
            f"{meeting.meeting_id}/{IMMEDIATE_PARAGRAPH}",
            f"{meeting.meeting_id}/protokoll",
            f"{meeting.meeting_id}/protokoll-omedelbar",
        ]
    )
    report = workflow.advance_meeting(services, meeting.meeting_id)
    assert sorted(report.notified) == sorted(
        f"adjuster-{i}:{person.email}" for i, person in enumerate(meeting.adjusters)
    )
    assert workflow.advance_meeting(services, meeting.meeting_id).notified == ()
    messages = outbox(services)
    assert sorted(m.to for m in messages[1:]) == sorted(p.email for p in meeting.adjusters)
    assert all(
        f"§ {SHORT_PARAGRAPH}" in m.text and "2 protokoll och 2 protokollsutdrag" in m.subject
        for m in messages[1:]
    )
    assert len({m.token for m in messages}) == 3


def test_concurrent_advances_notify_once(services: Services, meeting: Meeting) -> None:
    start(services, meeting)
    sign_as(services, meeting.chair.email)
    results = run_in_threads(4, lambda: workflow.advance_meeting(services, meeting.meeting_id))
    reports = [r for r in results if isinstance(r, workflow.AdvanceReport)]
    assert len(reports) == 4, results
    assert sum(len(r.notified) for r in reports) == 1
    assert [m.to for m in outbox(services)] == [meeting.chair.email, meeting.adjusters[0].email]


# --- the signing order -----------------------------------------------------------------


def _check_signatures(
    services: Services, extract_id: int, roles: list[Role], *, adjusters: int, complete: bool
) -> None:
    """The head document holds exactly ``roles``' signatures, every one still valid."""
    result = validate_extract(
        _head(services, extract_id),
        [services.ca.certificate],
        expected_adjusters=adjusters,
        complete=complete,
    )
    assert result.problems == ()
    assert [s.role for s in result.signatures] == roles
    assert all(s.intact and s.valid and s.trusted for s in result.signatures)


@pytest.mark.parametrize(
    "order", [(0,), (0, 1), (1, 0)], ids=["one-adjuster", "adjusters-0-1", "adjusters-1-0"]
)
def test_the_full_path_to_the_archive(
    services: Services, sample_meeting: Meeting, order: tuple[int, ...]
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=len(order))
    adjusters = meeting.signers(Role.ADJUSTER)
    certifier = meeting.certifier.email
    start(services, meeting)
    [extract] = extract_rows(services, meeting.meeting_id)
    assert workflow.unfinished_meetings(services) == (meeting.meeting_id,)

    # the chair
    assert _status(services, meeting.meeting_id) == [ExtractStatus.AWAITING_CHAIR]
    sign_as(services, meeting.chair.email)
    assert _status(services, meeting.meeting_id) == [ExtractStatus.AWAITING_ADJUSTERS]
    _check_signatures(services, extract.id, [Role.CHAIR], adjusters=len(order), complete=False)
    report = workflow.advance_meeting(services, meeting.meeting_id)
    assert sorted(report.notified) == sorted(f"{s.slot}:{s.email}" for s in adjusters)

    # the adjusters, in the given order; the certifier waits for all of them
    signed = [Role.CHAIR]
    for position, index in enumerate(order):
        assert _status(services, meeting.meeting_id) == [ExtractStatus.AWAITING_ADJUSTERS]
        sign_as(services, adjusters[index].email)
        signed.append(Role.ADJUSTER)
        _check_signatures(services, extract.id, signed, adjusters=len(order), complete=False)
        report = workflow.advance_meeting(services, meeting.meeting_id)
        if position < len(order) - 1:
            assert report.notified == ()
            assert certifier not in {m.to for m in outbox(services)}
    assert report.notified == (f"certifier-0:{certifier}",)
    assert _status(services, meeting.meeting_id) == [ExtractStatus.AWAITING_CERTIFIER]

    # the certifier
    sign_as(services, certifier)
    assert _status(services, meeting.meeting_id) == [ExtractStatus.CERTIFIED]
    _check_signatures(
        services, extract.id, [*signed, Role.CERTIFIER], adjusters=len(order), complete=True
    )
    assert workflow.unfinished_meetings(services) == (meeting.meeting_id,)

    # the archive: the extract, and the protocol (archived once it was justered)
    report = workflow.advance_meeting(services, meeting.meeting_id)
    [uri] = report.archived
    assert report.remaining == 0
    [state] = workflow.meeting_summaries(services, meeting.meeting_id)
    assert state.status is ExtractStatus.ARCHIVED and state.archive_uri == uri
    [protocol] = workflow.protocol_summaries(services, meeting.meeting_id)
    assert protocol.status is ExtractStatus.ARCHIVED
    assert protocol.archive_uri is not None and protocol.archive_uri.endswith("/protocol.pdf")
    assert workflow.unfinished_meetings(services) == ()

    # the trail
    events = trail(services, extract.id)
    assert chain_problems(events) == []
    chair, cert = meeting.chair.email, certifier
    expected = [("drafted", None), ("notified", chair), ("viewed", chair), ("signed", chair)]
    expected += [("notified", a.email) for a in adjusters]
    for index in order:
        expected += [("viewed", adjusters[index].email), ("signed", adjusters[index].email)]
    expected += [("justered", None)]  # the protocol is justered: on to the certifier
    expected += [("notified", cert), ("viewed", cert), ("certified", cert), ("archived", None)]
    assert [(e.kind.value, e.actor_email) for e in events] == expected
    signing = [e for e in events if e.kind.value in ("signed", "certified")]
    assert [e.role for e in signing] == [r.value for r in signed] + ["certifier"]
    assert all(e.certificate_sha256 and len(e.certificate_sha256) == 64 for e in signing)
    assert events[-1].document_sha256 == state.document_sha256 == signing[-1].document_sha256

    # archiving twice writes nothing new
    files = sorted(services.settings.archive_dir.rglob("*"))
    assert workflow.archive_extract(services, extract.id) == uri
    again = workflow.advance_meeting(services, meeting.meeting_id)
    assert again == workflow.AdvanceReport(remaining=0)
    assert trail(services, extract.id) == events
    assert sorted(services.settings.archive_dir.rglob("*")) == files
    assert len(outbox(services)) == 2 + len(order)


def test_archiving_an_uncertified_extract_is_refused(services: Services, meeting: Meeting) -> None:
    start(services, meeting)
    [extract] = extract_rows(services, meeting.meeting_id)
    with raises_refusal(Refusal.NOT_CERTIFIED):
        workflow.archive_extract(services, extract.id)
    assert trail_kinds(services, extract.id) == ["drafted", "notified"]
    assert not services.settings.archive_dir.exists() or not any(
        services.settings.archive_dir.rglob("*.pdf")
    )


def test_unfinished_meetings_lists_a_meeting_until_everything_is_archived(
    services: Services, sample_meeting: Meeting
) -> None:
    done = small_meeting(sample_meeting, meeting_id="done")
    waiting = small_meeting(sample_meeting, meeting_id="waiting")
    undrafted = small_meeting(sample_meeting, meeting_id="undrafted")
    sign_through(services, done)
    start(services, waiting)
    workflow.record_meeting(services, undrafted)
    assert workflow.unfinished_meetings(services) == ("undrafted", "waiting")
    assert _status(services, "done") == [ExtractStatus.ARCHIVED]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_archive_to_s3(settings: Settings, sample_meeting: Meeting, s3_bucket: str) -> None:
    settings.home.mkdir(parents=True)
    SigningCA.create(settings.ca_dir, organisation=sample_meeting.municipality)
    services = workflow.open_services(replace(settings, archive_url=f"s3://{s3_bucket}/prefix"))
    meeting = small_meeting(sample_meeting, paragraphs=(IMMEDIATE_PARAGRAPH,))
    try:
        sign_through(services, meeting)
        [state] = workflow.meeting_summaries(services, meeting.meeting_id)
    finally:
        services.ledger.dispose()
    assert state.status is ExtractStatus.ARCHIVED
    assert state.archive_uri is not None
    assert state.archive_uri.startswith(f"s3://{s3_bucket}/prefix/KSAU/2014/")
    key = state.archive_uri.removeprefix(f"s3://{s3_bucket}/")
    listed = boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]
    bundle_dir = key.rsplit("/", 1)[0]
    files = ["ca.pem", "intyg.pdf", "manifest.json", "trail.json", "trail.json.p7s"]
    assert sorted(
        o["Key"].removeprefix(bundle_dir + "/") for o in listed if o["Key"].startswith(bundle_dir)
    ) == sorted([*files, "extract.pdf"])
    # beside it, the two protocols (the omedelbar justering's and the whole one)
    protocols = [
        f"prefix/KSAU/2014/{meeting.meeting_id}/protokoll/2014-08-19-{name}-v1"
        for name in ("protokoll", "protokoll-omedelbar")
    ]
    assert sorted(o["Key"] for o in listed if not o["Key"].startswith(bundle_dir)) == sorted(
        f"{prefix}/{name}" for prefix in protocols for name in [*files, "protocol.pdf"]
    )
    pdf = boto3.client("s3").get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    bundle = read_bundle(services.archive, bundle_dir.removeprefix("prefix/"))
    assert bundle.files["extract.pdf"] == pdf
    assert validate_extract(pdf, [services.ca.certificate], expected_adjusters=1).ok
    archived_trail = trail_from_json(bundle.files["trail.json"])
    assert chain_problems(archived_trail) == []
    assert archived_trail[-1].kind.value == "certified"
    assert archived_trail[-1].document_sha256 == state.document_sha256


# --- concurrency on PostgreSQL -----------------------------------------------------------


def _interleave_first_write(monkeypatch: pytest.MonkeyPatch) -> threading.Barrier:
    """Make two threads both read the ledger before either writes: the first call
    of workflow.utcnow in a thread (just before its insert) waits for the other.
    The barrier is broken afterwards if the two did not meet."""
    gate = threading.Barrier(2)
    seen: set[int] = set()

    def utcnow() -> dt.datetime:
        if threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait(timeout=5)
        return utcnow_in_ledger()

    for module in ("meetings", "drafting"):  # recording and drafting
        monkeypatch.setattr(f"justering.workflow.{module}.utcnow", utcnow)
    return gate


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_concurrent_recording_of_the_same_meeting(
    services: Services, meeting: Meeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = _interleave_first_write(monkeypatch)
    results = run_in_threads(2, lambda: workflow.record_meeting(services, meeting))
    assert not gate.broken
    assert sorted(results, key=repr) == [False, True]
    assert _count(services, MeetingRow) == 1


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_concurrent_drafting_of_the_same_paragraph(
    services: Services, meeting: Meeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow.record_meeting(services, meeting)
    gate = _interleave_first_write(monkeypatch)
    results = run_in_threads(
        2, lambda: workflow.draft_extract(services, meeting.meeting_id, SHORT_PARAGRAPH)
    )
    assert not gate.broken
    assert len(set(results)) == 1 and isinstance(results[0], int), results
    assert _count(services, ExtractRow) == 1


def test_two_adjusters_signing_at_the_same_moment_both_count(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2)
    start_at_adjusters(services, meeting)
    tokens = iter([newest_token(services, person.email) for person in meeting.adjusters])
    lock = threading.Lock()

    def sign() -> workflow.SigningReceipt:
        with lock:
            token = next(tokens)
        return workflow.sign_with_link(services, token)

    results = run_in_threads(2, sign)
    assert all(isinstance(r, workflow.SigningReceipt) for r in results), results
    [extract] = extract_rows(services, meeting.meeting_id)
    assert extract.status == ExtractStatus.AWAITING_CERTIFIER
    _check_signatures(
        services,
        extract.id,
        [Role.CHAIR, Role.ADJUSTER, Role.ADJUSTER],
        adjusters=2,
        complete=False,
    )
    assert trail_kinds(services, extract.id).count("signed") == 3
    assert chain_problems(trail(services, extract.id)) == []


def test_meetings_needing_work_until_advanced(services: Services, meeting: Meeting) -> None:
    workflow.record_meeting(services, meeting)
    assert workflow.meetings_needing_work(services) == (meeting.meeting_id,)
    workflow.advance_meeting(services, meeting.meeting_id)
    assert workflow.meetings_needing_work(services) == ()
    sign_as(services, meeting.chair.email)
    assert workflow.meetings_needing_work(services) == (meeting.meeting_id,)
    workflow.advance_meeting(services, meeting.meeting_id)
    assert workflow.meetings_needing_work(services) == ()


def test_concurrent_archiving_records_once(
    services: Services, meeting: Meeting, monkeypatch: pytest.MonkeyPatch
) -> None:
    start(services, meeting)
    for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
        sign_as(services, meeting.signers(role)[0].email)
        if role is not Role.CERTIFIER:
            workflow.advance_meeting(services, meeting.meeting_id)
    [extract] = extract_rows(services, meeting.meeting_id)
    assert extract.status == ExtractStatus.CERTIFIED
    gate = threading.Barrier(2)
    writes = itertools.count()

    def both_write(*args: Any) -> Any:
        """Both archivers have checked the extract (and each sealed its trail) before
        either writes; the one that comes second writes again with the seal stored."""
        if next(writes) < 2:
            gate.wait(timeout=30)
        return write_bundle(*args)

    monkeypatch.setattr("justering.workflow.archiving.write_bundle", both_write)
    results = run_in_threads(2, lambda: workflow.archive_extract(services, extract.id))
    assert not gate.broken
    assert len(set(results)) == 1 and isinstance(results[0], str), results
    assert trail_kinds(services, extract.id).count("archived") == 1
    assert chain_problems(trail(services, extract.id)) == []
    [result] = verify_targets([str(results[0])], services.trust_roots)
    assert result.ok, result.checks
