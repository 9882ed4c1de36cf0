"""Storage faults on the network path: an S3 endpoint that refuses connections,
stalls, answers 500 or cuts its answers off while extracts are archived.

The archive's client talks to moto's S3 server through a :class:`FaultProxy` on
loopback (``AWS_ENDPOINT_URL`` points at the proxy); the client is not patched.
What must hold: botocore retries within bounded time, then ``archive_extract``
raises ``ArchiveError`` naming the endpoint and the extract stays certified;
once storage is back the next advance archives it; every bundle file has
exactly one object version on the Object Lock bucket, and ``verify`` passes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from justering import workflow
from justering.archive.bundle import EXTRACT_PDF, MANIFEST_NAME
from justering.archive.keys import extract_prefix
from justering.archive.objects import RetentionPolicy
from justering.archive.s3 import (
    DEFAULT_S3_CONNECT_TIMEOUT,
    DEFAULT_S3_MAX_ATTEMPTS,
    DEFAULT_S3_READ_TIMEOUT,
    S3Archive,
    S3ClientSettings,
)
from justering.archive.store import open_archive
from justering.archive.verify import verify_targets
from justering.errors import ArchiveError, ConfigError
from justering.ledger.database import utcnow
from justering.ledger.schema import MeetingRow
from justering.model.meeting import Meeting
from justering.model.process import ExtractStatus
from justering.workflow.advance import BACK_OFF_LONGEST
from justering.workflow.services import Services
from support.faults import Fault, FaultProxy, Rule, fault_proxy
from support.s3 import object_versions
from support.workflow import (
    extract_rows,
    sign_to_certified,
    small_meeting,
    sqlite_ledger,  # noqa: F401  # SQLite only: the faults are in storage
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FAST = S3ClientSettings(connect_timeout=1.0, read_timeout=2.0, max_attempts=3)
"""Short timeouts, so that a stalled endpoint costs seconds, not minutes."""
FAST_WORKFLOW = dataclasses.replace(FAST, max_attempts=2)
"""For the workflow tests: botocore's retries are shown above; fewer backoffs here."""
GIVE_UP_WITHIN = 20.0
"""Seconds in which the archive step must give up on a dead endpoint (FAST)."""
PREFIX = "arkiv"
BUNDLE_FILES = (
    "ca.pem",
    "extract.pdf",
    "intyg.pdf",
    "manifest.json",
    "trail.json",
    "trail.json.p7s",
)
RETENTION = RetentionPolicy("COMPLIANCE", 1)


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    with fault_proxy(s3_endpoint) as started:
        yield started


@pytest.fixture
def moto(s3_endpoint: str, s3_env: str) -> S3Client:
    """A client that talks to moto directly, past the proxy: the ground truth."""
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3_locked_bucket: str, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket with Object Lock (so versioning), reached through the proxy
    from here on (every boto3 client made later reads AWS_ENDPOINT_URL)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    return s3_locked_bucket


@pytest.fixture
def s3_services(services: Services, bucket: str) -> Services:
    """The workflow's services with the archive in the bucket, behind the proxy."""
    archive = open_archive(
        f"s3://{bucket}/{PREFIX}",
        default_dir=Path("/nonexistent"),
        retention=RETENTION,
        connection=FAST_WORKFLOW,
    )
    return dataclasses.replace(services, archive=archive)


def of_extract(counts: dict[str, int], meeting: Meeting) -> dict[str, int]:
    """The versions under the extract's bundle (its protocol's bundle, archived when it
    was justered, lies beside it)."""
    prefix = bundle_prefix(meeting) + "/"
    return {key: count for key, count in counts.items() if key.startswith(prefix)}


def bundle_prefix(meeting: Meeting) -> str:
    paragraph = meeting.paragraphs[0]
    key = extract_prefix(
        meeting.body.code, meeting.date, meeting.meeting_id, paragraph.dnr, paragraph.number, 1
    )
    return f"{PREFIX}/{key}"


def certify(services: Services, meeting: Meeting) -> None:
    """Take ``meeting`` through every signer, up to (not into) the archive step."""
    sign_to_certified(services, meeting)
    (row,) = extract_rows(services, meeting.meeting_id)
    assert row.status == ExtractStatus.CERTIFIED.value
    assert meeting.meeting_id in workflow.meetings_needing_work(services)


