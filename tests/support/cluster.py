"""The scale-out topology on one machine, for the slow tests.

What a large municipality or a shared service runs (docs/deploy.md), with the
machine's PostgreSQL and moto's S3 server standing in for the real ones:

- one Prefect server whose database is PostgreSQL (a fresh database per cluster),
  with a storage block for background-task parameters that every process shares;
- the ledger on PostgreSQL (another fresh database), shared by every process;
- the archive in an S3 bucket with Object Lock (so versioned), on moto's server;
- one SMTP server (:class:`justering.devtools.mail_sink.MailSink`) that receives every
  process's e-mail, so that the test reads all signers' mailboxes in one place;
- N ``justering serve`` processes (web app + flow runner + task worker +
  reconciler), each with its own home, as if on its own machine. The homes hold
  copies of the one signing CA and the one session key (which binds the signers'
  forms to their links), made once, as an operator would distribute them.

Every process has the same public URL (``http://justering.test``, the load
balancer's name): the test's HTTP client plays the load balancer and sends each
request to the next running web app in turn (:class:`RoundRobin`).

:meth:`Serve.kill` is a SIGKILL of a ``serve`` process and everything it started
(the runner's flow-run processes too), like systemd stopping a unit's control
group without grace; :meth:`Serve.start` starts it again on the same home and port.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
import psycopg
from sqlalchemy import select

from justering.config import TRAIL_KEY_FILE, load_settings
from justering.devtools.mail_sink import MailSink, ReceivedMail
from justering.devtools.signer_client import sign_everything
from justering.ledger.clients import add_client, scoped_meeting_id
from justering.ledger.database import Ledger
from justering.ledger.schema import ExtractRow, TrailEventRow
from justering.model.manifest import load_sample_meeting
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.process import DocumentKind
from justering.orchestration.prefect_server import (
    free_port,
    local_prefect_server,
    wait_until_healthy,
)
from justering.pades.ca import SigningCA
from justering.pades.seal import TrailSeal
from justering.web.auth import KEY_FILE, session_key
from support.archived import clean_environment
from support.s3 import AWS_TEST_ENV
from support.workflow import KEPT_AT, SECOND_ADJUSTER

T = TypeVar("T")

PUBLIC_URL = "http://justering.test"
"""The address in every link: the load balancer's, played by :class:`RoundRobin`."""
ARCHIVE_PREFIX = "arkiv"
MAIL_FROM = "Justering <justering@kommun.example>"
SIGNER_LINK = re.compile(r"/s/([A-Za-z0-9_-]+)$")
SERVE_STARTUP_SECONDS = 180.0
LINK_COMMIT_SECONDS = 30.0
PARAMETER_BLOCK = "local-file-system/justering-parametrar"
"""The Prefect storage block for background-task parameters that every process shares."""
FILES_PER_BUNDLE = 6
"""What an archived bundle holds: extract.pdf (or protocol.pdf), trail.json, its seal
trail.json.p7s, intyg.pdf, ca.pem and manifest.json."""


# --- a meeting of any size ------------------------------------------------------------


def big_meeting(paragraphs: int, *, adjusters: int = 2, meeting_id: str | None = None) -> Meeting:
    """The sample meeting with ``paragraphs`` paragraphs (the sample's, round and
    round, numbered from 101 with their own diarienummer), dated today (so that no
    reminder or overdue notice is due) and ``adjusters`` adjusters (1 or 2)."""
    sample = load_sample_meeting()
    source = itertools.cycle(sample.paragraphs)
    made = []
    for index in range(paragraphs):
        paragraph = next(source)
        number = 101 + index
        dnr = None if paragraph.dnr is None else f"KFKS 2014/{number}-001"
        made.append(replace(paragraph, number=number, dnr=dnr))
    return replace(
        sample,
        meeting_id=meeting_id or f"skala-{uuid.uuid4().hex[:10]}",
        date=dt.date.today(),
        adjusters=(sample.adjusters[0], SECOND_ADJUSTER)[:adjusters],
        paragraphs=tuple(made),
    )


# --- the load balancer ------------------------------------------------------------------


class RoundRobin(httpx.BaseTransport):
    """An HTTP transport that sends each request to the next of ``backends()`` (the
    web apps running now), keeping the ``Host`` header, as a load balancer without
    sticky sessions does. :attr:`served` counts requests per backend index."""

    def __init__(self, backends: Callable[[], list[tuple[int, str]]]) -> None:
        self._backends = backends
        self._inner = httpx.HTTPTransport()
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.served: Counter[tuple[int, str]] = Counter()
        self.before_post: Callable[[], None] | None = None
        """Called just before a POST is forwarded (a test's kill point)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        backends = self._backends()
        if not backends:
            raise httpx.ConnectError("no web app is running", request=request)
        with self._lock:
            index, base = backends[next(self._turn) % len(backends)]
            self.served[(index, request.method)] += 1
        target = httpx.URL(base)
        request.url = request.url.copy_with(
            scheme=target.scheme, host=target.host, port=target.port
        )
        if request.method == "POST" and self.before_post is not None:
            self.before_post()
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Clients come and go (each signer's); the connections stay for the next."""

    def shutdown(self) -> None:
        self._inner.close()


