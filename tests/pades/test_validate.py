from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pypdf import PdfWriter
from pypdf.annotations import FreeText

from justering.model.calendar import local_minute
from justering.model.roles import Person, Role, Signer
from justering.pades.ca import SigningCA
from justering.pades.certificates import SignerCredential
from justering.pades.validate import validate_extract
from support.pdfs import (
    ADJUSTER_0,
    ADJUSTER_1,
    ALL_SIGNERS,
    CERTIFIER,
    CHAIR,
    ORGANISATION,
    sign_in_turn,
)


@pytest.fixture(scope="module")
def certified(steps) -> bytes:
    return steps[-1].pdf


def sign_directly(pdf: bytes, credential, field: str) -> bytes:
    """A signature made with pyHanko alone, bypassing sign_extract's checks."""
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(pdf)),
        signers.PdfSignatureMetadata(field_name=field, subfilter=fields.SigSeedSubFilter.PADES),
        signer=credential.pyhanko_signer,
    )
    return out.getvalue()


def incremental_update(pdf: bytes, change) -> bytes:
    writer = PdfWriter(BytesIO(pdf), incremental=True)
    change(writer)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_certified_extract_validates(ca: SigningCA, steps, certified: bytes) -> None:
    result = validate_extract(certified, [ca.certificate], expected_adjusters=2)
    assert result.ok, result.problems
    assert [s.field_name for s in result.signatures] == [s.field_name for s in steps]
    assert [(s.signer_name, s.role) for s in result.signatures] == [
        (signer.name, signer.role) for signer in ALL_SIGNERS
    ]
    for report, step in zip(result.signatures, steps, strict=True):
        assert report.intact and report.valid and report.trusted
        assert report.certificate_fingerprint == step.certificate_fingerprint
        assert report.signed_at == step.signed_at
    assert [s.covers_whole_file for s in result.signatures] == [False, False, False, True]
    assert [s.modification_level for s in result.signatures] == [
        "form_filling",
        "form_filling",
        "form_filling",
        "none",
    ]


def test_earlier_signatures_stay_valid_at_every_step(ca: SigningCA, steps) -> None:
    for count, step in enumerate(steps, start=1):
        result = validate_extract(step.pdf, [ca.certificate], complete=False)
        assert result.ok, result.problems
        assert len(result.signatures) == count
        assert all(s.intact and s.valid and s.trusted for s in result.signatures)


def test_an_extract_still_being_signed_is_incomplete(ca: SigningCA, steps) -> None:
    problems = validate_extract(steps[0].pdf, [ca.certificate]).problems
    assert problems == ("no adjuster signature", "no certifier signature")


def test_a_flipped_byte_breaks_every_signature(ca: SigningCA, certified: bytes) -> None:
    at = certified.index(b"stream") + 100  # inside the first page's content
    tampered = certified[:at] + bytes([certified[at] ^ 0x01]) + certified[at + 1 :]
    result = validate_extract(tampered, [ca.certificate])
    assert not result.ok
    assert not any(s.intact for s in result.signatures)
    for signer in ALL_SIGNERS:
        assert (
            f"signature Signatur-{signer.slot}: the signed content was changed (digest mismatch)"
            in result.problems
        )


def test_an_annotation_appended_after_certification_is_found(
    ca: SigningCA, certified: bytes
) -> None:
    def annotate(writer: PdfWriter) -> None:
        writer.add_annotation(0, FreeText(text="Ändrat i efterhand", rect=(50, 500, 250, 550)))

    result = validate_extract(incremental_update(certified, annotate), [ca.certificate])
    assert not result.ok
    assert all(s.intact and s.valid and s.trusted for s in result.signatures)
    assert not result.signatures[-1].covers_whole_file
    assert any(
        p.startswith("signature Signatur-certifier-0: the file goes on after the last signature")
        for p in result.problems
    )
    assert any(
        p.startswith("signature Signatur-chair-0: the document was changed after it")
        for p in result.problems
    )


def test_a_metadata_change_after_certification_is_found(ca: SigningCA, certified: bytes) -> None:
    def retitle(writer: PdfWriter) -> None:
        writer.add_metadata({"/Title": "Annan titel"})

    result = validate_extract(incremental_update(certified, retitle), [ca.certificate])
    assert not result.ok
    assert any("Signatur-certifier-0: the file goes on" in p for p in result.problems)


