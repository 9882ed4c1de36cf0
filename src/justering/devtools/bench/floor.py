"""The raw library floor: render, sign, validate and store, with nothing else."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import time
from pathlib import Path

from justering.documents.rendering import render_extract
from justering.errors import ConfigError
from justering.model.meeting import Meeting
from justering.model.roles import Role
from justering.pades.ca import SigningCA
from justering.pades.sign import sign_extract
from justering.pades.validate import validate_extract

__all__ = [
    "run_floor",
]


def run_floor(meeting: Meeting, ca: SigningCA, validity: dt.timedelta, store: Path) -> float:
    """Seconds for the bare loop over ``meeting``'s paragraphs: render, sign as chair,
    adjuster(s) and certifier (a fresh certificate from ``ca`` each time), validate,
    store in a SQLite table and a file under ``store``. One extract first, untimed,
    so that fonts and libraries are loaded as in a warmed-up ``serve``."""
    store.mkdir(parents=True, exist_ok=True)
    signers = [*(s for role in Role for s in meeting.signers(role))]
    database = sqlite3.connect(store / "floor.sqlite", isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute(
        "CREATE TABLE IF NOT EXISTS documents (sha256 TEXT PRIMARY KEY, paragraph INTEGER, "
        "content BLOB)"
    )

    def one(paragraph_index: int, name: str) -> None:
        paragraph = meeting.paragraphs[paragraph_index]
        pdf = render_extract(meeting, paragraph)
        for signer in signers:
            credential = ca.issue(signer, organisation=meeting.municipality, validity=validity)
            pdf = sign_extract(
                pdf,
                credential,
                signer,
                adjuster_count=len(meeting.adjusters),
                location=meeting.place,
            ).pdf
        validation = validate_extract(
            pdf, [ca.certificate], expected_adjusters=len(meeting.adjusters)
        )
        if not validation.ok:
            raise ConfigError(
                f"bench floor: § {paragraph.number} does not validate: "
                + "; ".join(validation.problems)
            )
        database.execute("BEGIN")
        database.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?)",
            (hashlib.sha256(pdf).hexdigest(), paragraph.number, pdf),
        )
        database.execute("COMMIT")
        (store / name).write_bytes(pdf)

    try:
        one(0, "warm-up.pdf")
        started = time.perf_counter()
        for index, paragraph in enumerate(meeting.paragraphs):
            one(index, f"{paragraph.number}.pdf")
        return time.perf_counter() - started
    finally:
        database.close()
