"""``justering bench``: how fast the pipeline is, measured against what it is built from.

One run, on embedded defaults (SQLite, outbox, local archive) in one home folder,
measures side by side:

* **the pipeline**: ``justering serve`` runs as in the demo; a meeting of N
  generated paragraphs (about one page each, built from the bundled sample) is
  posted to the web API and the bench acts as every signer through the real pages
  (GET the link, POST the page's own signing form) as soon as each message is in
  the outbox (polled every 50 ms). Wall time per extract = (last ``archived``
  event in the ledger − the POST) / N.
* **the floor**: a bare loop over the same N paragraphs in this process, with
  the same libraries: render, one signature per signer with a certificate the
  same CA issues for each, validation, and the bytes stored in a SQLite table and
  a file. No Prefect, no web, no ledger rules. It runs twice, before ``serve``
  starts and after it stopped, and the faster run counts (the one less disturbed
  by anything else on the machine). ``ratio_vs_floor`` is the pipeline's time
  per extract over the floor's.
* **click → next message**: for each signature POST, the time until the next
  signer's message for that meeting is sent (the outbox file name carries the
  time it was written): the chair's click hands on to the adjusters, the last
  adjuster's to the certifier. One meeting gives only two such clicks, so the
  latency figures come from a separate phase of small meetings (1–2 paragraphs,
  one or two adjusters), posted together and then signed one click at a time on
  an otherwise quiet service, each click waiting for its consequence (the next
  message, or the archive) before the next one.
* **verification**: ``justering verify`` over copies of the N archived PDFs (one
  process, all files, as an archivist runs it) against ``pdfsig`` on the same
  files (one process per file: it takes one), both timed from outside as
  subprocesses. ``verify_ratio_vs_pdfsig`` is justering's time over pdfsig's.
* **peak RSS**: the peak resident set (``VmHWM``) of every justering process —
  ``serve``, the flow-run processes it starts, the ``verify`` subprocess — sampled
  from ``/proc`` every 0.2 s. The Prefect server, this harness and pdfsig are
  reported beside it, not in it.

Targets (issues 3 and 5) are reported, never asserted: ``ratio_vs_floor`` ≤ 2 at
N = 100, ``latency_p50_s`` ≤ 2, ``peak_rss_mb`` ≤ 500.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import hashlib
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from justering.config import Settings, load_settings
from justering.devtools.demo import link_in, start_service
from justering.devtools.signer_client import sign_everything
from justering.documents.rendering import render_extract
from justering.errors import ConfigError
from justering.ledger.schema import ExtractRow, Ledger, TrailEventRow, aware
from justering.mail.delivery import outbox_messages
from justering.model.manifest import Meeting, load_sample_meeting, meeting_to_dict, parse_manifest
from justering.model.minutes import Section, declares_immediate
from justering.model.roles import Person, Role
from justering.model.trail import EventKind
from justering.orchestration.prefect_server import free_port, stop_process, wait_until_healthy
from justering.pades.ca import SigningCA
from justering.pades.sign import sign_extract
from justering.pades.validate import validate_extract

DEFAULT_EXTRACTS = 100
DEFAULT_LATENCY_MEETINGS = 20
TARGET_RATIO_VS_FLOOR = 2.0
TARGET_LATENCY_P50_S = 2.0
TARGET_PEAK_RSS_MB = 500.0

POLL_SECONDS = 0.05
"""How often the signers look at the outbox (and the archive, when they wait for it)."""
RSS_INTERVAL_SECONDS = 0.2
PAGE_CHARACTERS = 1500
"""About one rendered page of paragraph text: generated paragraphs stop near it."""
WAIT_SECONDS = 300.0
"""The longest wait for one expected step (a message, the archive) before giving up."""
PROFILE_ENV = "JUSTERING_BENCH_PROFILE"
"""Set to a folder: ``serve`` runs under cProfile (every thread) and writes its stats there."""

_CLEARED_ENV_PREFIX = "JUSTERING_"


# --- the meetings -------------------------------------------------------------------------


def _about_a_page(sections: Sequence[Section]) -> tuple[Section, ...]:
    """The leading sections of a sample paragraph up to about one page, leaving out
    any that declare omedelbar justering (bench paragraphs are justered normally)."""
    kept: list[Section] = []
    size = 0
    for section in sections:
        if declares_immediate([section]):
            continue
        length = len(section.text) + len(section.heading or "")
        if kept and size + length > PAGE_CHARACTERS:
            break
        kept.append(section)
        size += length
    return tuple(kept)


def bench_paragraphs(
    count: int,
    *,
    first: int = 1,
    series: int = 100,
    year: int = 2014,
    sample: Meeting | None = None,
) -> list[dict[str, Any]]:
    """``count`` manifest paragraphs (§ ``first`` …) of about one page each, cycling
    through the sample's paragraphs, each with its own diarienummer
    ``KFKS YEAR/SERIES-§``. (The archive keys extracts by body, date, diarienummer
    and §, so meetings of one body on one day need different § numbers, and runs
    in one home different series.)"""
    if count < 1:
        raise ConfigError(f"--extracts: expected at least 1, got {count}")
    bases = (sample or load_sample_meeting()).paragraphs
    paragraphs = []
    for index in range(count):
        base = bases[index % len(bases)]
        text = "\n\n".join(
            part
            for section in _about_a_page(base.sections)
            for part in (section.heading, section.text)
            if part
        )
        paragraphs.append(
            {
                "number": first + index,
                "dnr": f"KFKS {year}/{series}-{first + index}",
                "title": base.title,
                "text": text,
                "immediate": False,
            }
        )
    return paragraphs


def _tagged(person: Person, tag: str) -> Person:
    """The person with a plus-address unique to one bench meeting: ``a+tag@b``."""
    local, _, domain = person.email.partition("@")
    return Person(person.name, f"{local}+{tag}@{domain}")


def bench_meeting(
    meeting_id: str,
    paragraphs: int,
    *,
    first: int = 1,
    series: int = 100,
    adjusters: int = 1,
    tag: str,
    date: dt.date,
) -> Meeting:
    """A meeting like the sample's (Nacka KSAU), held on ``date``, with ``paragraphs``
    generated paragraphs from § ``first`` (see :func:`bench_paragraphs`), one or two
    adjusters, and signers addressed uniquely by ``tag`` (so that every message in
    the outbox names its meeting)."""
    sample = load_sample_meeting()
    second = Person("Christina Ståldal", "christina.staldal@nacka.example")
    people = [*sample.adjusters, second][:adjusters]
    document = meeting_to_dict(
        replace(
            sample,
            meeting_id=meeting_id,
            date=date,
            chair=_tagged(sample.chair, tag),
            adjusters=tuple(_tagged(person, tag) for person in people),
            certifier=_tagged(sample.certifier, tag),
        )
    )
    document["paragraphs"] = bench_paragraphs(
        paragraphs, first=first, series=series, year=date.year, sample=sample
    )
    return parse_manifest(document)


# --- statistics ---------------------------------------------------------------------------


def percentile(values: Iterable[float], fraction: float) -> float:
    """The ``fraction`` (0–1) percentile, interpolating linearly between the closest
    ranks (numpy's default): p50 of 1, 2, 3, 4 is 2.5."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= fraction <= 1:
        raise ValueError(f"percentile fraction {fraction} is not within 0..1")
    position = fraction * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


# --- clicks and the messages they cause ---------------------------------------------------


@dataclass(frozen=True)
class Click:
    """A signer's signature POST: ``at`` (epoch seconds) is just before it was sent."""

    meeting_id: str
    role: Role
    at: float


@dataclass(frozen=True)
class Notice:
    """A request to sign in the outbox: ``at`` is when it was sent (epoch seconds)."""

    meeting_id: str
    role: Role
    at: float
    email: str
    link: str | None
    path: Path


NEXT_ROLE = {Role.CHAIR: Role.ADJUSTER, Role.ADJUSTER: Role.CERTIFIER}
"""Whose message a completed stage causes: the chair's click the adjusters', the
last adjuster's click the certifier's. The certifier's click causes none."""


def click_latencies(clicks: Sequence[Click], notices: Sequence[Notice]) -> list[float]:
    """Seconds from each click that hands a meeting on to the next signers' first
    message for that meeting sent after it, in click order. Of several adjusters'
    clicks only the meeting's last one hands on. Raises ``ValueError`` for a
    click whose next message is missing."""
    last_adjuster: dict[str, float] = {}
    for click in clicks:
        if click.role is Role.ADJUSTER:
            last_adjuster[click.meeting_id] = max(
                click.at, last_adjuster.get(click.meeting_id, click.at)
            )
    latencies = []
    for click in sorted(clicks, key=lambda c: c.at):
        following = NEXT_ROLE.get(click.role)
        if following is None:
            continue
        if click.role is Role.ADJUSTER and click.at < last_adjuster[click.meeting_id]:
            continue
        sent = [
            notice.at
            for notice in notices
            if notice.meeting_id == click.meeting_id
            and notice.role is following
            and notice.at >= click.at
        ]
        if not sent:
            raise ValueError(
                f"no {following.value} message for {click.meeting_id} after the "
                f"{click.role.value}'s click"
            )
        latencies.append(min(sent) - click.at)
    return latencies


def outbox_time(path: Path) -> float:
    """When an outbox message was sent: the UTC time that starts its file name
    (``20250101T120000123456-chair-….eml``), as epoch seconds."""
    stamp = path.name.partition("-")[0]
    try:
        moment = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(f"{path.name}: not an outbox file name (no time stamp)") from None
    return moment.timestamp()


def _recipient(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    addresses = getattr(message["To"], "addresses", ())
    return str(addresses[0].addr_spec).lower() if addresses else ""


class _Outbox:
    """The signing requests that reach the outbox for the bench's own signers;
    messages that were there before the bench, receipts and strangers are skipped."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen = set(outbox_messages(directory))
        self.signers: dict[str, tuple[str, Role]] = {}
        self.notices: list[Notice] = []

    def expect(self, meeting: Meeting) -> None:
        for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
            for signer in meeting.signers(role):
                self.signers[signer.email.lower()] = (meeting.meeting_id, role)

    def poll(self) -> list[Notice]:
        new = []
        for path in outbox_messages(self.directory):
            if path in self.seen:
                continue
            self.seen.add(path)
            kind = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
            if kind not in {role.value for role in Role}:
                continue  # a receipt, a reminder, a notice to the secretary
            recipient = _recipient(path)
            owner = self.signers.get(recipient)
            if owner is None:
                continue
            meeting_id, role = owner
            new.append(Notice(meeting_id, role, outbox_time(path), recipient, link_in(path), path))
        self.notices.extend(new)
        return new

    def wait_for(self, wanted: Callable[[Notice], bool], count: int, what: str) -> list[Notice]:
        """Poll until ``count`` notices (seen before or now) satisfy ``wanted``."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            self.poll()
            found = [notice for notice in self.notices if wanted(notice)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise ConfigError(f"bench: {what} did not arrive within {WAIT_SECONDS:.0f} s")
            time.sleep(POLL_SECONDS)


def sign_through_page(client: httpx.Client, notice: Notice) -> Click | None:
    """Act as the signer of ``notice`` through the real page and form (every extract
    it offers); the click's time is taken just before the POST. None if the link was
    already used."""
    if notice.link is None:
        raise ConfigError(f"bench: {notice.path.name} has no signer link")
    signed = sign_everything(client, notice.link)
    return None if signed is None else Click(notice.meeting_id, notice.role, signed.posted_at)


# --- resident memory ----------------------------------------------------------------------


def status_kb(status: str, name: str) -> int | None:
    """A ``kB`` field (``VmRSS``, ``VmHWM`` …) of a ``/proc/PID/status`` text."""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            parts = value.split()
            return int(parts[0]) if parts else None
    return None


def process_label(cmdline: Sequence[str]) -> str:
    """What a process is, from its command line: ``serve``, ``verify``, ``flow-run``,
    ``prefect-server`` or the program's name."""
    words = " ".join(cmdline)
    if "justering" in words and " serve" in words:
        return "serve"
    if "justering" in words and " verify" in words:
        return "verify"
    if "prefect.engine" in words or "flow-run" in words:
        return "flow-run"
    if "prefect" in words and ("server start" in words or "prefect.server" in words):
        return "prefect-server"
    return Path(cmdline[0]).name if cmdline else "?"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def child_pids(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """The children of ``pid`` (from ``/proc/PID/task/*/children``; [] once it is gone)."""
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return []
    children: list[int] = []
    for task in tasks:
        text = _read(task / "children")
        if text:
            children.extend(int(word) for word in text.split())
    return children


def process_tree(roots: Iterable[int], proc: Path = Path("/proc")) -> set[int]:
    """``roots`` that still run and every process below them."""
    found: set[int] = set()
    waiting = [root for root in roots if (proc / str(root)).exists()]
    while waiting:
        pid = waiting.pop()
        if pid not in found:
            found.add(pid)
            waiting.extend(child_pids(pid, proc))
    return found


def _cmdline(process: Path) -> list[str]:
    try:
        raw = (process / "cmdline").read_bytes()
    except OSError:
        return []
    return [word.decode(errors="replace") for word in raw.split(b"\0") if word]


@dataclass
class _Peak:
    label: str
    group: str
    hwm_kb: int = 0


class RssSampler:
    """Samples ``/proc`` in a thread: for each group of root processes and their
    descendants, every process's peak resident set (``VmHWM``) and the peak of the
    group's summed ``VmRSS``. A descendant labelled ``prefect-server`` counts in
    the ``prefect`` group whatever its root."""

    def __init__(self, interval: float = RSS_INTERVAL_SECONDS, proc: Path = Path("/proc")) -> None:
        self.interval = interval
        self.proc = proc
        self.roots: dict[str, set[int]] = {}
        self.peaks: dict[int, _Peak] = {}
        self.sum_kb: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, group: str, pid: int) -> None:
        with self._lock:
            self.roots.setdefault(group, set()).add(pid)

    def sample(self) -> None:
        with self._lock:
            roots = {group: set(pids) for group, pids in self.roots.items()}
        for group, pids in roots.items():
            total = 0
            for pid in process_tree(pids, self.proc):
                status = _read(self.proc / str(pid) / "status")
                if status is None:
                    continue
                rss, hwm = status_kb(status, "VmRSS"), status_kb(status, "VmHWM")
                if rss is None or hwm is None:
                    continue  # a zombie
                if pid not in self.peaks or pid not in pids:
                    # A child's command line is its parent's until it execs: read again.
                    label = process_label(_cmdline(self.proc / str(pid)))
                    owner = "prefect" if label == "prefect-server" else group
                    known = self.peaks.get(pid)
                    self.peaks[pid] = _Peak(label, owner, known.hwm_kb if known else 0)
                peak = self.peaks[pid]
                peak.hwm_kb = max(peak.hwm_kb, hwm)
                if peak.group == group:
                    total += rss
            self.sum_kb[group] = max(self.sum_kb.get(group, 0), total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def peak_mb(self, group: str) -> float | None:
        """The largest peak of one process in ``group``, in MB (None: none seen)."""
        peaks = [p.hwm_kb for p in self.peaks.values() if p.group == group]
        return max(peaks) / 1024 if peaks else None

    def by_label_mb(self, group: str) -> dict[str, float]:
        labels: dict[str, float] = {}
        for peak in self.peaks.values():
            if peak.group == group:
                labels[peak.label] = max(labels.get(peak.label, 0.0), peak.hwm_kb / 1024)
        return labels


def _maxrss_mb(who: int) -> float:
    """``ru_maxrss`` (kB on Linux) in MB."""
    return resource.getrusage(who).ru_maxrss / 1024


# --- the floor ----------------------------------------------------------------------------


def run_floor(meeting: Meeting, ca: SigningCA, validity: dt.timedelta, store: Path) -> float:
    """Seconds for the bare loop over ``meeting``'s paragraphs: render, sign as chair,
    adjuster(s) and certifier (a fresh certificate from ``ca`` each time), validate,
    store in a SQLite table and a file under ``store``. One extract first, untimed,
    so that fonts and libraries are loaded as in a warmed-up ``serve``."""
    store.mkdir(parents=True, exist_ok=True)
    signers = [*(s for role in Role for s in meeting.signers(role))]
    database = sqlite3.connect(store / "floor.sqlite", isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute(
        "CREATE TABLE IF NOT EXISTS documents (sha256 TEXT PRIMARY KEY, paragraph INTEGER, "
        "content BLOB)"
    )

    def one(paragraph_index: int, name: str) -> None:
        paragraph = meeting.paragraphs[paragraph_index]
        pdf = render_extract(meeting, paragraph)
        for signer in signers:
            credential = ca.issue(signer, organisation=meeting.municipality, validity=validity)
            pdf = sign_extract(
                pdf,
                credential,
                signer,
                adjuster_count=len(meeting.adjusters),
                location=meeting.place,
            ).pdf
        validation = validate_extract(
            pdf, [ca.certificate], expected_adjusters=len(meeting.adjusters)
        )
        if not validation.ok:
            raise ConfigError(
                f"bench floor: § {paragraph.number} does not validate: "
                + "; ".join(validation.problems)
            )
        database.execute("BEGIN")
        database.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?)",
            (hashlib.sha256(pdf).hexdigest(), paragraph.number, pdf),
        )
        database.execute("COMMIT")
        (store / name).write_bytes(pdf)

    try:
        one(0, "warm-up.pdf")
        started = time.perf_counter()
        for index, paragraph in enumerate(meeting.paragraphs):
            one(index, f"{paragraph.number}.pdf")
        return time.perf_counter() - started
    finally:
        database.close()


# --- verification against pdfsig ----------------------------------------------------------


@dataclass(frozen=True)
class VerifyTimes:
    files: int
    justering_s: float
    """``justering verify --json`` over all the PDF copies: one process."""
    justering_one_file_s: float
    """``justering verify`` of one file: the start-up share of a single run."""
    justering_bundles_s: float
    """``justering verify`` of the archived bundles (PDF, trail, checksums): one process."""
    pdfsig_s: float | None
    """``pdfsig`` of each PDF copy, one process per file; None without pdfsig."""
    pdfsig_trusted: bool
    """pdfsig checked against an NSS database trusting the CA (needs ``certutil``)."""

    @property
    def ratio(self) -> float | None:
        return self.justering_s / self.pdfsig_s if self.pdfsig_s else None


def _clean_environment() -> dict[str, str]:
    """This environment without justering's own settings: embedded defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_ENV_PREFIX)}


def _timed(command: Sequence[str], sampler: RssSampler | None) -> tuple[float, str]:
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=_clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    if sampler is not None:
        sampler.watch("justering", process.pid)
    out, err = process.communicate(timeout=WAIT_SECONDS)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise ConfigError(
            f"bench: {' '.join(command[:6])} … exited {process.returncode}: "
            f"{(err or out).decode(errors='replace')[-500:]}"
        )
    return seconds, out.decode(errors="replace")


def _nss_database(ca_file: Path, folder: Path) -> str | None:
    """An NSS database trusting the CA, for pdfsig; None without ``certutil``."""
    if shutil.which("certutil") is None:
        return None
    database = f"sql:{folder}"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["certutil", "-N", "-d", database, "--empty-password"], check=True, capture_output=True
    )
    subprocess.run(
        [
            *("certutil", "-A", "-n", "justering-ca", "-t", "CT,C,C"),
            *("-i", str(ca_file), "-d", database),
        ],
        check=True,
        capture_output=True,
    )
    return database


def compare_verify(
    home: Path, pdfs: Sequence[Path], signatures: int, sampler: RssSampler | None = None
) -> VerifyTimes:
    """Time ``justering verify`` against ``pdfsig`` on copies of ``pdfs`` (bare PDFs:
    both check the signatures and the trust in the CA, nothing else); each must
    find every file valid with ``signatures`` valid signatures."""
    folder = Path(tempfile.mkdtemp(prefix="verify-", dir=home))
    copies = []
    for index, pdf in enumerate(pdfs):
        copy = folder / f"{index:04d}.pdf"
        shutil.copyfile(pdf, copy)
        copies.append(copy)
    justering = [sys.executable, "-m", "justering", "--home", str(home), "verify"]
    seconds, out = _timed([*justering, "--json", *map(str, copies)], sampler)
    answer = json.loads(out)
    if not answer["valid"] or len(answer["results"]) != len(copies):
        raise ConfigError(f"bench: justering verify did not find all {len(copies)} PDFs valid")
    one_file, _ = _timed([*justering, str(copies[0])], sampler)
    bundles = [str(pdf.parent) for pdf in pdfs]
    bundle_seconds, _ = _timed([*justering, "--json", *bundles], sampler)
    if shutil.which("pdfsig") is None:
        return VerifyTimes(len(copies), seconds, one_file, bundle_seconds, None, False)
    nss = _nss_database(home / "ca" / "ca-cert.pem", folder / "nss")
    pdfsig = ["pdfsig", *(["-nssdir", nss] if nss else [])]
    pdfsig_seconds = 0.0
    for copy in copies:
        spent, out = _timed([*pdfsig, str(copy)], None)
        pdfsig_seconds += spent
        valid = out.count("Signature is Valid")
        trusted = out.count("Certificate is Trusted")
        if valid != signatures or (nss and trusted != signatures):
            raise ConfigError(f"bench: pdfsig does not find {copy} valid:\n{out[-800:]}")
    return VerifyTimes(
        len(copies), seconds, one_file, bundle_seconds, pdfsig_seconds, nss is not None
    )


# --- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchReport:
    """What one ``justering bench`` run measured."""

    extracts: int
    pipeline_seconds: float
    """From the POST of the meeting to its last extract archived."""
    floor_seconds: float
    """The faster of the two floor runs (before and after the service ran)."""
    floor_runs: tuple[float, ...]
    latencies: tuple[float, ...]
    """Click → next message, seconds, from the latency phase."""
    latency_meetings: int
    bulk_latencies: tuple[float, ...]
    """Click → next message in the pipeline run (each click signs all N extracts)."""
    signer_reaction_s: float
    """The bench's own delay: from each message being sent to its link being opened."""
    stages: Mapping[str, Sequence[float]]
    """The pipeline run's trail events: first and last, seconds after the POST."""
    verify: VerifyTimes
    peak_rss_mb: float
    rss_by_process_mb: Mapping[str, float]
    rss_tree_sum_mb: float
    prefect_server_rss_mb: float | None
    harness_rss_mb: float
    home: Path
    machine: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pipeline_per_extract_s(self) -> float:
        return self.pipeline_seconds / self.extracts

    @property
    def floor_per_extract_s(self) -> float:
        return self.floor_seconds / self.extracts

    @property
    def ratio_vs_floor(self) -> float:
        return self.pipeline_per_extract_s / self.floor_per_extract_s

    @property
    def latency_p50_s(self) -> float:
        return percentile(self.latencies, 0.5)

    @property
    def latency_p95_s(self) -> float:
        return percentile(self.latencies, 0.95)

    @property
    def verify_ratio_vs_pdfsig(self) -> float | None:
        return self.verify.ratio

    def targets(self) -> dict[str, bool]:
        """Each target and whether this run met it."""
        return {
            "ratio_vs_floor": self.ratio_vs_floor <= TARGET_RATIO_VS_FLOOR,
            "latency_p50_s": self.latency_p50_s <= TARGET_LATENCY_P50_S,
            "peak_rss_mb": self.peak_rss_mb <= TARGET_PEAK_RSS_MB,
        }

    @property
    def targets_met(self) -> bool:
        return all(self.targets().values())

    def to_json(self) -> dict[str, Any]:
        verify = self.verify
        return {
            "ratio_vs_floor": round(self.ratio_vs_floor, 3),
            "latency_p50_s": round(self.latency_p50_s, 3),
            "latency_p95_s": round(self.latency_p95_s, 3),
            "verify_ratio_vs_pdfsig": (None if verify.ratio is None else round(verify.ratio, 3)),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "details": {
                "extracts": self.extracts,
                "pipeline_seconds": round(self.pipeline_seconds, 3),
                "pipeline_per_extract_s": round(self.pipeline_per_extract_s, 4),
                "floor_per_extract_s": round(self.floor_per_extract_s, 4),
                "floor_runs_s": [round(x, 3) for x in self.floor_runs],
                "samples": len(self.latencies),
                "latency_meetings": self.latency_meetings,
                "latency_max_s": round(max(self.latencies), 3),
                "latencies_s": [round(x, 3) for x in self.latencies],
                "bulk_latencies_s": [round(x, 3) for x in self.bulk_latencies],
                "signer_reaction_s": round(self.signer_reaction_s, 3),
                "stages_s": {k: list(v) for k, v in self.stages.items()},
                "verify": {
                    "files": verify.files,
                    "justering_s": round(verify.justering_s, 3),
                    "justering_one_file_s": round(verify.justering_one_file_s, 3),
                    "justering_bundles_s": round(verify.justering_bundles_s, 3),
                    "pdfsig_s": None if verify.pdfsig_s is None else round(verify.pdfsig_s, 3),
                    "pdfsig_trusted": verify.pdfsig_trusted,
                },
                "rss_mb": {
                    **{k: round(v, 1) for k, v in sorted(self.rss_by_process_mb.items())},
                    "justering_sum": round(self.rss_tree_sum_mb, 1),
                    "prefect_server": (
                        None
                        if self.prefect_server_rss_mb is None
                        else round(self.prefect_server_rss_mb, 1)
                    ),
                    "harness": round(self.harness_rss_mb, 1),
                },
                "targets": self.targets(),
                "machine": dict(self.machine),
            },
        }

    def describe(self) -> str:
        met = self.targets()

        def mark(key: str) -> str:
            return "met" if met[key] else "MISSED"

        verify = self.verify
        pdfsig = (
            "pdfsig is not installed: not compared"
            if verify.pdfsig_s is None
            else f"{verify.justering_s:.2f} s / pdfsig {verify.pdfsig_s:.2f} s "
            f"({verify.files} files{'' if verify.pdfsig_trusted else ', CA not trusted'})"
        )
        prefect = self.prefect_server_rss_mb
        rows = [
            ("ratio_vs_floor", f"{self.ratio_vs_floor:.2f}", f"≤ {TARGET_RATIO_VS_FLOOR:g}",
             mark("ratio_vs_floor")),
            ("  pipeline per extract", f"{self.pipeline_per_extract_s:.3f} s", "", ""),
            ("  floor per extract", f"{self.floor_per_extract_s:.3f} s", "", ""),
            ("latency_p50_s", f"{self.latency_p50_s:.2f} s", f"≤ {TARGET_LATENCY_P50_S:g} s",
             mark("latency_p50_s")),
            ("latency_p95_s", f"{self.latency_p95_s:.2f} s", "", ""),
            ("verify_ratio_vs_pdfsig",
             "-" if verify.ratio is None else f"{verify.ratio:.2f}", "", ""),
            ("peak_rss_mb", f"{self.peak_rss_mb:.0f} MB", f"≤ {TARGET_PEAK_RSS_MB:g} MB",
             mark("peak_rss_mb")),
        ]  # fmt: skip
        lines = [
            f"justering bench: {self.extracts} extracts, "
            f"{self.machine.get('cpu_count')} CPUs, Python {self.machine.get('python')}",
            f"{'':34}{'measured':>12}  {'target':<12}",
        ]
        lines += [f"{a:34}{b:>12}  {c:<12}{d}" for a, b, c, d in rows]
        loads: dict[str, float] = dict(self.machine.get("load_average", {}))
        cpus = int(self.machine.get("cpu_count") or 1)
        by_process = ", ".join(f"{k} {v:.0f}" for k, v in sorted(self.rss_by_process_mb.items()))
        lines += [
            "",
            f"pipeline: {self.pipeline_seconds:.1f} s from POST to all archived "
            f"(the signers' own reaction {self.signer_reaction_s:.2f} s of it)",
            "stages (first–last, s after the POST): "
            + ", ".join(f"{k} {a:.1f}–{b:.1f}" for k, (a, b) in self.stages.items()),
            f"latency: {len(self.latencies)} clicks in {self.latency_meetings} small meetings; "
            "in the pipeline run (each click signs every extract): "
            + ", ".join(f"{x:.1f} s" for x in self.bulk_latencies),
            f"verify: justering {pdfsig}; one file {verify.justering_one_file_s:.2f} s, "
            f"the bundles {verify.justering_bundles_s:.2f} s",
            f"RSS peaks (MB): {by_process}; justering processes together "
            f"{self.rss_tree_sum_mb:.0f}; Prefect server "
            f"{'-' if prefect is None else f'{prefect:.0f}'}; this harness "
            f"{self.harness_rss_mb:.0f}",
            "load average (1 min) after each phase: "
            + ", ".join(f"{k} {v}" for k, v in loads.items())
            + (
                f" — above {cpus}: other work on the machine skewed these figures"
                if loads and max(loads.values()) > cpus
                else ""
            ),
            f"home: {self.home}",
            "all targets met" if self.targets_met else "TARGET MISSED (see above)",
        ]
        return "\n".join(lines)


# --- running it ---------------------------------------------------------------------------


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"justering bench: {text}", file=sys.stderr, flush=True)


class _Service:
    """``justering serve`` for the bench and a client of its web API."""

    def __init__(self, settings: Settings, client: httpx.Client, base: str) -> None:
        self.settings = settings
        self.client = client
        self.base = base

    def post(self, meeting: Meeting) -> None:
        answer = self.client.post("/api/meetings", json=meeting_to_dict(meeting))
        if answer.status_code != 202:
            raise ConfigError(f"bench: the web API refused {meeting.meeting_id}: {answer.text}")

    def statuses(self, meeting_id: str) -> list[str]:
        answer = self.client.get(f"/api/meetings/{meeting_id}")
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
    ledger = Ledger(settings.database_url)
    try:
        with ledger.reading() as session:
            last = session.execute(
                select(func.max(TrailEventRow.at))
                .join(ExtractRow, ExtractRow.id == TrailEventRow.extract_id)
                .where(
                    ExtractRow.meeting_id == meeting_id,
                    TrailEventRow.kind == EventKind.ARCHIVED.value,
                )
            ).scalar_one()
    finally:
        ledger.dispose()
    if last is None:
        raise ConfigError(f"bench: {meeting_id} has no archived extract in the ledger")
    return aware(last).timestamp()


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
        (aware(first).timestamp() - since, aware(last).timestamp() - since, kind, role)
        for kind, role, first, last in rows
    )
    return {
        f"{kind} {role}" if role else kind: [round(first, 2), round(last, 2)]
        for first, last, kind, role in stages
    }


def _run_pipeline(
    service: _Service, outbox: _Outbox, meeting: Meeting, progress: bool
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
        for notice in outbox.poll():
            if notice.meeting_id != meeting.meeting_id:
                continue
            reaction += max(0.0, time.time() - notice.at)
            click = sign_through_page(service.client, notice)
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
    stages = stage_times(service.settings, meeting.meeting_id, posted)
    return _archived_at(service.settings, meeting.meeting_id) - posted, clicks, reaction, stages


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


def _wait_quiet(service_pid: int, meeting_ids: Collection[str]) -> None:
    """Wait until the meetings' flow runs have ended and ``serve`` has no child
    process left (at most :data:`WAIT_SECONDS`; after that, measure anyway)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if not unfinished_flow_runs(meeting_ids) and process_tree([service_pid]) <= {service_pid}:
            return
        time.sleep(0.5)


def _run_latency(
    service: _Service,
    outbox: _Outbox,
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
    _wait_quiet(service_pid, ids)
    clicks: list[Click] = []
    for number, meeting in enumerate(meetings, 1):

        def of(role: Role, meeting_id: str = meeting.meeting_id) -> Callable[[Notice], bool]:
            return lambda n: n.meeting_id == meeting_id and n.role is role

        for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
            expected = len(meeting.signers(role))
            for notice in outbox.wait_for(of(role), expected, f"{meeting.meeting_id} {role}"):
                click = sign_through_page(service.client, notice)
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
        words = _cmdline(entry)
        if process_label(words) == "prefect-server" and str(port) in words:
            found.append(int(entry.name))
    return found


def _serve_command() -> tuple[list[str] | None, dict[str, str]]:
    """How to start ``serve``: its command (None: the usual one; under cProfile when
    :data:`PROFILE_ENV` names a folder) and its environment (embedded defaults)."""
    environ = _clean_environment()
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

    from justering.cli.main import main

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
    try:
        code = main(sys.argv[1:])
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
    outbox = _Outbox(bench.outbox_dir)
    with sampler.running():
        command, environ = _serve_command()
        process = start_service(bench, port, environ=environ, command=command)
        sampler.watch("justering", process.pid)
        try:
            wait_until_healthy(f"{base}/healthz", process, 120)
            with httpx.Client(base_url=base, timeout=WAIT_SECONDS) as client:
                service = _Service(bench, client, base)
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
        mine = _archived_pdfs(bench, main.meeting_id)
        signatures = 2 + len(main.adjusters)
        verify = compare_verify(home, mine, signatures, sampler)
    latencies = click_latencies(clicks, outbox.notices)
    bulk = click_latencies(bulk_clicks, outbox.notices)
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
        prefect_server_rss_mb=sampler.peak_mb("prefect"),
        harness_rss_mb=_maxrss_mb(resource.RUSAGE_SELF),
        home=home,
        machine={
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "load_average": {**load, "end": round(os.getloadavg()[0], 2)},
        },
    )


def _archived_pdfs(settings: Settings, meeting_id: str) -> list[Path]:
    """The archived PDFs of one meeting (local archive), in paragraph order."""
    ledger = Ledger(settings.database_url)
    try:
        with ledger.reading() as session:
            uris = session.execute(
                select(ExtractRow.archive_uri)
                .where(ExtractRow.meeting_id == meeting_id)
                .order_by(ExtractRow.paragraph)
            ).scalars()
            paths = [Path(str(uri).removeprefix("file://")) for uri in uris]
    finally:
        ledger.dispose()
    return paths
