"""``justering verify`` against ``pdfsig`` on the same archived PDFs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from justering.devtools.bench.constants import CLEARED_ENV_PREFIX, WAIT_SECONDS
from justering.devtools.bench.memory import RssSampler
from justering.errors import ConfigError

__all__ = [
    "VerifyTimes",
    "clean_environment",
    "compare_verify",
]


@dataclass(frozen=True)
class VerifyTimes:
    files: int
    justering_s: float
    """``justering verify --json`` over all the PDF copies: one process."""
    justering_one_file_s: float
    """``justering verify`` of one file: the start-up share of a single run."""
    justering_bundles_s: float
    """``justering verify`` of the archived bundles (PDF, trail, checksums): one process."""
    pdfsig_s: float | None
    """``pdfsig`` of each PDF copy, one process per file; None without pdfsig."""
    pdfsig_trusted: bool
    """pdfsig checked against an NSS database trusting the CA (needs ``certutil``)."""

    @property
    def ratio(self) -> float | None:
        return self.justering_s / self.pdfsig_s if self.pdfsig_s else None


def clean_environment() -> dict[str, str]:
    """This environment without justering's own settings: embedded defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith(CLEARED_ENV_PREFIX)}


def _timed(command: Sequence[str], sampler: RssSampler | None) -> tuple[float, str]:
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    if sampler is not None:
        sampler.watch("justering", process.pid)
    out, err = process.communicate(timeout=WAIT_SECONDS)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise ConfigError(
            f"bench: {' '.join(command[:6])} … exited {process.returncode}: "
            f"{(err or out).decode(errors='replace')[-500:]}"
        )
    return seconds, out.decode(errors="replace")


def _nss_database(ca_file: Path, folder: Path) -> str | None:
    """An NSS database trusting the CA, for pdfsig; None without ``certutil``."""
    if shutil.which("certutil") is None:
        return None
    database = f"sql:{folder}"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["certutil", "-N", "-d", database, "--empty-password"], check=True, capture_output=True
    )
    subprocess.run(
        [
            *("certutil", "-A", "-n", "justering-ca", "-t", "CT,C,C"),
            *("-i", str(ca_file), "-d", database),
        ],
        check=True,
        capture_output=True,
    )
    return database


def compare_verify(
    home: Path, pdfs: Sequence[Path], signatures: int, sampler: RssSampler | None = None
) -> VerifyTimes:
    """Time ``justering verify`` against ``pdfsig`` on copies of ``pdfs`` (bare PDFs:
    both check the signatures and the trust in the CA, nothing else); each must
    find every file valid with ``signatures`` valid signatures."""
    folder = Path(tempfile.mkdtemp(prefix="verify-", dir=home))
    copies = []
    for index, pdf in enumerate(pdfs):
        copy = folder / f"{index:04d}.pdf"
        shutil.copyfile(pdf, copy)
        copies.append(copy)
    justering = [sys.executable, "-m", "justering", "--home", str(home), "verify"]
    seconds, out = _timed([*justering, "--json", *map(str, copies)], sampler)
    answer = json.loads(out)
    if not answer["valid"] or len(answer["results"]) != len(copies):
        raise ConfigError(f"bench: justering verify did not find all {len(copies)} PDFs valid")
    one_file, _ = _timed([*justering, str(copies[0])], sampler)
    bundles = [str(pdf.parent) for pdf in pdfs]
    bundle_seconds, _ = _timed([*justering, "--json", *bundles], sampler)
    if shutil.which("pdfsig") is None:
        return VerifyTimes(len(copies), seconds, one_file, bundle_seconds, None, False)
    nss = _nss_database(home / "ca" / "ca-cert.pem", folder / "nss")
    pdfsig = ["pdfsig", *(["-nssdir", nss] if nss else [])]
    pdfsig_seconds = 0.0
    for copy in copies:
        spent, out = _timed([*pdfsig, str(copy)], None)
        pdfsig_seconds += spent
        valid = out.count("Signature is Valid")
        trusted = out.count("Certificate is Trusted")
        if valid != signatures or (nss and trusted != signatures):
            raise ConfigError(f"bench: pdfsig does not find {copy} valid:\n{out[-800:]}")
    return VerifyTimes(
        len(copies), seconds, one_file, bundle_seconds, pdfsig_seconds, nss is not None
    )
