"""Tests of the certificate of completion, read back with pdftotext, pdffonts and pypdf.

The main inputs come from a real run: the sample meeting driven through the
workflow to the archive (its bundle's PDF, trail and CA certificate); the
rest are built directly where a test needs a trail or a result no run gives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import os
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from fpdf import FPDF
from fpdf.fonts import TTFFont
from pypdf import PdfReader

from justering.archive.completion_text import DETAIL_LABELS, CompletionSubject
from justering.archive.intyg import ALL_CHECKS_PASSED, TITLE, render_completion
from justering.documents import fonts as bundled_fonts
from justering.documents import layout, rendering
from justering.model.assurance import LOA3, Assurance
from justering.model.calendar import local_minute
from justering.model.meeting import Body, Meeting
from justering.model.process import DocumentKind
from justering.model.roles import Person, Role
from justering.model.trail import GENESIS_HASH, EventKind, TrailEvent, trail_from_json, with_hash
from justering.pades.assurance import CertificateAssurance
from justering.pades.validate import validate_extract
from justering.pades.validation_results import (
    DocumentTimestampReport,
    ExtractValidation,
    SignatureReport,
)
from support.archived import (  # noqa: F401
    ArchivedMeeting,
    archived_meeting_fixture,
    clean_environment,
    copy_bundle,
)
from support.poppler import PT_PER_MM, page_texts, pdftotext, words
from support.workflow import KEPT_AT

ISSUED = dt.datetime(2026, 3, 2, 9, 15, 30, tzinfo=dt.UTC)
LEFT_PT = layout.MARGIN_LEFT_MM * PT_PER_MM
RIGHT_PT = (layout.PAGE_WIDTH_MM - layout.MARGIN_RIGHT_MM) * PT_PER_MM
BOTTOM_PT = layout.PAGE_HEIGHT_MM * PT_PER_MM
SLACK_PT = 0.5


@dataclass(frozen=True)
class Inputs:
    """Everything ``render_completion`` takes."""

    meeting: Meeting
    subject: CompletionSubject
    events: tuple[TrailEvent, ...]
    validation: ExtractValidation
    pdf_sha256: str

    @property
    def paragraph(self) -> int:
        return self.subject.paragraph

    @property
    def dnr(self) -> str | None:
        return self.subject.dnr

    @property
    def title(self) -> str:
        return self.subject.title

    def render(self, issued_at: dt.datetime = ISSUED) -> bytes:
        return render_completion(
            self.meeting,
            self.subject,
            self.events,
            self.validation,
            self.pdf_sha256,
            issued_at=issued_at,
        )


@pytest.fixture(scope="module")
def archived_inputs(archived_meeting: ArchivedMeeting) -> Inputs:
    """The first extract of the archived sample meeting, as the archive step sees it."""
    bundle = archived_meeting.bundle_dirs()[0]
    state = archived_meeting.states[0]
    pdf = (bundle / "extract.pdf").read_bytes()
    validation = validate_extract(
        pdf,
        [archived_meeting.ca_certificate],
        expected_adjusters=len(archived_meeting.meeting.adjusters),
    )
    assert validation.ok, validation.problems
    return Inputs(
        meeting=archived_meeting.meeting,
        subject=CompletionSubject(DocumentKind.EXTRACT, state.paragraph, state.dnr, state.title),
        events=trail_from_json((bundle / "trail.json").read_bytes()),
        validation=validation,
        pdf_sha256=hashlib.sha256(pdf).hexdigest(),
    )


@pytest.fixture(scope="module")
def archived_certificate(archived_inputs: Inputs) -> bytes:
    return archived_inputs.render()


def flat(text: str) -> str:
    """Text with every run of whitespace as one space (table cells wrap lines)."""
    return " ".join(text.split())


# -- built inputs ---------------------------------------------------------------------


def chain(events: Sequence[TrailEvent]) -> tuple[TrailEvent, ...]:
    """``events`` numbered and sealed into a hash chain."""
    sealed: list[TrailEvent] = []
    previous = GENESIS_HASH
    for seq, event in enumerate(events, start=1):
        sealed.append(with_hash(dataclasses.replace(event, seq=seq, prev_hash=previous, hash="")))
        previous = sealed[-1].hash
    return tuple(sealed)


def event(
    kind: EventKind,
    at: dt.datetime,
    actor: str = "system",
    role: Role | None = None,
    **detail: str,
) -> TrailEvent:
    digest = hashlib.sha256(f"{kind}{at}".encode()).hexdigest()
    return TrailEvent(
        extract="m/7",
        seq=0,
        kind=kind,
        at=at,
        actor=actor,
        actor_email=None,
        role=role.value if role else None,
        version=1,
        document_sha256=digest,
        certificate_sha256=None,
        detail=detail,
    )


def report(
    name: str,
    role: Role,
    at: dt.datetime,
    *,
    trusted: bool = True,
    timestamped_at: dt.datetime | None = None,
) -> SignatureReport:
    return SignatureReport(
        field_name=f"Signatur-{role.value}-0",
        signer_name=name,
        role=role,
        signed_at=at,
        certificate_fingerprint=hashlib.sha256(name.encode()).hexdigest(),
        intact=True,
        valid=True,
        trusted=trusted,
        covers_whole_file=True,
        modification_level="none",
        validated_at=at,
        timestamped_at=timestamped_at,
        timestamp_trusted=timestamped_at is not None,
    )


LONG_CHAIR = "Łukasz Ćwikła-Wiśniewski von Brzęczyszczykiewicz-Szczebrzeszyńska"
LONG_ADJUSTER = "Nguyễn Thị Hoa Phạm Quỳnh Hương Trịnh Đình Thắng Lương Thế Vinh"
LONG_BODY = "Kommunstyrelsens arbetsutskott för samhällsbyggnad, välfärd och ekonomi " * 2


def built_inputs(
    events: Sequence[TrailEvent] = (), signatures: Sequence[SignatureReport] = ()
) -> Inputs:
    """A meeting with long, non-ASCII names and a trail of ``events`` (default: signing)."""
    at = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    chair = Person(LONG_CHAIR, "lukasz@example.org")
    adjuster = Person(LONG_ADJUSTER, "hoa@example.org")
    certifier = Person("Åsa Öberg", "asa@example.org")
    meeting = Meeting(
        meeting_id="m",
        municipality="Älvkarleby kommun",
        body=Body("KSAU", LONG_BODY.strip()),
        date=dt.date(2026, 5, 28),
        place="Skutskär",
        chair=chair,
        adjusters=(adjuster,),
        certifier=certifier,
        paragraphs=(),
    )
    if not events:
        events = [
            event(EventKind.DRAFTED, at),
            event(EventKind.SIGNED, at, chair.name, Role.CHAIR),
            event(EventKind.SIGNED, at, adjuster.name, Role.ADJUSTER),
            event(EventKind.CERTIFIED, at, certifier.name, Role.CERTIFIER),
        ]
    if not signatures:
        signatures = [
            report(chair.name, Role.CHAIR, at),
            report(adjuster.name, Role.ADJUSTER, at + dt.timedelta(minutes=1)),
            report(certifier.name, Role.CERTIFIER, at + dt.timedelta(minutes=2)),
        ]
    return Inputs(
        meeting=meeting,
        subject=CompletionSubject(
            DocumentKind.EXTRACT,
            7,
            "KS 2026/0042-1.2.3 " + "och en mycket lång fortsättning " * 3,
            "Ärende med en titel som är så lång att den inte får plats på en rad " * 3,
        ),
        events=chain(events),
        validation=ExtractValidation(tuple(signatures), ()),
        pdf_sha256=hashlib.sha256(b"the signed pdf").hexdigest(),
    )


# -- what it says ---------------------------------------------------------------------


def test_states_the_extract_every_signature_and_the_pdf_hash(
    archived_inputs: Inputs, archived_certificate: bytes, tmp_path: Path
) -> None:
    text = pdftotext(archived_certificate, tmp_path)
    meeting = archived_inputs.meeting
    assert TITLE in text
    assert archived_inputs.pdf_sha256 in text
    for expected in (meeting.municipality, meeting.body.name, meeting.date.isoformat()):
        assert expected in text
    assert f"§ {archived_inputs.paragraph}" in text
    assert archived_inputs.dnr and archived_inputs.dnr in text
    assert archived_inputs.title in flat(text)
    signatures = archived_inputs.validation.signatures
    assert [s.role for s in signatures] == [Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER]
    for signature in signatures:
        assert signature.role is not None
        assert signature.signer_name in text
        assert signature.role.swedish in text
        assert signature.certificate_fingerprint in text
    assert ALL_CHECKS_PASSED in text
    assert "2026-03-02 10:15:30 CET" in text  # the issue time, in Swedish time
    assert "UTC" not in text  # a person reads Swedish time (trail.json keeps UTC)
    assert archived_inputs.events[-1].hash in text  # the chain's last hash, in full
    for how in ("justering verify", "pdfsig", "ca.pem", "sha256sum extract.pdf"):
        assert how in text


def test_names_the_justered_protocol_and_marks_a_late_justering(
    archived_inputs: Inputs, archived_meeting: ArchivedMeeting, archived_certificate: bytes
) -> None:
    """The sample meeting of 2014 justered today: late, and said so."""
    text = flat(
        "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(archived_certificate)).pages)
    )
    [justered] = [e for e in archived_inputs.events if e.kind is EventKind.JUSTERED]
    protocol = archived_meeting.protocols[0]
    assert "Justerat protokoll" in text
    assert f"{archived_meeting.meeting.meeting_id}/protokoll, version 1" in text
    assert justered.detail["protocol_sha256"] in text
    assert justered.detail["protocol_archive_key"] in text
    assert (protocol.archive_uri or "").endswith(
        justered.detail["protocol_archive_key"] + "/protocol.pdf"
    )
    assert "(sista dag 2014-09-02), FÖRSENAD: efter sista dagen för justering" in text
    assert "Förvaringsplats" in text and KEPT_AT in text


def test_a_protocols_certificate(archived_meeting: ArchivedMeeting, tmp_path: Path) -> None:
    bundle = archived_meeting.protocol_bundle_dirs()[0]
    text = flat(pdftotext((bundle / "intyg.pdf").read_bytes(), tmp_path))
    assert "Dokument Document Protokollet, § 94–97" in text
    assert "sha256sum protocol.pdf" in text and "pdfsig -nssdir nss protocol.pdf" in text
    assert "Utdragsbestyrkande" not in text  # a protocol is justered, not certified
    assert "2 underskrifter i rätt ordning" in text
    assert "anslaget 20" in text and "sista dag för överklagande" in text


@pytest.mark.parametrize("digest", ["0" * 64, "9" * 64, "d" * 64])
def test_any_pdf_hash_stays_on_one_line(
    archived_inputs: Inputs, digest: str, tmp_path: Path
) -> None:
    """The widest hex characters too: a wrapped hash reads as two words."""
    text = pdftotext(dataclasses.replace(archived_inputs, pdf_sha256=digest).render(), tmp_path)
    assert digest in text


def test_signature_times_in_swedish_time_with_the_zone(tmp_path: Path) -> None:
    summer = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    winter = dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.UTC)
    signatures = [report("Anna Ek", Role.CHAIR, summer), report("Bo Ek", Role.ADJUSTER, winter)]
    text = pdftotext(built_inputs(signatures=signatures).render(), tmp_path)
    assert "2026-06-01 12:00:00 CEST" in text
    assert "2026-01-16 00:30:00 CET" in text
    assert "UTC" not in text


def test_signature_timestamps_are_shown_when_there_are_some(tmp_path: Path) -> None:
    at = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    stamped = at + dt.timedelta(seconds=2)
    signatures = [
        report("Anna Ek", Role.CHAIR, at, timestamped_at=stamped),
        report("Bo Ek", Role.ADJUSTER, at),
    ]
    text = flat(pdftotext(built_inputs(signatures=signatures).render(), tmp_path))
    assert "Tidsstämpel (RFC 3161): 2026-06-01 12:00:02 CEST, betrodd: ja" in text
    assert text.count("Tidsstämpel: ingen") == 1
    # The bundle then has the TSA's CA certificate, which verification needs too.
    assert "justering verify --trust ca.pem --trust tsa-ca.pem" in text
    assert "tsa-ca.pem" not in pdftotext(built_inputs().render(), tmp_path)


def test_document_timestamps_are_listed_when_there_are_some(tmp_path: Path) -> None:
    at = dt.datetime(2026, 6, 1, 10, 5, tzinfo=dt.UTC)
    plain = built_inputs()
    assert "Dokumenttidsstämplar" not in pdftotext(plain.render(), tmp_path)
    timestamps = (DocumentTimestampReport("Arkivtidsstampel-1", at, False, at),)
    lta = dataclasses.replace(
        plain,
        validation=dataclasses.replace(plain.validation, document_timestamps=timestamps),
    )
    text = flat(pdftotext(lta.render(), tmp_path))
    assert "Dokumenttidsstämplar" in text
    assert "Arkivtidsstampel-1 2026-06-01 12:05:00 CEST" in text
    assert "NEJ" in text  # not trusted


def test_each_signature_says_how_its_signer_was_identified(
    archived_inputs: Inputs, archived_certificate: bytes, tmp_path: Path
) -> None:
    """As its certificate says: the link alone (the archived sample signs by link), a
    login's level with the provider and the time, or nothing known."""
    linked = flat(pdftotext(archived_certificate, tmp_path))
    signed = len(archived_inputs.validation.signatures)
    assert linked.count("Identifierad: via e-postlänk (enkel elektronisk underskrift)") == signed
    at = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    login = CertificateAssurance(Assurance.LOA3, "https://idp.example", LOA3, at)
    signatures = [
        dataclasses.replace(report("Anna Ek", Role.CHAIR, at), assurance=login),
        report("Bo Ek", Role.ADJUSTER, at),
    ]
    text = flat(pdftotext(built_inputs(signatures=signatures).render(), tmp_path))
    assert (
        "Identifierad: inloggad med e-legitimation, tillitsnivå 3, hos https://idp.example, "
        "2026-06-01 12:00:00 CEST"
    ) in text
    assert "Identifierad: okänt (certifikatet anger inte hur undertecknaren" in text


