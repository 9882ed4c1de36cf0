"""The command line's manners, each a defect once: global options after the
command, a closed pipe, a busy port, exit codes 0/1/2 only (interrupts and
SIGTERM included), a manifest on standard input, read-only commands that create
nothing, help text for every option."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from justering.cli import status as status_command
from justering.cli.main import build_parser, main
from justering.model.manifest import load_sample_meeting
from justering.model.meeting import meeting_to_dict
from justering.orchestration.prefect_server import free_port
from support.archived import (  # noqa: F401
    ArchivedMeeting,
    archived_meeting_fixture,
    clean_environment,
    meetings_in_ledger,
    run_cli,
)
from support.processes import processes_mentioning

SAMPLE_ID = "nacka-ksau-2014-08-19"


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- global options after the command ---------------------------------------------------


def test_home_is_accepted_after_the_command_as_the_readme_shows(tmp_path: Path) -> None:
    home = tmp_path / "after"
    done = run_cli(None, "ca", "init", "--organisation", "Nacka kommun", "--home", str(home))
    assert done.returncode == 0, done.stderr
    assert (home / "ca" / "ca-cert.pem").is_file()
    exported = run_cli(None, "ca", "export", "--home", str(home))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("-----BEGIN CERTIFICATE-----")


def test_home_after_the_command_wins_over_home_before_it(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--home", str(tmp_path / "a"), "demo", "m.json", "--json", "--home", str(tmp_path / "b")]
    )
    assert (args.home, args.manifest, args.json) == (tmp_path / "b", Path("m.json"), True)
    args = build_parser().parse_args(["--home", str(tmp_path / "a"), "demo"])
    assert args.home == tmp_path / "a"  # not undone by the command's own (absent) --home
    assert not hasattr(build_parser().parse_args(["demo"]), "home")


# --- a closed pipe ------------------------------------------------------------------------


@pytest.mark.parametrize("json_output", [True, False])
def test_verify_into_a_closed_pipe_ends_quietly(
    archived_meeting: ArchivedMeeting, json_output: bool
) -> None:
    """``justering verify --json … | head -1``: the reader is gone before the output
    is written (here: the pipe is closed at once, so it always is)."""
    command = [
        sys.executable,
        "-m",
        "justering",
        "verify",
        str(archived_meeting.settings.archive_dir),
    ]
    command += ["--trust", str(archived_meeting.ca_pem)] + (["--json"] if json_output else [])
    process = subprocess.Popen(
        command,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 2
    assert errors == ""  # no traceback, no "Exception ignored"


def test_head_reads_the_first_line_of_verify_json(archived_meeting: ArchivedMeeting) -> None:
    done = subprocess.run(
        f"{sys.executable} -m justering verify --json --trust {archived_meeting.ca_pem} "
        f"{archived_meeting.settings.archive_dir} | head -1",
        shell=True,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout == "{\n"
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


# --- serve on a busy port -------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


def test_serve_refuses_a_busy_port_at_once_before_starting_prefect(
    tmp_path: Path, busy_port: int
) -> None:
    home = tmp_path / "home"
    started = time.monotonic()
    done = run_cli(home, "serve", "--port", str(busy_port), timeout=60)
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"justering: serve: cannot listen on 127.0.0.1:{busy_port}: the address is already "
        "in use; is another `justering serve` running? Stop it or choose another --port\n"
    )
    assert "serving" not in done.stdout + done.stderr
    assert not (home / "prefect-server.log").exists()  # Prefect was never started
    assert seconds < 15, seconds  # the interpreter's start, not Prefect's


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--port", "70000"], "argument --port: expected a port number from 1 to 65535"),
        (
            ["--host", "no-such-host.invalid"],
            "justering: serve: cannot listen on no-such-host.invalid:8040: unknown host",
        ),
    ],
)
def test_serve_refuses_an_address_it_cannot_listen_on(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    done = run_cli(tmp_path / "home", "serve", *arguments, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "home" / "prefect-server.log").exists()


# --- exit codes: 0, 1, 2 and no others ------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        (KeyboardInterrupt(), 2, "justering: interrupted\n"),
        (SystemExit(3), 2, ""),
        (SystemExit("it gave up"), 2, "justering: it gave up\n"),
        (SystemExit(0), 0, ""),
        (RuntimeError("a bug"), 2, "justering: stopped by an unexpected error (a bug"),
        (BrokenPipeError(32, "Broken pipe"), 2, "justering: [Errno 32] Broken pipe\n"),
    ],
)
def test_whatever_stops_a_command_exits_0_1_or_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raised: BaseException,
    code: int,
    said: str,
) -> None:
    def stop(*_args: object, **_kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(status_command, "existing_services", stop)
    assert main(["status", "m", "--home", str(tmp_path)]) == code
    assert said in capsys.readouterr().err


def test_sigterm_while_prefect_starts_stops_it_and_exits_2(tmp_path: Path) -> None:
    """A service asked to stop before it serves: the local Prefect server it was
    starting (in a session of its own, which no signal to the command reaches) is
    stopped too, and nothing is left running."""
    home = tmp_path / "home"
    process = subprocess.Popen(
        [sys.executable, "-m", "justering", "serve", "--port", str(free_port())],
        env=clean_environment(JUSTERING_HOME=str(home)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    prefect_home = str(home / "prefect")
    try:
        deadline = time.monotonic() + 60
        while not processes_mentioning(prefect_home):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the local Prefect server never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 2, err
    assert err.endswith("justering: interrupted\n"), err
    assert "Traceback" not in err
    deadline = time.monotonic() + 20
    while processes_mentioning(prefect_home):
        assert time.monotonic() < deadline, processes_mentioning(prefect_home)
        time.sleep(0.2)


# --- meeting-ended - -----------------------------------------------------------------------


def _inline_manifest() -> dict[str, object]:
    samples = resources.files("justering").joinpath("samples")
    document: dict[str, object] = json.loads(samples.joinpath("meeting.json").read_text("utf-8"))
    document["protocol_text_inline"] = samples.joinpath("protocol.txt").read_text("utf-8")
    del document["protocol_text"]
    return document


@pytest.mark.parametrize("form", ["protocol_text_inline", "paragraphs"])
def test_meeting_ended_reads_the_manifest_from_standard_input(tmp_path: Path, form: str) -> None:
    home = tmp_path / "home"
    document = (
        _inline_manifest()
        if form == "protocol_text_inline"
        else meeting_to_dict(load_sample_meeting())
    )
    shipped = Path(__file__).parents[2] / "config" / "justering.toml"  # a förvaringsplats
    done = run_cli(
        home,
        "meeting-ended",
        "-",
        input=json.dumps(document, ensure_ascii=False),
        env=clean_environment(JUSTERING_CONFIG=str(shipped)),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"meeting {SAMPLE_ID} recorded with 4 paragraphs")
    assert meetings_in_ledger(home) == [SAMPLE_ID]


def test_meeting_ended_from_standard_input_refuses_a_protocol_text_file(tmp_path: Path) -> None:
    samples = resources.files("justering").joinpath("samples")
    document = samples.joinpath("meeting.json").read_text(
        "utf-8"
    )  # "protocol_text": "protocol.txt"
    home = tmp_path / "home"
    done = run_cli(home, "meeting-ended", "-", input=document)
    assert done.returncode == 2
    assert done.stderr == (
        "justering: manifest field 'protocol_text': 'protocol.txt' is a file path, but a "
        "manifest read from standard input has no folder it is relative to: give the "
        "manifest as a file beside its protocol text, or the text itself as "
        "protocol_text_inline or paragraphs\n"
    )
    assert not home.exists()


def test_meeting_ended_from_standard_input_names_what_is_malformed(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "home", "meeting-ended", "-", input='{"meeting_id": ')
    assert done.returncode == 2
    assert done.stderr.startswith("justering: manifest field '(manifest)': ")
    assert "line 1" in done.stderr


# --- read-only commands create nothing ------------------------------------------------------


READ_ONLY = [
    ["audit"],
    ["audit", "--json"],
    ["status", SAMPLE_ID],
    ["status", SAMPLE_ID, "--json"],
    ["redraft", SAMPLE_ID, "94", "--show"],
    ["verify", "extract.pdf"],
    ["ca", "export"],
]


@pytest.mark.parametrize("command", READ_ONLY)
def test_a_read_only_command_on_a_missing_home_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    home = tmp_path / "saknas"
    done = run_cli(home, *command)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("justering: no ")  # no home, ledger, trust root or CA
    assert "Traceback" not in done.stderr
    assert not home.exists()


@pytest.mark.parametrize(
    "command", [c for c in READ_ONLY if c[0] in ("audit", "status", "redraft")]
)
def test_a_ledger_reader_names_a_missing_home_or_ledger(tmp_path: Path, command: list[str]) -> None:
    home = tmp_path / "saknas"
    done = run_cli(home, *command)
    assert done.stderr == (
        f"justering: no justering home at {home}: give the home with --home DIR or "
        "JUSTERING_HOME (nothing was created)\n"
    )
    home.mkdir()
    (home / "ca").mkdir()
    done = run_cli(home, *command)
    assert done.returncode == 2
    assert done.stderr == (
        f"justering: no ledger at {home / 'justering.db'}: nothing has been recorded in this home\n"
    )
    assert files_under(home) == ["ca"]


def test_redraft_on_a_missing_home_creates_nothing(tmp_path: Path) -> None:
    text = tmp_path / "p94.txt"
    text.write_text("Ny text.\n", encoding="utf-8")
    home = tmp_path / "saknas"
    done = run_cli(home, "redraft", SAMPLE_ID, "94", "--text", str(text))
    assert done.returncode == 2
    assert not home.exists()


def test_audit_and_status_read_an_existing_home_without_writing(
    archived_meeting: ArchivedMeeting,
) -> None:
    before = {p: p.stat().st_mtime_ns for p in archived_meeting.home.rglob("*") if p.is_file()}
    for command in (["audit", "--json"], ["status", SAMPLE_ID], ["ca", "export"]):
        done = run_cli(archived_meeting.home, *command)
        assert done.returncode == 0, done.stderr
    after = {p: p.stat().st_mtime_ns for p in archived_meeting.home.rglob("*") if p.is_file()}
    assert set(after) == set(before)
    ledger = archived_meeting.home / "justering.db"
    assert after[ledger] == before[ledger]


# --- help text for every option -------------------------------------------------------------


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{parser.prog}: {action.option_strings or action.dest}"
        for parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and (not action.help or action.help == argparse.SUPPRESS)
    ]
    assert missing == []
    names = [parser.prog for parser in _parsers(build_parser())]
    assert "justering status" in names and "justering ca export" in names


def test_every_command_takes_home() -> None:
    for parser in _parsers(build_parser()):
        assert any("--home" in action.option_strings for action in parser._actions), parser.prog
