"""``justering demo`` end to end: a real Prefect server, ``justering serve``, signers
following the links over HTTP, the archive; then checked by poppler's ``pdfsig``
(with the exported CA trusted in an NSS database) and by ``justering verify``.

One demo run per variant (module-scoped), since each takes about half a minute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from justering.model.calendar import appeal_deadline
from justering.model.manifest import load_sample_meeting
from support.archived import clean_environment, flip_byte, inside_first_stream, run_cli
from support.processes import processes_mentioning
from support.s3 import AWS_TEST_ENV

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DEMO_SECONDS = 180
SIGNERS = [
    ("Mats Gerdau", "Ordförande"),
    ("Rolf Wasteson", "Justerare"),
    ("Lena Sekreterare", "Utdragsbestyrkande"),
]
PROTOCOL_SIGNERS = SIGNERS[:2]
"""The protocol is justered by the chair and the adjuster; the certifier certifies
the extracts only."""


@dataclass(frozen=True)
class DemoRun:
    home: Path
    env: dict[str, str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def extracts(self) -> list[dict[str, Any]]:
        return list(json.loads(self.stdout)["extracts"])

    @property
    def protocols(self) -> list[dict[str, Any]]:
        return list(json.loads(self.stdout)["protocols"])

    def protocol(self, kind: str) -> dict[str, Any]:
        [protocol] = [p for p in self.protocols if p["kind"] == kind]
        return protocol


def run_demo(home: Path, env: dict[str, str]) -> DemoRun:
    started = time.monotonic()
    done = run_cli(home, "demo", "--json", env=env, timeout=DEMO_SECONDS + 120)
    return DemoRun(home, env, done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def describe(run: DemoRun) -> str:
    logs = [
        f"--- {name}\n{(run.home / name).read_text(errors='replace')[-3000:]}"
        for name in ("serve.log", "prefect-server.log")
        if (run.home / name).exists()
    ]
    return "\n".join([f"exit {run.returncode}", run.stdout[-2000:], run.stderr[-3000:], *logs])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``justering --home TMP demo --json`` on the local archive."""
    home = tmp_path_factory.mktemp("demo") / "home"
    return run_demo(home, clean_environment())