def test_untrusted_signature_reads_no(tmp_path: Path) -> None:
    at = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    trusted = built_inputs(signatures=[report("Anna Ek", Role.CHAIR, at)])
    untrusted = built_inputs(signatures=[report("Anna Ek", Role.CHAIR, at, trusted=False)])
    assert "NEJ" not in pdftotext(trusted.render(), tmp_path)
    assert "NEJ" in pdftotext(untrusted.render(), tmp_path)


def test_trail_events_appear_in_order_with_their_hashes(
    archived_inputs: Inputs, archived_certificate: bytes
) -> None:
    text = "\n".join(
        page.extract_text() for page in PdfReader(io.BytesIO(archived_certificate)).pages
    )
    position = 0
    for trail_event in archived_inputs.events:
        assert trail_event.document_sha256 is not None
        row = " ".join(
            [
                str(trail_event.seq),
                local_minute(trail_event.at, zone=True),
                trail_event.kind.swedish,
            ]
        )
        found = text.find(row, position)
        assert found >= 0, f"event {trail_event.seq} not found after the ones before it"
        after = text[found : found + 400]
        assert trail_event.actor in after
        assert trail_event.document_sha256[:10] in after
        assert trail_event.hash[:10] in after
        position = found + len(row)


def test_every_event_kind_has_a_swedish_name_that_is_shown(tmp_path: Path) -> None:
    at = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    events = [event(kind, at + dt.timedelta(minutes=i)) for i, kind in enumerate(EventKind)]
    text = pdftotext(built_inputs(events=events).render(), tmp_path)
    for kind in EventKind:
        assert f" {kind.swedish} " in f" {flat(text)} ", kind


