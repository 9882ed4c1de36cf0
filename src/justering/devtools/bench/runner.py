"""Running the bench: the service, the pipeline, the latency phase and the verify phase."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import httpx
from sqlalchemy import func, select

from justering.config import Settings, load_settings
from justering.devtools.bench.constants import (
    DEFAULT_EXTRACTS,
    DEFAULT_LATENCY_MEETINGS,
    POLL_SECONDS,
    PROFILE_ENV,
    WAIT_SECONDS,
)
from justering.devtools.bench.floor import run_floor
from justering.devtools.bench.latency import (
    Click,
    Outbox,
    SentMessage,
    click_latencies,
    sign_through_page,
)
from justering.devtools.bench.meetings import bench_meeting
from justering.devtools.bench.memory import (
    RssSampler,
    cmdline,
    maxrss_mb,
    process_label,
    process_tree,
)
from justering.devtools.bench.report import BenchReport
from justering.devtools.bench.verify import clean_environment, compare_verify
from justering.devtools.demo import start_service, trail_event_at
from justering.devtools.meeting_system import MeetingSystem, register_meeting_system
from justering.errors import ConfigError
from justering.ledger.database import Ledger
from justering.ledger.schema import ExtractRow, TrailEventRow, aware_utc
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.process import DocumentKind
from justering.model.roles import Role
from justering.model.trail import EventKind
from justering.orchestration.prefect_server import free_port, stop_process, wait_until_healthy
from justering.pades.ca import SigningCA

__all__ = [
    "passing_processes",
    "profiled_main",
    "run_bench",
    "stage_times",
    "unfinished_flow_runs",
]


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"justering bench: {text}", file=sys.stderr, flush=True)


class _Service:
    """``justering serve`` for the bench and a client of its web API."""

    def __init__(
        self, settings: Settings, client: httpx.Client, base: str, system: MeetingSystem
    ) -> None:
        self.settings = settings
        self.client = client
        self.base = base
        self.system = system

    def post(self, meeting: Meeting) -> None:
        answer = self.client.post(
            "/api/meetings", json=meeting_to_dict(meeting), headers=self.system.headers
        )
        if answer.status_code != 202:
            raise ConfigError(f"bench: the web API refused {meeting.meeting_id}: {answer.text}")

    def statuses(self, meeting_id: str) -> list[str]:
        answer = self.client.get(f"/api/meetings/{meeting_id}", headers=self.system.headers)
        if answer.status_code != 200:
            raise ConfigError(f"bench: {meeting_id}: {answer.status_code} {answer.text[:300]}")
        return [extract["status"] for extract in answer.json()["extracts"]]

    def wait_archived(self, meeting: Meeting, *, interval: float = POLL_SECONDS) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            statuses = self.statuses(meeting.meeting_id)
            if len(statuses) == len(meeting.paragraphs) and set(statuses) == {"archived"}:
                return
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"bench: {meeting.meeting_id} was not archived within {WAIT_SECONDS:.0f} s; "
                    f"see {self.settings.home / 'serve.log'}"
                )
            time.sleep(interval)


def _archived_at(settings: Settings, meeting_id: str) -> float:
    """When the meeting's last extract was archived, from the ledger (epoch seconds)."""
    last = trail_event_at(settings, meeting_id, EventKind.ARCHIVED, last=True)
    if last is None:
        raise ConfigError(f"bench: {meeting_id} has no archived extract in the ledger")
    return last


def stage_times(settings: Settings, meeting_id: str, since: float) -> dict[str, list[float]]:
    """From the ledger: for each kind of trail event of the meeting (and role, where
    it has one), seconds after ``since`` (epoch) of its first and last occurrence,
    in order: where the pipeline's time went, stage by stage. (Signatures carry
    their signing time, in whole seconds.)"""
    ledger = Ledger(settings.database_url)
    try:
        with ledger.reading() as session:
            rows = session.execute(
                select(
                    TrailEventRow.kind,
                    TrailEventRow.role,
                    func.min(TrailEventRow.at),
                    func.max(TrailEventRow.at),
                )
                .join(ExtractRow, ExtractRow.id == TrailEventRow.extract_id)
                .where(ExtractRow.meeting_id == meeting_id)
                .group_by(TrailEventRow.kind, TrailEventRow.role)
            ).all()
    finally:
        ledger.dispose()
    stages = sorted(
        (aware_utc(first).timestamp() - since, aware_utc(last).timestamp() - since, kind, role)
        for kind, role, first, last in rows
    )
    return {
        f"{kind} {role}" if role else kind: [round(first, 2), round(last, 2)]
        for first, last, kind, role in stages
    }


