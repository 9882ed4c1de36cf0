"""RFC 3161 timestamps (PAdES B-T) and long-term validation (B-LTA), against a real
TSA with its CRL served over HTTP on 127.0.0.1 (tests/support/tsa.py)."""

from __future__ import annotations

import re
import socket
import time
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from pyhanko.pdf_utils.generic import NameObject, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from justering.errors import SigningError
from justering.pades.ca import SigningCA
from justering.pades.sign import SignedExtract, field_name, sign_extract
from justering.pades.timestamps import (
    DOCUMENT_TIMESTAMP_FIELD,
    Timestamper,
    TimestampError,
    add_long_term_validation,
    timestamper_for,
)
from justering.pades.validate import validate_extract
from support.pdfs import ALL_SIGNERS, CHAIR, ORGANISATION, sign_in_turn
from support.poppler import pdfsig
from support.tsa import (  # noqa: F401 (a fixture)
    TsaService,
    refused_url,
    start_tsa_service,
    tsa_service_fixture,
)

TEN_YEARS = timedelta(days=3653)


@pytest.fixture(scope="module")
def bt_steps(ca: SigningCA, unsigned: bytes, tsa_service: TsaService) -> list[SignedExtract]:
    """Chair, both adjusters and the certifier, each signature timestamped (B-T)."""
    return sign_in_turn(unsigned, ca, ALL_SIGNERS, timestamper=timestamper_for(tsa_service.tsa_url))


@pytest.fixture(scope="module")
def sealed(ca: SigningCA, bt_steps: list[SignedExtract], tsa_service: TsaService) -> bytes:
    timestamper = timestamper_for(tsa_service.tsa_url)
    assert timestamper is not None
    return add_long_term_validation(bt_steps[-1].pdf, ca, timestamper)


@pytest.fixture(scope="module")
def roots(ca: SigningCA, tsa_service: TsaService) -> list[x509.Certificate]:
    return [ca.certificate, tsa_service.root]


def append_update(pdf: bytes) -> bytes:
    """``pdf`` with an incremental update that changes the document's title."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    info = writer.trailer["/Info"].get_object() if "/Info" in writer.trailer else None
    if info is None:
        writer.root[NameObject("/Lang")] = pdf_string("sv")
        writer.update_root()
    else:
        info[NameObject("/Title")] = pdf_string("Ändrad efter arkivering")
        writer.update_container(info)
    output = BytesIO()
    writer.write(output)
    return output.getvalue()


def sign_as_chair(ca: SigningCA, unsigned: bytes, timestamper: Timestamper | None) -> None:
    """The chair's signature on ``unsigned``, timestamped by ``timestamper``."""
    credential = ca.issue(CHAIR, organisation=ORGANISATION)
    sign_extract(unsigned, credential, CHAIR, adjuster_count=2, timestamper=timestamper)


def test_each_signature_carries_a_tsa_timestamp(
    bt_steps: list[SignedExtract], roots: list[x509.Certificate]
) -> None:
    for step in bt_steps:
        assert step.timestamped_at is not None
        assert step.signed_at <= step.timestamped_at < step.signed_at + timedelta(minutes=1)
    validation = validate_extract(bt_steps[-1].pdf, roots)
    assert validation.ok, validation.problems
    assert [r.timestamped_at for r in validation.signatures] == [s.timestamped_at for s in bt_steps]
    assert all(r.timestamp_trusted and not r.long_term for r in validation.signatures)
    # checked at the TSA's time, not the signer's claim
    assert [r.validated_at for r in validation.signatures] == [s.timestamped_at for s in bt_steps]


def test_without_the_tsa_root_the_timestamps_are_not_trusted(
    bt_steps: list[SignedExtract], ca: SigningCA
) -> None:
    validation = validate_extract(bt_steps[-1].pdf, [ca.certificate])
    assert not validation.ok
    untrusted = [p for p in validation.problems if "its timestamp is not trusted" in p]
    assert len(untrusted) == len(ALL_SIGNERS)


def test_signatures_without_a_tsa_have_no_timestamp(
    steps: list[SignedExtract], ca: SigningCA
) -> None:
    assert all(step.timestamped_at is None for step in steps)
    validation = validate_extract(steps[-1].pdf, [ca.certificate])
    assert validation.ok, validation.problems
    assert all(r.timestamped_at is None and not r.long_term for r in validation.signatures)


def test_sealing_adds_a_dss_and_a_document_timestamp_as_incremental_updates(
    bt_steps: list[SignedExtract], sealed: bytes, roots: list[x509.Certificate]
) -> None:
    assert sealed.startswith(bt_steps[-1].pdf)
    assert b"/DSS" in sealed[len(bt_steps[-1].pdf) :]
    assert sealed.count(b"%%EOF") == bt_steps[-1].pdf.count(b"%%EOF") + 2
    validation = validate_extract(sealed, roots)
    assert validation.ok, validation.problems
    (stamp,) = validation.document_timestamps
    assert stamp.field_name == f"{DOCUMENT_TIMESTAMP_FIELD}-1"
    assert stamp.trusted and stamp.timestamped_at is not None
    assert stamp.timestamped_at >= bt_steps[-1].timestamped_at  # type: ignore[operator]
    assert all(r.long_term for r in validation.signatures)
    assert validation.signatures[-1].modification_level == "lta_updates"


