"""RFC 3161 timestamps (PAdES B-T) and long-term validation data (PAdES B-LTA).

With a time-stamping authority (TSA) configured (``JUSTERING_TSA_URL``), every
signature carries a signature timestamp (``signing.sign_extract``), and at
certification :func:`add_long_term_validation` adds, as incremental updates,

1. a Document Security Store (DSS) with everything a validator needs offline:
   each signer's certificate and our CA certificate, a CRL of our CA issued at
   sealing time, and the TSA's certificates with their revocation data (CRL or
   OCSP) fetched from the TSA's own distribution points; under an outside root
   (``justering.pades.ca_chain``) also the certificates above our CA and what
   their issuers say of them, fetched the same way;
2. a document timestamp over all of it, which proves that the signatures and
   that validation data existed at its time.

Revocation of our signer certificates: they carry no CRL distribution point or
OCSP URL, on purpose. A signer key signs once and is dropped, so nothing is
ever revoked, and no web route has to stay up for thirty years to say so. The
CA's (empty) CRL, signed by the CA and issued when the extract is sealed, is
written straight into the DSS; a validator finds it there, not on a server.

The TSA's trust root is not ours and is not in the PDF as a trust anchor: the
validator is given it next to our CA (``tsa-ca.pem`` in the archive bundle,
``justering verify --trust``). The document timestamp stays verifiable while
the TSA's certificate is valid (typically ten years or more); an archive that
must outlive it gets a new document timestamp before then (another call of
:func:`add_long_term_validation`, which adds to the DSS and timestamps again).

A TSA or revocation source that fails raises :class:`TimestampError`: there is
no fallback to the local clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from asn1crypto import cms, crl, ocsp, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator.authority import AuthorityWithCert
from pyhanko_certvalidator.errors import CRLFetchError, OCSPFetchError
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from justering.errors import SigningError
from justering.pades.ca import SigningCA
from justering.pades.certificates import asn1_certificate

DEFAULT_TIMEOUT = 10.0
UNTRUSTED_TIMESTAMP = (
    "its timestamp is not trusted (invalid, or the TSA's certificate does not chain to "
    "a trust root: is the TSA's root among them?)"
)
"""What a validator says of a signature (or seal) whose RFC 3161 timestamp fails."""
"""Seconds to wait for a TSA or revocation source before the step fails (and is retried)."""
TIMESTAMP_BYTES_RESERVED = 16384
"""Extra room, in hex digits (8 KB of DER), for a timestamp token in a signature
or a document timestamp: a token carries the TSA's certificate and often its chain."""
DOCUMENT_TIMESTAMP_FIELD = "Dokumenttidsstämpel"
"""Document timestamp fields are named ``Dokumenttidsstämpel-1``, ``-2``, …"""


class TimestampError(SigningError):
    """A time-stamping authority or a revocation source failed; names it and why."""


class Timestamper(HTTPTimeStamper):  # type: ignore[misc]
    """pyHanko's HTTP TSA client, raising :class:`TimestampError` on any failure."""

    url: str

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> Any:
        try:
            return await super().async_timestamp(message_digest, md_algorithm)
        except TimestampError:
            raise
        except (TimestampRequestError, OSError, ValueError, TypeError, KeyError) as error:
            raise TimestampError(
                f"the time-stamping authority {self.url} failed: {_cause(error)}"
            ) from error


