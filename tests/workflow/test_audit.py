"""The audit queries and ``justering audit``'s arguments and output, on real ledgers:
the archived sample meeting, a second meeting half-way (its chair Åsa Öberg has
signed), and a bulk ledger of thousands of extracts for the timings."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from justering import workflow
from justering.cli.audit import add_audit_arguments, run_audit
from justering.config import Settings
from justering.errors import NotFoundError
from justering.ledger.schema import ExtractRow, MeetingRow, TrailEventRow
from justering.mail.delivery import outbox_messages
from justering.model.manifest import load_sample_meeting
from justering.model.meeting import Body
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Person
from justering.model.trail import EventKind
from justering.pades.ca import SigningCA
from justering.workflow.audit import (
    AuditRow,
    FilterError,
    extract_timeline,
    find_extracts,
    parse_date,
)
from justering.workflow.services import Services
from support.archived import (  # noqa: F401
    ArchivedMeeting,
    archived_meeting_fixture,
    sample_settings,
)

SAMPLE_ID = "nacka-ksau-2014-08-19"
SECOND_ID = "bun-2015-03-02"


@pytest.fixture(scope="module")
def archived_services(archived_meeting: ArchivedMeeting) -> Iterator[Services]:
    services = workflow.open_services(archived_meeting.settings)
    yield services
    services.ledger.dispose()


@contextmanager
def _fresh_database(backend: str, request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A fresh ledger database: SQLite in ``folder``, or PostgreSQL (dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'ledger.db'}"
        return
    import psycopg

    admin_url = request.getfixturevalue("postgres_admin_url")
    admin = admin_url.replace("postgresql+psycopg", "postgresql")
    name = f"justering_audit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The ledger's database: SQLite, and PostgreSQL when reachable."""
    return str(request.param)


@pytest.fixture(scope="module")
def new_home(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Settings]]:
    """Makes homes for the module, each with a fresh ledger of its backend (dropped
    when the module is done)."""
    with contextlib.ExitStack() as ledgers:

        def make() -> Settings:
            folder = tmp_path_factory.mktemp("ledger")
            url = ledgers.enter_context(_fresh_database(backend, request, folder))
            settings = sample_settings(tmp_path_factory.mktemp("audit") / "home")
            return dataclasses.replace(settings, database_url=url)

        yield make


@pytest.fixture(scope="module")
def two_meetings(new_home: Callable[[], Settings]) -> Iterator[Services]:
    """A home with the sample meeting drafted (nobody signed) and a second meeting
    of another body whose chair, Åsa Öberg, has signed every extract."""
    settings = new_home()
    sample = load_sample_meeting()
    second = dataclasses.replace(
        sample,
        meeting_id=SECOND_ID,
        body=Body("BUN", "Barn- och utbildningsnämnden"),
        date=dt.date(2015, 3, 2),
        chair=Person("Åsa Öberg", "asa.oberg@kommun.example"),
    )
    settings.home.mkdir(parents=True)
    SigningCA.create(settings.ca_dir, organisation=sample.municipality)
    services = workflow.open_services(settings)
    for meeting in (sample, second):
        workflow.record_meeting(services, meeting)
        for paragraph in meeting.paragraphs:
            workflow.draft_extract(services, meeting.meeting_id, paragraph.number)
    workflow.advance_meeting(services, SECOND_ID)
    (message,) = [p for p in outbox_messages(settings.outbox_dir) if "asa.oberg" in p.read_text()]
    token = re.search(r"/s/([A-Za-z0-9_-]+)", message.read_text()).group(1)
    workflow.sign_with_link(services, token)
    yield services
    services.ledger.dispose()


def _refs(rows: list[AuditRow]) -> list[tuple[str, int | str]]:
    """(meeting, §) of each extract, (meeting, "protokoll"…) of each protocol."""
    return [(r.extract.meeting_id, r.extract.kind.ref_suffix or r.extract.paragraph) for r in rows]


PROTOCOLS = ("protokoll", "protokoll-omedelbar")
"""How _refs names the two protocols of a meeting (in the audit's order)."""


# --- find_extracts ------------------------------------------------------------------------


