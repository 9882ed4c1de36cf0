"""``justering bench``: the pure parts (percentiles, matching clicks to the messages
they cause, reading /proc), the generated meetings and the floor, and one whole run
at a tiny size (slow: a real Prefect server and ``justering serve``).

No test asserts a speed target: the figures depend on the machine and its load.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from justering.config import load_settings
from justering.devtools.bench import run_bench
from justering.devtools.bench.floor import run_floor
from justering.devtools.bench.latency import (
    Click,
    Outbox,
    SentMessage,
    click_latencies,
    outbox_time,
    percentile,
)
from justering.devtools.bench.meetings import bench_meeting
from justering.devtools.bench.memory import (
    RssSampler,
    cmdline,
    process_label,
    process_tree,
    status_kb,
)
from justering.devtools.bench.runner import passing_processes, unfinished_flow_runs
from justering.documents.rendering import render_extract
from justering.ledger.database import Ledger
from justering.ledger.schema import ExtractRow
from justering.mail.compose import MeetingHeader
from justering.mail.delivery import OutboxNotifier
from justering.mail.messages import SigningReceiptMail, SigningRequest
from justering.model.manifest import load_sample_meeting, parse_manifest
from justering.model.meeting import meeting_to_dict
from justering.model.process import DocumentKind, ExtractStatus
from justering.model.roles import Person, Role
from justering.orchestration.prefect_server import local_prefect_server, prefect_environment
from justering.pades.ca import SigningCA
from justering.pades.validate import validate_extract

TODAY = dt.date.today()

# --- percentiles ---------------------------------------------------------------------------


def test_percentile_agrees_with_the_standard_librarys_inclusive_quantiles() -> None:
    generator = random.Random(5)
    for size in (2, 3, 7, 20, 101):
        values = [generator.uniform(0.1, 5.0) for _ in range(size)]
        cuts = statistics.quantiles(values, n=20, method="inclusive")
        assert percentile(values, 0.5) == pytest.approx(statistics.median(values))
        assert percentile(values, 0.95) == pytest.approx(cuts[18])
        assert percentile(values, 0.05) == pytest.approx(cuts[0])


def test_percentile_ends_and_a_single_value() -> None:
    values = [3.0, 1.0, 2.0]
    assert percentile(values, 0.0) == min(values)
    assert percentile(values, 1.0) == max(values)
    assert percentile([0.7], 0.95) == 0.7


def test_percentile_refuses_nothing_and_fractions_outside_0_to_1() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        percentile([1.0], 95)


# --- clicks and the messages they cause ------------------------------------------------------


def sent(meeting_id: str, role: Role, at: float) -> SentMessage:
    return SentMessage(meeting_id, role, at, f"{role.value}@x.example", None, Path(f"{at}.eml"))


def test_each_click_is_matched_to_the_next_signers_first_message_after_it() -> None:
    clicks = [Click("m1", Role.CHAIR, 10.0), Click("m1", Role.ADJUSTER, 20.0)]
    sent_messages = [
        sent("m1", Role.CHAIR, 5.0),
        sent("m1", Role.ADJUSTER, 9.0),  # before the click: not its consequence
        sent("m1", Role.ADJUSTER, 10.75),
        sent("m1", Role.ADJUSTER, 12.0),
        sent("m2", Role.CERTIFIER, 20.1),  # another meeting
        sent("m1", Role.CERTIFIER, 21.5),
    ]
    assert click_latencies(clicks, sent_messages) == pytest.approx([0.75, 1.5])


def test_only_the_last_adjusters_click_hands_on_to_the_certifier() -> None:
    clicks = [
        Click("m", Role.CHAIR, 1.0),
        Click("m", Role.ADJUSTER, 3.0),
        Click("m", Role.ADJUSTER, 4.0),
        Click("m", Role.CERTIFIER, 6.0),
    ]
    sent_messages = [
        sent("m", Role.ADJUSTER, 1.5),
        sent("m", Role.ADJUSTER, 1.6),
        sent("m", Role.CERTIFIER, 4.25),
    ]
    # The chair's click → the first adjuster message; the second adjuster's → the
    # certifier's; the first adjuster's and the certifier's clicks hand on nothing.
    assert click_latencies(clicks, sent_messages) == pytest.approx([0.5, 0.25])


def test_a_click_whose_next_message_never_came_is_an_error() -> None:
    with pytest.raises(ValueError, match="no adjuster message for m after the chair"):
        click_latencies([Click("m", Role.CHAIR, 1.0)], [sent("m", Role.ADJUSTER, 0.5)])


def request_to(email: str, role: Role) -> SigningRequest:
    return SigningRequest(
        to=Person("Mats Gerdau", email),
        role=role,
        meeting=MeetingHeader(
            "nacka-ksau-2014-08-19", "Nacka kommun", "Kommunstyrelsens arbetsutskott", TODAY
        ),
        link=f"http://127.0.0.1:1/s/token-{role.value}",
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=21),
        deadline=TODAY + dt.timedelta(days=14),
        extracts=(),
    )


def test_the_outbox_time_is_when_the_message_was_sent(tmp_path: Path) -> None:
    notifier = OutboxNotifier(tmp_path)
    before = time.time()
    notifier.send(request_to("a@x.example", Role.CHAIR))
    after = time.time()
    [path] = tmp_path.glob("*.eml")
    assert before - 0.001 <= outbox_time(path) <= after + 0.001
    with pytest.raises(ValueError, match="not an outbox file name"):
        outbox_time(tmp_path / "notes.eml")


def test_the_bench_reads_only_its_own_signers_requests(tmp_path: Path) -> None:
    """Messages from before, receipts and other people's requests are skipped; each
    request names its meeting (by the plus-addressed recipient), role and link."""
    notifier = OutboxNotifier(tmp_path)
    meeting = bench_meeting("bench-t-1", 1, tag="t1", date=TODAY)
    chair = meeting.chair.email
    notifier.send(request_to(chair, Role.CHAIR))  # there before the bench looked
    outbox = Outbox(tmp_path)
    outbox.expect(meeting)
    notifier.send(request_to("someone.else@nacka.example", Role.CHAIR))
    notifier.send(
        SigningReceiptMail(
            to=Person("Mats Gerdau", chair),
            role=Role.CHAIR,
            meeting=MeetingHeader("nacka-ksau-2014-08-19", "Nacka kommun", "KSAU", TODAY),
            signed_at=dt.datetime.now(dt.UTC),
            items=(),
        )
    )
    notifier.send(request_to(meeting.adjusters[0].email, Role.ADJUSTER))
    [found] = outbox.poll()
    assert (found.meeting_id, found.role, found.email) == (
        "bench-t-1",
        Role.ADJUSTER,
        meeting.adjusters[0].email,
    )
    assert found.link == "http://127.0.0.1:1/s/token-adjuster"
    assert outbox.poll() == []
    assert outbox.sent_messages == [found]


def test_without_a_prefect_api_the_flow_runs_are_not_asked_about(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert unfinished_flow_runs({"m"}) is None


# --- /proc ---------------------------------------------------------------------------------


def test_status_fields_are_read_in_kilobytes() -> None:
    status = Path("/proc/self/status").read_text()
    rss, peak = status_kb(status, "VmRSS"), status_kb(status, "VmHWM")
    assert rss is not None and peak is not None
    assert 0 < rss <= peak
    # The kernel's own account of this process's peak, in kB on Linux.
    assert peak <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + 1024
    assert status_kb("Name:\tzombie\nState:\tZ (zombie)\n", "VmRSS") is None


@pytest.mark.parametrize(
    ("cmdline", "label"),
    [
        ([sys.executable, "-m", "justering", "serve", "--port", "1"], "serve"),
        ([sys.executable, "-m", "justering", "--home", "h", "verify", "a.pdf"], "verify"),
        ([sys.executable, "-m", "prefect.engine"], "flow-run"),
        (
            [
                sys.executable,
                "-B",
                "-c",
                "from multiprocessing.spawn import spawn_main; "
                "spawn_main(tracker_fd=12, pipe_handle=30)",
                "--multiprocessing-fork",
            ],
            "worker",
        ),
        (
            [
                sys.executable,
                "-B",
                "-c",
                "from multiprocessing.resource_tracker import main;main(11)",
            ],
            "resource-tracker",
        ),
        (["/v/bin/python", "/v/bin/prefect", "server", "start", "--port", "9"], "prefect-server"),
        (["/usr/bin/pdfsig", "a.pdf"], "pdfsig"),
        ([], "?"),
    ],
)
def test_processes_are_labelled_by_their_command_line(cmdline: list[str], label: str) -> None:
    assert process_label(cmdline) == label


@pytest.fixture
def family() -> Iterator[subprocess.Popen[bytes]]:
    """A shell with two children."""
    process = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    deadline = time.monotonic() + 10
    while not _children_started(process.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    yield process
    for pid in process_tree([process.pid]) - {process.pid}:
        os.kill(pid, 15)
    process.wait(timeout=10)


def _children_started(pid: int) -> bool:
    """Both children forked and running ``sleep`` (a forked child that has not yet
    exec'd still shows the shell's command line)."""
    children = process_tree([pid]) - {pid}
    try:
        started = [Path(f"/proc/{c}/cmdline").read_bytes().startswith(b"sleep") for c in children]
    except OSError:
        return False
    return len(started) == 2 and all(started)


def test_the_process_tree_holds_the_root_and_its_children(
    family: subprocess.Popen[bytes],
) -> None:
    tree = process_tree([family.pid])
    assert family.pid in tree
    children = tree - {family.pid}
    assert len(children) == 2
    for pid in children:
        assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep")
    assert process_tree([2**22 + 7]) == set()  # no such process


def test_a_services_passing_processes_leave_out_its_resident_workers() -> None:
    """The latency phase waits for serve's passing processes (a flow run's) to end,
    not for its worker processes, which live as long as it does."""
    worker = "from multiprocessing.spawn import spawn_main; import time; time.sleep(30)"
    service = subprocess.Popen(
        ["sh", "-c", f'{sys.executable} -c "{worker}" & sleep 30 & wait'],
    )
    try:
        deadline = time.monotonic() + 10
        while len(process_tree([service.pid])) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # both children past their exec
        children = process_tree([service.pid]) - {service.pid}
        labels = {process_label(cmdline(Path(f"/proc/{pid}"))): pid for pid in children}
        assert set(labels) == {"worker", "sleep"}, labels
        assert passing_processes(service.pid) == {labels["sleep"]}
        os.kill(labels["sleep"], 15)
        deadline = time.monotonic() + 10
        while passing_processes(service.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert passing_processes(service.pid) == set()  # only the worker is left
    finally:
        for pid in process_tree([service.pid]) - {service.pid}:
            os.kill(pid, 15)
        service.wait(timeout=10)


def test_the_sampler_finds_a_childs_peak_memory() -> None:
    """A child that touched 80 MB and gave it back still shows its peak."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; b = bytearray(80 * 2**20); del b; print('ok', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ok\n"
        sampler = RssSampler()
        sampler.watch("justering", child.pid)
        sampler.sample()
        peak = sampler.peak_mb("justering")
        assert peak is not None and peak >= 80
        assert set(sampler.by_label_mb("justering")) == {Path(sys.executable).name}
        assert 0 < sampler.sum_kb["justering"] / 1024 < peak
        assert sampler.peak_sum_kb["justering"] / 1024 == peak  # one process: its peak
        assert sampler.peak_mb("prefect") is None
    finally:
        child.kill()
        child.wait()