def test_the_b_t_extract_fails_once_its_certificates_have_expired(
    bt_steps: list[SignedExtract], roots: list[x509.Certificate]
) -> None:
    """Without the DSS and the document timestamp nothing proves, in ten years, that the
    signer certificates were not revoked when they signed: long-term validation matters."""
    validation = validate_extract(bt_steps[-1].pdf, roots, now=datetime.now(UTC) + TEN_YEARS)
    assert not validation.ok
    for signer in ALL_SIGNERS:
        assert any(
            p.startswith(f"signature {field_name(signer)}: the certificate of")
            and "no proven long-term validation data" in p
            for p in validation.problems
        ), validation.problems


def test_document_timestamp_needs_the_tsa_root(sealed: bytes, ca: SigningCA) -> None:
    validation = validate_extract(sealed, [ca.certificate])
    assert any(p.startswith("document timestamp") for p in validation.problems)


def test_bytes_appended_after_the_document_timestamp_are_refused(
    sealed: bytes, roots: list[x509.Certificate]
) -> None:
    validation = validate_extract(append_update(sealed), roots)
    assert not validation.ok
    assert any("after the last document timestamp" in p for p in validation.problems)


def test_pdfsig_finds_every_signature_of_a_sealed_extract_valid(
    sealed: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed)
    report = {s.get("Signature Field Name"): s for s in pdfsig(path)}
    for signer in ALL_SIGNERS:
        assert report[field_name(signer)]["Signature Validation"] == "Signature is Valid."


def test_a_sealed_extract_verifies_offline_in_ten_years_with_the_tsa_stopped(
    ca: SigningCA, unsigned: bytes, tmp_path: Path
) -> None:
    service = start_tsa_service(tmp_path / "tsa")
    timestamper = timestamper_for(service.tsa_url)
    assert timestamper is not None
    signed = sign_in_turn(unsigned, ca, ALL_SIGNERS, timestamper=timestamper)
    sealed = add_long_term_validation(signed[-1].pdf, ca, timestamper)
    assert any("/crls/" in request for request in service.requests)  # the TSA's CRL
    service.stop()
    served = len(service.requests)

    future = datetime.now(UTC) + TEN_YEARS
    assert all(step.certificate_fingerprint for step in signed)
    assert ca.issue(CHAIR, organisation=ORGANISATION).certificate.not_valid_after_utc < future
    validation = validate_extract(sealed, [ca.certificate, service.root], now=future)
    assert validation.ok, validation.problems
    assert [r.validated_at for r in validation.signatures] == [s.timestamped_at for s in signed]
    assert all(r.long_term and r.timestamp_trusted for r in validation.signatures)
    assert validation.document_timestamps[0].validated_at == future
    assert len(service.requests) == served

    # …while the same step now fails: no TSA, no revocation source
    with pytest.raises(TimestampError, match=re.escape(service.base_url)):
        add_long_term_validation(signed[-1].pdf, ca, timestamper)


def test_sealing_again_renews_the_document_timestamp(
    ca: SigningCA, sealed: bytes, tsa_service: TsaService, roots: list[x509.Certificate]
) -> None:
    timestamper = timestamper_for(tsa_service.tsa_url)
    assert timestamper is not None
    renewed = add_long_term_validation(sealed, ca, timestamper)
    validation = validate_extract(renewed, roots, now=datetime.now(UTC) + TEN_YEARS)
    assert validation.ok, validation.problems
    assert [s.field_name for s in validation.document_timestamps] == [
        f"{DOCUMENT_TIMESTAMP_FIELD}-1",
        f"{DOCUMENT_TIMESTAMP_FIELD}-2",
    ]
    first, second = validation.document_timestamps
    assert first.validated_at == second.timestamped_at  # checked at the next one's time


@pytest.mark.parametrize(
    ("path", "cause"),
    [("/broken/500", "500"), ("/broken/garbage", "")],
    ids=["http-500", "garbage"],
)
def test_a_failing_tsa_fails_the_signature(
    ca: SigningCA, unsigned: bytes, tsa_service: TsaService, path: str, cause: str
) -> None:
    url = tsa_service.base_url + path
    with pytest.raises(TimestampError, match=re.escape(url) + ".*" + cause) as error:
        sign_as_chair(ca, unsigned, timestamper_for(url))
    assert isinstance(error.value, SigningError)


def test_a_refused_connection_fails_signing_and_sealing(
    ca: SigningCA, unsigned: bytes, sealed: bytes
) -> None:
    url = refused_url()
    timestamper = timestamper_for(url)
    with pytest.raises(TimestampError, match=re.escape(url)):
        sign_as_chair(ca, unsigned, timestamper)
    assert timestamper is not None
    with pytest.raises(TimestampError, match="could not fetch|" + re.escape(url)):
        add_long_term_validation(sealed, ca, timestamper)


def test_a_tsa_that_does_not_answer_times_out(ca: SigningCA, unsigned: bytes) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/tsa"
        started = time.monotonic()
        with pytest.raises(TimestampError, match=re.escape(url)):
            sign_as_chair(ca, unsigned, timestamper_for(url, timeout=0.5))
        assert time.monotonic() - started < 5


def test_timestamper_for_needs_an_http_url() -> None:
    assert timestamper_for(None) is None
    assert timestamper_for("") is None
    with pytest.raises(TimestampError, match="not an http"):
        timestamper_for("tsa.example/tsr")
    timestamper = timestamper_for("https://tsa.example/tsr")
    assert timestamper is not None and timestamper.timeout == 10.0