def test_bytes_appended_after_certification_are_found(ca: SigningCA, certified: bytes) -> None:
    result = validate_extract(certified + b"\n% appended\n", [ca.certificate])
    assert not result.ok
    assert any("Signatur-certifier-0: the file goes on" in p for p in result.problems)


def test_an_adjuster_before_the_chair_is_out_of_order(ca: SigningCA, unsigned: bytes) -> None:
    pdf = sign_in_turn(unsigned, ca, (ADJUSTER_0, CHAIR, ADJUSTER_1, CERTIFIER))[-1].pdf
    result = validate_extract(pdf, [ca.certificate], expected_adjusters=2)
    assert result.problems == (
        "signature Signatur-chair-0 (chair) comes after Signatur-adjuster-0 (adjuster): "
        "the chair signs first, then the adjusters, then the certifier",
    )


def test_a_certifier_before_an_adjuster_is_out_of_order(ca: SigningCA, unsigned: bytes) -> None:
    pdf = sign_in_turn(unsigned, ca, (CHAIR, ADJUSTER_0, CERTIFIER, ADJUSTER_1))[-1].pdf
    problems = validate_extract(pdf, [ca.certificate]).problems
    assert len(problems) == 1 and "Signatur-adjuster-1 (adjuster) comes after" in problems[0]


def test_an_untrusted_ca_is_reported(tmp_path, certified: bytes) -> None:
    stranger = SigningCA.create(tmp_path / "other", organisation="Annan kommun")
    result = validate_extract(certified, [stranger.certificate])
    assert not result.ok
    assert all(s.intact and s.valid and not s.trusted for s in result.signatures)
    [untrusted] = [p for p in result.problems if p.startswith("signature Signatur-chair-0:")]
    assert untrusted.startswith(
        "signature Signatur-chair-0: the certificate of 'Mats Gerdau' is not trusted"
    )
    # when: in Swedish time, with its zone (an archivist reads it), not UTC
    at = result.signatures[0].validated_at
    assert f" at {local_minute(at, zone=True)} (" in untrusted and "UTC" not in untrusted


def test_adjuster_count_must_match(ca: SigningCA, certified: bytes, unsigned: bytes) -> None:
    assert validate_extract(certified, [ca.certificate], expected_adjusters=1).problems == (
        "expected 1 adjuster signature(s), found 2",
    )
    one = sign_in_turn(unsigned, ca, (CHAIR, ADJUSTER_0, CERTIFIER), adjuster_count=1)[-1].pdf
    assert validate_extract(one, [ca.certificate], expected_adjusters=1).ok
    assert validate_extract(one, [ca.certificate], expected_adjusters=2).problems == (
        "expected 2 adjuster signature(s), found 1",
    )


def test_a_duplicated_role_is_reported(ca: SigningCA, unsigned: bytes) -> None:
    # sign_extract has one chair slot; another tool could still add a second chair.
    second_chair = Signer(Person("Annan Ordförande", "a@nacka.example"), Role.CHAIR, 1)
    pdf = sign_in_turn(unsigned, ca, (CHAIR, ADJUSTER_0), adjuster_count=1)[-1].pdf
    credential = ca.issue(second_chair, organisation=ORGANISATION)
    pdf = sign_directly(pdf, credential, "Signatur-chair-1")
    problems = validate_extract(pdf, [ca.certificate], complete=False).problems
    assert problems == (
        "signature Signatur-chair-1 (chair) comes after Signatur-adjuster-0 (adjuster): "
        "the chair signs first, then the adjusters, then the certifier",
        "more than one chair signature: Signatur-chair-0, Signatur-chair-1",
    )


def test_the_same_adjuster_twice_is_reported(ca: SigningCA, unsigned: bytes) -> None:
    twice = Signer(ADJUSTER_0.person, Role.ADJUSTER, 1)
    pdf = sign_in_turn(unsigned, ca, (CHAIR, ADJUSTER_0, twice, CERTIFIER))[-1].pdf
    problems = validate_extract(pdf, [ca.certificate]).problems
    assert problems == ("adjuster 'Łukasz Nguyễn Åström' signed more than once",)


