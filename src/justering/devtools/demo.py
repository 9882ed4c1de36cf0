"""``justering demo``: the whole pipeline on one machine, driven like real use.

It starts ``justering serve`` (web app, flow runner, task worker) against the
Prefect server the caller arranged, sends the meeting to the web API as a
meeting system would, then acts as each signer by reading the outbox and
following the links in the messages over HTTP, until every extract is
archived; finally it verifies the archive and reports every protocol (justered,
announced on the anslagstavla) and extract (:mod:`justering.devtools.demo_summary`).
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import func, select

from justering.config import Settings
from justering.devtools.meeting_system import register_meeting_system
from justering.devtools.signer_client import sign_everything
from justering.errors import ConfigError
from justering.ledger.database import Ledger
from justering.ledger.schema import ExtractRow, TrailEventRow, aware_utc
from justering.mail.delivery import outbox_messages
from justering.model.manifest import load_manifest, load_sample_meeting
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.trail import EventKind
from justering.orchestration.deployments import MEETING_DEPLOYMENT
from justering.orchestration.prefect_server import free_port, stop_process, wait_until_healthy
from justering.pades.ca import SigningCA

if TYPE_CHECKING:
    # What the demo reports with is imported once the service is started: those
    # imports (verification, the workflow's views: a second of CPU) then no longer
    # hold up the service's start (the start-up counts from the command's start).
    from justering.devtools.demo_summary import DemoSummary
    from justering.model.extract import ExtractSummary
    from justering.workflow.meeting_view import MeetingView

__all__ = [
    "LINK",
    "STAGES",
    "TIMEOUT_SECONDS",
    "command_started_at",
    "link_in",
    "local_config",
    "meeting_flow_runs",
    "run_demo",
    "start_service",
    "trail_event_at",
]

TIMEOUT_SECONDS = 300.0
MEETING_FLOW = MEETING_DEPLOYMENT.partition("/")[0]
LINK = re.compile(r"https?://[^\s<>\"]+/s/[A-Za-z0-9_-]+")
STAGES = (
    ("awaiting_chair", "ordförande"),
    ("awaiting_adjusters", "justerare"),
    ("awaiting_protocol", "protokollet"),
    ("awaiting_certifier", "bestyrkande"),
    ("certified", "bestyrkt"),
    ("archived", "arkiverat"),
)


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = ""

    def show(self, extracts: list[dict[str, Any]]) -> None:
        if not self.enabled or not extracts:
            return
        total = len(extracts)
        counts = {s: sum(1 for e in extracts if e["status"] == s) for s, _ in STAGES}
        line = "  ".join(f"{label} {counts[s]}/{total}" for s, label in STAGES)
        if line != self.last:
            print(f"  {line}", file=sys.stderr, flush=True)
            self.last = line


def link_in(path: Path) -> str | None:
    """The signer link in an outbox message, if it has one."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return None
    match = LINK.search(body.get_content())
    return match.group(0) if match else None


