"""The same meeting as the demo's, signed through a loopback identity provider: a
meeting system posts the manifest (each signer's personnummer in it) to the web
API, each signer follows the link in their e-mail, logs in with (test)
e-legitimation and signs; the extracts are archived. Then what docs/identity.md
promises: ``justering verify --json`` reports every signature's assurance (and
``--require-assurance`` holds it to a level), ``intyg.pdf`` says how each signer
was identified, and the personnummer appears nowhere in clear text: not under the
home (ledger, outbox, archive bundles, keys), not in any row of the ledger, not in
the certificates or the PDFs' streams, not in the logs.

This is the documented way to see it happen (``docs/identity.md``, "Trying it"):

    .venv/bin/pytest tests/identity/test_signed_with_e_legitimation.py
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pypdf import PdfReader

from justering import workflow
from justering.devtools.meeting_system import register_meeting_system
from justering.model.manifest import load_sample_meeting
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.process import ExtractStatus
from justering.workflow.services import Services
from support.archived import run_cli
from support.eid import (
    NUMBERS,
    EidSite,
    eid_site,
    people_of,
    with_numbers,
)
from support.oidc_provider import LoopbackProvider
from support.workflow import (
    dump_database,
    newest_token,
    small_meeting,
    sqlite_ledger,  # noqa: F401
)

PARAGRAPHS = (96, 97)


@pytest.fixture
def eid_meeting() -> Meeting:
    return with_numbers(
        small_meeting(load_sample_meeting(), paragraphs=PARAGRAPHS, meeting_id="eid-demo")
    )


@pytest.fixture
def provider(eid_meeting: Meeting) -> Iterator[LoopbackProvider]:
    with LoopbackProvider(people_of(eid_meeting)) as running:
        yield running


def spellings(number: str) -> list[bytes]:
    """Every way a personnummer is written: 12 and 10 digits, with a hyphen or not."""
    short = number[2:]
    return [
        form.encode()
        for form in (number, short, f"{number[:8]}-{number[8:]}", f"{short[:6]}-{short[6:]}")
    ]


def pdf_contents(pdf: bytes) -> bytes:
    """What a PDF holds, decoded: its bytes, every stream decompressed, its text and
    metadata, and the DER of every signature (with its certificates)."""
    parts = [pdf]
    reader = PdfReader(BytesIO(pdf))
    for number in range(1, int(reader.trailer["/Size"])):
        obj = reader.get_object(number)
        if hasattr(obj, "get_data"):
            parts.append(obj.get_data())
    parts += [(page.extract_text() or "").encode() for page in reader.pages]
    parts.append(repr(reader.metadata).encode())
    for signature in PdfFileReader(BytesIO(pdf)).embedded_signatures:
        parts.append(signature.signed_data.dump())
    return b"\n".join(parts)


def sign_as_each_signer(site: EidSite, meeting: Meeting) -> None:
    """Chair, adjuster, certifier: the newest e-mail's link, a login, the signature."""
    signers = [("chair", meeting.chair), ("adjuster", meeting.adjusters[0])]
    signers.append(("certifier", meeting.certifier))
    for sub, person in signers:
        token = newest_token(site.services, person.email)
        with httpx.Client(timeout=60) as browser:
            assert site.log_in(browser, token, sub).status_code == 303
            signed = site.sign(browser, token)
            assert signed.status_code == 200, signed.text[:800]
            assert "Klart – du har signerat" in signed.text


def test_a_meeting_signed_with_e_legitimation_from_manifest_to_archive(
    services: Services,
    provider: LoopbackProvider,
    eid_meeting: Meeting,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    manifest = meeting_to_dict(eid_meeting)
    assert all(number.encode() in json.dumps(manifest).encode() for number in NUMBERS[:3])
    with eid_site(services, provider) as site:
        system = register_meeting_system(site.services.settings, "e-legitimation", ["KSAU"])
        posted = httpx.post(
            f"{site.base_url}/api/meetings", json=manifest, headers=system.headers, timeout=120
        )
        assert posted.status_code in (200, 202), posted.text
        sign_as_each_signer(site, eid_meeting)
        meeting_id = system.key(eid_meeting.meeting_id)
        states = workflow.meeting_summaries(site.services, meeting_id)
        assert [s.status for s in states] == [ExtractStatus.ARCHIVED] * len(PARAGRAPHS)
        rows = dump_database(site.services)
    home = site.services.settings.home
    archive = site.services.settings.archive_dir

    # verify --json: every signer identified at tillitsnivå 3, by this provider
    verified = run_cli(home, "verify", "--json", "--require-assurance", "loa3", str(archive))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    # the extracts, and the two protocols (§ 97 is omedelbart justerad: its own)
    assert report["valid"] is True and len(report["results"]) == len(PARAGRAPHS) + 2
    for result in report["results"]:
        roles = ["chair", "adjuster"] + (["certifier"] if result["kind"] == "extract" else [])
        assert [s["role"] for s in result["signers"]] == roles
        for signer in result["signers"]:
            assert signer["assurance"] == "loa3"
            assert signer["identity_provider"] == provider.issuer
            assert signer["acr"] == "http://id.elegnamnden.se/loa/1.0/loa3"
            assert signer["authenticated_at"]
        assert {"name": "assurance", "ok": True} in [
            {"name": c["name"], "ok": c["ok"]} for c in result["checks"]
        ]
    stricter = run_cli(home, "verify", "--require-assurance", "loa4", str(archive))
    assert stricter.returncode == 1
    assert "[FEL] assurance: below loa4" in stricter.stdout

    # intyg.pdf: how each signer was identified
    certificates = sorted(archive.rglob("intyg.pdf"))
    assert len(certificates) == len(PARAGRAPHS) + 2
    for path in certificates:
        text = " ".join(
            (page.extract_text() or "") for page in PdfReader(BytesIO(path.read_bytes())).pages
        )
        flat = " ".join(text.split())
        signatures = 2 if "/protokoll/" in str(path) else 3  # a protocol: no certifier
        assert flat.count("inloggad med e-legitimation, tillitsnivå 3") == signatures, flat
        assert provider.issuer in flat

    # the personnummer: nowhere in clear text
    logs = caplog.text + "".join(capfd.readouterr())
    leaks = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        content = path.read_bytes()
        if path.suffix == ".pdf":
            content = pdf_contents(content)
        leaks += [f"{path}" for number in NUMBERS for form in spellings(number) if form in content]
    for where, text in (("ledger rows", rows), ("logs", logs), ("verify", verified.stdout)):
        leaks += [
            where for number in NUMBERS for form in spellings(number) if form.decode() in text
        ]
    assert leaks == []
    assert any(p.name == "identity-hash.key" for p in home.iterdir())
    assert sum(1 for _ in Path(archive).rglob("extract.pdf")) == len(PARAGRAPHS)