# --- one serve process ------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def _signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@dataclass
class Serve:
    """One ``justering serve`` process of the cluster (its home, port and process)."""

    index: int
    home: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    pids: set[int] = field(default_factory=set)
    """Every pid this serve (and what it started) has had: who sent a message."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "serve.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.running, f"serve {self.index} is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {self.starts} of serve {self.index} ===\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "justering", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pids.add(self.process.pid)

    def wait_healthy(self, timeout: float = SERVE_STARTUP_SECONDS) -> None:
        assert self.process is not None
        wait_until_healthy(f"{self.url}/healthz", self.process, timeout)

    def note_pids(self) -> None:
        """Remember the pids of this serve's process tree now (flow-run processes)."""
        if self.running:
            assert self.process is not None
            self.pids.update(process_tree(self.process.pid))

    def kill(self) -> None:
        """SIGKILL the process and everything it started, at once (no shutdown runs)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        tree = process_tree(process.pid)
        self.pids.update(tree)
        _signal_all(tree, signal.SIGSTOP)  # freeze the tree: nothing forks or moves on
        tree = sorted(set(tree) | set(process_tree(process.pid)))
        self.pids.update(tree)
        _signal_all(tree, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), as ``systemctl stop`` does; SIGKILL after 20 s."""
        if self.process is None:
            return
        process = self.process
        self.note_pids()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --- the cluster ------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    """One trail event as the tests check it."""

    paragraph: int
    kind: str
    slot: str | None
    version: int
    detail: dict[str, str]


CLIENT = "skala"
"""The meeting system the cluster tests post as."""


