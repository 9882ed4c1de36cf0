"""The protocol is what is justered (issue 12), as a secretary would try it: a
meeting of four paragraphs, one under omedelbar justering and one declined and
redrafted, ends with one justered protocol of every paragraph (the chair's and
the adjusters' signatures valid in pdfsig), two announcements (the omedelbar
justering first, the protocol only once the redraft is signed), certified extracts
whose trails name the protocol that justered them, and an archive that verifies."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from justering import workflow
from justering.archive.verify import verify_targets
from justering.errors import Refusal
from justering.ledger.extracts import load_document
from justering.model.calendar import local_today
from justering.model.meeting import Meeting
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Role
from justering.model.trail import EventKind, chain_problems
from justering.workflow import redraft
from justering.workflow.noticeboard import current_notices
from justering.workflow.services import Services
from justering.workflow.signer_links import GrantState
from support.poppler import pdfsig, pdftotext
from support.workflow import (
    IMMEDIATE_PARAGRAPH,
    extract_rows,
    mails,
    newest_token,
    outbox,
    protocol_rows,
    raises_refusal,
    sign_as,
    small_meeting,
    start,
    trail,
)

DECLINED = 95
PARAGRAPHS = (94, DECLINED, 96, IMMEDIATE_PARAGRAPH)
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _statuses(services: Services, meeting: Meeting) -> dict[object, str]:
    documents: dict[object, str] = {
        row.paragraph: row.status.value for row in extract_rows(services, meeting.meeting_id)
    }
    for kind, row in protocol_rows(services, meeting.meeting_id).items():
        documents[kind.value] = row.status.value
    return documents


def _advance(services: Services, meeting: Meeting) -> workflow.AdvanceReport:
    return workflow.advance_meeting(services, meeting.meeting_id)


def _announced(services: Services) -> list[tuple[str, dt.datetime]]:
    """(protocol reference, when) of every announcement in the ledger, in order."""
    with services.ledger.reading() as session:
        notices = current_notices(session, today=dt.date.today())
    found = []
    for notice in notices:
        rows = protocol_rows(services, notice.meeting_id)
        row = rows[DocumentKind.IMMEDIATE_PROTOCOL if notice.immediate else DocumentKind.PROTOCOL]
        [event] = [e for e in trail(services, row.id) if e.kind is EventKind.ANNOUNCED]
        found.append((notice.reference, event.at))
    return sorted(found, key=lambda item: item[1])


def _nss(services: Services, folder: Path) -> str:
    """An NSS database that trusts the signing CA, for pdfsig."""
    folder.mkdir()
    (folder / "ca.pem").write_text(services.ca.export_pem())
    database = f"sql:{folder}"
    subprocess.run(["certutil", "-N", "-d", database, "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-A", "-n", "ca", "-t", "CT,C,C", "-d", database, "-i", folder / "ca.pem"],
        check=True,
    )
    return database


@SQLITE_ONLY
def test_a_meeting_with_an_omedelbar_paragraph_and_a_declined_one(
    services: Services, sample_meeting: Meeting, tmp_path: Path
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=PARAGRAPHS, adjusters=2)
    rolf, eva = meeting.adjusters
    start(services, meeting)
    ids = {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}
    protocols = {kind: row.id for kind, row in protocol_rows(services, meeting.meeting_id).items()}

    # The chair signs everything in one action: both protocols and every extract.
    receipt = sign_as(services, meeting.chair.email)
    assert len(receipt.items) == 6
    _advance(services, meeting)
    sign_as(services, rolf.email)

    # Eva reads the protocol and declines § 95 in it: the protocol waits, the small
    # protocol of the omedelbar justering does not (it does not show § 95).
    token = newest_token(services, eva.email)
    declined = workflow.decline_with_link(
        services,
        token,
        protocols[DocumentKind.PROTOCOL],
        "Andra att-satsen saknas i beslutet.",
        paragraph=DECLINED,
    )
    assert declined.paragraph == DECLINED
    assert _statuses(services, meeting) == {
        94: "awaiting_adjusters",
        DECLINED: "declined",
        96: "awaiting_adjusters",
        IMMEDIATE_PARAGRAPH: "awaiting_adjusters",
        "protocol": "held",
        "immediate_protocol": "awaiting_adjusters",
    }
    view = workflow.view_link(services, token)
    states = {e.extract.label: e.state for e in view.extracts}
    assert states["Protokollet"] is GrantState.HELD
    assert states[f"§ {DECLINED}"] is GrantState.DECLINED
    with raises_refusal(Refusal.PROTOCOL_HELD):
        workflow.sign_with_link(services, token, [protocols[DocumentKind.PROTOCOL]])

    # She signs what she can: the omedelbar justering is complete, and announced.
    workflow.sign_with_link(services, token)
    assert _statuses(services, meeting) == {
        94: "awaiting_protocol",
        DECLINED: "declined",
        96: "awaiting_protocol",
        IMMEDIATE_PARAGRAPH: "awaiting_certifier",
        "protocol": "held",
        "immediate_protocol": "justered",
    }
    assert [ref for ref, _ in _announced(services)] == [f"{meeting.meeting_id}/protokoll-omedelbar"]

    # The chair and Rolf hear that the protocol waits; the secretary of the justering of
    # the omedelbar paragraph; the certifier is asked about § 97 only.
    _advance(services, meeting)
    held = mails(services, "held")
    assert len(held) == 2 and all(f"§ {DECLINED}" in text for text in held)
    assert {m.to for m in outbox(services) if m.subject.startswith("Protokollet väntar")} <= {
        meeting.chair.email,
        rolf.email,
    }
    [justered_notice] = mails(services, "justered")
    assert "Protokollet över omedelbart justerade paragrafer" in justered_notice
    certifier_requests = [m for m in outbox(services) if m.to == meeting.certifier.email]
    [request] = certifier_requests
    assert f"§ {IMMEDIATE_PARAGRAPH}" in request.text and "§ 94" not in request.text
    sign_as(services, meeting.certifier.email)
    _advance(services, meeting)
    assert _statuses(services, meeting)[IMMEDIATE_PARAGRAPH] == "archived"
    assert _statuses(services, meeting)["immediate_protocol"] == "archived"

    # The secretary redrafts § 95: the next version of the extract and of the protocol,
    # from the chair again.
    secretary_token = outbox(services, "r")[-1].token
    text = redraft.view_redraft(services, secretary_token).text
    redraft.redraft_with_link(
        services, secretary_token, text + "\n\n2. Andra att-satsen, nu med.", None
    )
    assert _statuses(services, meeting)["protocol"] == "awaiting_chair"
    assert _announced(services)[-1][0].endswith("/protokoll-omedelbar")  # not yet
    _advance(services, meeting)
    receipt = sign_as(services, meeting.chair.email)
    assert sorted(i.extract.label for i in receipt.items) == ["Protokollet", f"§ {DECLINED}"]
    _advance(services, meeting)
    sign_as(services, rolf.email)
    assert len(_announced(services)) == 1
    sign_as(services, eva.email)
    assert [ref for ref, _ in _announced(services)] == [
        f"{meeting.meeting_id}/protokoll-omedelbar",
        f"{meeting.meeting_id}/protokoll",
    ]
    _advance(services, meeting)
    sign_as(services, meeting.certifier.email)
    report = _advance(services, meeting)
    assert report.remaining == 0
    assert set(_statuses(services, meeting).values()) == {"archived"}

    # One protocol of every paragraph, version 2, signed by the chair and both adjusters.
    protocol = protocol_rows(services, meeting.meeting_id)[DocumentKind.PROTOCOL]
    assert protocol.version == 2 and protocol.archive_uri is not None
    pdf_path = Path(protocol.archive_uri.removeprefix("file://"))
    printed = pdftotext(pdf_path.read_bytes(), tmp_path)
    positions = [printed.index(f"§ {n}\n") for n in sorted(PARAGRAPHS)]
    assert positions == sorted(positions)
    assert "Version 2" in printed and "Andra att-satsen, nu med." in printed
    report_sigs = pdfsig(pdf_path, "-nssdir", _nss(services, tmp_path / "nss"))
    assert [s["Signer Certificate Common Name"] for s in report_sigs] == [
        meeting.chair.name,
        rolf.name,
        eva.name,
    ]
    assert all(s["Signature Validation"] == "Signature is Valid." for s in report_sigs)
    assert all(s["Certificate Validation"] == "Certificate is Trusted." for s in report_sigs)

    # Every extract's trail names the protocol that justered it, and what it signed.
    with services.ledger.reading() as session:
        for paragraph, extract_id in ids.items():
            events = trail(services, extract_id)
            assert chain_problems(events) == []
            [named] = [e for e in events if e.kind is EventKind.JUSTERED]
            kind = (
                DocumentKind.IMMEDIATE_PROTOCOL
                if paragraph == IMMEDIATE_PARAGRAPH
                else DocumentKind.PROTOCOL
            )
            justering = trail(services, protocols[kind])
            [announced] = [e for e in justering if e.kind is EventKind.ANNOUNCED]
            assert named.detail["protocol"] == f"{meeting.meeting_id}/{kind.ref_suffix}"
            assert named.detail["protocol_sha256"] == announced.document_sha256
            load_document(session, named.detail["protocol_sha256"])  # the justered document
            kinds = [e.kind for e in events if e.version == events[-1].version]
            assert kinds.index(EventKind.JUSTERED) < kinds.index(EventKind.CERTIFIED)

    # The archive: four extracts and two protocols, every one verifying.
    results = list(verify_targets([str(services.settings.archive_dir)], services.trust_roots))
    assert sorted(r.kind for r in results) == ["extract"] * 4 + ["protocol"] * 2
    assert all(r.ok for r in results), [(r.target, r.checks) for r in results if not r.ok]

    # The secretary's view lists the protocols in the order they were justered.
    view = workflow.meeting_view(services, meeting.meeting_id)
    assert [(p.protocol.kind, p.justered_on) for p in view.protocols] == [
        (DocumentKind.IMMEDIATE_PROTOCOL, local_today()),
        (DocumentKind.PROTOCOL, local_today()),
    ]


@SQLITE_ONLY
def test_the_omedelbar_justering_has_its_own_deadline(
    services: Services, sample_meeting: Meeting
) -> None:
    """Reminders and the overdue notice follow each document's own last day: the
    omedelbar justering's is the day after the meeting (by default)."""
    from justering.workflow.deadlines import send_due_reminders

    meeting = small_meeting(sample_meeting, paragraphs=(94, IMMEDIATE_PARAGRAPH))
    start(services, meeting)
    day_after = meeting.date + dt.timedelta(days=1)
    assert workflow.deadline_of(meeting, services.settings, immediate=True) == day_after
    report = send_due_reminders(services, today=day_after + dt.timedelta(days=1))
    assert report.escalated == (meeting.meeting_id,)
    [notice] = mails(services, "overdue")
    assert f"§ {IMMEDIATE_PARAGRAPH}: sista dag {day_after.isoformat()}" in notice
    assert "§ 94:" not in notice  # its last day is days away