def test_event_details_are_shown_under_swedish_names(tmp_path: Path) -> None:
    at = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    events = [
        event(EventKind.DRAFTED, at),
        event(
            EventKind.ANNOUNCED,
            at,
            appeal_deadline="2026-06-22",
            kept_at="Kansliet",
            late="false",
            timestamped_at="2026-06-01T10:00:02+00:00",
        ),
    ]
    text = flat(pdftotext(built_inputs(events=events).render(), tmp_path))
    assert "sista dag för överklagande: 2026-06-22" in text
    assert "förvaringsplats: Kansliet" in text and "försenad: nej" in text
    assert "tidsstämpel: 2026-06-01 12:00:02 CEST" in text
    for key in ("appeal_deadline", "kept_at", "late:", "timestamped_at"):
        assert key not in text


def test_every_detail_the_workflow_records_has_a_swedish_name() -> None:
    """Every detail key written anywhere in the workflow (a string literal given as
    a key of an event's detail) is named in Swedish for the certificate."""
    import re
    from importlib import resources

    keys: set[str] = set()
    workflow_dir = resources.files("justering") / "workflow"
    for module in workflow_dir.iterdir():
        if module.name.endswith(".py"):
            source = module.read_text(encoding="utf-8")
            for detail in re.findall(r"detail=\{(.*?)\}", source, flags=re.DOTALL):
                keys.update(re.findall(r'"([a-z_]+)":', detail))
            keys.update(re.findall(r'detail\["([a-z_]+)"\] =', source))
    keys.update({"held_notice", "justered_notice", "overdue"})
    assert len(keys) > 20
    assert sorted(keys - set(DETAIL_LABELS)) == []


