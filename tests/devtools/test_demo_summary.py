"""What the demo reports: the protocols with their justering and announcement, the
count of signatures made (not of links followed), and OK only when every protocol
and extract is archived and verified."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from pathlib import Path

from justering.devtools.demo import command_started_at
from justering.devtools.demo_summary import DemoExtract, DemoProtocol, DemoSummary

EXTRACT = DemoExtract(
    paragraph=125,
    dnr="KFKS 2014/1-1",
    title="Ett ärende",
    status="archived",
    archive_uri="s3://arkiv/x/extract.pdf",
    sha256="ab" * 32,
    verified=True,
    signatures=4,
)
PROTOCOL = DemoProtocol(
    label="Protokollet",
    kind="protocol",
    status="archived",
    archive_uri="s3://arkiv/x/protocol.pdf",
    sha256="cd" * 32,
    verified=True,
    signatures=3,
    justered_on=dt.date(2014, 8, 25),
    announced_on=dt.date(2014, 8, 25),
    appeal_deadline=dt.date(2014, 9, 15),
    kept_at="Kommunstyrelsens kansli, Stadshuset",
    justering_deadline=dt.date(2014, 9, 2),
    late=False,
)


def summary(*protocols: DemoProtocol, extract: DemoExtract = EXTRACT) -> DemoSummary:
    return DemoSummary("m1", Path("/hem"), 12.5, 3, (extract, extract), protocols)


def test_the_summary_names_the_protocol_its_announcement_and_the_signatures_made() -> None:
    text = summary(PROTOCOL).describe()
    assert text.splitlines()[0] == (
        "Sammanträde m1: protokollet och 2 protokollsutdrag, "
        "11 underskrifter genom 3 länkar, 12.5 s"
    )
    assert "Protokollet: justerat 2014-08-25\n" in text
    assert "anslaget 2014-08-25 på anslagstavlan, överklagande senast 2014-09-15" in text
    assert "förvaringsplats: Kommunstyrelsens kansli, Stadshuset" in text
    assert "arkiverat, verifierat: s3://arkiv/x/protocol.pdf" in text
    assert "archived" not in text
    assert text.endswith("\nOK")


def test_a_late_justering_is_marked() -> None:
    late = dataclasses.replace(PROTOCOL, justered_on=dt.date(2014, 9, 3), late=True)
    assert "justerat 2014-09-03 (efter sista dagen, 2014-09-02)" in summary(late).describe()


def test_ok_needs_a_protocol_and_every_document_archived_and_verified() -> None:
    assert summary(PROTOCOL).ok
    assert not summary().ok
    assert not summary(dataclasses.replace(PROTOCOL, verified=False)).ok
    assert not summary(dataclasses.replace(PROTOCOL, status="justered")).ok
    assert not summary(PROTOCOL, extract=dataclasses.replace(EXTRACT, verified=False)).ok
    assert (
        summary(dataclasses.replace(PROTOCOL, verified=False))
        .describe()
        .endswith("NÅGOT GICK FEL (something failed)")
    )


def test_the_json_has_the_protocols_beside_the_extracts() -> None:
    data = summary(PROTOCOL).to_json()
    assert (data["signatures"], data["links"]) == (11, 3)
    assert [(e["paragraph"], e["signatures"]) for e in data["extracts"]] == [(125, 4), (125, 4)]
    assert data["protocols"] == [
        {
            "kind": "protocol",
            "status": "archived",
            "archive_uri": "s3://arkiv/x/protocol.pdf",
            "sha256": "cd" * 32,
            "verified": True,
            "signatures": 3,
            "justered_on": "2014-08-25",
            "justering_deadline": "2014-09-02",
            "late": False,
            "announced_on": "2014-08-25",
            "appeal_deadline": "2014-09-15",
            "kept_at": "Kommunstyrelsens kansli, Stadshuset",
        }
    ]


def test_the_start_up_figure_is_in_the_json_and_the_summary() -> None:
    timed = dataclasses.replace(summary(PROTOCOL), startup_seconds=4.26)
    assert (timed.to_json()["seconds"], timed.to_json()["startup_seconds"]) == (12.5, 4.26)
    assert "12.5 s (första paragrafen upprättad efter 4.3 s)" in timed.describe()
    assert summary(PROTOCOL).to_json()["startup_seconds"] is None


def test_the_command_start_is_read_from_proc(tmp_path: Path) -> None:
    """``/proc/self/stat``'s start time (field 22, in clock ticks after boot), after a
    command name with spaces and parentheses; the present moment without ``/proc``."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "uptime").write_text("300.25 500.00\n")  # seconds since boot, idle
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S", *["0"] * 18, str(250 * ticks), "0"]
    (proc / "self" / "stat").write_text(f"4711 (a (b) c) {' '.join(fields)}\n")
    before = time.time()
    started = command_started_at(proc)  # 50.25 s before the moment it was read
    assert before - 50.25 <= started <= time.time() - 50.25
    before = time.time()
    assert before <= command_started_at(tmp_path / "none") <= time.time()
    assert 0 <= time.time() - command_started_at() < 600  # this test process's own start