def archive_fails(services: Services, meeting: Meeting) -> str:
    """The next advance (the archive step) fails, within bounded time, and says why
    (without raising: the meeting backs off)."""
    started = time.monotonic()
    report = workflow.advance_meeting(services, meeting.meeting_id)
    assert time.monotonic() - started < GIVE_UP_WITHIN
    assert not report.complete and report.archived == ()
    [failure] = report.failed
    return failure


def back_off_runs_out(services: Services, meeting: Meeting) -> None:
    """Time passes: the meeting's back-off is over (as after BACK_OFF_FIRST)."""
    with services.ledger.transaction() as session:
        row = session.get(MeetingRow, meeting.meeting_id)
        assert row is not None and row.retry_after is not None
        row.retry_after = utcnow()


def assert_still_certified(services: Services, meeting: Meeting) -> None:
    """Certified, not archived, and tried again once its back-off has run out."""
    (row,) = extract_rows(services, meeting.meeting_id)
    assert row.status == ExtractStatus.CERTIFIED.value and row.archive_uri is None
    assert meeting.meeting_id not in workflow.meetings_needing_work(services)  # backing off
    later = utcnow() + BACK_OFF_LONGEST
    assert meeting.meeting_id in workflow.meetings_needing_work(services, now=later)


def assert_archived_once(services: Services, meeting: Meeting, moto: S3Client, bucket: str) -> None:
    """Archived: one version of every bundle file, and the bundle verifies."""
    (row,) = extract_rows(services, meeting.meeting_id)
    prefix = bundle_prefix(meeting)
    assert row.status == ExtractStatus.ARCHIVED.value
    assert row.archive_uri == f"s3://{bucket}/{prefix}/{EXTRACT_PDF}"
    written = object_versions(moto, bucket)
    assert of_extract(written, meeting) == {f"{prefix}/{name}": 1 for name in BUNDLE_FILES}
    assert all(count == 1 for count in written.values())  # the protocol's too
    assert meeting.meeting_id not in workflow.meetings_needing_work(services)
    (result,) = verify_targets([row.archive_uri], services.trust_roots)
    assert result.ok, result.checks
    assert {check.name for check in result.checks} >= {"checksums", "trail chain"}


# --- the client: timeouts and botocore's retries ---------------------------------------


def retries_of(settings: S3ClientSettings) -> Any:
    """The retry configuration of the client ``settings`` make."""
    return settings.client().meta.config.retries  # type: ignore[attr-defined]


def test_default_client_settings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config: Any = S3ClientSettings().client().meta.config
    assert config.connect_timeout == DEFAULT_S3_CONNECT_TIMEOUT <= 10
    assert config.read_timeout == DEFAULT_S3_READ_TIMEOUT <= 60
    assert config.retries == {"mode": "standard", "total_max_attempts": DEFAULT_S3_MAX_ATTEMPTS}
    assert 2 <= DEFAULT_S3_MAX_ATTEMPTS <= 5
    # The standard AWS environment may ask for other retries.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    assert retries_of(S3ClientSettings()) == {"mode": "adaptive", "total_max_attempts": 7}
    # An explicit setting wins over the environment.
    assert retries_of(S3ClientSettings(max_attempts=2)) == {
        "mode": "adaptive",
        "total_max_attempts": 2,
    }
    monkeypatch.setenv("AWS_RETRY_MODE", "sometimes")
    with pytest.raises(ConfigError, match="retry mode"):
        S3ClientSettings().client()


@pytest.mark.parametrize(
    "settings",
    [
        {"connect_timeout": 0},
        {"read_timeout": -1.0},
        {"read_timeout": True},
        {"max_attempts": 0},
        {"max_attempts": 2.5},
    ],
)
def test_client_settings_refuse_unbounded_values(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"S3 (connect_timeout|read_timeout|max_attempts)"):
        S3ClientSettings(**settings)  # type: ignore[arg-type]


def test_a_client_or_settings_not_both(s3_env: str) -> None:
    with pytest.raises(ConfigError, match="not both"):
        S3Archive("bucket", "", FAST.client(), connection=FAST)