def test_problems_are_listed_instead_of_the_pass(archived_inputs: Inputs, tmp_path: Path) -> None:
    problems = (
        "signature Signatur-chair-0: the signed content was changed (digest mismatch)",
        "expected 2 adjuster signature(s), found 1",
    )
    failing = dataclasses.replace(
        archived_inputs,
        validation=dataclasses.replace(archived_inputs.validation, problems=problems),
    )
    text = flat(pdftotext(failing.render(), tmp_path))
    assert ALL_CHECKS_PASSED not in text
    assert "Kontrollen fann 2 problem" in text
    for problem in problems:
        assert problem in text


def test_a_broken_chain_is_a_problem(archived_inputs: Inputs, tmp_path: Path) -> None:
    events = list(archived_inputs.events)
    events[2] = dataclasses.replace(events[2], actor="Someone Else")  # not resealed
    broken = dataclasses.replace(archived_inputs, events=tuple(events))
    text = flat(pdftotext(broken.render(), tmp_path))
    assert ALL_CHECKS_PASSED not in text
    assert "trail: event 3 (viewed) was altered" in text


# -- how it is made -------------------------------------------------------------------


def test_deterministic_and_dated_by_its_issue_time(archived_inputs: Inputs) -> None:
    first = archived_inputs.render()
    assert archived_inputs.render() == first
    later = archived_inputs.render(ISSUED + dt.timedelta(seconds=1))
    assert later != first
    metadata = PdfReader(io.BytesIO(first)).metadata
    assert metadata is not None and metadata.creation_date is not None
    assert metadata.creation_date.astimezone(dt.UTC) == ISSUED


