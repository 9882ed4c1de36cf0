"""The demo's service: started as ``justering serve`` would be, with the deadline
pass paused (the sample meeting is of 2014: a pass would find it overdue)."""

from __future__ import annotations

import sys
from pathlib import Path

from justering.devtools.demo import start_service
from support.archived import sample_settings

SHOW = "import os, sys; print(os.environ['JUSTERING_DEADLINE_PASSES'], *sys.argv[1:])"


def test_the_demos_service_has_the_deadline_pass_paused(tmp_path: Path) -> None:
    settings = sample_settings(tmp_path / "home")
    settings.home.mkdir()
    process = start_service(
        settings,
        8123,
        environ={"JUSTERING_DEADLINE_PASSES": "on"},
        command=[sys.executable, "-c", SHOW],
    )
    assert process.wait(timeout=60) == 0
    logged = (settings.home / "serve.log").read_text()
    assert logged == "paused serve --host 127.0.0.1 --port 8123\n"