@pytest.mark.parametrize(
    ("rule", "action"),
    [
        (Rule(Fault.HTTP_ERROR), "http-500"),
        (Rule(Fault.HTTP_ERROR, status=503, code="SlowDown"), "http-503"),
        (Rule(Fault.STALL), "stalled"),
    ],
    ids=["500", "503", "stall"],
)
def test_each_request_is_tried_max_attempts_times_then_fails_naming_the_endpoint(
    rule: Rule, action: str, bucket: str, proxy: FaultProxy, moto: S3Client
) -> None:
    store = S3Archive(bucket, PREFIX, connection=FAST)
    proxy.set(rule)
    started = time.monotonic()
    with pytest.raises(ArchiveError) as failed:
        store.put("k.txt", b"data", content_type="text/plain")
    elapsed = time.monotonic() - started
    assert proxy.count("PUT", action) == 3  # FAST.max_attempts: botocore's retries
    assert f"at {proxy.url}" in str(failed.value)
    assert "S3 put of archive key 'k.txt' failed" in str(failed.value)
    # 3 attempts (each up to the read timeout) and 2 backoffs of up to 1 and 2 s.
    assert elapsed < 3 * FAST.read_timeout + 3 + 5
    assert object_versions(moto, bucket) == {}
    proxy.pass_through()
    assert store.put("k.txt", b"data", content_type="text/plain").size == 4
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}


def test_a_refusing_endpoint_fails_fast(bucket: str, proxy: FaultProxy, moto: S3Client) -> None:
    store = S3Archive(bucket, PREFIX, connection=FAST)
    proxy.set(Rule(Fault.REFUSE))
    started = time.monotonic()
    with pytest.raises(ArchiveError, match=f"Could not connect to the endpoint URL.*{proxy.url}"):
        store.put("k.txt", b"data", content_type="text/plain")
    assert time.monotonic() - started < 3 + 5  # backoffs only: nothing to wait for
    assert proxy.connections == 0 and proxy.requests == []
    proxy.pass_through()
    store.put("k.txt", b"data", content_type="text/plain")
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}


def test_a_brief_fault_is_absorbed_by_botocore(
    bucket: str, proxy: FaultProxy, moto: S3Client
) -> None:
    store = S3Archive(bucket, PREFIX, connection=FAST)
    proxy.set(Rule(Fault.HTTP_ERROR, methods={"PUT"}, times=2))
    assert store.put("k.txt", b"data", content_type="text/plain").size == 4
    assert [seen.action for seen in proxy.requests if seen.method == "PUT"] == [
        "http-500",
        "http-500",
        "forwarded",
    ]
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}


def test_a_slow_answer_within_the_read_timeout_is_not_retried(
    bucket: str, proxy: FaultProxy, moto: S3Client
) -> None:
    store = S3Archive(bucket, PREFIX, connection=FAST)
    proxy.set(Rule(Fault.STALL, methods={"PUT"}, seconds=FAST.read_timeout / 4))
    assert store.put("k.txt", b"data", content_type="text/plain").size == 4
    assert [seen.action for seen in proxy.requests if seen.method == "PUT"] == [
        "stalled",
        "forwarded",
    ]
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}


# --- a write that arrived but whose answer was lost --------------------------------------


LOST_ANSWERS = {
    # The client sees no answer and resends; the resend gets 412 and the object
    # there is accepted (its SHA-256 is ours).
    "cut-at-once": (Rule(Fault.DROP, methods={"PUT"}, times=1), ["dropped", "forwarded"]),
    "cut-in-status-line": (
        Rule(Fault.DROP, methods={"PUT"}, times=1, after_bytes=5),
        ["dropped", "forwarded"],
    ),
    "500-after-storing": (
        Rule(Fault.HTTP_ERROR, methods={"PUT"}, times=1, forward=True),
        ["http-500-after", "forwarded"],
    ),
    # http.client takes a status line without headers for a whole answer: the
    # store's HEAD then checks what was stored.
    "cut-after-status-line": (
        Rule(Fault.DROP, methods={"PUT"}, times=1, after=b"\r\n"),
        ["dropped"],
    ),
}


