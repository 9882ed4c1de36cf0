"""``justering status MEETING [--json]`` as the secretary runs it: a subprocess on a
home whose meeting is half-way (the chair and the first adjuster have signed, the
second adjuster has declined § 94 with a comment and is waited for on § 96)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from justering import workflow
from justering.model.calendar import local_minute
from justering.model.meeting import Meeting
from justering.pades.ca import SigningCA
from justering.workflow.declining import decline_with_link
from justering.workflow.meeting_view import meeting_view
from support.archived import run_cli, sample_settings
from support.workflow import SHORT_PARAGRAPH, extract_rows, newest_token, sign_as, small_meeting

COMMENT = "Beloppet i andra stycket är fel."


@dataclass(frozen=True)
class HalfWay:
    home: Path
    meeting: Meeting


@pytest.fixture(scope="module")
def half_way(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HalfWay]:
    from justering.model.manifest import load_sample_meeting

    home = tmp_path_factory.mktemp("status") / "home"
    settings = sample_settings(home)
    meeting = small_meeting(load_sample_meeting(), paragraphs=(94, SHORT_PARAGRAPH), adjusters=2)
    home.mkdir(parents=True)
    SigningCA.create(settings.ca_dir, organisation=meeting.municipality)
    services = workflow.open_services(settings)
    try:
        workflow.record_meeting(services, meeting)
        workflow.advance_meeting(services, meeting.meeting_id)
        sign_as(services, meeting.chair.email)
        workflow.advance_meeting(services, meeting.meeting_id)
        sign_as(services, meeting.adjusters[0].email)
        ids = {row.paragraph: row.id for row in extract_rows(services, meeting.meeting_id)}
        token = newest_token(services, meeting.adjusters[1].email)
        decline_with_link(services, token, ids[94], COMMENT)
    finally:
        services.ledger.dispose()
    yield HalfWay(home, meeting)


def test_status_in_swedish_with_swedish_times(half_way: HalfWay) -> None:
    meeting = half_way.meeting
    done = run_cli(half_way.home, "status", meeting.meeting_id)
    assert done.returncode == 0, done.stderr
    services = workflow.open_services(sample_settings(half_way.home))
    try:
        view = meeting_view(services, meeting.meeting_id)
    finally:
        services.ledger.dispose()
    declined, waiting = view.paragraphs
    chair_signed = local_minute(declined.signatures[0].at)
    asked = waiting.waiting[0].notified_at
    assert asked is not None
    second = meeting.adjusters[1]
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        f"{meeting.body.name} ({meeting.body.code}), {meeting.municipality}",
        f"Sammanträde {meeting.date.isoformat()} ({meeting.meeting_id})",
        f"Justeras senast {view.deadline.isoformat()} (passerad)",  # a meeting of 2014
        "2 paragrafer: 1 väntar på justerare, 1 avböjt, åter hos sekreteraren",
    ]
    text = done.stdout
    assert f"§ 94  {declined.dnr}  {declined.title}" in text
    assert "version 1: avböjt, åter hos sekreteraren" in text
    assert "Protokollet\n    version 1: vilande: en paragraf har avböjts och rättas" in text
    assert "    väntar på att § 94 rättas och signeras" in text
    assert f"signerat:   {meeting.chair.name}, ordförande, {chair_signed}" in text
    assert f"avböjt:     {second.name}, justerare, " in text and COMMENT in text
    assert "version 1: väntar på justerare – justeringen är försenad" in text
    assert f"väntar på:  {second.name}, justerare, underrättad {local_minute(asked)}" in text
    # Swedish local time, not UTC (they differ by one or two hours all year)
    assert asked.strftime("%Y-%m-%d %H:%M") not in text


def test_status_json_is_the_documented_format(half_way: HalfWay) -> None:
    meeting = half_way.meeting
    done = run_cli(half_way.home, "status", meeting.meeting_id, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == {
        "meeting_id",
        "municipality",
        "body",
        "date",
        "justering_deadline",
        "deadline_passed",
        "paragraphs",
        "protocols",
    }
    # The protocol waits for § 94, which was declined: held, nobody signs it now.
    [protocol] = document["protocols"]
    assert (protocol["kind"], protocol["status"], protocol["held_for"]) == (
        "protocol",
        "held",
        [94],
    )
    assert protocol["status_swedish"] == "vilande: en paragraf har avböjts och rättas"
    assert protocol["announced_on"] is None and protocol["late"] is False
    assert document["meeting_id"] == meeting.meeting_id
    assert document["body"] == {"code": meeting.body.code, "name": meeting.body.name}
    assert document["deadline_passed"] is True
    declined, waiting = document["paragraphs"]
    assert set(declined) == {
        "paragraph",
        "dnr",
        "title",
        "immediate",
        "drafted",
        "version",
        "status",
        "status_swedish",
        "overdue",
        "signatures",
        "waiting",
        "declines",
        "announced_on",
        "appeal_deadline",
        "sha256",
        "archive_uri",
    }
    assert (declined["paragraph"], declined["status"], declined["overdue"]) == (
        94,
        "declined",
        False,
    )
    assert [d["comment"] for d in declined["declines"]] == [COMMENT]
    assert (waiting["status"], waiting["overdue"]) == ("awaiting_adjusters", True)
    assert [(w["name"], w["role"]) for w in waiting["waiting"]] == [
        (meeting.adjusters[1].name, "adjuster")
    ]
    for stamp in (
        waiting["waiting"][0]["notified_at"],
        waiting["signatures"][0]["signed_at"],
        declined["declines"][0]["declined_at"],
    ):
        moment = dt.datetime.fromisoformat(stamp)
        assert moment.utcoffset() == dt.timedelta(0), stamp


def test_status_of_an_unknown_meeting_exits_2(half_way: HalfWay) -> None:
    done = run_cli(half_way.home, "status", "ingen-sådan")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"justering: no meeting 'ingen-sådan' in the ledger of {half_way.home}\n"
    )


def test_status_before_drafting(tmp_path: Path, sample_meeting: Meeting) -> None:
    home = tmp_path / "home"
    settings = sample_settings(home)
    home.mkdir()
    SigningCA.create(settings.ca_dir, organisation=sample_meeting.municipality)
    services = workflow.open_services(settings)
    meeting = replace(sample_meeting, meeting_id="ny")
    try:
        workflow.record_meeting(services, meeting)
    finally:
        services.ledger.dispose()
    done = run_cli(home, "status", "ny")
    assert done.returncode == 0, done.stderr
    count = len(meeting.paragraphs)
    assert f"{count} paragrafer: {count} inte upprättade ännu" in done.stdout
    assert done.stdout.count("    inte upprättat ännu") == count