# --- the meetings and the floor ------------------------------------------------------------


def test_bench_meetings_have_one_page_paragraphs_and_their_own_signers() -> None:
    meeting = bench_meeting(
        "bench-x-1", 6, first=11, series=123456, adjusters=2, tag="x1", date=TODAY
    )
    assert parse_manifest(meeting_to_dict(meeting)) == meeting  # a valid manifest
    assert [p.number for p in meeting.paragraphs] == list(range(11, 17))
    assert len({p.dnr for p in meeting.paragraphs}) == 6
    assert not any(p.immediate for p in meeting.paragraphs)
    sample_titles = {p.title for p in load_sample_meeting().paragraphs}
    assert {p.title for p in meeting.paragraphs} == sample_titles
    for paragraph in meeting.paragraphs[:4]:
        pdf = render_extract(meeting, paragraph)
        assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    emails = [s.email for role in Role for s in meeting.signers(role)]
    assert len(emails) == 4 and all("+x1@" in e for e in emails)
    other = bench_meeting("bench-x-2", 1, tag="x2", date=TODAY)
    assert not set(emails) & {s.email for role in Role for s in other.signers(role)}


def test_the_floor_signs_validates_and_stores_every_extract(tmp_path: Path) -> None:
    ca = SigningCA.create(tmp_path / "ca", organisation="Nacka kommun")
    meeting = bench_meeting("bench-f", 2, adjusters=2, tag="f", date=TODAY)
    seconds = run_floor(meeting, ca, dt.timedelta(days=365), tmp_path / "floor")
    assert seconds > 0
    with sqlite3.connect(tmp_path / "floor" / "floor.sqlite") as database:
        stored = dict(database.execute("SELECT paragraph, content FROM documents"))
    assert set(stored) == {1, 2}
    for number, content in stored.items():
        assert (tmp_path / "floor" / f"{number}.pdf").read_bytes() == content
        validation = validate_extract(content, [ca.certificate], expected_adjusters=2)
        assert validation.ok, validation.problems
        assert [s.role for s in validation.signatures] == [
            Role.CHAIR,
            Role.ADJUSTER,
            Role.ADJUSTER,
            Role.CERTIFIER,
        ]