def timestamper_for(url: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> Timestamper | None:
    """The TSA client for ``url`` (``Settings.tsa_url``); None when no TSA is configured."""
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise TimestampError(f"the TSA URL {url!r} is not an http(s) URL")
    return Timestamper(url, timeout=timeout)


@dataclass(frozen=True)
class _ValidationData:
    certs: tuple[asn1_x509.Certificate, ...]
    crls: tuple[crl.CertificateList, ...]
    ocsps: tuple[ocsp.OCSPResponse, ...]


def add_long_term_validation(
    pdf: bytes, ca: SigningCA, timestamper: Timestamper, *, now: datetime | None = None
) -> bytes:
    """Add the DSS and a document timestamp to the signed ``pdf`` (PAdES B-LTA).

    Two incremental updates: the validation data of every signature (see the
    module docstring), then the document timestamp. Raises
    :class:`TimestampError` when the TSA or one of its revocation sources
    fails, and :class:`SigningError` when ``pdf`` is not a signed PDF.
    """
    now = now or datetime.now(UTC)
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        signatures = list(reader.embedded_regular_signatures)
        stamps = list(reader.embedded_timestamp_signatures)
    except (PdfError, ValueError, KeyError, TypeError) as error:
        raise SigningError(f"the document is not a readable PDF: {error}") from error
    if not signatures:
        raise SigningError("the document has no signatures")
    return asyncio.run(_add_validation_and_timestamp(pdf, signatures, stamps, ca, timestamper, now))


async def _add_validation_and_timestamp(
    pdf: bytes,
    signatures: Sequence[EmbeddedPdfSignature],
    stamps: Sequence[EmbeddedPdfSignature],
    ca: SigningCA,
    timestamper: Timestamper,
    now: datetime,
) -> bytes:
    chain_certs = [asn1_certificate(cert) for cert in (ca.certificate, *ca.chain)]
    own_certs = list(chain_certs)
    tsa_certs: list[asn1_x509.Certificate] = []
    for signature in signatures:
        own_certs.append(signature.signer_cert)
        own_certs.extend(signature.other_embedded_certs)
        for token in signature_timestamp_tokens(signature.signer_info):
            tsa_certs.extend(_certificates(token))
    for stamp in stamps:  # earlier document timestamps: a renewal archives their data too
        tsa_certs.extend(_certificates(stamp.signed_data))
    tsa_data = await _fetch_revocation_data(tsa_certs, timestamper)
    # under an outside root: what its CA says of our CA's certificate (and of any
    # intermediate above it), fetched like the TSA's
    chain_data = await _fetch_revocation_data(
        chain_certs, timestamper, what="the signing CA's chain certificate"
    )
    our_crl = crl.CertificateList.load(ca.crl(now).public_bytes(serialization.Encoding.DER))

    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    DocumentSecurityStore.supply_dss_in_writer(
        writer,
        None,
        certs=_unique([*own_certs, *tsa_data.certs]),
        crls=[our_crl, *chain_data.crls, *tsa_data.crls],
        ocsps=[*chain_data.ocsps, *tsa_data.ocsps],
    )
    with_dss = BytesIO()
    writer.write(with_dss)  # type: ignore[no-untyped-call]

    stamper = signers.PdfTimeStamper(
        timestamper, field_name=f"{DOCUMENT_TIMESTAMP_FIELD}-{len(stamps) + 1}"
    )
    output = BytesIO()
    try:
        await stamper.async_timestamp_pdf(
            IncrementalPdfFileWriter(with_dss, strict=False),
            "sha256",
            bytes_reserved=TIMESTAMP_BYTES_RESERVED,
            output=output,
        )
    except (PdfError, ValueError) as error:
        raise SigningError(f"could not add the document timestamp: {error}") from error
    return output.getvalue()


def signature_timestamp_tokens(signer_info: cms.SignerInfo) -> Iterator[cms.SignedData]:
    """The RFC 3161 signature timestamp tokens in a CMS signer's unsigned attributes."""
    attributes = signer_info["unsigned_attrs"]
    if not attributes:
        return
    for attribute in attributes:
        if attribute["type"].native == "signature_time_stamp_token":
            for value in attribute["values"]:
                yield value["content"]


def timestamp_time(token: cms.SignedData) -> datetime:
    """The time a timestamp token attests (its TSTInfo genTime)."""
    info: tsp.TSTInfo = token["encap_content_info"]["content"].parsed
    moment: datetime = info["gen_time"].native
    return moment


def _certificates(token: cms.SignedData) -> list[asn1_x509.Certificate]:
    return [choice.chosen for choice in token["certificates"] or () if choice.name == "certificate"]


def _unique(certs: Sequence[asn1_x509.Certificate]) -> list[asn1_x509.Certificate]:
    seen: dict[bytes, asn1_x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(cert.sha256, cert)
    return list(seen.values())


async def _fetch_revocation_data(
    certs: Sequence[asn1_x509.Certificate],
    timestamper: Timestamper,
    *,
    what: str = "the TSA certificate",
) -> _ValidationData:
    """CRLs (or, where a certificate names no CRL, OCSP responses) for each
    certificate: the TSA's, or those of our CA's chain under an outside root.

    A self-signed certificate (a root, our own CA's too) needs none: the
    validator trusts it.
    """
    certs = _unique(certs)
    by_subject = {cert.subject.dump(): cert for cert in certs}
    crls: list[crl.CertificateList] = []
    ocsps: list[ocsp.OCSPResponse] = []
    backend = AIOHttpFetcherBackend(per_request_timeout=timestamper.timeout)
    async with backend as fetchers:
        for cert in certs:
            if cert.self_signed != "no":
                continue
            name = cert.subject.human_friendly
            try:
                if cert.crl_distribution_points_value is not None:
                    crls.extend(await fetchers.crl_fetcher.fetch(cert, use_deltas=False))
                elif cert.ocsp_urls and cert.issuer.dump() in by_subject:
                    issuer = AuthorityWithCert(by_subject[cert.issuer.dump()])
                    ocsps.append(await fetchers.ocsp_fetcher.fetch(cert, issuer))
                else:
                    raise TimestampError(
                        f"{what} {name!r} names no CRL distribution point "
                        "or OCSP responder: its revocation status cannot be archived"
                    )
            except (CRLFetchError, OCSPFetchError, OSError) as error:
                raise TimestampError(
                    f"could not fetch the revocation data of {what} {name!r} "
                    f"(TSA {timestamper.url}): {_cause(error)}"
                ) from error
    return _ValidationData(certs=tuple(certs), crls=tuple(crls), ocsps=tuple(ocsps))


def _cause(error: BaseException) -> str:
    """The error and its chain of causes, in one line."""
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(parts) < 4:
        text = str(current) or type(current).__name__
        if text not in parts:
            parts.append(text)
        current = current.__cause__ or current.__context__
    return ": ".join(parts)


__all__ = [
    "DEFAULT_TIMEOUT",
    "UNTRUSTED_TIMESTAMP",
    "TimestampError",
    "Timestamper",
    "add_long_term_validation",
    "signature_timestamp_tokens",
    "timestamp_time",
    "timestamper_for",
]
