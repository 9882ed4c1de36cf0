"""Finding 9: the home holds every PDF, name, e-mail address and decline comment;
it is 0700 and every database, key and outbox file in it 0600, for a new home and
for one an earlier version left readable to everyone."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

from justering import workflow
from justering.config import load_settings
from justering.home import secure_home
from justering.model.meeting import Meeting
from justering.pades.ca import SigningCA
from justering.web.auth import session_key
from support.archived import clean_environment, run_cli
from support.workflow import KEPT_AT, small_meeting, start


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def open_to_others(home: Path) -> list[str]:
    """Everything under ``home`` that its group or others may read, write or enter
    (but the local archive's write-once objects, 0444 by design: they are as private
    as the 0700 home they are in)."""
    found = [] if mode(home) & 0o077 == 0 else [str(home)]
    for root, folders, files in os.walk(home):
        if Path(root) == home:
            folders[:] = [f for f in folders if f != "archive"]
        for name in [*folders, *files]:
            path = Path(root) / name
            if not path.is_symlink() and mode(path) & 0o077:
                found.append(f"{path.relative_to(home)} {oct(mode(path))}")
    return found


def test_a_home_made_by_the_command_line_is_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = run_cli(home, "ca", "init", "--organisation", "Nacka kommun")
    assert made.returncode == 0, made.stderr
    added = run_cli(home, "clients", "add", "nacka-ns", "--body", "KSAU")
    assert added.returncode == 0, added.stderr
    assert mode(home) == 0o700
    assert (home / "justering.db").exists()
    assert open_to_others(home) == []


def test_a_home_with_a_meeting_in_it_is_private(tmp_path: Path, sample_meeting: Meeting) -> None:
    settings = replace(load_settings(tmp_path / "home", environ={}), kept_at=KEPT_AT)
    SigningCA.create(settings.ca_dir, organisation=sample_meeting.municipality)
    old = os.umask(0o022)  # a careless environment: files 0644 by default
    try:
        services = workflow.open_services(settings)
        start(services, small_meeting(sample_meeting))
        session_key(settings.home)
        services.ledger.dispose()
    finally:
        os.umask(old)
    secure_home(settings.home)  # what every later start does
    assert list((settings.home / "outbox").glob("*.eml"))
    assert open_to_others(settings.home) == []


def test_an_existing_home_left_open_is_closed_on_upgrade(
    tmp_path: Path, sample_meeting: Meeting
) -> None:
    """A home as an earlier version left it (0755, the ledger and keys 0644): the
    next command that opens it closes it."""
    settings = replace(load_settings(tmp_path / "home", environ={}), kept_at=KEPT_AT)
    SigningCA.create(settings.ca_dir, organisation=sample_meeting.municipality)
    services = workflow.open_services(settings)
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    services.ledger.dispose()
    (settings.home / "prefect").mkdir()
    (settings.home / "prefect" / "prefect.db").write_text("x")
    for root, folders, files in os.walk(settings.home):
        for name in folders:
            os.chmod(Path(root) / name, 0o755)
        for name in files:
            os.chmod(Path(root) / name, 0o644)
    os.chmod(settings.home, 0o755)
    assert open_to_others(settings.home)
    shown = run_cli(settings.home, "status", meeting.meeting_id, env=clean_environment())
    assert shown.returncode == 0, shown.stderr
    assert open_to_others(settings.home) == []
    assert mode(settings.home / "justering.db") == 0o600
