"""The object store: safe keys, write-once local and S3 stores, verified bundles."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config
from botocore.exceptions import ClientError

from justering.archive.bundle import read_bundle, write_bundle
from justering.archive.keys import PROTOCOLS, extract_prefix, protocol_prefix
from justering.archive.local import LocalArchive
from justering.archive.objects import ArchiveStore, RetentionPolicy, StoredObject
from justering.archive.s3 import S3Archive, parse_s3_uri
from justering.archive.store import open_archive
from justering.errors import ArchiveError, ConfigError
from support.s3 import object_versions

# The S3 fixtures (s3_endpoint, s3_env, s3_bucket); a conftest may re-export them instead.

DATE = dt.date(2014, 8, 19)
SEGMENT = re.compile(r"[A-Za-z0-9-]+")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_and_read_back(store: ArchiveStore, key: str, *, missing: str) -> StoredObject:
    """Put a small PDF at ``key`` and read it back (get, head); ``missing`` is a key
    with nothing stored: head finds nothing, get is an error naming it."""
    stored = store.put(key, b"%PDF-1.7", content_type="application/pdf")
    assert stored.key == key
    assert stored.sha256 == sha(b"%PDF-1.7") and stored.size == 8
    assert store.get(key) == b"%PDF-1.7"
    assert store.head(key) == stored
    assert store.head(missing) is None
    with pytest.raises(ArchiveError, match=f"{re.escape(missing)}.* does not exist"):
        store.get(missing)
    return stored


# --- keys ------------------------------------------------------------------------


MEETING = "nacka-ksau-2014-08-19"


def prefix(body: str, dnr: str | None, paragraph: int = 1, meeting: str = MEETING) -> str:
    return extract_prefix(body, DATE, meeting, dnr, paragraph, 1)


def test_extract_prefix_of_a_real_diarienummer() -> None:
    assert prefix("KSAU", "KFKS 2012/577-001", 94) == (
        "KSAU/2014/nacka-ksau-2014-08-19/KFKS-2012-577-001/2014-08-19-p94-v1"
    )
    assert prefix("KS", "2014/12", 3) == f"KS/2014/{MEETING}/2014-12/2014-08-19-p3-v1"


def test_extract_prefix_without_dnr() -> None:
    assert prefix("KSAU", None, 95) == f"KSAU/2014/{MEETING}/utan-dnr/2014-08-19-p95-v1"


def test_two_meetings_and_two_versions_never_share_a_key() -> None:
    """The same body, date, dnr and § in two meetings (a corrected manifest under a
    new id, another meeting system's meeting) and the versions of one extract."""
    same = ("KSAU", DATE, "KFKS 2012/577-001", 94)
    keys = {
        extract_prefix(same[0], same[1], meeting, same[2], same[3], version)
        for meeting in (MEETING, f"{MEETING}-rattad", f"nacka-ns:{MEETING}", f"other:{MEETING}")
        for version in (1, 2)
    }
    assert len(keys) == 8
    scoped = extract_prefix("KSAU", DATE, f"nacka-ns:{MEETING}", None, 1, 1).split("/")[2]
    assert re.fullmatch(r"nacka-ns-nacka-ksau-2014-08-19-h[0-9a-f]{12}", scoped)


HOSTILE = [
    "../../etc/passwd",
    "KS 2014/12 ..\\x",
    "\x00",
    "",
    "...",
    ".hidden 2014/1",
    "x" * 500,
    "ÅÄÖ 2014/1",
    "a/../../b",
    "C:\\Windows\\system32",
    "line\nbreak\ttab\x7f",
    "\ud800 lone surrogate",
    "名前 2014/1",
]


@pytest.mark.parametrize("dnr", HOSTILE)
@pytest.mark.parametrize("body", ["KSAU", "../..", "Miljö- och stadsbyggnadsnämnden"])
def test_extract_prefix_is_safe_for_hostile_input(body: str, dnr: str, tmp_path: Path) -> None:
    key = extract_prefix(body, DATE, dnr, dnr, 94, 1)  # the hostile text as the meeting too
    segments = key.split("/")
    assert len(segments) == 5
    assert segments[1] == "2014" and segments[4] == "2014-08-19-p94-v1"
    for segment in segments:
        assert SEGMENT.fullmatch(segment), segment
        assert segment not in (".", "..")
        assert len(segment) <= 80
    root = tmp_path / "archive"
    stored = LocalArchive(root).put(f"{key}/x.txt", b"x", content_type="text/plain")
    assert Path(stored.uri.removeprefix("file://")).resolve().is_relative_to(root)


def test_extract_prefix_transliterates_and_hashes_what_it_changed() -> None:
    key = prefix("KSAU", "ÅÄÖ 2014/1")
    assert re.fullmatch(rf"KSAU/2014/{MEETING}/AAO-2014-1-h[0-9a-f]{{12}}/2014-08-19-p1-v1", key)
    assert prefix("KSAU", "AAO 2014/1") == f"KSAU/2014/{MEETING}/AAO-2014-1/2014-08-19-p1-v1"
    body = prefix("Miljö- och stadsbyggnadsnämnden", None).split("/")[0]
    assert body.startswith("Miljo-och-stadsbyggnadsnamnden-h")
    long = prefix("KSAU", "x" * 500).split("/")[3]
    assert re.fullmatch(r"x{60}-h[0-9a-f]{12}", long)
    assert prefix("KSAU", "\x00").split("/")[3].startswith("dnr-h")


def test_different_dnr_never_share_a_key() -> None:
    variants = [
        "KFKS 2012/577-001",
        "KFKS-2012-577-001",
        "KFKS 2012 577 001",
        "KFKS/2012/577/001",
        "KFKS 2012/577/001",
        "kfks 2012/577-001",
        "KFKS 2012/577-001 ",
        " KFKS 2012/577-001",
        "KFKS  2012/577-001",
        "ÅÄÖ 2014/1",
        "AAO 2014/1",
        "AÄO 2014/1",
        "2014/1",
        "2014-1",
        "utan-dnr",
        "x" * 500,
        "x" * 501,
    ]
    keys = {prefix("KSAU", dnr) for dnr in [*variants, None]}
    assert len(keys) == len(variants) + 1


@pytest.mark.parametrize("paragraph", [0, -1, True])
def test_extract_prefix_refuses_a_non_positive_paragraph(paragraph: int) -> None:
    with pytest.raises(ArchiveError, match="paragraph"):
        prefix("KSAU", None, paragraph)


@pytest.mark.parametrize("version", [0, -1, True])
def test_extract_prefix_refuses_a_non_positive_version(version: int) -> None:
    with pytest.raises(ArchiveError, match="version"):
        extract_prefix("KSAU", DATE, MEETING, None, 1, version)


def test_protocol_prefix_beside_the_meetings_extracts() -> None:
    assert protocol_prefix("KSAU", DATE, MEETING, "protokoll", 2) == (
        f"KSAU/2014/{MEETING}/protokoll/2014-08-19-protokoll-v2"
    )
    assert protocol_prefix("KSAU", DATE, MEETING, "protokoll-omedelbar", 1) == (
        f"KSAU/2014/{MEETING}/protokoll/2014-08-19-protokoll-omedelbar-v1"
    )
    extract = prefix("KSAU", "KFKS 2012/577-001", 94).split("/")
    assert protocol_prefix("KSAU", DATE, MEETING, "protokoll", 1).split("/")[:3] == extract[:3]


@pytest.mark.parametrize("dnr", ["protokoll", "Protokoll", "PROTOKOLL", "protokoll 1", PROTOCOLS])
def test_no_diarienummer_takes_the_protocols_segment(dnr: str) -> None:
    """An extract of a paragraph whose diarienummer reads "protokoll" does not land in
    the folder of the meeting's protocols."""
    assert prefix("KSAU", dnr).split("/")[3] != PROTOCOLS


@pytest.mark.parametrize("meeting", HOSTILE)
def test_protocol_prefix_is_safe_for_hostile_input(meeting: str, tmp_path: Path) -> None:
    key = protocol_prefix("../..", DATE, meeting, "protokoll", 1)
    segments = key.split("/")
    assert len(segments) == 5 and segments[3] == PROTOCOLS
    for segment in segments:
        assert SEGMENT.fullmatch(segment) and len(segment) <= 80, segment
    named = protocol_prefix("KSAU", DATE, MEETING, meeting, 1).split("/")  # as the name
    assert len(named) == 5 and all(SEGMENT.fullmatch(segment) for segment in named)
    root = tmp_path / "archive"
    stored = LocalArchive(root).put(f"{key}/x.txt", b"x", content_type="text/plain")
    assert Path(stored.uri.removeprefix("file://")).resolve().is_relative_to(root)


@pytest.mark.parametrize("version", [0, -1, True])
def test_protocol_prefix_refuses_a_non_positive_version(version: int) -> None:
    with pytest.raises(ArchiveError, match="version"):
        protocol_prefix("KSAU", DATE, MEETING, "protokoll", version)


# --- local store -----------------------------------------------------------------


def test_local_put_get_head_list_uri(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path / "a")
    stored = put_and_read_back(store, "KSAU/x/doc.pdf", missing="KSAU/x/other.pdf")
    path = tmp_path / "a" / "KSAU" / "x" / "doc.pdf"
    assert stored.uri == path.as_uri() == store.uri("KSAU/x/doc.pdf")


def test_local_file_is_read_only_and_no_temp_file_is_left(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    store.put("a/b.txt", b"data", content_type="text/plain")
    assert stat.S_IMODE((tmp_path / "a" / "b.txt").stat().st_mode) == 0o444
    assert os.listdir(tmp_path / "a") == ["b.txt"]


def test_local_put_is_idempotent(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    first = store.put("a/b.txt", b"data", content_type="text/plain")
    inode = (tmp_path / "a" / "b.txt").stat().st_ino
    assert store.put("a/b.txt", b"data", content_type="text/plain") == first
    assert (tmp_path / "a" / "b.txt").stat().st_ino == inode


def test_local_put_refuses_different_bytes(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    store.put("a/b.txt", b"data", content_type="text/plain")
    with pytest.raises(ArchiveError, match=r"'a/b\.txt' already holds different content"):
        store.put("a/b.txt", b"other", content_type="text/plain")
    assert store.get("a/b.txt") == b"data"


def test_local_put_failing_midway_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    store = LocalArchive(tmp_path)
    with pytest.raises(ArchiveError, match="Input/output error"):
        store.put("a/b.txt", b"data", content_type="text/plain")
    assert os.listdir(tmp_path / "a") == []


@pytest.mark.parametrize(("racer", "refused"), [(b"other", True), (b"data", False)])
def test_local_put_when_the_target_appears_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, racer: bytes, refused: bool
) -> None:
    real_mkstemp = tempfile.mkstemp

    def racing_mkstemp(**kwargs: Any) -> tuple[int, str]:
        (Path(kwargs["dir"]) / "b.txt").write_bytes(racer)  # another writer wins
        return real_mkstemp(**kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", racing_mkstemp)
    store = LocalArchive(tmp_path)
    if refused:
        with pytest.raises(ArchiveError, match="already holds different content"):
            store.put("a/b.txt", b"data", content_type="text/plain")
    else:
        assert store.put("a/b.txt", b"data", content_type="text/plain").sha256 == sha(b"data")
    assert (tmp_path / "a" / "b.txt").read_bytes() == racer
    assert os.listdir(tmp_path / "a") == ["b.txt"]


def test_local_put_verifies_what_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = LocalArchive._write_once

    def corrupting_write(path: Path, data: bytes) -> None:
        real_write(path, data[:-1] + b"X")  # a disk that flips the last byte

    monkeypatch.setattr(LocalArchive, "_write_once", staticmethod(corrupting_write))
    with pytest.raises(ArchiveError, match="does not match the written"):
        LocalArchive(tmp_path).put("a/b.txt", b"data", content_type="text/plain")


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../../x", "/etc/passwd", "a\\b", ".hidden", "a/.b", "a//b", "a/", "a\x00b", ""],
)
def test_local_refuses_keys_that_could_escape(tmp_path: Path, key: str) -> None:
    store = LocalArchive(tmp_path / "root")
    with pytest.raises(ArchiveError, match="invalid archive key"):
        store.put(key, b"x", content_type="text/plain")
    with pytest.raises(ArchiveError, match="invalid archive key"):
        store.get(key)
    assert not (tmp_path / "x").exists()


def test_local_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "outside")
    store = LocalArchive(tmp_path / "root")
    with pytest.raises(ArchiveError, match="outside the archive"):
        store.put("link/x.txt", b"x", content_type="text/plain")
    assert list((tmp_path / "outside").iterdir()) == []


def test_local_list_is_a_sorted_string_prefix(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    for key in ["a/b/2", "a/b/1", "a/bc", "b/x"]:
        store.put(key, key.encode(), content_type="text/plain")
    (tmp_path / "a" / ".b.tmp").write_bytes(b"unfinished")
    assert list(store.list("a/b")) == ["a/b/1", "a/b/2", "a/bc"]
    assert list(store.list("a/b/")) == ["a/b/1", "a/b/2"]
    assert list(store.list("")) == ["a/b/1", "a/b/2", "a/bc", "b/x"]
    assert list(store.list("nothing/")) == []
    with pytest.raises(ArchiveError):
        list(store.list("../"))


# --- opening a store -------------------------------------------------------------


def test_open_archive_local(tmp_path: Path) -> None:
    default = open_archive(None, default_dir=tmp_path / "default")
    assert isinstance(default, LocalArchive) and default.root == tmp_path / "default"
    explicit = open_archive((tmp_path / "å x").as_uri(), default_dir=tmp_path)
    assert isinstance(explicit, LocalArchive) and explicit.root == tmp_path / "å x"


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "relative/path", "/abs/path", "file://host/x", "s3://", "s3:///key"]
)
def test_open_archive_refuses_other_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(url))):
        open_archive(url, default_dir=tmp_path)


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://bucket/some/key.pdf") == ("bucket", "some/key.pdf")
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    for bad in ["http://bucket/key", "s3:///key", "bucket/key"]:
        with pytest.raises(ConfigError, match=re.escape(bad)):
            parse_s3_uri(bad)