def test_naive_issue_time_is_refused(archived_inputs: Inputs) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        archived_inputs.render(dt.datetime(2026, 3, 2, 9, 15))


def test_fonts_are_the_packages_dejavu_embedded(
    archived_certificate: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "intyg.pdf"
    path.write_bytes(archived_certificate)
    listing = subprocess.run(
        ["pdffonts", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert listing
    for line in listing:
        assert "DejaVu" in line.split()[0]
        assert line.split()[-5] == "yes", line  # emb


def pdffonts(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    return listing.stdout.splitlines()[2:]


def test_fonts_parsed_once_per_process_give_the_same_certificate(
    archived_inputs: Inputs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same bytes, text and fonts as with fpdf2 parsing the fonts for each
    certificate, for the Latin cut and the complete fonts, made one after another."""
    at = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    greek = built_inputs(signatures=[report("Αλέξανδρος Παπαδόπουλος", Role.CHAIR, at)])
    cases = [archived_inputs, built_inputs(), greek, archived_inputs]
    cached = [inputs.render() for inputs in cases]

    def fpdf2_add_font(document: FPDF, style: str, path: Path) -> None:
        document.add_font(bundled_fonts.FONT_FAMILY, style, path)
        font = document.fonts[f"{bundled_fonts.FONT_FAMILY.lower()}{style}"]
        assert isinstance(font, TTFFont)
        font.ttfont.recalcBBoxes = False

    with monkeypatch.context() as patch:
        patch.setattr(bundled_fonts, "_add_font", fpdf2_add_font)
        reference = [inputs.render() for inputs in cases]
    for mine, theirs in zip(cached, reference, strict=True):
        assert pdftotext(mine, tmp_path) == pdftotext(theirs, tmp_path)
        fonts = pdffonts(mine, tmp_path)
        assert fonts == pdffonts(theirs, tmp_path)
        assert len(fonts) == 2
        assert all(row.split()[-5:-2] == ["yes", "yes", "yes"] for row in fonts), fonts
        assert mine == theirs
    assert cached[0] == cached[3]


def test_certificates_and_extracts_made_in_threads_are_the_same_as_one_by_one(
    archived_inputs: Inputs,
) -> None:
    extract = archived_inputs.meeting.paragraphs[0]
    jobs = [
        archived_inputs.render,
        built_inputs().render,
        lambda: rendering.render_extract(archived_inputs.meeting, extract),
    ] * 3
    expected = [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(lambda job: job(), jobs)) == expected


def test_long_trail_paginates_with_page_numbers(tmp_path: Path) -> None:
    start = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    kinds = [EventKind.NOTIFIED, EventKind.VIEWED, EventKind.SIGNED]
    events = [
        event(kinds[i % 3], start + dt.timedelta(minutes=i), f"Person {i}", Role.ADJUSTER)
        for i in range(50)
    ]
    inputs = built_inputs(events=events)
    pages = page_texts(inputs.render(), tmp_path)
    total = len(pages)
    assert total >= 3
    for number, page in enumerate(pages, start=1):
        assert f"{number} ({total})" in page
        assert TITLE.upper() in page
    whole = flat("\n".join(pages))
    for trail_event in inputs.events:
        assert trail_event.hash[:10] in whole
    # The table's heading is repeated on every page the trail continues on.
    trail_pages = [page for page in pages if "Person " in page]
    assert len(trail_pages) >= 2
    assert all("Tid (svensk tid)" in page for page in trail_pages)


def test_long_and_non_ascii_names_wrap_inside_the_margins(tmp_path: Path) -> None:
    inputs = built_inputs()
    certificate = inputs.render()
    text = pdftotext(certificate, tmp_path)
    # Cells wrap long names over lines, a name wider than its cell inside a word.
    unbroken = "".join(text.split())
    for name in (LONG_CHAIR, LONG_ADJUSTER, "Åsa Öberg", "Älvkarleby kommun"):
        assert "".join(unicodedata.normalize("NFC", name).split()) in unbroken
    assert "\ufffd" not in text
    found = words(certificate, tmp_path)
    assert found
    for word in found:
        assert word.x_min >= LEFT_PT - SLACK_PT, word
        assert word.x_max <= RIGHT_PT + SLACK_PT, word
        assert word.y_max <= BOTTOM_PT, word


def test_non_latin_names_use_the_complete_fonts(tmp_path: Path) -> None:
    at = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    greek = "Αλέξανδρος Παπαδόπουλος"
    inputs = built_inputs(signatures=[report(greek, Role.CHAIR, at)])
    text = pdftotext(inputs.render(), tmp_path)
    assert greek in text
    assert "\ufffd" not in text


# -- the rendering helpers it shares with the extract ---------------------------------


def test_add_fonts_chooses_the_latin_cut_only_when_it_suffices() -> None:
    def embedded_paths(texts: list[str]) -> set[Path]:
        document = FPDF()
        rendering.add_fonts(document, texts)
        fonts = document.fonts.values()
        assert all(isinstance(font, TTFFont) for font in fonts)
        return {Path(font.ttffile) for font in fonts if isinstance(font, TTFFont)}

    latin = set(bundled_fonts._font_files(full=False).values())
    complete = set(bundled_fonts._font_files(full=True).values())
    assert embedded_paths(["Łukasz Ćwikła", "Nguyễn Thị Hoa"]) == latin
    assert embedded_paths(["Łukasz", "Αλέξανδρος"]) == complete


def test_number_pages_writes_n_of_total_at_the_top_right(tmp_path: Path) -> None:
    document = FPDF(unit="mm", format="A4")
    rendering.add_fonts(document, [])
    for _ in range(3):
        document.add_page()
    rendering.number_pages(document)
    pdf = bytes(document.output())
    numbers = [w for w in words(pdf, tmp_path) if w.text.startswith("(")]
    assert [(w.page, w.text) for w in numbers] == [(1, "(3)"), (2, "(3)"), (3, "(3)")]
    for word in numbers:
        assert RIGHT_PT - 5 <= word.x_max <= RIGHT_PT + SLACK_PT
        assert word.y_min < (layout.MARGIN_TOP_MM + 6) * PT_PER_MM


def test_one_line_collapses_whitespace_and_marks_undrawable_characters() -> None:
    assert rendering.one_line("  Anna \n\t Ek  ") == "Anna Ek"
    assert rendering.one_line("Anna 中 Ek") == "Anna \ufffd Ek"
    assert rendering.one_line("Nguye\u0302\u0303n") == "Nguyễn"  # NFC


# -- its instructions, followed as written ----------------------------------------------

COMMANDS = ("sha256sum ", "justering verify ", "mkdir ", "certutil ", "pdfsig ")


@pytest.mark.parametrize("which", ["extract", "protocol"])
def test_the_instructions_work_as_written(
    archived_meeting: ArchivedMeeting, tmp_path: Path, which: str
) -> None:
    """Every command the certificate gives, run as it stands in a copy of the bundle's
    folder, succeeds: the checksum is the one stated, pdfsig (with the CA trusted in
    the NSS folder the commands make) finds every signature valid and trusted, and
    ``justering verify`` says the bundle is valid."""
    source = (
        archived_meeting.bundle_dirs()[0]
        if which == "extract"
        else archived_meeting.protocol_bundle_dirs()[0]
    )
    bundle = copy_bundle(source, tmp_path / "paket")
    text = pdftotext((bundle / "intyg.pdf").read_bytes(), tmp_path, "-layout")
    commands = [  # the indented lines: the paragraphs around them start at the margin
        line.strip()
        for line in text.splitlines()
        if line.startswith("   ") and line.strip().startswith(COMMANDS)
    ]
    assert [c.split()[0] for c in commands] == [
        "sha256sum", "justering", "mkdir", "certutil", "certutil", "pdfsig",
    ]  # fmt: skip
    env = {**clean_environment(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    outputs = []
    for command in commands:
        done = subprocess.run(
            command.split(), cwd=bundle, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        outputs.append(done.stdout)
    pdf_name = "extract.pdf" if which == "extract" else "protocol.pdf"
    digest = hashlib.sha256((bundle / pdf_name).read_bytes()).hexdigest()
    assert outputs[0].split()[0] == digest and digest in flat(text)
    assert outputs[1].startswith("GILTIG (valid)")
    signatures = outputs[-1].count("Signature Validation: Signature is Valid.")
    assert signatures == (3 if which == "extract" else 2)
    assert outputs[-1].count("Certificate Validation: Certificate is Trusted.") == signatures