def test_all_extracts_newest_meeting_first_then_by_paragraph(two_meetings: Services) -> None:
    rows = find_extracts(two_meetings)
    # the second meeting's protocols were drafted by its advance; the sample's were not
    assert _refs(rows) == [(SECOND_ID, n) for n in (*PROTOCOLS, 94, 95, 96, 97)] + [
        (SAMPLE_ID, n) for n in (94, 95, 96, 97)
    ]
    assert rows[0].extract.status is ExtractStatus.AWAITING_ADJUSTERS
    assert rows[0].to_json()["kind"] == "protocol" and rows[0].to_json()["paragraph"] is None
    first = rows[2]
    assert (first.body_code, first.body_name) == ("BUN", "Barn- och utbildningsnämnden")
    assert first.meeting_date == dt.date(2015, 3, 2)
    assert (first.extract.dnr, first.extract.version) == ("KFKS 2012/577-001", 1)
    assert first.extract.status is ExtractStatus.AWAITING_ADJUSTERS
    assert first.extract.title == "Styrning och ledning för öppenhet och mångfald"


def test_an_archived_extract_has_its_uri_and_every_signer_in_order(
    archived_services: Services, archived_meeting: ArchivedMeeting
) -> None:
    rows = find_extracts(archived_services)
    assert [r.extract.archive_uri for r in rows] == [
        p.archive_uri for p in archived_meeting.protocols
    ] + archived_meeting.archive_uris
    signatures = rows[3].signatures
    assert [(s.name, s.role) for s in signatures] == [
        ("Mats Gerdau", "chair"),
        ("Rolf Wasteson", "adjuster"),
        ("Lena Sekreterare", "certifier"),
    ]
    assert signatures[0].email == "mats.gerdau@nacka.example"
    assert signatures[0].at.tzinfo is not None
    assert signatures[0].at <= signatures[1].at <= signatures[2].at


def test_body_is_exact_and_case_insensitive(two_meetings: Services) -> None:
    assert {r.extract.meeting_id for r in find_extracts(two_meetings, body="bun")} == {SECOND_ID}
    assert {r.extract.meeting_id for r in find_extracts(two_meetings, body=" KSAU ")} == {SAMPLE_ID}
    assert find_extracts(two_meetings, body="KSA") == []
    assert find_extracts(two_meetings, body="K%") == []


def test_date_range_is_inclusive(two_meetings: Services) -> None:
    day = dt.date(2015, 3, 2)
    assert {r.extract.meeting_id for r in find_extracts(two_meetings, date_from=day)} == {SECOND_ID}
    assert {r.extract.meeting_id for r in find_extracts(two_meetings, date_to=day)} == {
        SECOND_ID,
        SAMPLE_ID,
    }
    before = find_extracts(two_meetings, date_to=day - dt.timedelta(days=1))
    assert {r.extract.meeting_id for r in before} == {SAMPLE_ID}
    assert find_extracts(two_meetings, date_from=day + dt.timedelta(days=1)) == []
    window = find_extracts(
        two_meetings, date_from=dt.date(2014, 8, 19), date_to=dt.date(2014, 8, 19)
    )
    assert {r.extract.meeting_id for r in window} == {SAMPLE_ID}


def test_dnr_is_a_case_insensitive_substring_with_wildcards_taken_literally(
    two_meetings: Services,
) -> None:
    assert _refs(find_extracts(two_meetings, dnr="kfks 2014/412")) == [
        (SECOND_ID, 95),
        (SAMPLE_ID, 95),
    ]
    assert find_extracts(two_meetings, dnr="_") == []
    assert find_extracts(two_meetings, dnr="%") == []
    assert find_extracts(two_meetings, dnr="2014%412") == []


def test_signer_by_name_or_email_including_non_ascii_letters(two_meetings: Services) -> None:
    second = [(SECOND_ID, n) for n in (*PROTOCOLS, 94, 95, 96, 97)]
    assert _refs(find_extracts(two_meetings, signer="åsa öberg")) == second
    assert _refs(find_extracts(two_meetings, signer="ÅSA")) == second
    assert _refs(find_extracts(two_meetings, signer="asa.oberg@")) == second
    assert find_extracts(two_meetings, signer="asa öberg") == []  # å is not a
    assert find_extracts(two_meetings, signer="Öberg", limit=4)[3].extract.paragraph == 95
    # Rolf Wasteson is notified on the second meeting, but has signed nothing:
    assert find_extracts(two_meetings, signer="wasteson") == []


def test_signer_in_the_archived_meeting(archived_services: Services) -> None:
    assert len(find_extracts(archived_services, signer="wasteson")) == 4 + 2  # and the protocols
    assert len(find_extracts(archived_services, signer="LENA.SEKRETERARE@NACKA")) == 4