@dataclass
class Cluster:
    root: Path
    prefect_api_url: str
    ledger_url: str
    s3_endpoint: str
    bucket: str
    mail: MailSink
    serves: list[Serve]
    transport: RoundRobin = field(init=False)
    _ledger: Ledger | None = None
    mail_gate: Callable[[ReceivedMail], None] | None = None
    """Called (in the SMTP server's thread, before it answers) for each message."""
    early_clicks: int = 0
    """How often a signer's link answered 404 (a dead link: with the outbox, a link is
    committed before its message leaves, so this stays 0)."""
    token: str | None = None
    """The bearer token of the meeting system the tests post as (registered on first use)."""

    def __post_init__(self) -> None:
        self.transport = RoundRobin(self.backends)

    # processes

    def backends(self) -> list[tuple[int, str]]:
        return [(s.index, s.url) for s in self.serves if s.running]

    def start_all(self) -> float:
        """Start every serve process that is not running (at the same moment) and
        wait until each answers; the seconds that took."""
        started = time.monotonic()
        waiting = [serve for serve in self.serves if not serve.running]
        for serve in waiting:
            serve.start()
        for serve in waiting:
            try:
                serve.wait_healthy()
            except Exception as error:
                message = f"serve {serve.index} did not start: {error}\n{self.describe()}"
                raise AssertionError(message) from error
        return time.monotonic() - started

    def kill_all(self) -> None:
        for serve in self.serves:
            serve.kill()

    def note_pids(self) -> None:
        for serve in self.serves:
            serve.note_pids()

    def serve_of_pid(self, pid: int) -> int | None:
        return next((s.index for s in self.serves if pid in s.pids), None)

    # the ledger, S3 and the mail, as the test reads them

    @property
    def ledger(self) -> Ledger:
        """The test's own connection to the ledger (opened once the schema exists)."""
        if self._ledger is None:
            self._ledger = Ledger(self.ledger_url)
        return self._ledger

    @staticmethod
    def key(meeting_id: str) -> str:
        """Where the ledger keeps the test meeting system's meeting ``meeting_id``."""
        return scoped_meeting_id(CLIENT, meeting_id)

    def statuses(self, meeting_id: str) -> dict[int, str]:
        """Every extract's status, by § number (not the protocols')."""
        with self.ledger.reading() as session:
            rows = session.execute(
                select(ExtractRow.paragraph, ExtractRow.status).where(
                    ExtractRow.meeting_id == self.key(meeting_id),
                    ExtractRow.kind == DocumentKind.EXTRACT,
                )
            ).all()
        return {int(paragraph): str(status) for paragraph, status in rows}

    def events(self, meeting_id: str) -> list[EventRow]:
        """Every trail event of the meeting's extracts (not its protocols'), in order."""
        with self.ledger.reading() as session:
            rows = session.execute(
                select(
                    ExtractRow.paragraph,
                    TrailEventRow.kind,
                    TrailEventRow.slot,
                    TrailEventRow.version,
                    TrailEventRow.detail,
                )
                .join(ExtractRow, ExtractRow.id == TrailEventRow.extract_id)
                .where(
                    ExtractRow.meeting_id == self.key(meeting_id),
                    ExtractRow.kind == DocumentKind.EXTRACT,
                )
                .order_by(ExtractRow.paragraph, TrailEventRow.seq)
            ).all()
        return [EventRow(int(p), str(k), s, int(v), dict(d or {})) for p, k, s, v, d in rows]

    def count_events(self, meeting_id: str, kind: str, slot: str | None = None) -> int:
        return sum(
            1
            for e in self.events(meeting_id)
            if e.kind == kind and (slot is None or e.slot == slot)
        )

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_TEST_ENV["AWS_DEFAULT_REGION"],
        )

    def object_versions(self) -> Counter[str]:
        """How many versions each key in the archive bucket has."""
        versions: Counter[str] = Counter()
        paginator = self.s3().get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket):
            for version in page.get("Versions", []):
                versions[version["Key"]] += 1
            for marker in page.get("DeleteMarkers", []):
                versions[marker["Key"] + " (delete marker)"] += 1
        return versions

    @property
    def archive_url(self) -> str:
        return f"s3://{self.bucket}/{ARCHIVE_PREFIX}"

    def signing_links(self, email: str) -> list[str]:
        """The signer links e-mailed to ``email`` so far, oldest first."""
        links = []
        for mail in self.mail.received():
            if email in mail.recipients:
                links += [link for link in mail.links if SIGNER_LINK.search(link)]
        return links

    def messages_to(self, email: str) -> list[ReceivedMail]:
        return [m for m in self.mail.received() if email in m.recipients]

    # acting

    def client(self, timeout: float = 300) -> httpx.Client:
        """An HTTP client through the load balancer (every request to the next web app)."""
        return httpx.Client(transport=self.transport, timeout=timeout, base_url=PUBLIC_URL)

    def post_meeting(self, meeting: Meeting, via: int = 0) -> None:
        """Send the meeting to one web app, as a meeting system does (registered,
        with its token)."""
        if self.token is None:
            self.token = add_client(self.ledger, CLIENT, [meeting.body.code]).token
        answer = httpx.post(
            f"{self.serves[via].url}/api/meetings",
            json=meeting_to_dict(meeting),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=120,
        )
        assert answer.status_code == 202, answer.text

    def sign(self, link: str) -> bool:
        """Act as the link's signer: open it and sign everything it offers, through the
        load balancer (the GET and the POST go to different web apps). False if the
        link was already used.

        A link is committed before its e-mail leaves (the outbox), so it should
        never answer 404; if it does, that is counted (:attr:`early_clicks`) and
        the signer tries again, for up to :data:`LINK_COMMIT_SECONDS`."""
        deadline = time.monotonic() + LINK_COMMIT_SECONDS
        with self.client() as client:
            while client.get(link).status_code == 404:
                self.early_clicks += 1
                assert time.monotonic() < deadline, f"{link} stayed unknown (404)"
                time.sleep(0.2)
            return sign_everything(client, link) is not None

    def wait_for(
        self, what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.05
    ) -> T:
        """Poll ``check`` until it returns something other than None/False."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.describe()}")
            if any(s.process is not None and s.process.poll() is not None for s in self.serves):
                raise AssertionError(f"a serve process stopped while waiting for {what}")
            time.sleep(interval)

    def describe(self, tail: int = 4000) -> str:
        """The end of every process's log, for a failing assertion."""
        parts = []
        for serve in self.serves:
            parts.append(f"--- serve {serve.index} ({serve.log_path})\n{serve.log_text()[-tail:]}")
        server_log = self.root / "prefect-server.log"
        if server_log.exists():
            parts.append(f"--- prefect server\n{server_log.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)


# --- starting it ------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(admin_url: str, purpose: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards, connections and all);
    yields its name."""
    admin = admin_url.replace("postgresql+psycopg", "postgresql")
    name = f"justering_{purpose}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _shared_secrets(root: Path, organisation: str) -> Path:
    """The signing CA with its trail seal, the session key and the trail key, made
    once (as docs/deploy.md says); every serve's home gets a copy. Returns the
    folder that holds them."""
    secrets = root / "secrets"
    TrailSeal.load_or_create(SigningCA.create(secrets / "ca", organisation=organisation))
    session_key(secrets)
    load_settings(secrets, environ={}).trail_key()
    return secrets


def _shared_parameter_storage(root: Path, api_url: str) -> None:
    """Register the storage block where ``advance_meeting.delay()`` keeps a task's
    parameters, for whichever process's task worker runs it. Prefect's default is the
    scheduling process's own ``PREFECT_LOCAL_STORAGE_PATH``: another process's worker
    cannot read it, and deletes the task run. On one machine a shared folder does;
    docs/deploy.md says what to use across machines."""
    folder = root / "prefect-parameters"
    folder.mkdir()
    name = PARAMETER_BLOCK.split("/", 1)[1]
    code = (
        "from prefect.filesystems import LocalFileSystem\n"
        f"LocalFileSystem(basepath={str(folder)!r}).save({name!r}, overwrite=True)\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        env=clean_environment(PREFECT_API_URL=api_url, PREFECT_HOME=str(root / "prefect-client")),
        check=True,
        capture_output=True,
        timeout=120,
    )


def _home_for(root: Path, index: int, secrets: Path) -> Path:
    home = root / f"serve-{index}"
    home.mkdir(parents=True)
    shutil.copytree(secrets / "ca", home / "ca")
    shutil.copy2(secrets / KEY_FILE, home / KEY_FILE)
    shutil.copy2(secrets / TRAIL_KEY_FILE, home / TRAIL_KEY_FILE)
    return home


@contextlib.contextmanager
def start_cluster(
    root: Path,
    *,
    serves: int,
    postgres_admin_url: str,
    s3_endpoint: str,
    organisation: str,
    reconcile_seconds: float = 15.0,
) -> Iterator[Cluster]:
    """Start the whole topology under ``root``; everything is stopped and the
    databases dropped afterwards. The serve processes are started (at the same
    moment, on an empty ledger) before the cluster is yielded."""
    base = postgres_admin_url.replace("postgresql+psycopg", "postgresql").rsplit("/", 1)[0]
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        prefect_db = stack.enter_context(fresh_database(postgres_admin_url, "prefect"))
        ledger_db = stack.enter_context(fresh_database(postgres_admin_url, "ledger"))
        bucket = f"skala-{uuid.uuid4().hex[:12]}"
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_TEST_ENV["AWS_DEFAULT_REGION"],
        )
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)

        holder: dict[str, Cluster] = {}

        def gate(mail: ReceivedMail) -> None:
            cluster = holder.get("cluster")
            if cluster is not None and cluster.mail_gate is not None:
                cluster.mail_gate(mail)

        mail = stack.enter_context(MailSink(root / "mailbox", port=0, on_mail=gate))
        api_url = stack.enter_context(
            local_prefect_server(
                root / "prefect-server",
                root / "prefect-server.log",
                database_url=f"{base.replace('postgresql', 'postgresql+asyncpg')}/{prefect_db}",
            )
        )
        ledger_url = f"{base.replace('postgresql', 'postgresql+psycopg')}/{ledger_db}"
        _shared_parameter_storage(root, api_url)
        secrets = _shared_secrets(root, organisation)
        config = root / "justering.toml"
        config.write_text(f"[justering]\nprotocol_kept_at = {json.dumps(KEPT_AT)}\n", "utf-8")
        environment = clean_environment(
            JUSTERING_CONFIG=str(config),
            **AWS_TEST_ENV,
            AWS_ENDPOINT_URL=s3_endpoint,
            PREFECT_API_URL=api_url,
            JUSTERING_DATABASE_URL=ledger_url,
            JUSTERING_ARCHIVE_URL=f"s3://{bucket}/{ARCHIVE_PREFIX}",
            JUSTERING_SMTP_URL=mail.smtp_url,
            JUSTERING_MAIL_FROM=MAIL_FROM,
            JUSTERING_PUBLIC_URL=PUBLIC_URL,
            JUSTERING_RECONCILE_SECONDS=str(reconcile_seconds),
            PREFECT_TASKS_SCHEDULING_DEFAULT_STORAGE_BLOCK=PARAMETER_BLOCK,
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            environment.pop(name, None)
        processes = []
        for index in range(serves):
            home = _home_for(root, index, secrets)
            env = {**environment, "JUSTERING_HOME": str(home)}
            processes.append(Serve(index, home, free_port(), env))
        cluster = Cluster(root, api_url, ledger_url, s3_endpoint, bucket, mail, processes)
        holder["cluster"] = cluster
        try:
            cluster.start_all()
            yield cluster
        finally:
            cluster.mail_gate = None
            for serve in cluster.serves:
                serve.stop()
            cluster.transport.shutdown()
            if cluster._ledger is not None:
                cluster._ledger.dispose()


@contextlib.contextmanager
def moto_requests() -> Iterator[list[str]]:
    """The request lines moto's server logs while inside (``"PUT /bucket/key …" 200``):
    how often each object was written, and how each write was answered."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("werkzeug")
    handler, level = Collect(level=logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
