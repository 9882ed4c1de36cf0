"""A real S3 HTTP endpoint for tests: moto's server mode on 127.0.0.1.

Use the context manager directly, or re-export the fixtures from a conftest::

    from support.s3 import s3_bucket, s3_endpoint, s3_env  # noqa: F401

``s3_endpoint`` (session) starts one server; ``s3_env`` points the standard AWS
environment at it for one test; ``s3_bucket`` also creates a fresh bucket there,
``s3_locked_bucket`` a fresh one with Object Lock (and so versioning) enabled.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Start moto's S3 server on a free port of 127.0.0.1; yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server for the whole test session."""
    with moto_s3_server() as url:
        yield url


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The standard AWS environment pointed at the test server; returns its URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    return s3_endpoint


def object_versions(client: Any, bucket: str) -> dict[str, int]:
    """Object versions (and delete markers) per key, as the server holds them."""
    listing = client.list_object_versions(Bucket=bucket)
    counts: dict[str, int] = {}
    for version in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def _new_bucket(*, object_lock: bool) -> str:
    import boto3

    name = f"test-{uuid.uuid4().hex[:16]}"
    boto3.client("s3").create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
    return name


@pytest.fixture
def s3_bucket(s3_env: str) -> str:
    """A new, empty bucket on the test server (environment set as by ``s3_env``)."""
    return _new_bucket(object_lock=False)


@pytest.fixture
def s3_locked_bucket(s3_env: str) -> str:
    """A new, empty bucket created with Object Lock enabled (S3 then turns on versioning)."""
    return _new_bucket(object_lock=True)
