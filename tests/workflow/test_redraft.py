"""Signing a chosen subset, receipts, declining with a comment, and redrafting:
version 2 restarts from the chair, the trail keeps both versions, dead links are
revoked (both databases)."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest
from pypdf import PdfReader

from justering import workflow
from justering.cli.main import main
from justering.config import BodyRules
from justering.errors import LinkError, LinkProblem, ManifestError, Refusal
from justering.ledger.extracts import load_document
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.model.roles import Person
from justering.pades.validate import validate_extract
from justering.workflow import redraft
from justering.workflow.services import Services
from justering.workflow.signer_links import GrantState
from support.workflow import (
    IMMEDIATE_PARAGRAPH,
    SHORT_PARAGRAPH,
    extract_rows,
    mails,
    newest_token,
    outbox,
    protocol_row,
    raises_link,
    raises_refusal,
    sign_as,
    small_meeting,
    snapshot,
    start,
    start_at_adjusters,
    trail,
    trail_kinds,
)

TWO = (94, SHORT_PARAGRAPH)


def _two(sample_meeting: Meeting, adjusters: int = 1) -> Meeting:
    return small_meeting(sample_meeting, paragraphs=TWO, adjusters=adjusters)


def _ids(services: Services, meeting: Meeting) -> dict[int, int]:
    return {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}


def _status(services: Services, meeting: Meeting) -> dict[int, str]:
    return {row.paragraph: row.status for row in extract_rows(services, meeting.meeting_id)}


# --- signing a subset, and the receipt ------------------------------------------------------


def test_choosing_one_signs_the_protocol_and_its_extracts_together(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _two(sample_meeting)
    start(services, meeting)
    ids = _ids(services, meeting)
    token = newest_token(services, meeting.chair.email)

    receipt = workflow.sign_with_link(services, token, [ids[SHORT_PARAGRAPH]])
    assert [i.extract.label for i in receipt.items] == [
        "Protokollet",
        "§ 94",
        f"§ {SHORT_PARAGRAPH}",
    ]
    assert receipt.remaining == 0
    assert _status(services, meeting) == {
        94: "awaiting_adjusters",
        SHORT_PARAGRAPH: "awaiting_adjusters",
    }
    assert protocol_row(services, meeting.meeting_id).status == "awaiting_adjusters"
    with raises_link(LinkProblem.USED):
        workflow.view_link(services, token)
    [mail] = mails(services, "receipt")
    assert "Protokollet" in mail and "§ 94" in mail and f"§ {SHORT_PARAGRAPH}" in mail
    assert all(item.extract.document_sha256 in mail for item in receipt.items)


def test_a_subset_is_signed_while_the_protocol_waits_and_the_link_stays_open(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=(94, 95, SHORT_PARAGRAPH), adjusters=2)
    start_at_adjusters(services, meeting)
    ids = _ids(services, meeting)
    first, second = meeting.adjusters
    workflow.decline_with_link(services, newest_token(services, first.email), ids[94], "Fel.")
    assert protocol_row(services, meeting.meeting_id).status == "held"
    token = newest_token(services, second.email)

    first_part = workflow.sign_with_link(services, token, [ids[95]])
    assert [i.extract.paragraph for i in first_part.items] == [95]
    assert first_part.remaining == 1
    view = workflow.view_link(services, token)
    assert {e.extract.label: e.state for e in view.extracts} == {
        "Protokollet": GrantState.HELD,
        "§ 94": GrantState.DECLINED,
        "§ 95": GrantState.SIGNED,
        f"§ {SHORT_PARAGRAPH}": GrantState.PENDING,
    }
    with raises_refusal(Refusal.ALREADY_SIGNED):
        workflow.sign_with_link(services, token, [ids[95]])
    with raises_refusal(Refusal.PROTOCOL_HELD):
        workflow.sign_with_link(services, token, [protocol_row(services, meeting.meeting_id).id])
    rest = workflow.sign_with_link(services, token)
    assert [i.extract.paragraph for i in rest.items] == [SHORT_PARAGRAPH]
    assert rest.remaining == 0
    with raises_link(LinkProblem.USED):
        workflow.view_link(services, token)
    receipts = mails(services, "receipt")
    assert "§ 95" in receipts[-2] and f"§ {SHORT_PARAGRAPH}" not in receipts[-2]
    assert first_part.items[0].extract.document_sha256 in receipts[-2]


def test_an_extract_the_link_does_not_grant_is_refused(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _two(sample_meeting)
    start(services, meeting)
    token = newest_token(services, meeting.chair.email)
    before = snapshot(services)
    with raises_link(LinkProblem.NOT_GRANTED):
        workflow.sign_with_link(services, token, [max(_ids(services, meeting).values()) + 100])
    assert snapshot(services) == before


# --- declining ----------------------------------------------------------------------------------


def test_a_decline_needs_a_comment_and_changes_nothing_without_one(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _two(sample_meeting)
    start(services, meeting)
    token = newest_token(services, meeting.chair.email)
    extract_id = _ids(services, meeting)[94]
    before = snapshot(services)
    refusals = {
        "": Refusal.COMMENT_MISSING,
        "   \n ": Refusal.COMMENT_MISSING,
        "x" * 2001: Refusal.COMMENT_TOO_LONG,
        "bell \x07": Refusal.COMMENT_CONTROL_CHARACTERS,
    }
    for comment, refusal in refusals.items():
        with raises_refusal(refusal):
            workflow.decline_with_link(services, token, extract_id, comment)
    assert snapshot(services) == before


def test_a_declined_extract_goes_back_and_holds_the_protocol(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = _two(sample_meeting, adjusters=2)
    start_at_adjusters(services, meeting)
    ids = _ids(services, meeting)
    first_adjuster, second_adjuster = meeting.adjusters
    # The first adjuster signs everything; the second declines § 94.
    workflow.sign_with_link(services, newest_token(services, first_adjuster.email))
    token = newest_token(services, second_adjuster.email)
    receipt = workflow.decline_with_link(
        services, token, ids[94], "Beslutet saknar\r\nandra att-satsen."
    )
    assert receipt.comment == "Beslutet saknar\nandra att-satsen."
    assert receipt.secretary == meeting.certifier
    assert _status(services, meeting) == {94: "declined", SHORT_PARAGRAPH: "awaiting_adjusters"}
    declined = trail(services, ids[94])[-1]
    assert declined.kind.value == "declined"
    assert declined.actor == second_adjuster.name
    assert declined.detail["comment"] == "Beslutet saknar\nandra att-satsen."
    # The protocol waits for the redraft: held, nobody signs it.
    protocol = protocol_row(services, meeting.meeting_id)
    assert protocol.status == "held"
    held = trail(services, protocol.id)[-1]
    assert (held.kind.value, held.detail["paragraph"]) == ("held", "94")

    # The secretary hears, with the comment and a redraft link, that the protocol waits.
    [notice] = mails(services, "declined")
    assert "andra att-satsen" in notice and second_adjuster.name in notice
    assert f"justering redraft {meeting.meeting_id} 94" in notice
    assert "Protokollet kan inte justeras" in notice
    assert outbox(services, "r")[-1].to == meeting.certifier.email
    # The chair and the other adjuster hear it from the next advance, once.
    workflow.advance_meeting(services, meeting.meeting_id)
    workflow.advance_meeting(services, meeting.meeting_id)
    held_notices = mails(services, "held")
    assert len(held_notices) == 2
    assert all("Protokollet kan inte justeras" in text for text in held_notices)

    # The decliner's link still signs the other extract; § 94 and the protocol wait.
    view = workflow.view_link(services, token)
    assert {e.extract.label: e.state for e in view.extracts} == {
        "Protokollet": GrantState.HELD,
        "§ 94": GrantState.DECLINED,
        f"§ {SHORT_PARAGRAPH}": GrantState.PENDING,
    }
    with raises_refusal(Refusal.DECLINED):
        workflow.sign_with_link(services, token, [ids[94]])
    workflow.sign_with_link(services, token)
    # § 96 is signed by everyone, but waits for its protocol, not yet for the certifier.
    assert _status(services, meeting)[SHORT_PARAGRAPH] == "awaiting_protocol"
    workflow.advance_meeting(services, meeting.meeting_id)
    assert meeting.certifier.email not in {m.to for m in outbox(services)}


def test_links_that_grant_only_the_declined_extract_are_revoked(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2)
    start_at_adjusters(services, meeting)
    [extract_id] = _ids(services, meeting).values()
    first, second = meeting.adjusters
    other_token = newest_token(services, first.email)
    workflow.decline_with_link(
        services, newest_token(services, second.email), extract_id, "Fel datum."
    )
    with raises_link(LinkProblem.REVOKED):
        workflow.view_link(services, other_token)
    before = snapshot(services)
    with raises_link(LinkProblem.REVOKED):
        workflow.sign_with_link(services, other_token)
    assert snapshot(services) == before


def test_a_signer_link_is_no_redraft_link_and_vice_versa(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    [extract_id] = _ids(services, meeting).values()
    token = newest_token(services, meeting.chair.email)
    with raises_link(LinkProblem.INVALID):
        redraft.view_redraft(services, token)
    workflow.decline_with_link(services, token, extract_id, "Fel rubrik.")
    secretary_token = outbox(services, "r")[-1].token
    for call in (workflow.view_link, workflow.sign_with_link):
        with raises_link(LinkProblem.INVALID):
            call(services, secretary_token)


# --- redrafting -----------------------------------------------------------------------------------


def _decline_chair(services: Services, meeting: Meeting, comment: str = "Fel beslut.") -> str:
    """The chair declines the meeting's only extract; the secretary's redraft token."""
    [extract_id] = _ids(services, meeting).values()
    workflow.decline_with_link(
        services, newest_token(services, meeting.chair.email), extract_id, comment
    )
    return outbox(services, "r")[-1].token


def test_version_two_restarts_from_the_chair_and_the_trail_keeps_both(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    sign_as(services, meeting.chair.email)
    workflow.advance_meeting(services, meeting.meeting_id)
    [extract_id] = _ids(services, meeting).values()
    adjuster_token = newest_token(services, meeting.adjusters[0].email)
    workflow.decline_with_link(services, adjuster_token, extract_id, "Stavfel i beslutet.")
    secretary_token = outbox(services, "r")[-1].token

    view = redraft.view_redraft(services, secretary_token)
    assert view.version == 1 and view.status is ExtractStatus.DECLINED
    assert [(who, comment) for who, comment, _ in view.declines] == [
        (meeting.adjusters[0].name, "Stavfel i beslutet.")
    ]
    corrected = view.text.replace("noterade", "antecknade")
    assert corrected != view.text
    result = redraft.redraft_with_link(services, secretary_token, corrected, "Ny rubrik")
    assert result.version == 2
    with raises_link(LinkProblem.USED):
        redraft.view_redraft(services, secretary_token)

    chair_messages_before = len([m for m in outbox(services) if m.to == meeting.chair.email])
    workflow.advance_meeting(services, meeting.meeting_id)
    chair_messages = [m for m in outbox(services) if m.to == meeting.chair.email]
    assert len(chair_messages) == chair_messages_before + 1
    view2 = workflow.view_link(services, chair_messages[-1].token)
    [protocol, pending] = (e.extract for e in view2.extracts)
    assert pending.version == 2 and pending.title == "Ny rubrik"
    assert protocol.is_protocol and protocol.version == 2

    with services.ledger.reading() as session:
        pdf = load_document(session, pending.document_sha256)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Version 2" in text and "antecknade" in text and "Ny rubrik" in text

    # Everyone signs version 2; the archived PDF carries only version 2's signatures.
    for person in (meeting.chair, *meeting.adjusters, meeting.certifier):
        sign_as(services, person.email)
        workflow.advance_meeting(services, meeting.meeting_id)
    [state] = workflow.meeting_summaries(services, meeting.meeting_id)
    assert state.status is ExtractStatus.ARCHIVED and state.version == 2
    kinds = trail_kinds(services, extract_id)
    assert kinds.count("signed") == 1 + 1 + 1  # chair v1, chair v2, adjuster v2
    # the protocol too: signed by the chair as version 1, held, redrawn, justered as 2
    protocol_kinds = trail_kinds(services, protocol.extract_id)
    assert protocol_kinds.count("signed") == 3
    assert protocol_kinds.index("held") < protocol_kinds.index("redrafted")
    assert protocol_kinds.count("announced") == 1
    assert kinds.index("declined") < kinds.index("redrafted")
    events = trail(services, extract_id)
    redrafted = next(e for e in events if e.kind.value == "redrafted")
    assert redrafted.version == 2 and "antecknade" in redrafted.detail["text"]
    with services.ledger.reading() as session:
        final = load_document(session, state.document_sha256)
    report = validate_extract(final, services.trust_roots, expected_adjusters=1, complete=True)
    assert report.ok, report.problems
    assert len(report.signatures) == 3


def test_the_old_versions_link_is_refused_after_a_redraft(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, adjusters=2)
    start_at_adjusters(services, meeting)
    [extract_id] = _ids(services, meeting).values()
    first, second = meeting.adjusters
    old = newest_token(services, first.email)
    workflow.decline_with_link(services, newest_token(services, second.email), extract_id, "X")
    redraft.redraft_extract(
        services, meeting.meeting_id, SHORT_PARAGRAPH, text="Beslut\n\nNytt beslut.", actor="L"
    )
    with pytest.raises(LinkError):
        workflow.sign_with_link(services, old)


def test_a_bad_text_is_refused_naming_the_problem_and_nothing_changes(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    token = _decline_chair(services, meeting)
    before = snapshot(services)
    with pytest.raises(ManifestError) as refused:
        redraft.redraft_with_link(services, token, "Beslut\n\nTecken som \u0f00 syns inte.", None)
    assert refused.value.field == "text"
    with pytest.raises(ManifestError) as refused:
        redraft.redraft_with_link(services, token, "Beslut\n\nText.", "rad\nbrytning")
    assert refused.value.field == "title"
    assert snapshot(services) == before
    redraft.view_redraft(services, token)  # the link still works


def test_a_complete_justering_is_not_redrafted(services: Services, sample_meeting: Meeting) -> None:
    meeting = small_meeting(sample_meeting)
    start_at_adjusters(services, meeting)
    sign_as(services, meeting.adjusters[0].email)
    before = snapshot(services)
    with raises_refusal(Refusal.JUSTERING_COMPLETE):
        redraft.redraft_extract(
            services, meeting.meeting_id, SHORT_PARAGRAPH, text="Beslut\n\nX.", actor="L"
        )
    assert snapshot(services) == before


def test_two_submits_of_one_redraft_form_make_one_version(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    _decline_chair(services, meeting)
    redraft.redraft_extract(
        services,
        meeting.meeting_id,
        SHORT_PARAGRAPH,
        text="Beslut\n\nA.",
        actor="L",
        expected_version=1,
    )
    with raises_refusal(Refusal.ALREADY_REDRAFTED):
        redraft.redraft_extract(
            services,
            meeting.meeting_id,
            SHORT_PARAGRAPH,
            text="Beslut\n\nB.",
            actor="L",
            expected_version=1,
        )


def test_the_body_secretary_from_config_hears_of_declines(
    services: Services, sample_meeting: Meeting
) -> None:
    clerk = Person("Kim Registrator", "kim.registrator@nacka.example")
    settings = replace(
        services.settings,
        bodies={
            sample_meeting.body.code: BodyRules(justering_days=10, secretary=clerk, kept_at="K")
        },
    )
    configured = replace(services, settings=settings)
    meeting = small_meeting(sample_meeting)
    start(configured, meeting)
    assert f"Sista dag för justering: {workflow.deadline_of(meeting, settings)}" in (
        outbox(configured)[-1].text
    )
    assert workflow.deadline_of(meeting, settings) == meeting.date.replace(day=29)
    [extract_id] = _ids(configured, meeting).values()
    workflow.decline_with_link(
        configured, newest_token(configured, meeting.chair.email), extract_id, "Fel."
    )
    assert outbox(configured, "r")[-1].to == clerk.email


# --- omedelbar justering ----------------------------------------------------------------------


def test_immediate_paragraphs_are_flagged_and_listed_first(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=(94, SHORT_PARAGRAPH, IMMEDIATE_PARAGRAPH))
    report = start(services, meeting)
    assert report.drafted[0] == _ids(services, meeting)[IMMEDIATE_PARAGRAPH]
    [chair] = [m for m in outbox(services) if m.to == meeting.chair.email]
    assert chair.subject.startswith("Omedelbar justering – ")
    listed = re.findall(
        r"^  (§ \d+|Protokollet[^ ]*(?: [^ ]+)*?)  ", chair.text, flags=re.MULTILINE
    )
    assert listed == [
        "Protokollet över omedelbart justerade paragrafer",
        f"§ {IMMEDIATE_PARAGRAPH}",
        "Protokollet",
        "§ 94",
        f"§ {SHORT_PARAGRAPH}",
    ]
    view = workflow.view_link(services, chair.token)
    assert [e.extract.label for e in view.extracts] == listed
    assert [e.extract.immediate for e in view.extracts] == [True, True, False, False, False]


# --- the command line -----------------------------------------------------------------------------


def _cli(settings_home: Path, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    import sys

    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--home", str(settings_home), *argv])
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_justering_redraft_shows_and_sends_corrected_text(
    services: Services, sample_meeting: Meeting, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUSTERING_DATABASE_URL", services.settings.database_url)
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    _decline_chair(services, meeting, comment="Fel i beslutet.")
    home = services.settings.home
    code, text, header = _cli(home, "redraft", meeting.meeting_id, str(SHORT_PARAGRAPH), "--show")
    assert code == 0, header
    assert "Fel i beslutet." in header and "avböjt, åter hos sekreteraren" in header
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T", header)  # Swedish time, with its zone
    assert "noterade" in text and "#" not in text
    corrected = tmp_path / "rättad.txt"
    corrected.write_text(text.replace("noterade", "antecknade"), encoding="utf-8")
    code, out, _ = _cli(
        home, "redraft", meeting.meeting_id, str(SHORT_PARAGRAPH), "--text", str(corrected)
    )
    assert code == 0 and "version 2" in out
    assert re.search(r"SHA-256 [0-9a-f]{64}", out)
    [row] = extract_rows(services, meeting.meeting_id)
    assert row.version == 2 and row.status == "awaiting_chair"
    code, _, err = _cli(home, "redraft", meeting.meeting_id, "999", "--text", "-", stdin="x")
    assert code == 2 and "§ 999" in err