# --- bundles (local) -------------------------------------------------------------

FILES = {"extract.pdf": b"%PDF-1.7 signed", "trail.json": b'{"events": []}'}


def test_bundle_round_trip_and_manifest(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    written = write_bundle(store, "KSAU/2014/x/p94", FILES)
    assert list(store.list("KSAU/2014/x/p94/")) == [
        "KSAU/2014/x/p94/extract.pdf",
        "KSAU/2014/x/p94/manifest.json",
        "KSAU/2014/x/p94/trail.json",
    ]
    read = read_bundle(store, "KSAU/2014/x/p94")
    assert read == written
    assert dict(read.files) == FILES
    assert read.manifest["format"] == "justering-bundle/1"
    assert read.manifest["files"]["extract.pdf"] == {
        "sha256": sha(FILES["extract.pdf"]),
        "size": len(FILES["extract.pdf"]),
    }


def test_bundle_manifest_is_written_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalArchive(tmp_path)
    order: list[str] = []
    real_put = LocalArchive.put

    def recording_put(self: LocalArchive, key: str, data: bytes, *, content_type: str) -> Any:
        order.append(key.rpartition("/")[2])
        return real_put(self, key, data, content_type=content_type)

    monkeypatch.setattr(LocalArchive, "put", recording_put)
    write_bundle(store, "p", FILES)
    assert order[-1] == "manifest.json" and sorted(order[:-1]) == sorted(FILES)


def test_bundle_without_manifest_is_incomplete(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    store.put("p/extract.pdf", FILES["extract.pdf"], content_type="application/pdf")
    with pytest.raises(ArchiveError, match=r"manifest\.json is missing"):
        read_bundle(store, "p")


def test_writing_the_same_bundle_again_is_a_no_op(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    first = write_bundle(store, "p", FILES)
    assert write_bundle(store, "p", dict(reversed(FILES.items()))) == first


def test_a_different_bundle_at_a_complete_prefix_is_refused_untouched(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    write_bundle(store, "p", FILES)
    before = list(store.list("p/"))
    with pytest.raises(ArchiveError, match="different bundle"):
        write_bundle(store, "p", {**FILES, "extra.txt": b"new"})
    assert list(store.list("p/")) == before


@pytest.mark.parametrize("name", ["a/b.pdf", "manifest.json", "..", ".hidden", "", "a\\b"])
def test_bundle_names_are_plain_file_names(tmp_path: Path, name: str) -> None:
    store = LocalArchive(tmp_path)
    with pytest.raises(ArchiveError):
        write_bundle(store, "p", {name: b"x"})
    assert list(store.list("")) == []


def test_tampered_local_file_fails_read_bundle_naming_it(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    write_bundle(store, "p", FILES)
    target = tmp_path / "p" / "trail.json"
    target.chmod(0o644)
    target.write_bytes(b'{"events": ["forged"]}')
    with pytest.raises(ArchiveError, match=r"bundle file 'trail\.json'.*does not match"):
        read_bundle(store, "p")


def test_missing_local_file_fails_read_bundle_naming_it(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    write_bundle(store, "p", FILES)
    (tmp_path / "p" / "extract.pdf").unlink()
    with pytest.raises(ArchiveError, match=r"bundle file 'extract\.pdf' is missing"):
        read_bundle(store, "p")


@pytest.mark.parametrize(
    "manifest",
    [b"not json", b'{"format": "other/1", "files": {}}', b'{"format": "justering-bundle/1"}'],
)
def test_unreadable_manifest_fails_read_bundle(tmp_path: Path, manifest: bytes) -> None:
    store = LocalArchive(tmp_path)
    store.put("p/manifest.json", manifest, content_type="application/json")
    with pytest.raises(ArchiveError, match=r"manifest.*unreadable"):
        read_bundle(store, "p")


def test_manifest_naming_an_escaping_file_is_refused(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path / "root")
    (tmp_path / "secret").write_bytes(b"s")
    forged = (
        b'{"format": "justering-bundle/1", "files": {"../../secret": {"sha256": "", "size": 1}}}'
    )
    store.put("p/manifest.json", forged, content_type="application/json")
    with pytest.raises(ArchiveError, match="invalid bundle file name"):
        read_bundle(store, "p")


# --- S3 (moto's server mode over HTTP) ---------------------------------------------


def test_s3_put_get_head_list(s3_bucket: str) -> None:
    client = boto3.client("s3")
    store = S3Archive(s3_bucket, "archive/", client)
    stored = put_and_read_back(store, "a/doc.pdf", missing="a/none.pdf")
    assert stored.uri == f"s3://{s3_bucket}/archive/a/doc.pdf" == store.uri("a/doc.pdf")
    store.put("a/b/c.txt", b"c", content_type="text/plain")
    store.put("ab.txt", b"ab", content_type="text/plain")
    assert list(store.list("a/")) == ["a/b/c.txt", "a/doc.pdf"]
    assert list(store.list("a")) == ["a/b/c.txt", "a/doc.pdf", "ab.txt"]
    raw = client.head_object(Bucket=s3_bucket, Key="archive/a/doc.pdf", ChecksumMode="ENABLED")
    expected = base64.b64encode(hashlib.sha256(b"%PDF-1.7").digest()).decode()
    assert raw["ChecksumSHA256"] == expected
    assert raw["ContentType"] == "application/pdf"


def test_s3_put_is_idempotent_and_refuses_different_bytes(s3_bucket: str) -> None:
    store = S3Archive(s3_bucket, "", boto3.client("s3"))
    first = store.put("k.txt", b"data", content_type="text/plain")
    assert store.put("k.txt", b"data", content_type="text/plain") == first
    with pytest.raises(ArchiveError, match=r"'k\.txt' already holds different content"):
        store.put("k.txt", b"other", content_type="text/plain")
    assert store.get("k.txt") == b"data"


def test_s3_put_compares_the_checksum_s3_returns(s3_bucket: str) -> None:
    client = boto3.client("s3")

    def misreport(parsed: dict[str, Any], **kwargs: Any) -> None:
        parsed["ChecksumSHA256"] = base64.b64encode(b"\0" * 32).decode()

    client.meta.events.register("after-call.s3.PutObject", misreport)
    with pytest.raises(ArchiveError, match="S3 reports SHA-256"):
        S3Archive(s3_bucket, "", client).put("k.txt", b"data", content_type="text/plain")


def error_response(url: str, status: int, code: str) -> AWSResponse:
    """An S3 error answer, as an endpoint lacking a feature or a permission gives it."""

    class Raw:
        def stream(self, **kwargs: Any) -> Any:
            yield f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()

    return AWSResponse(url, status, HTTPHeaders(), Raw())


def without_conditional_writes(client: Any) -> list[str]:
    """Make ``client`` see an endpoint that answers ``If-None-Match`` with 501; returns
    the list of refused request URLs."""
    refused: list[str] = []

    def no_conditional_writes(request: Any, **kwargs: Any) -> AWSResponse | None:
        if "If-None-Match" not in request.headers:
            return None
        refused.append(request.url)
        return error_response(request.url, 501, "NotImplemented")

    client.meta.events.register("before-send.s3.PutObject", no_conditional_writes)
    return refused


def test_s3_put_falls_back_where_conditional_writes_are_not_implemented(s3_bucket: str) -> None:
    client = boto3.client("s3")
    refused = without_conditional_writes(client)
    store = S3Archive(s3_bucket, "", client)
    assert store.put("k.txt", b"data", content_type="text/plain").sha256 == sha(b"data")
    assert store.put("k.txt", b"data", content_type="text/plain").sha256 == sha(b"data")
    with pytest.raises(ArchiveError, match="already holds different content"):
        store.put("k.txt", b"other", content_type="text/plain")
    assert len(refused) == 1  # asked once, then remembered
    assert store.get("k.txt") == b"data"


def test_s3_failures_become_archive_errors(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9", config=Config(retries={"max_attempts": 1})
    )
    store = S3Archive("bucket", "", client)
    with pytest.raises(ArchiveError, match=r"S3 put of archive key 'k\.txt' failed"):
        store.put("k.txt", b"data", content_type="text/plain")
    with pytest.raises(ArchiveError, match=r"S3 get of archive key 'k\.txt' failed"):
        store.get("k.txt")


def test_s3_bundle_round_trip_and_tamper(s3_bucket: str) -> None:
    client = boto3.client("s3")
    store = S3Archive(s3_bucket, "arkiv", client)
    written = write_bundle(store, "KSAU/2014/x/p94", FILES)
    assert write_bundle(store, "KSAU/2014/x/p94", FILES) == written
    assert read_bundle(store, "KSAU/2014/x/p94") == written
    client.put_object(Bucket=s3_bucket, Key="arkiv/KSAU/2014/x/p94/extract.pdf", Body=b"forged")
    with pytest.raises(ArchiveError, match=r"bundle file 'extract\.pdf'.*does not match"):
        read_bundle(store, "KSAU/2014/x/p94")


def test_open_archive_s3_uses_the_environment(s3_bucket: str, s3_endpoint: str) -> None:
    store = open_archive(f"s3://{s3_bucket}/some/prefix", default_dir=Path("/nonexistent"))
    assert isinstance(store, S3Archive)
    stored = store.put("k.txt", b"data", content_type="text/plain")
    assert stored.uri == f"s3://{s3_bucket}/some/prefix/k.txt"
    direct = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    body = direct.get_object(Bucket=s3_bucket, Key="some/prefix/k.txt")["Body"].read()
    assert body == b"data"


def test_manifest_entry_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    store = LocalArchive(tmp_path)
    store.put("p/a.txt", b"a", content_type="text/plain")
    forged = b'{"format": "justering-bundle/1", "files": {"a.txt": 1}}'
    store.put("p/manifest.json", forged, content_type="application/json")
    with pytest.raises(ArchiveError, match=r"entry for 'a\.txt' is not an object"):
        read_bundle(store, "p")


# --- S3 Object Lock retention -------------------------------------------------------
#
# moto 5.2.5 does not implement GetObjectRetention (a GET ?retention is answered as a
# plain GET, and botocore fails on it with a 500), so the tests read an object's
# retention from HEAD: AWS sends the same x-amz-object-lock-mode and
# x-amz-object-lock-retain-until-date headers there (to callers allowed
# s3:GetObjectRetention). Deletion, versions and If-None-Match are moto's own.


def lock_of(client: Any, bucket: str, key: str) -> tuple[str | None, dt.datetime | None]:
    head = client.head_object(Bucket=bucket, Key=key)
    return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


def count_lock_lookups(client: Any) -> list[str]:
    calls: list[str] = []
    client.meta.events.register(
        "before-call.s3.GetObjectLockConfiguration", lambda **kwargs: calls.append("lookup")
    )
    return calls


def answer_lock_lookups_with(client: Any, status: int, code: str) -> None:
    """Make ``client`` see an endpoint answering GetObjectLockConfiguration with an error."""
    client.meta.events.register(
        "before-send.s3.GetObjectLockConfiguration",
        lambda request, **kwargs: error_response(request.url, status, code),
    )


def test_compliance_retention_on_every_object_of_a_bundle(
    s3_locked_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = boto3.client("s3")
    lookups = count_lock_lookups(client)
    store = S3Archive(
        s3_locked_bucket, "arkiv", client, retention=RetentionPolicy("COMPLIANCE", 30)
    )
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    write_bundle(store, "KSAU/2014/x/p94", FILES)
    after = dt.datetime.now(dt.UTC)
    keys = list(store.list(""))
    assert len(keys) == 3
    for key in keys:
        mode, until = lock_of(client, s3_locked_bucket, f"arkiv/{key}")
        assert mode == "COMPLIANCE"
        assert until is not None
        assert before + dt.timedelta(days=30) <= until <= after + dt.timedelta(days=30)
    assert lookups == ["lookup"]  # asked once per store, not per object
    assert "Object Lock" not in caplog.text


def test_a_locked_object_version_cannot_be_deleted(s3_locked_bucket: str) -> None:
    client = boto3.client("s3")
    store = S3Archive(s3_locked_bucket, "", client, retention=RetentionPolicy("COMPLIANCE", 30))
    written = write_bundle(store, "p", FILES)
    versions = client.list_object_versions(Bucket=s3_locked_bucket)["Versions"]
    assert len(versions) == 3
    for version in versions:
        with pytest.raises(ClientError) as refused:
            client.delete_object(
                Bucket=s3_locked_bucket, Key=version["Key"], VersionId=version["VersionId"]
            )
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(
                Bucket=s3_locked_bucket,
                Key=version["Key"],
                VersionId=version["VersionId"],
                BypassGovernanceRetention=True,  # no bypass for COMPLIANCE
            )
    assert read_bundle(store, "p") == written


def test_archiving_again_writes_no_second_version_and_overwriting_is_refused(
    s3_locked_bucket: str,
) -> None:
    client = boto3.client("s3")
    store = S3Archive(s3_locked_bucket, "", client, retention=RetentionPolicy("COMPLIANCE", 30))
    first = write_bundle(store, "p", FILES)
    assert write_bundle(store, "p", FILES) == first
    for name, data in FILES.items():  # below write_bundle's manifest short-cut
        assert store.put(f"p/{name}", data, content_type="text/plain").sha256 == sha(data)
    with pytest.raises(ArchiveError, match="already holds different content"):
        store.put("p/extract.pdf", b"%PDF-1.7 forged", content_type="application/pdf")
    assert object_versions(client, s3_locked_bucket) == {
        "p/extract.pdf": 1,
        "p/manifest.json": 1,
        "p/trail.json": 1,
    }
    assert read_bundle(store, "p") == first


def test_retention_and_idempotency_without_conditional_writes(s3_locked_bucket: str) -> None:
    client = boto3.client("s3")
    refused = without_conditional_writes(client)
    store = S3Archive(s3_locked_bucket, "", client, retention=RetentionPolicy("COMPLIANCE", 30))
    store.put("k.txt", b"data", content_type="text/plain")
    store.put("k.txt", b"data", content_type="text/plain")
    with pytest.raises(ArchiveError, match="already holds different content"):
        store.put("k.txt", b"other", content_type="text/plain")
    assert len(refused) == 1
    assert lock_of(client, s3_locked_bucket, "k.txt")[0] == "COMPLIANCE"
    assert object_versions(client, s3_locked_bucket) == {"k.txt": 1}


def test_governance_retention(s3_locked_bucket: str) -> None:
    client = boto3.client("s3")
    store = S3Archive(s3_locked_bucket, "", client, retention=RetentionPolicy("GOVERNANCE", 7))
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    store.put("k.txt", b"data", content_type="text/plain")
    mode, until = lock_of(client, s3_locked_bucket, "k.txt")
    assert mode == "GOVERNANCE"
    assert until is not None
    assert before + dt.timedelta(days=7) <= until <= before + dt.timedelta(days=7, minutes=1)
    version = client.head_object(Bucket=s3_locked_bucket, Key="k.txt")["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=s3_locked_bucket, Key="k.txt", VersionId=version)
    assert store.get("k.txt") == b"data"


def test_a_bucket_without_object_lock_archives_without_retention_and_warns_once(
    s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = boto3.client("s3")
    lookups = count_lock_lookups(client)
    store = S3Archive(s3_bucket, "", client, retention=RetentionPolicy("COMPLIANCE", 30))
    with caplog.at_level(logging.WARNING, logger="justering.archive.s3"):
        written = write_bundle(store, "p", FILES)
        store.put("q.txt", b"q", content_type="text/plain")
    assert read_bundle(store, "p") == written
    for key in store.list(""):
        assert lock_of(client, s3_bucket, key) == (None, None)
    warnings = [r for r in caplog.records if r.name == "justering.archive.s3"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert f"S3 bucket {s3_bucket!r} has no Object Lock" in warnings[0].getMessage()
    assert "COMPLIANCE" in warnings[0].getMessage()
    assert lookups == ["lookup"]


def test_an_endpoint_without_object_lock_support_is_a_bucket_without_it(
    s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = boto3.client("s3")
    answer_lock_lookups_with(client, 501, "NotImplemented")
    store = S3Archive(s3_bucket, "", client, retention=RetentionPolicy("COMPLIANCE", 30))
    store.put("k.txt", b"data", content_type="text/plain")
    assert store.get("k.txt") == b"data"
    assert "has no Object Lock" in caplog.text


def test_an_unreadable_object_lock_configuration_fails_before_writing(s3_bucket: str) -> None:
    client = boto3.client("s3")
    answer_lock_lookups_with(client, 403, "AccessDenied")
    store = S3Archive(s3_bucket, "", client, retention=RetentionPolicy("COMPLIANCE", 30))
    with pytest.raises(ArchiveError, match="s3:GetBucketObjectLockConfiguration"):
        store.put("k.txt", b"data", content_type="text/plain")
    assert list(store.list("")) == []


def test_without_retention_the_bucket_is_not_asked(s3_locked_bucket: str) -> None:
    client = boto3.client("s3")
    lookups = count_lock_lookups(client)
    S3Archive(s3_locked_bucket, "", client).put("k.txt", b"data", content_type="text/plain")
    assert lookups == []
    assert lock_of(client, s3_locked_bucket, "k.txt") == (None, None)


@pytest.mark.parametrize(
    ("mode", "days"),
    [
        ("compliance", 30),
        ("LEGAL_HOLD", 30),
        ("", 30),
        ("COMPLIANCE", 0),
        ("GOVERNANCE", -1),
        ("COMPLIANCE", True),
        ("COMPLIANCE", 1.5),
    ],
)
def test_retention_policy_refuses_bad_values(mode: str, days: Any) -> None:
    with pytest.raises(ConfigError, match="Object Lock retention"):
        RetentionPolicy(mode, days)


def test_retain_until_counts_days_from_the_write_in_utc() -> None:
    now = dt.datetime(2026, 3, 1, 12, 30, 15, 999, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert RetentionPolicy("COMPLIANCE", 10950).retain_until(now) == dt.datetime(
        2056, 2, 22, 11, 30, 15, tzinfo=dt.UTC
    )


def test_open_archive_passes_retention_to_s3_only(s3_locked_bucket: str, tmp_path: Path) -> None:
    policy = RetentionPolicy("COMPLIANCE", 10950)  # the configured default: 30 years
    store = open_archive(f"s3://{s3_locked_bucket}/arkiv", default_dir=tmp_path, retention=policy)
    assert isinstance(store, S3Archive) and store.retention == policy
    store.put("k.txt", b"data", content_type="text/plain")
    client = boto3.client("s3")
    mode, until = lock_of(client, s3_locked_bucket, "arkiv/k.txt")
    assert mode == "COMPLIANCE" and until is not None
    assert abs(until - (dt.datetime.now(dt.UTC) + dt.timedelta(days=10950))) < dt.timedelta(
        minutes=1
    )
    local = open_archive(None, default_dir=tmp_path / "a", retention=policy)
    assert isinstance(local, LocalArchive)
    assert local.put("k.txt", b"data", content_type="text/plain").sha256 == sha(b"data")