@pytest.fixture(scope="module")
def nss_db(demo: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh NSS database trusting the CA that ``justering ca export`` prints."""
    folder = tmp_path_factory.mktemp("nss")
    exported = run_cli(demo.home, "ca", "export")
    assert exported.returncode == 0, exported.stderr
    (folder / "ca.pem").write_text(exported.stdout)
    database = f"sql:{folder}"
    subprocess.run(["certutil", "-N", "-d", database, "--empty-password"], check=True)
    subprocess.run(
        [
            *("certutil", "-A", "-n", "justering-ca", "-t", "CT,C,C"),
            *("-i", str(folder / "ca.pem"), "-d", database),
        ],
        check=True,
    )
    return database


def pdfsig(path: Path, *options: str) -> str:
    done = subprocess.run(
        ["pdfsig", *options, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def local_path(uri: str) -> Path:
    assert uri.startswith("file:///"), uri
    return Path(uri.removeprefix("file://"))


# --- the local demo -----------------------------------------------------------------------


def test_demo_archives_every_paragraph_in_time(demo: DemoRun) -> None:
    assert demo.returncode == 0, describe(demo)
    assert demo.seconds < DEMO_SECONDS, describe(demo)
    # Counted from the command's start (so at least the interpreter's own start-up),
    # within what this test measured from outside.
    figures = json.loads(demo.stdout)
    # (/proc tells a process's start to a clock tick, 10 ms; the JSON rounds to 10 ms.)
    assert 0 < figures["startup_seconds"] < figures["seconds"] <= demo.seconds + 0.03, figures
    sample = load_sample_meeting()
    extracts = demo.extracts
    assert [e["paragraph"] for e in extracts] == [p.number for p in sample.paragraphs]
    for extract, paragraph in zip(extracts, sample.paragraphs, strict=True):
        assert {"paragraph", "dnr", "title", "status", "archive_uri", "sha256"} <= set(extract)
        assert extract["dnr"] == paragraph.dnr
        assert extract["title"] == paragraph.title
        assert extract["status"] == "archived"


def test_demo_justers_announces_and_archives_both_protocols(demo: DemoRun) -> None:
    """The sample's § 97 is omedelbart justerad: its own small protocol beside the
    meeting's protocol. Each justered, announced on the anslagstavla the same day
    with its förvaringsplats and the appeal deadline three weeks on, archived and
    verified; justered today, long after the sample meeting of 2014: marked late."""
    assert demo.returncode == 0, describe(demo)
    assert sorted(p["kind"] for p in demo.protocols) == ["immediate_protocol", "protocol"]
    for protocol in demo.protocols:
        assert protocol["status"] == "archived"
        assert protocol["verified"] is True
        assert protocol["justered_on"] == protocol["announced_on"]
        announced = dt.date.fromisoformat(protocol["announced_on"])
        assert protocol["appeal_deadline"] == appeal_deadline(announced).isoformat()
        assert protocol["kept_at"]
        assert protocol["late"] is True
        assert protocol["justering_deadline"] < protocol["justered_on"]
    immediate, whole = demo.protocol("immediate_protocol"), demo.protocol("protocol")
    assert immediate["justering_deadline"] < whole["justering_deadline"]


def test_the_demo_counts_the_signatures_it_made_apart_from_the_links_it_followed(
    demo: DemoRun,
) -> None:
    """Three signatures in each of the four extracts and two in each protocol, made
    through one link per signer."""
    assert demo.returncode == 0, describe(demo)
    summary = json.loads(demo.stdout)
    assert [e["signatures"] for e in demo.extracts] == [len(SIGNERS)] * 4
    assert [p["signatures"] for p in demo.protocols] == [len(PROTOCOL_SIGNERS)] * 2
    assert (summary["signatures"], summary["links"]) == (16, len(SIGNERS))


def test_every_archive_uri_is_the_pdf_with_that_sha256(demo: DemoRun) -> None:
    assert demo.returncode == 0, describe(demo)
    archive = demo.home / "archive"
    for extract in demo.extracts:
        path = local_path(extract["archive_uri"])
        assert path.is_file() and path.is_relative_to(archive)
        data = path.read_bytes()
        assert data.startswith(b"%PDF-")
        assert hashlib.sha256(data).hexdigest() == extract["sha256"]
        assert {p.name for p in path.parent.iterdir()} == {
            "extract.pdf",
            "trail.json",
            "trail.json.p7s",
            "intyg.pdf",
            "ca.pem",
            "manifest.json",
        }
    for protocol in demo.protocols:
        path = local_path(protocol["archive_uri"])
        assert path.is_relative_to(archive) and path.name == "protocol.pdf"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == protocol["sha256"]
        assert {p.name for p in path.parent.iterdir()} == {
            "protocol.pdf",
            "trail.json",
            "trail.json.p7s",
            "intyg.pdf",
            "ca.pem",
            "manifest.json",
        }


def test_the_signers_were_notified_once_per_stage(demo: DemoRun) -> None:
    """One message per signer, each granting every document of their stage (the
    chair's and the adjuster's both protocols with the extracts): the demo followed
    them; one receipt per signer; and one notice to the secretary for each justered
    protocol."""
    outbox = sorted((demo.home / "outbox").glob("*.eml"))
    receipts = [m for m in outbox if "-receipt-" in m.name]
    notices = [m for m in outbox if "-justered-" in m.name]
    messages = [m for m in outbox if m not in receipts and m not in notices]
    assert len(messages) == len(SIGNERS), messages
    assert len(receipts) == len(SIGNERS), receipts
    assert len(notices) == 2, notices
    text = "\n".join(m.read_text(encoding="utf-8", errors="replace") for m in messages)
    assert len(re.findall(r"/s/[A-Za-z0-9_-]+", text)) >= len(SIGNERS)


def test_pdfsig_finds_every_signature_valid(demo: DemoRun) -> None:
    for extract in demo.extracts:
        report = pdfsig(local_path(extract["archive_uri"]))
        assert report.count("Signature #") == len(SIGNERS), report
        assert report.count("- Signature Validation: Signature is Valid.") == len(SIGNERS)
        assert report.count("Total document signed") == 1  # the certification, last
    for protocol in demo.protocols:
        report = pdfsig(local_path(protocol["archive_uri"]))
        assert report.count("Signature #") == len(PROTOCOL_SIGNERS), report
        valid = report.count("- Signature Validation: Signature is Valid.")
        assert valid == len(PROTOCOL_SIGNERS), report
        assert report.count("Total document signed") == 1  # the last adjuster's


def test_pdfsig_trusts_the_exported_ca_and_names_signers_and_roles(
    demo: DemoRun, nss_db: str
) -> None:
    documents = [(e, SIGNERS) for e in demo.extracts] + [
        (p, PROTOCOL_SIGNERS) for p in demo.protocols
    ]
    for document, signers in documents:
        report = pdfsig(local_path(document["archive_uri"]), "-nssdir", nss_db)
        signatures = report.split("Signature #")[1:]
        assert len(signatures) == len(signers), report
        for (name, role), signature in zip(signers, signatures, strict=True):
            assert f"Signer Certificate Common Name: {name}\n" in signature
            assert f"title={role}" in signature
            assert "Signature Validation: Signature is Valid." in signature
            assert "Certificate Validation: Certificate is Trusted." in signature


def test_justering_verify_accepts_the_archive_and_catches_a_flipped_byte(
    demo: DemoRun,
) -> None:
    archive = demo.home / "archive"
    done = run_cli(demo.home, "verify", "--json", str(archive))
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)["results"]
    assert sorted(r["sha256"] for r in results) == sorted(
        d["sha256"] for d in demo.extracts + demo.protocols
    )

    path = local_path(demo.extracts[0]["archive_uri"])
    original = path.read_bytes()
    mode = path.stat().st_mode
    path.chmod(0o644)
    try:
        path.write_bytes(flip_byte(original, inside_first_stream(original)))
        for target in (str(path), str(path.parent)):
            done = run_cli(demo.home, "verify", target)
            assert done.returncode == 1, done.stdout + done.stderr
            assert done.stdout.startswith("OGILTIG (invalid): ")
            assert "[FEL] checksums: bundle file 'extract.pdf'" in done.stdout
    finally:
        path.write_bytes(original)
        path.chmod(mode)
    assert run_cli(demo.home, "verify", str(path)).returncode == 0


def test_the_demo_prints_prefects_ui_and_every_link_logged_leads_there(demo: DemoRun) -> None:
    assert demo.returncode == 0, describe(demo)
    found = re.search(
        r"Prefect's UI is at (http://127\.0\.0\.1:\d+) while the demo runs", demo.stderr
    )
    assert found, demo.stderr
    ui = found.group(1)
    logged = (demo.home / "serve.log").read_text(errors="replace")
    links = re.findall(r"https?://[^\s'\"]+/runs/[^\s'\"]+", logged)
    assert links, "serve logged no link to a run"  # one per scheduled advance
    assert [link for link in links if not link.startswith(f"{ui}/runs/")] == []


def test_the_demo_leaves_no_process_behind(demo: DemoRun) -> None:
    assert processes_mentioning(str(demo.home)) == []


# --- the S3 variant -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_demo(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """The demo with ``JUSTERING_ARCHIVE_URL=s3://BUCKET/x`` on the test S3 server."""
    aws = {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": s3_endpoint}
    bucket = f"demo-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, **_credentials()).create_bucket(Bucket=bucket)
    env = clean_environment(**aws, JUSTERING_ARCHIVE_URL=f"s3://{bucket}/x")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        env.pop(name, None)
    home = tmp_path_factory.mktemp("s3demo") / "home"
    yield run_demo(home, env)


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_TEST_ENV["AWS_DEFAULT_REGION"],
    }


def test_s3_demo_archives_to_the_bucket(s3_demo: DemoRun, s3_endpoint: str) -> None:
    assert s3_demo.returncode == 0, describe(s3_demo)
    bucket = s3_demo.env["JUSTERING_ARCHIVE_URL"].removeprefix("s3://").removesuffix("/x")
    client = boto3.client("s3", endpoint_url=s3_endpoint, **_credentials())
    extracts = s3_demo.extracts
    assert [e["paragraph"] for e in extracts] == [94, 95, 96, 97]
    for extract in extracts:
        assert extract["status"] == "archived"
        uri = extract["archive_uri"]
        assert uri.startswith(f"s3://{bucket}/x/KSAU/2014/") and uri.endswith("/extract.pdf")
        key = uri.removeprefix(f"s3://{bucket}/")
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(data).hexdigest() == extract["sha256"]
    assert len(s3_demo.protocols) == 2
    for protocol in s3_demo.protocols:
        assert protocol["status"] == "archived"
        assert protocol["archive_uri"].startswith(f"s3://{bucket}/x/KSAU/2014/")
        assert protocol["archive_uri"].endswith("/protocol.pdf")
        key = protocol["archive_uri"].removeprefix(f"s3://{bucket}/")
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(data).hexdigest() == protocol["sha256"]
    assert not (s3_demo.home / "archive").exists() or not any(
        (s3_demo.home / "archive").rglob("*.pdf")
    )


def test_s3_demo_archive_verifies_by_prefix(s3_demo: DemoRun) -> None:
    assert s3_demo.returncode == 0, describe(s3_demo)
    prefix = s3_demo.env["JUSTERING_ARCHIVE_URL"] + "/"
    done = run_cli(s3_demo.home, "verify", "--json", prefix, env=s3_demo.env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["valid"] is True
    assert sorted(r["sha256"] for r in report["results"]) == sorted(
        d["sha256"] for d in s3_demo.extracts + s3_demo.protocols
    )
