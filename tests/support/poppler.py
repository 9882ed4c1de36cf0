"""What poppler's tools see in a PDF: its text (``pdftotext``), the words with
their boxes, and the signatures ``pdfsig`` reports. An independent reader of
what justering writes."""

from __future__ import annotations

import html
import io
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader

from justering.documents import layout

PT_PER_MM = 1 / layout.MM_PER_POINT


def pdftotext(pdf: bytes, tmp_path: Path, *args: str) -> str:
    source = tmp_path / "extract.pdf"
    source.write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", *args, str(source), "-"],
        capture_output=True,
        check=True,
    )
    return result.stdout.decode("utf-8")


def page_texts(pdf: bytes, tmp_path: Path) -> list[str]:
    count = len(PdfReader(io.BytesIO(pdf)).pages)
    return [pdftotext(pdf, tmp_path, "-f", str(n), "-l", str(n)) for n in range(1, count + 1)]


@dataclass(frozen=True)
class Word:
    page: int
    text: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    """Points, origin top-left (pdftotext -bbox)."""


def words(pdf: bytes, tmp_path: Path) -> list[Word]:
    xhtml = pdftotext(pdf, tmp_path, "-bbox")
    found: list[Word] = []
    for number, page in enumerate(xhtml.split("<page ")[1:], start=1):
        for match in re.finditer(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
            page,
        ):
            x0, y0, x1, y1 = (float(v) for v in match.groups()[:4])
            found.append(Word(number, html.unescape(match.group(5)), x0, y0, x1, y1))
    return found


def pdfsig(path: Path, *args: str) -> list[dict[str, str]]:
    """pdfsig's report, one dict per signature."""
    out = subprocess.run(
        ["pdfsig", *args, str(path)], capture_output=True, text=True, check=False
    ).stdout
    signatures: list[dict[str, str]] = []
    for line in out.splitlines():
        if re.match(r"Signature #\d+:", line):
            signatures.append({})
        elif line.startswith("  - ") and signatures:
            key, _, value = line[4:].partition(": ")
            signatures[-1][key] = value if value else key
    return signatures


def nss_database(directory: Path, trusted_pem: bytes | str) -> str:
    """An NSS database (pdfsig's trust store, ``-nssdir``) in ``directory`` that
    trusts the first certificate of ``trusted_pem`` as a CA, and nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "trusted.pem"
    source.write_bytes(trusted_pem.encode() if isinstance(trusted_pem, str) else trusted_pem)
    db = f"sql:{directory}"
    subprocess.run(["certutil", "-N", "-d", db, "--empty-password"], check=True)
    add = ["certutil", "-A", "-n", "trusted-ca", "-t", "CT,C,C", "-d", db, "-i", str(source)]
    subprocess.run(add, check=True)
    return db
