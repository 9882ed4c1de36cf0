"""PAdES signing of an extract: one incremental signature per signer.

Each signature goes in a new field named after the signer's slot
(``Signatur-chair-0``), with a visible stamp on the last page inside the box
``justering.documents.layout`` reserves for the role. Signatures are PAdES baseline
(``ETSI.CAdES.detached``, SHA-256) and are appended as incremental updates, so
earlier signatures stay valid.

With a TSA (``timestamper``, see ``justering.pades.timestamps``) each signature also
carries an RFC 3161 signature timestamp (PAdES B-T); a TSA that fails fails
the signature with a :class:`~justering.pades.timestamps.TimestampError`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import as_file, files
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from asn1crypto import cms
from cryptography.hazmat.primitives.serialization import Encoding
from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.stamp import TextStampStyle

from justering.documents import layout
from justering.errors import SigningError
from justering.model.roles import Role, Signer
from justering.pades.certificates import SignerCredential, common_name, role_from_certificate
from justering.pades.timestamps import (
    TIMESTAMP_BYTES_RESERVED,
    Timestamper,
    signature_timestamp_tokens,
    timestamp_time,
)

__all__ = [
    "CHAIN_BYTES_INCLUDED",
    "SHARED_STAMP_FONT_SIZE",
    "SIGNATURE_BYTES_RESERVED",
    "STAMP_FONT_SIZE",
    "STAMP_TEXT",
    "STAMP_TIMEZONE",
    "SignedExtract",
    "field_name",
    "sign_extract",
]

STAMP_TIMEZONE = ZoneInfo("Europe/Stockholm")
"""The stamp shows the signing time as signers read clocks: Swedish local time."""
STAMP_TEXT = "Digitalt signerad av\n%(signer)s\n%(role)s\n%(local_time)s"
STAMP_FONT_SIZE = 9
SHARED_STAMP_FONT_SIZE = 7
"""Two adjusters share a box; a smaller size keeps both stamps alike."""
SIGNATURE_BYTES_RESERVED = 6144
"""Room for the CMS signature, in hex digits in the file (so 3 KB of DER; ours,
ECDSA with the signer and CA certificates, take about 1.6 KB). A fixed size
spares pyHanko a dummy signature to estimate it, and a small one keeps
validation fast (pyHanko parses the padded hex too). A chain longer than
``CHAIN_BYTES_INCLUDED`` gets the difference on top (:func:`_chain_room`)."""
CHAIN_BYTES_INCLUDED = 1024
"""The DER bytes of CA certificates ``SIGNATURE_BYTES_RESERVED`` has room for: our
self-signed CA certificate is about 500; an outside CA's intermediates are more."""


@dataclass(frozen=True)
class SignedExtract:
    """The PDF after one more signature, and what identifies that signature."""

    pdf: bytes
    field_name: str
    signed_at: datetime
    """The signing time written into the signature (UTC)."""
    certificate_fingerprint: str
    timestamped_at: datetime | None = None
    """The time of the signature's RFC 3161 timestamp (the TSA's clock), None without a TSA."""


def field_name(signer: Signer) -> str:
    """The signature field of ``signer``'s slot, e.g. ``Signatur-adjuster-1``."""
    return f"Signatur-{signer.slot}"


def sign_extract(
    pdf: bytes,
    credential: SignerCredential,
    signer: Signer,
    *,
    adjuster_count: int,
    location: str | None = None,
    timestamper: Timestamper | None = None,
) -> SignedExtract:
    """Add ``signer``'s PAdES signature to ``pdf`` as an incremental update.

    ``adjuster_count`` (1 or 2) tells how the adjusters' footer box is shared.
    Raises :class:`SigningError` when the input is not a PDF, the slot is
    already signed, or the credential names someone else or is not valid now.
    With ``timestamper`` the signature gets an RFC 3161 timestamp (PAdES B-T);
    a TSA that fails raises :class:`~justering.pades.timestamps.TimestampError` and
    nothing is signed.

    Synchronous, like pyHanko's ``sign_pdf`` (it runs its own event loop): from
    async code, call it in a worker thread (``asyncio.to_thread``).
    """
    if not 1 <= adjuster_count <= 2:
        raise SigningError(f"an extract has one or two adjusters, not {adjuster_count}")
    count = adjuster_count if signer.role is Role.ADJUSTER else 1
    try:
        box = layout.stamp_box(signer.role, signer.index, count)
    except ValueError as error:
        raise SigningError(f"signer {signer.slot}: {error}") from error
    _check_credential(credential, signer)
    name = field_name(signer)
    writer = _open(pdf)
    for existing, _value, _ref in fields.enumerate_sig_fields(writer.prev, filled_status=True):
        if existing == name:
            raise SigningError(f"the extract is already signed in field {name}")

    signed_at = datetime.now(UTC).replace(microsecond=0)
    certificate = credential.certificate
    if not certificate.not_valid_before_utc <= signed_at <= certificate.not_valid_after_utc:
        raise SigningError(
            f"the certificate of {signer.name!r} is not valid now "
            f"({certificate.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)"
        )
    pdf_signer = signers.PdfSigner(
        signers.PdfSignatureMetadata(
            field_name=name,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=f"{signer.role.swedish}: {signer.name}",
            location=location,
            name=signer.name,
        ),
        signer=credential.pyhanko_signer,
        timestamper=timestamper,
        stamp_style=_stamp_style(STAMP_FONT_SIZE if count == 1 else SHARED_STAMP_FONT_SIZE),
        new_field_spec=fields.SigFieldSpec(
            sig_field_name=name, on_page=-1, box=box.to_pdf_points()
        ),
    )
    text = {
        "signer": signer.name,
        "role": signer.role.swedish,
        "local_time": signed_at.astimezone(STAMP_TIMEZONE).strftime("%Y-%m-%d %H:%M"),
    }
    try:
        reserved = (
            SIGNATURE_BYTES_RESERVED
            + _chain_room(credential)
            + (TIMESTAMP_BYTES_RESERVED if timestamper else 0)
        )
        output, contents = asyncio.run(_sign(pdf_signer, writer, signed_at, text, reserved))
    except (PdfError, ValueError) as error:
        raise SigningError(f"could not sign field {name}: {error}") from error
    return SignedExtract(
        pdf=output,
        field_name=name,
        signed_at=signed_at,
        certificate_fingerprint=credential.fingerprint,
        timestamped_at=_timestamp_time(contents),
    )


