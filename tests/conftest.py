"""Shared fixtures: a real S3 endpoint (moto's server mode over HTTP)."""

from s3server import s3_bucket, s3_endpoint, s3_env  # noqa: F401