# --- one whole run -------------------------------------------------------------------------

KEYS = {
    "ratio_vs_floor",
    "latency_p50_s",
    "latency_p95_s",
    "verify_ratio_vs_pdfsig",
    "peak_rss_mb",
    "peak_rss_total_mb",
    "details",
}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_tiny_bench_run_reports_every_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("JUSTERING_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("JUSTERING_SMTP_URL", "smtp://127.0.0.1:9")  # ignored: embedded
    settings = load_settings(tmp_path / "home", environ={})
    settings.home.mkdir(parents=True)
    with local_prefect_server(settings.prefect_home, settings.home / "prefect.log") as api:
        for name, value in prefect_environment(settings.prefect_home, api).items():
            monkeypatch.setenv(name, value)
        report = run_bench(settings, 2, progress=False, latency_meetings=2)
    figures = report.to_json()
    assert set(figures) == KEYS
    for key in KEYS - {"details", "verify_ratio_vs_pdfsig"}:
        assert figures[key] > 0, key
    details = figures["details"]
    assert details["extracts"] == 2
    assert details["samples"] == 4  # two small meetings, two hand-overs each
    assert details["pipeline_per_extract_s"] > 0 and details["floor_per_extract_s"] > 0
    assert figures["ratio_vs_floor"] == pytest.approx(
        details["pipeline_per_extract_s"] / details["floor_per_extract_s"], rel=0.01
    )
    assert figures["latency_p50_s"] <= figures["latency_p95_s"] <= details["latency_max_s"]
    assert len(details["bulk_latencies_s"]) == 2
    assert len(details["floor_runs_s"]) == 2
    assert details["floor_per_extract_s"] == pytest.approx(min(details["floor_runs_s"]) / 2, 0.01)
    stages = details["stages_s"]
    assert {"drafted", "notified chair", "signed chair", "certified certifier"} < set(stages)
    assert 0 < stages["drafted"][0] <= stages["archived"][1]
    assert stages["archived"][1] == pytest.approx(details["pipeline_seconds"], abs=0.01)
    assert details["machine"]["cpu_count"] == os.cpu_count()
    assert set(details["machine"]["load_average"]) == {
        "start",
        "floor_1",
        "pipeline",
        "latency",
        "floor_2",
        "end",
    }
    # serve, its worker processes (no process per flow run) and verify.
    assert {"serve", "worker", "verify"} <= set(details["rss_mb"])
    assert "flow-run" not in details["rss_mb"]
    assert figures["peak_rss_mb"] == max(
        details["rss_mb"][k] for k in ("serve", "worker", "verify")
    )
    # Together: at least serve's peak, and their peaks at least what was sampled.
    rss = details["rss_mb"]
    assert figures["peak_rss_total_mb"] >= max(rss["serve"], rss["justering_sum"])
    if details["verify"]["pdfsig_s"] is None:
        assert figures["verify_ratio_vs_pdfsig"] is None
    else:
        assert figures["verify_ratio_vs_pdfsig"] > 0
    assert set(details["targets"]) == {
        "ratio_vs_floor",
        "latency_p50_s",
        "peak_rss_mb",
        "peak_rss_total_mb",
    }
    # Every bench meeting went all the way, on the embedded defaults.
    ledger = Ledger(settings.database_url)
    try:
        with ledger.reading() as session:
            documents = session.execute(select(ExtractRow.kind, ExtractRow.status)).all()
    finally:
        ledger.dispose()
    # Five extracts (the main meeting's two, two small meetings' one and two), and
    # each of the three meetings' protocol.
    assert sorted(kind for kind, _ in documents) == sorted(
        [DocumentKind.EXTRACT] * (2 + 1 + 2) + [DocumentKind.PROTOCOL] * 3
    )
    assert {status for _, status in documents} == {ExtractStatus.ARCHIVED}
    assert len(list((settings.home / "outbox").glob("*.eml"))) > 0
    text = report.describe()
    for key in KEYS - {"details"}:
        assert key in text
    assert processes_of(settings.home) == []  # serve and its flow runs are gone


def processes_of(home: Path) -> list[str]:
    """Command lines of running processes whose environment names ``home``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if str(home) in (proc / "environ").read_bytes().decode(errors="replace"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found