def _chain_room(credential: SignerCredential) -> int:
    """Extra room, in hex digits, for a chain of CA certificates over ``CHAIN_BYTES_INCLUDED``."""
    chain = sum(len(cert.public_bytes(Encoding.DER)) for cert in credential.chain)
    return 2 * max(0, chain - CHAIN_BYTES_INCLUDED)


def _timestamp_time(contents: bytes) -> datetime | None:
    """The time of the signature timestamp in the CMS ``contents``, if it has one."""
    signer_info = cms.ContentInfo.load(contents)["content"]["signer_infos"][0]
    for token in signature_timestamp_tokens(signer_info):
        return timestamp_time(token)
    return None


def _open(pdf: bytes) -> IncrementalPdfFileWriter:
    if pdf.lstrip()[:5] != b"%PDF-":
        raise SigningError("the document to sign is not a PDF (no %PDF- header)")
    try:
        return IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    except (PdfError, ValueError, KeyError) as error:
        raise SigningError(f"the document to sign is not a readable PDF: {error}") from error


def _check_credential(credential: SignerCredential, signer: Signer) -> None:
    certificate = credential.certificate
    if common_name(certificate) != signer.name:
        raise SigningError(
            f"the certificate names {common_name(certificate)!r}, not the signer {signer.name!r}"
        )
    if role_from_certificate(certificate) is not signer.role:
        raise SigningError(f"the certificate is not issued for the role {signer.role.swedish}")


_FONT_FILE = files("justering.documents") / "typefaces" / "DejaVuSans.ttf"
_STAMP_UNICODE_RANGES = (
    (0x0020, 0x024F),  # Latin, Latin-1 (å ä ö é ü), Latin Extended-A/B (Ł ő č)
    (0x0300, 0x036F),  # combining diacritics
    (0x0370, 0x04FF),  # Greek, Cyrillic
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese ễ ạ)
    (0x2000, 0x206F),  # punctuation: dashes, quotes
)


@cache
def _stamp_font() -> bytes:
    """DejaVu Sans cut to the scripts names are written in, rescaled to 1000 units/em.

    pyHanko writes glyph widths in font units where PDF wants 1/1000 em, so a
    font with another em size (DejaVu's is 2048) is drawn stretched. The cut
    also makes each signature's font subsetting fast. Built once per process.
    """
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.hinting = False
    options.notdef_outline = True
    options.drop_tables = [*options.drop_tables, "FFTM"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(
        unicodes=[code for low, high in _STAMP_UNICODE_RANGES for code in range(low, high + 1)]
    )
    with as_file(_FONT_FILE) as path, TTFont(path) as font:
        subsetter.subset(font)
        scale_upem(font, 1000)
        output = BytesIO()
        font.save(output)
    return output.getvalue()


@dataclass(frozen=True)
class _StampFont(FontEngineFactory):  # type: ignore[misc]
    size: int

    def create_font_engine(
        self, writer: BasePdfFileWriter, obj_stream: Any = None
    ) -> GlyphAccumulator:
        return GlyphAccumulator(
            writer=writer,
            font_handle=BytesIO(_stamp_font()),
            font_size=self.size,
            obj_stream=obj_stream,
        )


def _stamp_style(size: int) -> TextStampStyle:
    # The text box must use the font engine's size, or pyHanko misplaces lines.
    return TextStampStyle(
        stamp_text=STAMP_TEXT,
        text_box_style=TextBoxStyle(font=_StampFont(size), font_size=size, leading=size + 2),
        border_width=0,
    )


async def _sign(
    pdf_signer: signers.PdfSigner,
    writer: IncrementalPdfFileWriter,
    signed_at: datetime,
    text: dict[str, str],
    bytes_reserved: int,
) -> tuple[bytes, bytes]:
    """pyHanko's ``async_sign_pdf``, with the signing time chosen by us.

    The same time then goes into the signature dictionary (/M), the CMS
    signing-time attribute, and the stamp. Returns the signed PDF and the CMS
    signature (DER).
    """
    session = pdf_signer.init_signing_session(writer)
    session.system_time = signed_at
    validation_info = await session.perform_presign_validation(writer)
    tbs = session.prepare_tbs_document(
        validation_info=validation_info,
        bytes_reserved=bytes_reserved,
        appearance_text_params=text,
    )
    prepared, output = tbs.digest_tbs_document(output=BytesIO())
    post = await tbs.perform_signature(
        document_digest=prepared.document_digest,
        pdf_cms_signed_attrs=PdfCMSSignedAttributes(signing_time=signed_at),
    )
    await post.post_signature_processing(output)
    output.seek(0)
    data: bytes = output.read()
    return data, post.sig_contents
