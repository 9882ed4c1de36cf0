"""The ``justering`` command line as a user runs it: a subprocess, a clean
environment, a home folder of its own. (``verify`` is in test_verification.py,
``demo`` in test_end_to_end.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from importlib import resources
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from justering.cli.main import main
from support.archived import clean_environment, meetings_in_ledger, run_cli

SAMPLE_MEETING_ID = "nacka-ksau-2014-08-19"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """The sample meeting's manifest and protocol text, copied to a folder of their own."""
    folder = tmp_path / "in"
    folder.mkdir()
    samples = resources.files("justering").joinpath("samples")
    for name in ("meeting.json", "protocol.txt"):
        (folder / name).write_bytes(samples.joinpath(name).read_bytes())
    return folder / "meeting.json"


def edited(manifest: Path, change: dict[str, object], *drop: str) -> Path:
    document = json.loads(manifest.read_text(encoding="utf-8"))
    document.update(change)
    for key in drop:
        del document[key]
    manifest.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return manifest


# --- help ---------------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    done = run_cli(None, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: justering ")
    for command in ("demo", "meeting-ended", "serve", "verify", "ca", "--home"):
        assert command in done.stdout


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        (["demo"], ["--json", "manifest"]),
        (["meeting-ended"], ["manifest"]),
        (["serve"], ["--host", "--port"]),
        (["verify"], ["TARGET", "--trust", "--json"]),
        (["ca"], ["init", "export"]),
        (["ca", "init"], ["--organisation"]),
        (["ca", "export"], []),
    ],
)
def test_each_subcommand_has_help(command: list[str], mentions: list[str]) -> None:
    done = run_cli(None, *command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: justering {' '.join(command)} ")
    for word in mentions:
        assert word in done.stdout


def test_version_and_usage_errors() -> None:
    done = run_cli(None, "--version")
    assert done.returncode == 0
    assert done.stdout.startswith("justering ")
    done = run_cli(None)
    assert done.returncode == 2
    assert "required: COMMAND" in done.stderr
    done = run_cli(None, "verify")
    assert done.returncode == 2
    assert "TARGET" in done.stderr


# --- ca -----------------------------------------------------------------------------------


def test_ca_init_then_a_second_init_refuses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = run_cli(home, "ca", "init", "--organisation", "Nacka kommun")
    assert done.returncode == 0, done.stderr
    ca_dir = home / "ca"
    assert f"created the signing CA in {ca_dir}" in done.stdout
    certificate = (ca_dir / "ca-cert.pem").read_bytes()
    key = (ca_dir / "ca-key.pem").read_bytes()
    loaded = x509.load_pem_x509_certificate(certificate)
    der = loaded.public_bytes(serialization.Encoding.DER)
    assert f"SHA-256 fingerprint: {hashlib.sha256(der).hexdigest()}" in done.stdout
    assert loaded.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Nacka kommun"
    )
    # The trail seal is made with it, so that a copy of the folder carries one seal.
    assert "the trail seal CN=Nacka kommun – signaturkedja,O=Nacka kommun,C=SE" in done.stdout
    assert stat.S_IMODE((ca_dir / "trail-seal.pem").stat().st_mode) == 0o600

    again = run_cli(home, "ca", "init")
    assert again.returncode == 2
    assert again.stdout == ""
    assert again.stderr.startswith("justering: ")
    assert str(ca_dir) in again.stderr
    assert "refusing to overwrite" in again.stderr
    assert (ca_dir / "ca-cert.pem").read_bytes() == certificate
    assert (ca_dir / "ca-key.pem").read_bytes() == key


def test_ca_export_prints_the_ca_certificate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "ca", "init").returncode == 0
    done = run_cli(home, "ca", "export")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("-----BEGIN CERTIFICATE-----\n")
    assert done.stdout.endswith("-----END CERTIFICATE-----\n")
    exported = x509.load_pem_x509_certificate(done.stdout.encode())
    stored = x509.load_pem_x509_certificate((home / "ca" / "ca-cert.pem").read_bytes())
    assert exported == stored
    assert done.stdout == (home / "ca" / "ca-cert.pem").read_text()
    assert exported.public_bytes(serialization.Encoding.DER) == stored.public_bytes(
        serialization.Encoding.DER
    )
    basic = exported.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is True
    assert "PRIVATE KEY" not in done.stdout


def test_ca_export_without_a_ca_exits_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = run_cli(home, "ca", "export")
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"no signing CA in {home / 'ca'}" in done.stderr
    assert "justering ca init" in done.stderr  # a command that exists


def test_the_home_comes_from_justering_home_without_home(tmp_path: Path) -> None:
    home = tmp_path / "from-env"
    done = run_cli(None, "ca", "init", env=clean_environment(JUSTERING_HOME=str(home)))
    assert done.returncode == 0, done.stderr
    assert (home / "ca" / "ca-cert.pem").is_file()