def test_a_certificate_in_another_roles_field_is_reported(ca: SigningCA, unsigned: bytes) -> None:
    chair_credential = ca.issue(CHAIR, organisation=ORGANISATION)
    pdf = sign_directly(unsigned, chair_credential, "Signatur-certifier-0")
    problems = validate_extract(pdf, [ca.certificate], complete=False).problems
    assert problems == (
        "signature Signatur-certifier-0: the certificate is for the role chair, "
        "which does not sign in this field",
    )


def test_no_signatures_and_not_a_pdf_are_problems_not_exceptions(
    ca: SigningCA, unsigned: bytes
) -> None:
    assert validate_extract(unsigned, [ca.certificate]).problems == ("the PDF has no signatures",)
    assert validate_extract(unsigned, [ca.certificate], complete=False).ok
    not_pdf = validate_extract(b"<html>hello</html>", [ca.certificate])
    assert not_pdf.problems == ("the file is not a PDF (no %PDF- header)",)
    assert not not_pdf.ok and not_pdf.signatures == ()
    broken = validate_extract(b"%PDF-1.7\n1 0 obj garbage", [ca.certificate])
    assert not broken.ok and broken.problems[0].startswith("the file is not a readable PDF")


def test_validation_without_trust_roots_is_a_programming_error(certified: bytes) -> None:
    with pytest.raises(ValueError, match="trust root"):
        validate_extract(certified, [])


def test_an_archived_extract_validates_after_its_certificates_expire(
    ca: SigningCA, steps, certified: bytes
) -> None:
    later = datetime.now(UTC) + timedelta(days=2 * 365)
    result = validate_extract(certified, [ca.certificate], now=later)
    assert result.ok, result.problems
    for report, step in zip(result.signatures, steps, strict=True):
        assert report.validated_at == step.signed_at


def test_a_certificate_expired_before_signing_is_not_trusted(
    ca: SigningCA, unsigned: bytes
) -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    stale = ca.issue(CHAIR, organisation=ORGANISATION, now=past, validity=timedelta(days=1))
    pdf = sign_directly(unsigned, stale, "Signatur-chair-0")
    result = validate_extract(pdf, [ca.certificate], complete=False)
    assert not result.signatures[0].trusted
    assert "is not trusted" in result.problems[0]


def test_an_unreadable_signature_is_reported_and_the_others_still_checked(
    ca: SigningCA, certified: bytes
) -> None:
    at = certified.index(b"/Contents <") + len(b"/Contents <")
    broken = certified[:at] + b"0" * 40 + certified[at + 40 :]
    result = validate_extract(broken, [ca.certificate])
    assert result.problems[0].startswith("signature Signatur-chair-0: unreadable signature")
    assert [s.field_name for s in result.signatures][1:] == [
        "Signatur-adjuster-1",
        "Signatur-adjuster-0",
        "Signatur-certifier-0",
    ]
    assert "signature Signatur-certifier-0: the signed content was changed (digest mismatch)" in (
        result.problems
    )


def test_more_than_two_adjusters_are_reported(ca: SigningCA, unsigned: bytes) -> None:
    third = Signer(Person("Tredje Justerare", "t@nacka.example"), Role.ADJUSTER, 2)
    pdf = sign_in_turn(unsigned, ca, (CHAIR, ADJUSTER_0, ADJUSTER_1))[-1].pdf
    pdf = sign_directly(pdf, ca.issue(third, organisation=ORGANISATION), "Signatur-adjuster-2")
    problems = validate_extract(pdf, [ca.certificate], complete=False).problems
    assert problems == ("3 adjuster signatures; an extract has at most two",)


def test_a_certificate_without_a_role_is_reported(ca: SigningCA, unsigned: bytes) -> None:
    # Same CA, same name, but no title: not a certificate the signing service issues.
    issued = ca.issue(CHAIR, organisation=ORGANISATION)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CHAIR.name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            issued.certificate.extensions.get_extension_for_class(x509.KeyUsage).value, True
        )
        .sign(ca._key, hashes.SHA256())
    )
    credential = SignerCredential(key=key, certificate=certificate, chain=(ca.certificate,))
    pdf = sign_directly(unsigned, credential, "Signatur-chair-0")
    result = validate_extract(pdf, [ca.certificate], complete=False)
    assert result.signatures[0].trusted and result.signatures[0].role is None
    assert result.problems == (
        "signature Signatur-chair-0: the certificate names no justering role",
    )
