"""Test extracts and signers: the renderer's extract of the sample meeting, signed in turn."""

from __future__ import annotations

import pytest

from justering.documents.rendering import render_extract
from justering.model.manifest import load_sample_meeting
from justering.model.roles import Person, Role, Signer
from justering.pades.ca import SigningCA
from justering.pades.sign import SignedExtract, sign_extract
from justering.pades.timestamps import Timestamper

ORGANISATION = "Nacka kommun"
CHAIR = Signer(Person("Mats Gerdau", "mats.gerdau@nacka.example"), Role.CHAIR)
ADJUSTER_0 = Signer(Person("Łukasz Nguyễn Åström", "lukasz@nacka.example"), Role.ADJUSTER, 0)
ADJUSTER_1 = Signer(Person("Rolf Wasteson", "rolf.wasteson@nacka.example"), Role.ADJUSTER, 1)
CERTIFIER = Signer(Person("Lena Sekreterare", "lena@nacka.example"), Role.CERTIFIER)
#: The usual order; the adjusters may sign either way round.
ALL_SIGNERS = (CHAIR, ADJUSTER_1, ADJUSTER_0, CERTIFIER)


def extract_pdf() -> bytes:
    """The renderer's extract of § 94 of the sample meeting: two A4 pages with footer boxes."""
    meeting = load_sample_meeting()
    return render_extract(meeting, meeting.paragraphs[0])


def sign_in_turn(
    pdf: bytes,
    ca: SigningCA,
    signers: tuple[Signer, ...],
    *,
    adjuster_count: int = 2,
    timestamper: Timestamper | None = None,
) -> list[SignedExtract]:
    """Each of ``signers`` signs in turn, each with a fresh credential from ``ca``."""
    results = []
    for signer in signers:
        credential = ca.issue(signer, organisation=ORGANISATION)
        signed = sign_extract(
            pdf, credential, signer, adjuster_count=adjuster_count, timestamper=timestamper
        )
        results.append(signed)
        pdf = signed.pdf
    return results


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> SigningCA:
    """A signing CA for one test module."""
    return SigningCA.create(tmp_path_factory.mktemp("ca") / "ca", organisation=ORGANISATION)


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    return extract_pdf()


@pytest.fixture(scope="module")
def steps(ca: SigningCA, unsigned: bytes) -> list[SignedExtract]:
    """The extract after each signature: chair, both adjusters, certifier."""
    return sign_in_turn(unsigned, ca, ALL_SIGNERS)