def local_config(settings: Settings, meetings: Sequence[Meeting]) -> Path:
    """A config file in the home for a local run (``HOME/justering.toml``): each body of
    ``meetings`` gets a förvaringsplats, which the announcement of a justering needs
    (8 kap. 12 § kommunallagen) and a meeting of a body without one is refused for."""
    lines = ["# Written by `justering demo` / `justering bench` for a local run."]
    for code, place in sorted({m.body.code: f"Kansliet, {m.place}" for m in meetings}.items()):
        # JSON strings are TOML basic strings.
        lines += ["", f"[bodies.{json.dumps(code)}]", f"protocol_kept_at = {json.dumps(place)}"]
    path = settings.home / "justering.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_service(
    settings: Settings,
    port: int,
    *,
    environ: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    meetings: Sequence[Meeting] = (),
) -> subprocess.Popen[bytes]:
    """Start ``justering serve`` on loopback ``port`` for ``settings.home``, logging to
    ``HOME/serve.log``, with ``environ`` (default: this process's) plus the home and
    public URL, the deadline pass paused; ``command`` replaces ``python -m justering``
    (e.g. to run it profiled). Unless ``environ`` names a config file
    (``JUSTERING_CONFIG``), the bodies of ``meetings`` are configured by
    :func:`local_config`."""
    env = {
        **(os.environ if environ is None else environ),
        "JUSTERING_HOME": str(settings.home),
        "JUSTERING_PUBLIC_URL": f"http://127.0.0.1:{port}",
        # The sample meeting is of 2014: a deadline pass would tell its secretary it is
        # overdue, at whatever moment of the run the quarter hour strikes.
        "JUSTERING_DEADLINE_PASSES": "paused",
    }
    if meetings and not env.get("JUSTERING_CONFIG", "").strip():
        env["JUSTERING_CONFIG"] = str(local_config(settings, meetings))
    log = (settings.home / "serve.log").open("ab")
    return subprocess.Popen(
        [
            *(command or (sys.executable, "-m", "justering")),
            *("serve", "--host", "127.0.0.1", "--port", str(port)),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _archived(settings: Settings, key: str) -> tuple[MeetingView, tuple[ExtractSummary, ...]]:
    """The meeting's protocols and extracts as the ledger has them (with where they
    are archived, which the web API does not tell a meeting system)."""
    from justering.workflow.meeting_view import meeting_view
    from justering.workflow.services import open_services
    from justering.workflow.status import meeting_summaries

    services = open_services(settings)
    try:
        return meeting_view(services, key), meeting_summaries(services, key)
    finally:
        services.ledger.dispose()


def command_started_at(proc: Path = Path("/proc")) -> float:
    """When this process started (epoch seconds, from ``/proc``: the command's start,
    before Python's imports); the present moment where ``/proc`` cannot tell.

    The process's age is the time since boot (``/proc/uptime``) less its start after
    boot (``/proc/self/stat``), both to a clock tick; ``btime`` (the boot's moment in
    whole seconds) would put the start up to a second off."""
    try:
        stat = (proc / "self" / "stat").read_text()
        uptime = float((proc / "uptime").read_text().split()[0])
        now = time.time()
        # The command's name (field 2) may hold spaces: count from after its ")".
        ticks = int(stat.rpartition(")")[2].split()[19])  # field 22, starttime
    except (OSError, ValueError, IndexError):
        return time.time()
    return now - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


def trail_event_at(
    settings: Settings, meeting_key: str, kind: EventKind, *, last: bool = False
) -> float | None:
    """When the meeting's first (or ``last``) event of ``kind`` happened, from the
    ledger (epoch seconds); None if it has none."""
    ledger = Ledger(settings.database_url)
    try:
        with ledger.reading() as session:
            at = session.execute(
                select(func.max(TrailEventRow.at) if last else func.min(TrailEventRow.at))
                .join(ExtractRow, ExtractRow.id == TrailEventRow.extract_id)
                .where(ExtractRow.meeting_id == meeting_key, TrailEventRow.kind == kind.value)
            ).scalar_one()
    finally:
        ledger.dispose()
    return None if at is None else aware_utc(at).timestamp()


def meeting_flow_runs(api_url: str, meeting_key: str) -> list[str]:
    """The states (``COMPLETED`` …) of the meeting's ``meeting-ended`` flow runs in the
    Prefect server at ``api_url``, newest first."""
    answer = httpx.post(
        f"{api_url.rstrip('/')}/flow_runs/filter",
        json={
            "flows": {"name": {"any_": [MEETING_FLOW]}},
            "sort": "EXPECTED_START_TIME_DESC",
            "limit": 200,
        },
        timeout=30,
    )
    answer.raise_for_status()
    return [
        str(run.get("state_type"))
        for run in answer.json()
        if (run.get("parameters") or {}).get("meeting_id") == meeting_key
    ]


def _wait_for_flow_run(api_url: str, meeting_key: str, deadline: float) -> None:
    """Return once Prefect has the meeting's flow run completed: ``serve`` drafts
    before Prefect answers, and the flow run catches up; the demo is done when it has
    (it ran Prefect, not only beside it)."""
    while True:
        states = meeting_flow_runs(api_url, meeting_key)
        if "COMPLETED" in states:
            return
        if time.monotonic() > deadline:
            raise ConfigError(
                f"Prefect at {api_url} has no completed {MEETING_FLOW} run of {meeting_key} "
                f"(its runs: {', '.join(states) or 'none'})"
            )
        time.sleep(0.2)


def run_demo(settings: Settings, manifest: Path | None, *, progress: bool = True) -> DemoSummary:
    """Run the demo; its figures are counted from the command's start
    (:func:`command_started_at`), the Prefect server's start-up included."""
    started = command_started_at()
    meeting: Meeting = load_manifest(manifest) if manifest else load_sample_meeting()
    settings.home.mkdir(parents=True, exist_ok=True)
    SigningCA.load_or_create(settings.ca_dir, organisation=meeting.municipality)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    show = _Progress(progress)
    system = register_meeting_system(settings, "demo", [meeting.body.code])
    service = start_service(settings, port, meetings=[meeting])
    links = 0
    try:
        wait_until_healthy(f"{base}/healthz", service, 120)
        with httpx.Client(base_url=base, timeout=120) as client:
            answer = client.post(
                "/api/meetings", json=meeting_to_dict(meeting), headers=system.headers
            )
            if answer.status_code not in (200, 202):
                raise ConfigError(f"the web API refused the meeting: {answer.text}")
            if progress:
                print(f"justering: meeting {meeting.meeting_id} sent to {base}", file=sys.stderr)
            followed: set[Path] = set()
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while True:
                for path in outbox_messages(settings.outbox_dir):
                    if path in followed:
                        continue
                    followed.add(path)
                    link = link_in(path)
                    if link and link.startswith(base) and sign_everything(client, link) is not None:
                        links += 1
                state = client.get(
                    f"/api/meetings/{meeting.meeting_id}", headers=system.headers
                ).json()
                extracts = state.get("extracts", [])
                show.show(extracts)
                documents = [*extracts, *state.get("protocols", [])]
                if extracts and all(d["status"] == "archived" for d in documents):
                    if api_url := os.environ.get("PREFECT_API_URL"):
                        _wait_for_flow_run(api_url, system.key(meeting.meeting_id), deadline)
                    break
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"the demo did not finish within {TIMEOUT_SECONDS:.0f} s; "
                        f"see {settings.home / 'serve.log'}"
                    )
                time.sleep(0.2)
    finally:
        stop_process(service)
        system.revoke(settings)
    from justering.archive.verify import home_trust_paths, load_trust_roots
    from justering.devtools.demo_summary import summarise

    trust = load_trust_roots(home_trust_paths(settings))
    view, extracts = _archived(settings, system.key(meeting.meeting_id))
    drafted = trail_event_at(settings, system.key(meeting.meeting_id), EventKind.DRAFTED)
    return summarise(
        view,
        extracts,
        trust,
        meeting_id=meeting.meeting_id,
        home=settings.home,
        seconds=time.time() - started,
        links=links,
        startup_seconds=None if drafted is None else drafted - started,
    )