def _run_pipeline(
    service: _Service, outbox: Outbox, meeting: Meeting, progress: bool
) -> tuple[float, list[Click], float, dict[str, list[float]]]:
    """Post ``meeting`` and sign every message as it comes, until all is archived:
    (seconds from the POST to the last archived event, the clicks, the bench's
    total reaction delay, :func:`stage_times`)."""
    outbox.expect(meeting)
    clicks: list[Click] = []
    reaction = 0.0
    posted = time.time()
    service.post(meeting)
    deadline = time.monotonic() + WAIT_SECONDS + 10 * len(meeting.paragraphs)
    next_look = time.monotonic()
    shown: tuple[set[str], float] = (set(), 0.0)
    while True:
        for sent in outbox.poll():
            if sent.meeting_id != meeting.meeting_id:
                continue
            reaction += max(0.0, time.time() - sent.at)
            click = sign_through_page(service.client, sent)
            if click is not None:
                clicks.append(click)
        if time.monotonic() >= next_look:
            statuses = service.statuses(meeting.meeting_id)
            if set(statuses) != shown[0] or time.monotonic() > shown[1] + 10:
                line = " ".join(f"{s} {statuses.count(s)}" for s in sorted(set(statuses)))
                _say(progress, f"  {line}")
                shown = (set(statuses), time.monotonic())
            if len(statuses) == len(meeting.paragraphs) and set(statuses) == {"archived"}:
                break
            next_look = time.monotonic() + 0.25
        if time.monotonic() > deadline:
            raise ConfigError(
                f"bench: the pipeline did not finish; see {service.settings.home / 'serve.log'}"
            )
        time.sleep(POLL_SECONDS)
    key = service.system.key(meeting.meeting_id)
    stages = stage_times(service.settings, key, posted)
    return _archived_at(service.settings, key) - posted, clicks, reaction, stages


def unfinished_flow_runs(meeting_ids: Collection[str]) -> int | None:
    """How many ``meeting-ended`` flow runs of these meetings are scheduled, pending or
    running, from the Prefect API this process points at (None: it points at none)."""
    if not os.environ.get("PREFECT_API_URL"):
        return None  # never let Prefect's client start a server of its own
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    active = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
    wanted = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active)))

    async def count() -> int:
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=wanted)
        return sum(1 for run in runs if run.parameters.get("meeting_id") in meeting_ids)

    return asyncio.run(count())


RESIDENT_LABELS = frozenset({"worker", "resource-tracker"})
"""The processes ``serve`` keeps for its whole life: they never make it busy."""


def passing_processes(service_pid: int, proc: Path = Path("/proc")) -> set[int]:
    """The processes below ``serve`` that come and go (a flow run's, say): not its
    worker processes, nor multiprocessing's resource tracker beside them."""
    return {
        pid
        for pid in process_tree([service_pid], proc) - {service_pid}
        if process_label(cmdline(proc / str(pid))) not in RESIDENT_LABELS
    }


