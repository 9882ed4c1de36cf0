import re
import subprocess
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from justering.documents.layout import MM_PER_POINT, stamp_box
from justering.errors import SigningError
from justering.model.roles import Person, Role, Signer
from justering.pades.ca import SigningCA
from justering.pades.sign import field_name, sign_extract
from support.pdfs import (
    ADJUSTER_1,
    ALL_SIGNERS,
    CERTIFIER,
    CHAIR,
    ORGANISATION,
)
from support.poppler import nss_database, pdfsig

PERSONNUMMER = re.compile(rb"\d{6,8}[-+]?\d{4}")


@pytest.fixture(scope="module")
def signed_file(steps, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("signed") / "extract.pdf"
    path.write_bytes(steps[-1].pdf)
    return path


@pytest.fixture(scope="module")
def nss_db(ca: SigningCA, tmp_path_factory: pytest.TempPathFactory) -> str:
    return nss_database(tmp_path_factory.mktemp("nss"), ca.export_pem())


def test_the_extract_has_two_pages(unsigned: bytes) -> None:
    assert len(PdfReader(BytesIO(unsigned)).pages) == 2


def test_each_signature_is_an_incremental_update(unsigned: bytes, steps) -> None:
    previous = unsigned
    for step in steps:
        assert step.pdf.startswith(previous)
        previous = step.pdf
    assert [step.field_name for step in steps] == [
        "Signatur-chair-0",
        "Signatur-adjuster-1",
        "Signatur-adjuster-0",
        "Signatur-certifier-0",
    ]


def test_pdfsig_finds_every_signature_valid_with_names_and_roles(signed_file: Path) -> None:
    report = pdfsig(signed_file)
    assert len(report) == 4
    for signature, signer in zip(report, ALL_SIGNERS, strict=True):
        assert signature["Signature Validation"] == "Signature is Valid."
        assert signature["Signature Field Name"] == field_name(signer)
        assert signature["Signer Certificate Common Name"] == signer.name
        dn = signature["Signer full Distinguished Name"]
        assert f"title={signer.role.swedish}" in dn
        assert f"O={ORGANISATION}" in dn
        assert signature["Signature Type"] == "ETSI.CAdES.detached"
        assert signature["Signing Hash Algorithm"] == "SHA-256"
    assert "Total document signed" in report[-1]
    assert all("Not total document signed" in s for s in report[:-1])


def test_pdfsig_trusts_the_ca_from_an_nss_database(signed_file: Path, nss_db: str) -> None:
    report = pdfsig(signed_file, "-nssdir", nss_db)
    assert [s["Certificate Validation"] for s in report] == ["Certificate is Trusted."] * 4
    assert [s["Signature Validation"] for s in report] == ["Signature is Valid."] * 4


def test_pdfsig_without_the_ca_does_not_trust_it(signed_file: Path) -> None:
    report = pdfsig(signed_file)
    assert all(s["Certificate Validation"] != "Certificate is Trusted." for s in report)


def test_signature_dictionary_has_reason_and_no_identity_number(steps) -> None:
    reader = PdfReader(BytesIO(steps[-1].pdf))
    fields = reader.get_fields()
    for signer in ALL_SIGNERS:
        value = fields[field_name(signer)]["/V"]
        assert value["/Reason"] == f"{signer.role.swedish}: {signer.name}"
        assert value["/SubFilter"] == "/ETSI.CAdES.detached"
        assert set(value) <= {
            "/Type", "/Filter", "/SubFilter", "/ByteRange", "/Contents", "/M", "/Name",
            "/Reason", "/Location", "/Prop_Build", "/ContactInfo",
        }  # fmt: skip


def test_signed_pdf_contains_no_personnummer(steps) -> None:
    pdf = steps[-1].pdf
    # The file's own syntax, minus what is digits by nature: binary streams,
    # xref tables, hex strings (signature /Contents, /ID), PDF dates.
    syntax = re.sub(rb"stream\r?\n.*?endstream", b"", pdf, flags=re.S)
    syntax = re.sub(rb"\nxref\r?\n.*?trailer", b"", syntax, flags=re.S)
    syntax = re.sub(rb"<[0-9A-Fa-f\s]*>", b"<>", syntax)
    syntax = re.sub(rb"\(D(:|\\072)\d{14}[^)]*\)", b"()", syntax)  # \072 is ':' escaped
    assert b"/ByteRange" in syntax and b"/Reason" in syntax
    assert not PERSONNUMMER.search(syntax)
    # The decoded text it carries: document info, signature dictionaries,
    # stamp appearances, XMP metadata.
    reader = PdfReader(BytesIO(pdf))
    texts = [str(value) for value in (reader.metadata or {}).values()]
    for signer in ALL_SIGNERS:
        signature = reader.get_fields()[field_name(signer)]["/V"]
        texts += [str(signature.get(key, "")) for key in ("/Reason", "/Name", "/Location")]
    for annotation in reader.pages[-1]["/Annots"]:
        appearance = annotation.get_object()["/AP"]["/N"].get_object()
        texts.append(appearance.get_data().decode("latin-1"))
    metadata = reader.trailer["/Root"].get("/Metadata")
    if metadata is not None:
        texts.append(metadata.get_object().get_data().decode("utf-8"))
    assert any(CHAIR.name in text for text in texts)
    for text in texts:
        text = re.sub(r"D:\d{14}\S*|<[0-9a-fA-F]*>", "", text)  # PDF dates, glyph ids
        assert not PERSONNUMMER.search(text.encode()), text


def test_stamps_sit_in_their_boxes_on_the_last_page(steps, tmp_path: Path) -> None:
    reader = PdfReader(BytesIO(steps[-1].pdf))
    last = reader.pages[-1]
    rects = {}
    for annotation in last["/Annots"]:
        widget = annotation.get_object()
        rects[widget["/T"]] = tuple(round(float(v)) for v in widget["/Rect"])
    assert not reader.pages[0].get("/Annots")
    for signer in ALL_SIGNERS:
        count = 2 if signer.role is Role.ADJUSTER else 1
        assert (
            rects[field_name(signer)] == stamp_box(signer.role, signer.index, count).to_pdf_points()
        )
    # The words of each stamp are drawn inside its box (pdftotext: points, origin top-left).
    path = tmp_path / "signed.pdf"
    path.write_bytes(steps[-1].pdf)
    html = subprocess.run(
        ["pdftotext", "-f", "2", "-l", "2", "-bbox", str(path), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    words = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)</word>',
        html,
    )
    for signer in ALL_SIGNERS:
        count = 2 if signer.role is Role.ADJUSTER else 1
        box = stamp_box(signer.role, signer.index, count)
        left, top = box.x / MM_PER_POINT, box.y / MM_PER_POINT
        right, bottom = left + box.width / MM_PER_POINT, top + box.height / MM_PER_POINT
        # pyHanko draws each stamp line as one span, which pdftotext reads as one word.
        placed = [
            (float(a), float(b), float(c), float(d)) for a, b, c, d, w in words if w == signer.name
        ]
        assert placed, f"{signer.name} not on the last page"
        x1, y1, x2, y2 = placed[0]
        assert left - 1 <= x1 < x2 <= right + 1 and top - 1 <= y1 < y2 <= bottom + 1
    text = subprocess.run(
        ["pdftotext", "-f", "2", "-l", "2", str(path), "-"], capture_output=True, text=True
    ).stdout
    assert "Digitalt signerad av" in text
    assert "Łukasz Nguyễn Åström" in text
    for role in Role:
        assert role.swedish in text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", text)


def test_signed_extract_reports_the_credential_and_time(ca: SigningCA, unsigned: bytes) -> None:
    credential = ca.issue(CHAIR, organisation=ORGANISATION)
    signed = sign_extract(unsigned, credential, CHAIR, adjuster_count=1, location="Nacka")
    assert signed.certificate_fingerprint == credential.fingerprint
    assert signed.signed_at.tzinfo is not None
    value = PdfReader(BytesIO(signed.pdf)).get_fields()["Signatur-chair-0"]["/V"]
    assert value["/Location"] == "Nacka"
    assert value["/M"].startswith("D:" + signed.signed_at.strftime("%Y%m%d"))


def test_refuses_what_is_not_a_pdf(ca: SigningCA) -> None:
    credential = ca.issue(CHAIR, organisation=ORGANISATION)
    with pytest.raises(SigningError, match="not a PDF"):
        sign_extract(b"hello, world", credential, CHAIR, adjuster_count=1)
    with pytest.raises(SigningError, match="not a readable PDF"):
        sign_extract(b"%PDF-1.7\ngarbage", credential, CHAIR, adjuster_count=1)


def test_refuses_a_slot_already_signed(ca: SigningCA, steps) -> None:
    again = ca.issue(ADJUSTER_1, organisation=ORGANISATION)
    with pytest.raises(SigningError, match="already signed in field Signatur-adjuster-1"):
        sign_extract(steps[1].pdf, again, ADJUSTER_1, adjuster_count=2)


def test_refuses_a_credential_for_someone_else(ca: SigningCA, unsigned: bytes) -> None:
    credential = ca.issue(CHAIR, organisation=ORGANISATION)
    with pytest.raises(SigningError, match="not the signer"):
        sign_extract(unsigned, credential, CERTIFIER, adjuster_count=1)
    chair_as_adjuster = Signer(CHAIR.person, Role.ADJUSTER, 0)
    with pytest.raises(SigningError, match="role Justerare"):
        sign_extract(unsigned, credential, chair_as_adjuster, adjuster_count=1)


def test_refuses_a_certificate_not_valid_now(ca: SigningCA, unsigned: bytes) -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    stale = ca.issue(CHAIR, organisation=ORGANISATION, now=past, validity=timedelta(days=1))
    with pytest.raises(SigningError, match="'Mats Gerdau' is not valid now"):
        sign_extract(unsigned, stale, CHAIR, adjuster_count=1)


def test_refuses_an_adjuster_outside_the_count(ca: SigningCA, unsigned: bytes) -> None:
    credential = ca.issue(ADJUSTER_1, organisation=ORGANISATION)
    with pytest.raises(SigningError, match="adjuster-1"):
        sign_extract(unsigned, credential, ADJUSTER_1, adjuster_count=1)
    with pytest.raises(SigningError, match="one or two adjusters"):
        sign_extract(unsigned, credential, ADJUSTER_1, adjuster_count=3)


def test_the_longest_names_a_certificate_allows_still_fit(tmp_path: Path, unsigned: bytes) -> None:
    organisation = "Ö" * 32  # 64 bytes of UTF-8, the most a certificate allows
    ca = SigningCA.create(tmp_path / "ca", organisation=organisation)
    signer = Signer(Person("Å" * 16 + " " + "Ł" * 15, "x" * 60 + "@nacka.example"), Role.CHAIR)
    credential = ca.issue(signer, organisation=organisation)
    path = tmp_path / "long.pdf"
    path.write_bytes(sign_extract(unsigned, credential, signer, adjuster_count=1).pdf)
    (report,) = pdfsig(path)
    assert report["Signer Certificate Common Name"] == signer.name
    assert report["Signature Validation"] == "Signature is Valid."