# --- meeting-ended ------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's environment as ``clean_environment`` makes it, for ``cli.main``."""
    for name in list(os.environ):
        if name == "PREFECT_API_URL" or name.startswith("JUSTERING_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("change", "drop", "field"),
    [
        ({}, ("certifier",), "certifier"),
        ({"date": "2014-02-30"}, (), "date"),
        ({"meeting_id": "../../etc"}, (), "meeting_id"),
        ({"adjusters": []}, (), "adjusters"),
        ({"chair": {"name": "Mats Gerdau", "email": "inte-en-adress"}}, (), "chair.email"),
        ({"protocol_text": "saknas.txt"}, (), "protocol_text"),
        ({"sekreterare": "Lena"}, (), "sekreterare"),
    ],
)
def test_meeting_ended_names_the_malformed_field_and_records_nothing(
    tmp_path: Path,
    manifest: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, object],
    drop: tuple[str, ...],
    field: str,
) -> None:
    """In-process (``cli.main``) for speed; the subprocess test below covers one case."""
    home = tmp_path / "home"
    code = main(["--home", str(home), "meeting-ended", str(edited(manifest, change, *drop))])
    out, err = capsys.readouterr()
    assert code == 2, out
    assert err.startswith(f"justering: manifest field '{field}': ")
    assert out == ""
    assert meetings_in_ledger(home) == []
    assert not (home / "ca").exists()


def test_meeting_ended_refuses_a_malformed_manifest_as_a_subprocess(
    tmp_path: Path, manifest: Path
) -> None:
    home = tmp_path / "home"
    done = run_cli(home, "meeting-ended", str(edited(manifest, {}, "certifier")))
    assert done.returncode == 2, done.stdout
    assert done.stderr == "justering: manifest field 'certifier': is missing\n"
    assert done.stdout == ""
    assert meetings_in_ledger(home) == []


def test_meeting_ended_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    broken = tmp_path / "meeting.json"
    broken.write_text('{"meeting_id": ', encoding="utf-8")
    done = run_cli(tmp_path / "home", "meeting-ended", str(broken))
    assert done.returncode == 2
    assert done.stderr.startswith("justering: manifest field '(manifest)': ")
    assert meetings_in_ledger(tmp_path / "home") == []


def test_meeting_ended_without_the_manifest_file(tmp_path: Path) -> None:
    missing = tmp_path / "saknas.json"
    done = run_cli(tmp_path / "home", "meeting-ended", str(missing))
    assert done.returncode == 2
    assert done.stderr.startswith("justering: ")
    assert "saknas.json" in done.stderr
    assert "Traceback" not in done.stderr


SHIPPED_CONFIG = clean_environment(
    JUSTERING_CONFIG=str(Path(__file__).parents[2] / "config" / "justering.toml")
)
"""The shipped config, which gives the sample meeting's body a förvaringsplats."""


def test_meeting_ended_refuses_a_body_without_a_forvaringsplats(
    tmp_path: Path, manifest: Path
) -> None:
    home = tmp_path / "home"
    done = run_cli(home, "meeting-ended", str(manifest))
    assert done.returncode == 2
    assert "manifest field 'body.code': no förvaringsplats is configured" in done.stderr
    assert "8 kap. 12 § kommunallagen" in done.stderr and "Traceback" not in done.stderr
    assert meetings_in_ledger(home) == []


def test_meeting_ended_records_the_meeting_for_serve_then_says_already_started(
    tmp_path: Path, manifest: Path
) -> None:
    home = tmp_path / "home"
    done = run_cli(home, "meeting-ended", str(manifest), env=SHIPPED_CONFIG)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"meeting {SAMPLE_MEETING_ID} recorded with 4 paragraphs; `justering serve` picks it "
        "up when it runs (PREFECT_API_URL is not set)"
    )
    assert "created a local signing CA" in done.stderr
    assert (home / "ca" / "ca-cert.pem").is_file()
    assert meetings_in_ledger(home) == [SAMPLE_MEETING_ID]
    assert not (home / "outbox").exists() or not any((home / "outbox").iterdir())

    again = run_cli(home, "meeting-ended", str(manifest), env=SHIPPED_CONFIG)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        f"meeting {SAMPLE_MEETING_ID} was already started; nothing new to do"
    )
    assert "created a local signing CA" not in again.stderr
    assert meetings_in_ledger(home) == [SAMPLE_MEETING_ID]

    changed = edited(manifest, {"place": "Nacka stadshus, sal B"})
    refused = run_cli(home, "meeting-ended", str(changed), env=SHIPPED_CONFIG)
    assert refused.returncode == 2
    assert refused.stderr.startswith("justering: manifest field 'meeting_id': ")
    assert "different manifest" in refused.stderr


def test_meeting_ended_reads_the_protocol_text_beside_the_manifest(
    tmp_path: Path, manifest: Path
) -> None:
    """``protocol_text`` is relative to the manifest, not to the working directory."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = run_cli(
        tmp_path / "home", "meeting-ended", str(manifest), cwd=elsewhere, env=SHIPPED_CONFIG
    )
    assert done.returncode == 0, done.stderr
    moved = tmp_path / "moved.json"
    shutil.copyfile(manifest, moved)  # without its protocol.txt beside it
    done = run_cli(tmp_path / "home2", "meeting-ended", str(moved))
    assert done.returncode == 2
    assert "manifest field 'protocol_text'" in done.stderr


def test_no_ca_is_made_up_for_a_shared_ledger(tmp_path: Path) -> None:
    from dataclasses import replace

    from justering.cli.main import ensure_ca
    from justering.config import load_settings
    from justering.errors import ConfigError

    settings = replace(
        load_settings(tmp_path / "home", environ={}),
        database_url="postgresql+psycopg://postgres@127.0.0.1/justering",
    )
    with pytest.raises(ConfigError, match="every process must use the same CA"):
        ensure_ca(settings)
    assert not settings.ca_dir.exists()
    ensure_ca(replace(settings, database_url=f"sqlite:///{tmp_path / 'l.db'}"))
    ensure_ca(settings)  # now there is one: fine