def test_status_filter_takes_the_enum_or_its_value(two_meetings: Services) -> None:
    waiting = find_extracts(two_meetings, status=ExtractStatus.AWAITING_CHAIR)
    assert {r.extract.meeting_id for r in waiting} == {SAMPLE_ID}
    assert _refs(find_extracts(two_meetings, status="awaiting_adjusters")) == _refs(
        find_extracts(two_meetings, body="BUN")
    )
    assert find_extracts(two_meetings, status="archived") == []
    with pytest.raises(FilterError, match="status: expected one of awaiting_chair"):
        find_extracts(two_meetings, status="klar")


def test_filters_combine(two_meetings: Services) -> None:
    rows = find_extracts(
        two_meetings, body="bun", dnr="233", signer="öberg", status="awaiting_adjusters"
    )
    assert _refs(rows) == [(SECOND_ID, 97)]
    assert find_extracts(two_meetings, body="ksau", signer="öberg") == []


def test_limit(two_meetings: Services) -> None:
    assert _refs(find_extracts(two_meetings, limit=3)) == [(SECOND_ID, n) for n in (*PROTOCOLS, 94)]
    with pytest.raises(FilterError, match="limit"):
        find_extracts(two_meetings, limit=0)


def test_every_status_has_its_swedish_name() -> None:
    names = [status.swedish for status in ExtractStatus]
    assert all(names) and len(set(names)) == len(names)


def test_importing_the_audit_leaves_the_database_and_workflow_unloaded() -> None:
    """The command line builds its parser with ``add_audit_arguments`` on every run."""
    code = (
        "import sys, justering.cli.audit; "
        "print([m for m in ('sqlalchemy', 'justering.workflow') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_parse_date_names_the_field() -> None:
    assert parse_date("2014-08-19") == dt.date(2014, 8, 19)
    for bad in ("2014-8-19", "19/08/2014", "2014-02-30", ""):
        with pytest.raises(FilterError, match=r"från: expected a date as YYYY-MM-DD"):
            parse_date(bad, "från")


# --- timelines ----------------------------------------------------------------------------


def test_timeline_of_an_archived_extract(
    archived_services: Services, archived_meeting: ArchivedMeeting
) -> None:
    timeline = extract_timeline(archived_services, SAMPLE_ID, 95)
    kinds = [e.kind for e in timeline.events]
    assert kinds[0] is EventKind.DRAFTED and kinds[-1] is EventKind.ARCHIVED
    assert kinds.count(EventKind.SIGNED) == 2 and kinds.count(EventKind.CERTIFIED) == 1
    assert [e.seq for e in timeline.events] == list(range(1, len(kinds) + 1))
    assert timeline.chain_ok and timeline.chain_problems == ()
    assert timeline.archive_uri == archived_meeting.archive_uris[1]
    assert timeline.row.extract.dnr == "KFKS 2014/412-251"
    assert timeline.to_json()["chain_ok"] is True
    # the extract's trail names the protocol that justered its paragraph
    [justered] = [e for e in timeline.events if e.kind is EventKind.JUSTERED]
    assert justered.detail["protocol"] == f"{SAMPLE_ID}/protokoll"
    assert justered.detail["protocol_sha256"] and justered.detail["late"] == "true"


def test_timeline_of_an_archived_protocol(
    archived_services: Services, archived_meeting: ArchivedMeeting
) -> None:
    timeline = extract_timeline(archived_services, SAMPLE_ID, 0, DocumentKind.PROTOCOL)
    kinds = [e.kind for e in timeline.events]
    assert kinds[0] is EventKind.DRAFTED and kinds[-1] is EventKind.ARCHIVED
    assert kinds.count(EventKind.SIGNED) == 2 and EventKind.CERTIFIED not in kinds
    assert kinds.count(EventKind.ANNOUNCED) == 1
    assert timeline.chain_ok
    assert timeline.archive_uri == archived_meeting.protocols[0].archive_uri
    # the ledger's count and the archived copy's, each said with why they differ
    assert timeline.archived_count == len(kinds) - 1
    assert f"{len(kinds)} händelser i registret" in timeline.count_text()
    assert f"trail.json har de {len(kinds) - 1}" in timeline.count_text()
    with pytest.raises(NotFoundError, match="no immediate protocol"):
        extract_timeline(archived_services, SECOND_ID, 0, DocumentKind.IMMEDIATE_PROTOCOL)


def test_timeline_of_an_unknown_extract_is_not_found(archived_services: Services) -> None:
    with pytest.raises(NotFoundError, match="no extract § 99"):
        extract_timeline(archived_services, SAMPLE_ID, 99)


@pytest.fixture
def tampered(two_meetings: Services) -> Iterator[Services]:
    """The two meetings with the name in one recorded signature edited (undone after)."""
    edited = (TrailEventRow.extract_ref == f"{SECOND_ID}/96", TrailEventRow.kind == "signed")
    with two_meetings.ledger.transaction() as session:
        session.execute(update(TrailEventRow).where(*edited).values(actor="Någon Annan"))
    yield two_meetings
    with two_meetings.ledger.transaction() as session:
        session.execute(update(TrailEventRow).where(*edited).values(actor="Åsa Öberg"))


def test_timeline_shows_an_edited_event_as_a_broken_chain(tampered: Services) -> None:
    timeline = extract_timeline(tampered, SECOND_ID, 96)
    assert not timeline.chain_ok
    assert any("(signed) was altered" in p for p in timeline.chain_problems)
    assert extract_timeline(tampered, SECOND_ID, 95).chain_ok


# --- the command line ---------------------------------------------------------------------


def _audit(services: Services, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="justering audit")
    add_audit_arguments(parser)
    return run_audit(parser.parse_args(argv), services)


def test_cli_table_in_swedish(two_meetings: Services, capsys: pytest.CaptureFixture[str]) -> None:
    assert _audit(two_meetings, "--signer", "öberg", "--dnr", "577") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "Organ",
        "Datum",
        "§",
        "Diarienummer",
        "Status",
        "Undertecknare",
        "Rubrik",
    ]
    assert re.split(r"\s{2,}", out[2]) == [
        "BUN",
        "2015-03-02",
        "94",
        "KFKS 2012/577-001",
        "väntar på justerare",
        "Åsa Öberg (ordförande)",
        "Styrning och ledning för öppenhet och mångfald",
    ]
    assert out[-1] == "1 utdrag"