@SQLITE_ONLY
def test_declining_through_the_protocol_names_one_of_its_paragraphs(
    services: Services, sample_meeting: Meeting
) -> None:
    meeting = small_meeting(sample_meeting, paragraphs=(94, 96), adjusters=2)
    start(services, meeting)
    sign_as(services, meeting.chair.email)
    _advance(services, meeting)
    rolf, eva = meeting.adjusters
    sign_as(services, rolf.email)
    token = newest_token(services, eva.email)
    protocol = protocol_rows(services, meeting.meeting_id)[DocumentKind.PROTOCOL]
    with raises_refusal(Refusal.NOT_IN_PROTOCOL):
        workflow.decline_with_link(services, token, protocol.id, "Fel.", paragraph=97)
    with raises_refusal(Refusal.NOT_IN_PROTOCOL):
        workflow.decline_with_link(services, token, protocol.id, "Fel.")
    sign_as(services, eva.email)
    assert {row.status for row in extract_rows(services, meeting.meeting_id)} == {
        ExtractStatus.AWAITING_CERTIFIER
    }
    _advance(services, meeting)
    certifier = newest_token(services, meeting.certifier.email)
    view = workflow.view_link(services, certifier)
    assert all(e.extract.kind is DocumentKind.EXTRACT for e in view.extracts)
    assert view.signer.role is Role.CERTIFIER