@pytest.mark.parametrize(("rule", "puts"), LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
def test_a_lost_answer_to_a_stored_write_writes_no_second_version(
    rule: Rule, puts: list[str], bucket: str, proxy: FaultProxy, moto: S3Client
) -> None:
    store = S3Archive(bucket, PREFIX, retention=RETENTION, connection=FAST)
    proxy.set(rule)
    stored = store.put("k.txt", b"data", content_type="text/plain")
    assert stored.size == 4 and stored.uri == f"s3://{bucket}/{PREFIX}/k.txt"
    assert [seen.action for seen in proxy.requests if seen.method == "PUT"] == puts
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}
    assert moto.get_object(Bucket=bucket, Key=f"{PREFIX}/k.txt")["Body"].read() == b"data"


def test_a_garbled_checksum_in_the_answer_fails_the_write_and_the_next_one_accepts(
    bucket: str, proxy: FaultProxy, moto: S3Client
) -> None:
    """An answer cut inside its checksum header is not taken for a confirmation;
    the next attempt gets 412 and accepts what HEAD shows is stored."""
    store = S3Archive(bucket, PREFIX, retention=RETENTION, connection=FAST)
    cut = Rule(Fault.DROP, methods={"PUT"}, times=1, after=b"x-amz-checksum-sha256: ")
    proxy.set(dataclasses.replace(cut, after_bytes=5))
    with pytest.raises(ArchiveError, match=r"S3 reports SHA-256 '.{5}' in its answer"):
        store.put("k.txt", b"data", content_type="text/plain")
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}
    assert store.put("k.txt", b"data", content_type="text/plain").size == 4
    assert [seen.action for seen in proxy.requests if seen.method == "PUT"] == [
        "dropped",
        "forwarded",
    ]
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}


def test_every_answer_lost_then_the_next_attempt_accepts_what_is_there(
    bucket: str, proxy: FaultProxy, moto: S3Client
) -> None:
    """Each write arrives, each answer (the 412s included) is lost: the store gives
    up; once the answers come back, the existing object is accepted as is."""
    store = S3Archive(bucket, PREFIX, retention=RETENTION, connection=FAST)
    proxy.set(Rule(Fault.DROP, methods={"PUT"}))
    with pytest.raises(ArchiveError, match="Connection was closed"):
        store.put("k.txt", b"data", content_type="text/plain")
    assert proxy.count("PUT", "dropped") == 3
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}
    proxy.pass_through()
    assert store.put("k.txt", b"data", content_type="text/plain").size == 4
    with pytest.raises(ArchiveError, match="already holds different content"):
        store.put("k.txt", b"other", content_type="text/plain")
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}


def test_without_conditional_writes_a_lost_answer_is_not_resent_blindly(
    bucket: str, proxy: FaultProxy, moto: S3Client
) -> None:
    """An endpoint that answers If-None-Match with 501 gets head-then-put; botocore
    must not resend a write whose answer was lost (a second version): the store
    looks first, finds its object, and accepts it."""
    store = S3Archive(bucket, PREFIX, retention=RETENTION, connection=FAST)
    proxy.set(
        Rule(
            Fault.HTTP_ERROR,
            methods={"PUT"},
            header="If-None-Match",
            status=501,
            code="NotImplemented",
        ),
        Rule(Fault.DROP, methods={"PUT"}, times=1),
    )
    assert store.put("k.txt", b"data", content_type="text/plain").size == 4
    assert [(s.method, s.action) for s in proxy.requests if s.method in ("PUT", "HEAD")] == [
        ("PUT", "http-501"),  # conditional write: not implemented
        ("HEAD", "forwarded"),  # 404
        ("PUT", "dropped"),  # stored, answer lost; botocore does not resend
        ("HEAD", "forwarded"),  # there, with our SHA-256: accepted
    ]
    assert object_versions(moto, bucket) == {f"{PREFIX}/k.txt": 1}


