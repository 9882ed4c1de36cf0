"""Test PDFs: an A4 extract with the footer boxes drawn where ``justering.layout`` says."""

from __future__ import annotations

from importlib.resources import as_file, files

from fpdf import FPDF

from justering.layout import (
    FOOTER_CAPTION_MM,
    FOOTER_ROLES,
    MARGIN_LEFT_MM,
    MARGIN_TOP_MM,
    footer_box,
)
from justering.pki import SigningCA
from justering.roles import Person, Role, Signer
from justering.signing import SignedExtract, sign_extract

#: Text put on the pages on purpose; nothing else in a signed PDF may look like a personnummer.
PAGE_TEXT = (
    "§ 94 Detaljplan för Kvarnholmen, etapp 2 (KFKS 2012/577-001). "
    "Kommunstyrelsens arbetsutskott föreslår att kommunstyrelsen antar planen. "
)


def make_extract_pdf(pages: int = 2) -> bytes:
    """An A4 extract of ``pages`` pages with the three footer boxes on each page."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_creator("justering tests")
    with as_file(files("justering") / "fonts" / "DejaVuSans.ttf") as font:
        pdf.add_font("DejaVu", fname=str(font))
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("DejaVu", size=11)
        pdf.set_xy(MARGIN_LEFT_MM, MARGIN_TOP_MM)
        pdf.cell(0, 6, f"Nacka kommun — Protokollsutdrag   {number} ({pages})")
        pdf.set_xy(MARGIN_LEFT_MM, MARGIN_TOP_MM + 12)
        pdf.multi_cell(170, 6, PAGE_TEXT * 6)
        pdf.set_font("DejaVu", size=8)
        for role in FOOTER_ROLES:
            box = footer_box(role)
            pdf.rect(box.x, box.y, box.width, box.height)
            pdf.line(box.x, box.y + FOOTER_CAPTION_MM, box.x + box.width, box.y + FOOTER_CAPTION_MM)
            pdf.set_xy(box.x + 1, box.y + 0.5)
            pdf.cell(box.width - 2, FOOTER_CAPTION_MM - 1, role.footer_label)
    return bytes(pdf.output())


ORGANISATION = "Nacka kommun"
CHAIR = Signer(Person("Mats Gerdau", "mats.gerdau@nacka.example"), Role.CHAIR)
ADJUSTER_0 = Signer(Person("Łukasz Nguyễn Åström", "lukasz@nacka.example"), Role.ADJUSTER, 0)
ADJUSTER_1 = Signer(Person("Rolf Wasteson", "rolf.wasteson@nacka.example"), Role.ADJUSTER, 1)
CERTIFIER = Signer(Person("Lena Sekreterare", "lena@nacka.example"), Role.CERTIFIER)
#: The usual order; the adjusters may sign either way round.
ALL_SIGNERS = (CHAIR, ADJUSTER_1, ADJUSTER_0, CERTIFIER)


def sign_in_turn(
    pdf: bytes, ca: SigningCA, signers: tuple[Signer, ...], *, adjuster_count: int = 2
) -> list[SignedExtract]:
    """Each of ``signers`` signs in turn, each with a fresh credential from ``ca``."""
    results = []
    for signer in signers:
        credential = ca.issue(signer, organisation=ORGANISATION)
        signed = sign_extract(pdf, credential, signer, adjuster_count=adjuster_count)
        results.append(signed)
        pdf = signed.pdf
    return results


def extract_pdf() -> bytes:
    """The renderer's extract when it is there, else :func:`make_extract_pdf`."""
    try:
        from justering.rendering import render_extract  # type: ignore[attr-defined]
    except ImportError:
        return make_extract_pdf()
    _ = render_extract  # the renderer's signature is not settled yet
    return make_extract_pdf()