def test_cli_says_when_nothing_matches_or_the_limit_is_reached(
    two_meetings: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _audit(two_meetings, "--body", "KF") == 0
    assert capsys.readouterr().out.strip() == "Inga utdrag matchar sökningen."
    assert _audit(two_meetings, "--limit", "3") == 0
    assert "1 utdrag och 2 protokoll (gränsen nådd" in capsys.readouterr().out


def test_cli_json_has_stable_keys(
    archived_services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _audit(archived_services, "--json", "--dnr", "412", "--from", "2014-08-19") == 0
    (extract,) = json.loads(capsys.readouterr().out)["extracts"]
    assert list(extract) == [
        "meeting_id", "body_code", "body_name", "meeting_date", "kind", "paragraph", "dnr",
        "title", "version", "status", "archive_uri", "signatures",
    ]  # fmt: skip
    assert extract["meeting_date"] == "2014-08-19" and extract["status"] == "archived"
    assert list(extract["signatures"][0]) == ["name", "email", "role", "at", "version"]
    assert dt.datetime.fromisoformat(extract["signatures"][0]["at"]).tzinfo is not None


def test_cli_timeline(archived_services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    assert _audit(archived_services, "--meeting", SAMPLE_ID, "--paragraph", "97") == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "Kommunstyrelsens arbetsutskott (KSAU) 2014-08-19, § 97, KFKS 2014/233-311"
    )
    assert "Status: arkiverat, version 1" in out
    assert re.search(r"signerat\s+Rolf Wasteson <rolf.wasteson@nacka.example>, justerare", out)
    timeline = extract_timeline(archived_services, SAMPLE_ID, 97)
    assert f"Händelsekedjan är hel ({timeline.count_text()})." in out
    assert re.search(r"\d\d:\d\d CES?T  signerat", out)  # Swedish time, with its zone
    assert _audit(archived_services, "--meeting", SAMPLE_ID, "--protocol", "omedelbar") == 0
    out = capsys.readouterr().out
    assert out.startswith("Kommunstyrelsens arbetsutskott (KSAU) 2014-08-19, protokoll över")
    assert re.search(r"anslaget\s+system", out)
    assert _audit(archived_services, "--meeting", SAMPLE_ID, "--paragraph", "97", "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert list(document) == ["extract", "chain_ok", "chain_problems", "events"]
    assert document["events"][-1]["kind"] == "archived"


def test_cli_timeline_with_a_broken_chain_exits_1(
    tampered: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _audit(tampered, "--meeting", SECOND_ID, "--paragraph", "96") == 1
    out = capsys.readouterr().out
    assert "Händelsekedjan är BRUTEN:" in out and "was altered" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2014-13-01"], "--from: expected a date as YYYY-MM-DD"),
        (["--to", "igår"], "--to: expected a date as YYYY-MM-DD"),
        (["--status", "klar"], "status: expected one of awaiting_chair"),
        (["--limit", "0"], "limit: expected a whole number from 1"),
        (["--paragraph", "x"], "invalid int value"),
    ],
)
def test_cli_malformed_values_exit_2_with_a_message(
    two_meetings: Services, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        _audit(two_meetings, *argv)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_timeline_needs_both_meeting_and_paragraph_and_an_existing_extract(
    two_meetings: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _audit(two_meetings, "--meeting", SECOND_ID) == 2
    assert "--meeting and --paragraph (or --protocol) go together" in capsys.readouterr().err
    assert _audit(two_meetings, "--meeting", SECOND_ID, "--paragraph", "12") == 2
    assert "no extract § 12 of meeting 'bun-2015-03-02'" in capsys.readouterr().err


# --- speed at thousands of extracts ---------------------------------------------------------

MEETINGS, PER_MEETING = 200, 25


@pytest.fixture(scope="module")
def bulk(new_home: Callable[[], Settings]) -> Iterator[Services]:
    """5,000 extracts (200 meetings of 4 bodies), each with 5 trail events."""
    settings = new_home()
    settings.home.mkdir(parents=True)
    SigningCA.create(settings.ca_dir, organisation="Bulk kommun")
    services = workflow.open_services(settings)
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    meetings, extracts, events = [], [], []
    for m in range(MEETINGS):
        body = ("KS", "BUN", "MN", "KF")[m % 4]
        date = dt.date(2020, 1, 1) + dt.timedelta(days=7 * m)
        meeting_id = f"{body.lower()}-{m:04d}"
        manifest = {"body": {"code": body, "name": f"Organ {body}"}, "date": date.isoformat()}
        meetings.append(
            {"meeting_id": meeting_id, "manifest": manifest, "manifest_sha256": "0" * 64,
             "created_at": start, "work_requested": 1, "work_done": 1}
        )  # fmt: skip
        for p in range(PER_MEETING):
            extract_id = m * PER_MEETING + p + 1
            extracts.append(
                {"id": extract_id, "meeting_id": meeting_id, "paragraph": p + 1,
                 "dnr": f"{body} {2020 + m // 52}/{extract_id:05d}", "title": f"Ärende {p}",
                 "version": 1, "status": "archived", "head_sha256": "0" * 64,
                 "archive_uri": None, "updated_at": start}
            )  # fmt: skip
            people = [(f"Person {m % 17}", "chair"), (f"Justerare {extract_id % 101}", "adjuster"),
                      ("Sekreterare", "certifier")]  # fmt: skip
            kinds = ["drafted", "signed", "signed", "certified", "archived"]
            for seq, kind in enumerate(kinds, start=1):
                name, role = people[seq - 2] if 2 <= seq <= 4 else ("system", None)
                events.append(
                    {"extract_id": extract_id, "seq": seq, "kind": kind, "at": start,
                     "actor": name, "actor_email": None, "role": role, "slot": None,
                     "version": 1, "document_sha256": None, "certificate_sha256": None,
                     "detail": {}, "prev_hash": "0" * 64, "hash": "0" * 64,
                     "extract_ref": f"{meeting_id}/{p + 1}"}
                )  # fmt: skip
    with services.ledger.transaction() as session:
        session.execute(insert(MeetingRow), meetings)
        session.execute(insert(ExtractRow), extracts)
        session.execute(insert(TrailEventRow), events)
    yield services
    services.ledger.dispose()


def _timed(services: Services, **filters: object) -> tuple[float, list[AuditRow]]:
    find_extracts(services, **filters)  # type: ignore[arg-type]  # warm the page cache
    start = time.perf_counter()
    rows = find_extracts(services, **filters)  # type: ignore[arg-type]
    return time.perf_counter() - start, rows


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, 200),
        ({"dnr": "/04999"}, 1),
        ({"signer": "justerare 100"}, 49),
        # KF is m % 4 == 3, Person 3 chairs m % 17 == 3: meetings 3, 71 and 139
        ({"signer": "person 3", "body": "kf"}, 3 * PER_MEETING),
        # KS meets every fourth week; 2021-01-01..06-30 holds meetings 56, 60, … 76
        ({"body": "KS", "date_from": dt.date(2021, 1, 1), "date_to": dt.date(2021, 6, 30)}, 150),
        ({"signer": "ÅSA"}, 0),
    ],
)
def test_searches_over_5000_extracts_stay_fast(
    bulk: Services, filters: dict[str, object], expected: int
) -> None:
    elapsed, rows = _timed(bulk, **filters)
    assert len(rows) == expected
    print(f"\n{filters}: {len(rows)} rows in {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0
