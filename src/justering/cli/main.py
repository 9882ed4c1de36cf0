"""The ``justering`` command line. Exit codes: 0 success, 1 the thing checked
is bad, 2 usage or environment error."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from justering import __version__
from justering.cli.audit import add_audit_arguments
from justering.config import Settings, load_settings
from justering.errors import ConfigError, JusteringError

if TYPE_CHECKING:
    from justering.model.meeting import Meeting

__all__ = [
    "DEFAULT_CA_ORGANISATION",
    "ensure_ca",
    "main",
]

EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2
DEFAULT_CA_ORGANISATION = "justering"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="justering",
        description="Protocol extracts from meeting to certified, archived PDF.",
    )
    parser.add_argument("--version", action="version", version=f"justering {__version__}")
    parser.add_argument(
        "--home", type=Path, help="folder for all state (default: $JUSTERING_HOME or ~/.justering)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the whole pipeline locally on a sample meeting")
    demo.add_argument("manifest", nargs="?", type=Path, help="meeting manifest (default: sample)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")

    ended = commands.add_parser("meeting-ended", help="start the pipeline for a meeting")
    ended.add_argument("manifest", type=Path)
    ended.add_argument(
        "--url",
        help="post it to a running `justering serve` at this address, as a meeting system would",
    )

    serve = commands.add_parser("serve", help="the web app and the flow runners")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8040)

    redraft = commands.add_parser(
        "redraft", help="send corrected text for an extract: version N+1, signing restarts"
    )
    redraft.add_argument("meeting_id")
    redraft.add_argument("paragraph", type=int, help="the § number")
    what = redraft.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--text", type=Path, metavar="FILE", help="the corrected paragraph text ('-': stdin)"
    )
    what.add_argument("--show", action="store_true", help="print the current text and comments")
    redraft.add_argument("--title", help="a corrected title (default: unchanged)")
    redraft.add_argument("--by", help="who redrafts (default: the body's secretary)")

    mailbox = commands.add_parser(
        "mailbox", help="a local SMTP server that keeps what justering sends (for trying it out)"
    )
    mailbox.add_argument("--host", default="127.0.0.1")
    mailbox.add_argument("--port", type=int, default=1025)
    mailbox.add_argument("--folder", type=Path, help="where mails are kept (default: HOME/mailbox)")

    bench = commands.add_parser(
        "bench", help="measure the pipeline against the raw library floor, latency, verify, RSS"
    )
    bench.add_argument(
        "--extracts",
        type=int,
        default=100,
        metavar="N",
        help="extracts in the measured meeting (default: 100)",
    )
    bench.add_argument(
        "--latency-meetings",
        type=int,
        default=20,
        metavar="M",
        help="small meetings the click-to-message latency is measured on (default: 20)",
    )
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")

    verify = commands.add_parser("verify", help="verify certified extracts")
    verify.add_argument("targets", nargs="+", metavar="TARGET", help="PDF, bundle, folder, s3://")
    verify.add_argument(
        "--trust", type=Path, action="append", default=[], help="trusted CA (PEM); repeatable"
    )
    verify.add_argument("--json", action="store_true")

    audit = commands.add_parser("audit", help="find extracts and read their trail (read-only)")
    add_audit_arguments(audit)

    ca = commands.add_parser("ca", help="the signing CA")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    init = ca_commands.add_parser("init", help="create the signing CA")
    init.add_argument("--organisation", default=DEFAULT_CA_ORGANISATION)
    ca_commands.add_parser("export", help="print the CA certificate (PEM) for trust stores")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.home)
        handler = {
            "demo": _demo,
            "meeting-ended": _meeting_ended,
            "serve": _serve,
            "verify": _verify,
            "audit": _audit,
            "ca": _ca,
            "redraft": _redraft,
            "bench": _bench,
            "mailbox": _mailbox,
        }[args.command]
        return handler(args, settings)
    except JusteringError as error:
        print(f"justering: {error.diagnostics()}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _ca(args: argparse.Namespace, settings: Settings) -> int:
    from justering.pades.ca import SigningCA

    if args.ca_command == "init":
        ca = SigningCA.create(settings.ca_dir, organisation=args.organisation)
        print(f"created the signing CA in {settings.ca_dir}")
        print(f"SHA-256 fingerprint: {ca.fingerprint}")
    else:
        print(SigningCA.load(settings.ca_dir).export_pem(), end="")
    return EXIT_OK


def ensure_ca(settings: Settings, organisation: str = DEFAULT_CA_ORGANISATION) -> None:
    """Embedded defaults: create a local CA the first time one is needed. With a
    shared ledger (not SQLite) every process must sign with the same CA, so none is
    made up here: it is created once (`justering ca init`) and copied."""
    from justering.pades.ca import CA_CERT_FILE, SigningCA

    if (
        not settings.database_url.startswith("sqlite")
        and not (settings.ca_dir / CA_CERT_FILE).exists()
    ):
        raise ConfigError(
            f"no signing CA in {settings.ca_dir}: with a shared ledger "
            f"({settings.database_url.split('://')[0]}) every process must use the same CA; "
            "create it once with `justering ca init` and copy that folder to each "
            "machine (docs/deploy.md)"
        )
    ca, created = SigningCA.load_or_create(settings.ca_dir, organisation=organisation)
    if created:
        print(f"justering: created a local signing CA ({ca.fingerprint[:16]}…)", file=sys.stderr)


def _use_prefect(settings: Settings, stack: ExitStack) -> None:
    """Point this process (and its children) at Prefect: ``PREFECT_API_URL`` if set,
    else a local server started on loopback for as long as ``stack`` lives."""
    from justering.orchestration.prefect_server import local_prefect_server, prefect_environment

    api_url = settings.prefect_api_url
    if api_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
        print("justering: starting a local Prefect server…", file=sys.stderr)
        api_url = stack.enter_context(
            local_prefect_server(settings.prefect_home, settings.home / "prefect-server.log")
        )
    os.environ.update(prefect_environment(settings.prefect_home, api_url))
    os.environ["JUSTERING_HOME"] = str(settings.home)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from justering.orchestration.serve import run_service

    # Warnings from every library, and justering's own account of what it does.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("justering").setLevel(logging.INFO)

    if "JUSTERING_PUBLIC_URL" not in os.environ:
        settings = settings.with_public_url(f"http://{args.host}:{args.port}")
        os.environ["JUSTERING_PUBLIC_URL"] = settings.public_url
    ensure_ca(settings)
    with ExitStack() as stack:
        _use_prefect(settings, stack)
        run_service(settings, host=args.host, port=args.port)
    return EXIT_OK


def _meeting_ended(args: argparse.Namespace, settings: Settings) -> int:
    from justering import workflow
    from justering.model.manifest import load_manifest

    meeting = load_manifest(args.manifest)
    if args.url:
        return _post_meeting(args.url, meeting)
    ensure_ca(settings, meeting.municipality)
    services = workflow.open_services(settings)
    if not workflow.record_meeting(services, meeting):
        print(f"meeting {meeting.meeting_id} was already started; nothing new to do")
        return EXIT_OK
    if settings.prefect_api_url is None:
        print(
            f"meeting {meeting.meeting_id} recorded with {len(meeting.paragraphs)} paragraphs; "
            "`justering serve` picks it up when it runs (PREFECT_API_URL is not set)"
        )
        return EXIT_OK
    os.environ.update({"JUSTERING_HOME": str(settings.home)})
    from justering.orchestration.serve import trigger_meeting

    try:
        trigger_meeting(meeting.meeting_id)
    except Exception as error:  # Prefect unreachable, deployment not yet served …
        print(
            f"meeting {meeting.meeting_id} recorded, but its flow could not be started now "
            f"({error}); `justering serve` starts it when it runs",
            file=sys.stderr,
        )
        return EXIT_OK
    print(f"meeting {meeting.meeting_id} started: {len(meeting.paragraphs)} extracts")
    return EXIT_OK


def _redraft(args: argparse.Namespace, settings: Settings) -> int:
    from justering import workflow
    from justering.workflow import redraft

    services = workflow.open_services(settings)
    try:
        if args.show:
            header, text = redraft.describe_current(services, args.meeting_id, args.paragraph)
            print(header, end="", file=sys.stderr)  # the text alone on stdout, to edit
            print(text, end="")
            return EXIT_OK
        source: Path = args.text
        try:
            text = sys.stdin.read() if str(source) == "-" else source.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            print(f"justering: --text {source}: {error}", file=sys.stderr)
            return EXIT_ERROR
        meeting = workflow.get_meeting(services, args.meeting_id)
        actor = args.by or workflow.secretary_of(meeting, settings).name
        result = redraft.redraft_extract(
            services, args.meeting_id, args.paragraph, text=text, title=args.title, actor=actor
        )
    finally:
        services.ledger.dispose()
    print(
        f"§ {result.paragraph} i {result.meeting_id} är nu version {result.version} "
        f"(SHA-256 {result.document_sha256}), och protokollet har fått en ny version med den. "
        "Signeringen av dem börjar om från ordföranden, som får en ny länk av "
        "`justering serve`."
    )
    return EXIT_OK


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    import tempfile

    from justering.devtools.bench import run_bench

    if args.extracts < 1 or args.latency_meetings < 1:
        print("justering: --extracts and --latency-meetings must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    with ExitStack() as stack:
        if args.home is None:  # a fresh home, removed afterwards
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="justering-bench-"))
            settings = load_settings(Path(folder))
        _use_prefect(settings, stack)
        report = run_bench(
            settings,
            args.extracts,
            progress=not args.json,
            latency_meetings=args.latency_meetings,
        )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.describe())
    return EXIT_OK if report.targets_met else EXIT_INVALID


def _mailbox(args: argparse.Namespace, settings: Settings) -> int:
    from justering.devtools.mail_sink import run_mailbox

    folder = args.folder or settings.home / "mailbox"
    return run_mailbox(folder, args.host, args.port, out=sys.stdout)


def _post_meeting(url: str, meeting: Meeting) -> int:
    import httpx

    from justering.model.meeting import meeting_to_dict

    endpoint = f"{url.rstrip('/')}/api/meetings"
    try:
        answer = httpx.post(endpoint, json=meeting_to_dict(meeting), timeout=60)
    except httpx.HTTPError as error:
        print(f"justering: could not reach {endpoint}: {error}", file=sys.stderr)
        return EXIT_ERROR
    if answer.status_code not in (200, 202):
        print(f"justering: {endpoint} refused the meeting: {answer.text}", file=sys.stderr)
        return EXIT_ERROR
    started = "started" if answer.json().get("created") else "was already started"
    print(f"meeting {meeting.meeting_id} {started} at {url}: {len(meeting.paragraphs)} extracts")
    return EXIT_OK


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from justering.archive.verify import home_trust_paths, load_trust_roots, verify_targets

    trust = list(args.trust) or home_trust_paths(settings)
    # pyHanko logs each failed check with a traceback; the checks below name them.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    roots = load_trust_roots(trust)
    results = []
    progress = args.json and sys.stderr.isatty()
    for result in verify_targets(args.targets, roots):
        results.append(result)
        if progress:
            bad = sum(1 for r in results if not r.ok)
            print(f"\r  {len(results)} verifierade, {bad} ogiltiga", end="", file=sys.stderr)
        if not args.json:
            mark = "GILTIG (valid)" if result.ok else "OGILTIG (invalid)"
            print(f"{mark}: {result.target}")
            for check in result.checks:
                print(f"  [{'ok' if check.ok else 'FEL'}] {check.name}: {check.detail}")
    all_ok = bool(results) and all(r.ok for r in results)
    if progress:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps({"valid": all_ok, "results": [r.to_json() for r in results]}, indent=2))
    return EXIT_OK if all_ok else EXIT_INVALID


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from justering import workflow
    from justering.cli.audit import run_audit

    services = workflow.open_services(settings)
    try:
        return run_audit(args, services)
    finally:
        services.ledger.dispose()


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from justering.devtools.demo import run_demo

    with ExitStack() as stack:
        _use_prefect(settings, stack)
        summary = run_demo(settings, args.manifest, progress=not args.json)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
    else:
        print(summary.describe())
    return EXIT_OK if summary.ok else EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