def _wait_quiet(service_pid: int, meeting_ids: Collection[str]) -> None:
    """Wait until the meetings' flow runs have ended and ``serve`` has no passing
    process left (at most :data:`WAIT_SECONDS`; after that, measure anyway)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if not unfinished_flow_runs(meeting_ids) and not passing_processes(service_pid):
            return
        time.sleep(0.5)


def _run_latency(
    service: _Service,
    outbox: Outbox,
    meetings: Sequence[Meeting],
    service_pid: int,
    progress: bool,
) -> list[Click]:
    """Post the small meetings together, wait until every chair has its message and
    the service is quiet (their flow runs ended), then sign one click at a time,
    each click waiting for its consequence (the next message, or the archive)
    before the next one."""
    for meeting in meetings:
        outbox.expect(meeting)
        service.post(meeting)
    ids = {meeting.meeting_id for meeting in meetings}
    outbox.wait_for(
        lambda n: n.meeting_id in ids and n.role is Role.CHAIR,
        len(meetings),
        "the chairs' messages",
    )
    _wait_quiet(service_pid, {service.system.key(meeting_id) for meeting_id in ids})
    clicks: list[Click] = []
    for number, meeting in enumerate(meetings, 1):

        def of(role: Role, meeting_id: str = meeting.meeting_id) -> Callable[[SentMessage], bool]:
            return lambda n: n.meeting_id == meeting_id and n.role is role

        for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
            expected = len(meeting.signers(role))
            for sent in outbox.wait_for(of(role), expected, f"{meeting.meeting_id} {role}"):
                click = sign_through_page(service.client, sent)
                if click is None:
                    raise ConfigError(f"bench: the {role.value} link was already used")
                clicks.append(click)
        service.wait_archived(meeting)
        _say(progress and number % 5 == 0, f"  latency: {number}/{len(meetings)} meetings")
    return clicks


def _prefect_server_pids(api_url: str | None) -> list[int]:
    """The local Prefect server's processes (those naming its port), to report them."""
    if not api_url:
        return []
    port = httpx.URL(api_url).port
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        words = cmdline(entry)
        if process_label(words) == "prefect-server" and str(port) in words:
            found.append(int(entry.name))
    return found


def _serve_command() -> tuple[list[str] | None, dict[str, str]]:
    """How to start ``serve``: its command (None: the usual one; under cProfile when
    :data:`PROFILE_ENV` names a folder) and its environment (embedded defaults)."""
    environ = clean_environment()
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        return None, environ
    command = [
        sys.executable,
        "-c",
        "from justering.devtools.bench import profiled_main; profiled_main()",
    ]
    return command, {**environ, PROFILE_ENV: str(Path(folder).resolve())}


def profiled_main() -> None:
    """``python -m justering ARGS`` with every thread profiled; at exit the merged
    stats go to ``$JUSTERING_BENCH_PROFILE/serve-PID.prof`` (read with pstats)."""
    import cProfile
    import runpy

    profiles: list[cProfile.Profile] = []

    def profile_thread(*_: object) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    threading.setprofile(profile_thread)
    main_profile = cProfile.Profile()
    profiles.append(main_profile)
    main_profile.enable()
    code: int | str | None = 0
    try:
        runpy.run_module("justering", run_name="__main__")  # exits through SystemExit
    except SystemExit as done:
        code = done.code
    finally:
        import pstats

        for profile in profiles:
            profile.disable()
        folder = Path(os.environ[PROFILE_ENV])
        folder.mkdir(parents=True, exist_ok=True)
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(str(folder / f"serve-{os.getpid()}.prof"))
    sys.exit(code)