def test_a_read_cut_off_mid_body_is_read_again(
    bucket: str, proxy: FaultProxy, moto: S3Client
) -> None:
    data = bytes(range(256)) * 64
    store = S3Archive(bucket, PREFIX, connection=FAST)
    store.put("big.bin", data, content_type="application/octet-stream")
    proxy.set(Rule(Fault.DROP, methods={"GET"}, times=1, after=b"\r\n\r\n", after_bytes=1000))
    assert store.get("big.bin") == data
    assert [s.action for s in proxy.requests if s.method == "GET"] == ["dropped", "forwarded"]


# --- the workflow: the extract stays certified, then is archived once ----------------------


@pytest.mark.parametrize(
    "rule",
    [Rule(Fault.REFUSE), Rule(Fault.STALL), Rule(Fault.HTTP_ERROR)],
    ids=["refuse", "stall", "500"],
)
def test_storage_down_keeps_the_extract_certified_until_it_is_back(
    rule: Rule,
    s3_services: Services,
    sample_meeting: Meeting,
    proxy: FaultProxy,
    moto: S3Client,
    bucket: str,
) -> None:
    meeting = small_meeting(sample_meeting)
    certify(s3_services, meeting)
    proxy.set(rule)
    error = archive_fails(s3_services, meeting)
    assert proxy.url in error
    assert_still_certified(s3_services, meeting)
    assert of_extract(object_versions(moto, bucket), meeting) == {}
    proxy.pass_through()
    # Within its back-off the meeting's archiving waits, even with storage back ...
    waited = workflow.advance_meeting(s3_services, meeting.meeting_id)
    assert waited.archived == () and not waited.complete and waited.failed == ()
    back_off_runs_out(s3_services, meeting)  # ... and once it has run out:
    report = workflow.advance_meeting(s3_services, meeting.meeting_id)
    assert report.remaining == 0 and len(report.archived) == 1
    assert_archived_once(s3_services, meeting, moto, bucket)
    # Advancing again writes nothing.
    before = proxy.count("PUT")
    workflow.advance_meeting(s3_services, meeting.meeting_id)
    assert proxy.count("PUT") == before
    assert_archived_once(s3_services, meeting, moto, bucket)


@pytest.mark.parametrize(
    "rule",
    [
        Rule(Fault.HTTP_ERROR, methods={"PUT"}, skip=2),
        Rule(Fault.REFUSE, methods={"PUT"}, skip=3),
        Rule(Fault.DROP, methods={"PUT"}, skip=1),
        # Every file but the manifest, the trail's seal included: a new seal would
        # differ, so the retry must keep the stored one.
        Rule(Fault.REFUSE, methods={"PUT"}, skip=len(BUNDLE_FILES) - 1),
    ],
    ids=[
        "500-after-2-files",
        "refused-after-3-files",
        "answers-lost-after-1-file",
        "refused-after-the-seal",
    ],
)
def test_a_bundle_cut_off_between_files_is_completed_on_the_next_advance(
    rule: Rule,
    s3_services: Services,
    sample_meeting: Meeting,
    proxy: FaultProxy,
    moto: S3Client,
    bucket: str,
) -> None:
    meeting = small_meeting(sample_meeting)
    certify(s3_services, meeting)
    proxy.set(rule)
    archive_fails(s3_services, meeting)
    assert_still_certified(s3_services, meeting)
    prefix = bundle_prefix(meeting)
    written = of_extract(object_versions(moto, bucket), meeting)
    assert written and all(count == 1 for count in written.values())
    assert f"{prefix}/{MANIFEST_NAME}" not in written  # the manifest comes last
    assert len(written) == rule.skip + (rule.fault is Fault.DROP)
    # Storage is back; until the next advance the bundle is partial, and a partial
    # bundle is never taken for an archived extract.
    proxy.pass_through()
    (partial,) = verify_targets([f"s3://{bucket}/{prefix}/{EXTRACT_PDF}"], s3_services.trust_roots)
    assert not partial.ok
    assert f"{MANIFEST_NAME} is missing" in partial.checks[0].detail
    with pytest.raises(ConfigError, match="no archived extract there"):
        list(verify_targets([f"s3://{bucket}/{prefix}/"], s3_services.trust_roots))
    back_off_runs_out(s3_services, meeting)
    workflow.advance_meeting(s3_services, meeting.meeting_id)
    assert_archived_once(s3_services, meeting, moto, bucket)