def run_bench(
    settings: Settings,
    extracts: int = DEFAULT_EXTRACTS,
    *,
    progress: bool = True,
    latency_meetings: int = DEFAULT_LATENCY_MEETINGS,
) -> BenchReport:
    """Run the benchmark in ``settings.home`` (best a fresh folder) on embedded
    defaults: justering's own settings in the environment are ignored, Prefect is
    whatever this process's environment points at (as for the demo)."""
    if extracts < 1:
        raise ConfigError(f"--extracts: expected at least 1, got {extracts}")
    if latency_meetings < 1:
        raise ConfigError(f"latency meetings: expected at least 1, got {latency_meetings}")
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    bench = load_settings(home, environ={})
    ca, _ = SigningCA.load_or_create(bench.ca_dir, organisation="Nacka kommun")
    run = uuid.uuid4().hex[:8]
    today = dt.date.today()
    series = 100_000 + int(run, 16) % 900_000
    main = bench_meeting(
        f"bench-{run}-n{extracts}", extracts, series=series, tag=f"{run}-n", date=today
    )
    small = []
    for index in range(latency_meetings):
        small.append(
            bench_meeting(
                f"bench-{run}-l{index:02d}",
                1 + index % 2,
                first=extracts + 1 + 2 * index,
                series=series,
                adjusters=1 + (index // 2) % 2,
                tag=f"{run}-l{index:02d}",
                date=today,
            )
        )
    load: dict[str, float] = {}

    def note_load(phase: str) -> None:
        load[phase] = round(os.getloadavg()[0], 2)

    note_load("start")
    _say(progress, f"floor: {extracts} extracts in a bare loop (first of two runs)")
    floors = [run_floor(main, ca, bench.signer_certificate_validity, home / "floor")]
    note_load("floor_1")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bench = bench.with_public_url(base)
    sampler = RssSampler()
    for pid in _prefect_server_pids(os.environ.get("PREFECT_API_URL")):
        sampler.watch("prefect", pid)
    outbox = Outbox(bench.outbox_dir)
    system = register_meeting_system(
        bench, "bench", [main.body.code, *(m.body.code for m in small)]
    )
    with sampler.running():
        command, environ = _serve_command()
        process = start_service(
            bench, port, environ=environ, command=command, meetings=[main, *small]
        )
        sampler.watch("justering", process.pid)
        try:
            wait_until_healthy(f"{base}/healthz", process, 120)
            with httpx.Client(base_url=base, timeout=WAIT_SECONDS) as client:
                service = _Service(bench, client, base, system)
                _say(progress, f"pipeline: {extracts} extracts through {base}")
                seconds, bulk_clicks, reaction, stages = _run_pipeline(
                    service, outbox, main, progress
                )
                note_load("pipeline")
                _say(progress, f"pipeline: {seconds:.1f} s; latency: {latency_meetings} meetings")
                clicks = _run_latency(service, outbox, small, process.pid, progress)
                note_load("latency")
        finally:
            stop_process(process)
        _say(progress, "floor: the second run")
        floors.append(run_floor(main, ca, bench.signer_certificate_validity, home / "floor"))
        note_load("floor_2")
        _say(progress, f"floor: {min(floors):.1f} s at best; verify against pdfsig")
        mine = _archived_pdfs(bench, system.key(main.meeting_id))
        signatures = 2 + len(main.adjusters)
        verify = compare_verify(home, mine, signatures, sampler)
    latencies = click_latencies(clicks, outbox.sent_messages)
    bulk = click_latencies(bulk_clicks, outbox.sent_messages)
    justering_peak = sampler.peak_mb("justering")
    return BenchReport(
        extracts=extracts,
        pipeline_seconds=seconds,
        floor_seconds=min(floors),
        floor_runs=tuple(floors),
        latencies=tuple(latencies),
        latency_meetings=latency_meetings,
        bulk_latencies=tuple(bulk),
        signer_reaction_s=reaction,
        stages=stages,
        verify=verify,
        peak_rss_mb=justering_peak or 0.0,
        rss_by_process_mb=sampler.by_label_mb("justering"),
        rss_tree_sum_mb=sampler.sum_kb.get("justering", 0) / 1024,
        peak_rss_total_mb=sampler.peak_sum_kb.get("justering", 0) / 1024,
        prefect_server_rss_mb=sampler.peak_mb("prefect"),
        harness_rss_mb=maxrss_mb(resource.RUSAGE_SELF),
        home=home,
        machine={
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "load_average": {**load, "end": round(os.getloadavg()[0], 2)},
        },
    )


def _archived_pdfs(settings: Settings, meeting_id: str) -> list[Path]:
    """The archived extracts of one meeting (local archive), in paragraph order: not
    its protocols, which the certifier does not sign."""
    ledger = Ledger(settings.database_url)
    try:
        with ledger.reading() as session:
            uris = session.execute(
                select(ExtractRow.archive_uri)
                .where(ExtractRow.meeting_id == meeting_id)
                .where(ExtractRow.kind == DocumentKind.EXTRACT)
                .order_by(ExtractRow.paragraph)
            ).scalars()
            paths = [Path(str(uri).removeprefix("file://")) for uri in uris]
    finally:
        ledger.dispose()
    return paths
