"""The commands that run the service or try it out: ``serve``, ``demo``, ``bench``,
``mailbox``; and what they need: Prefect (a local server with its UI unless
``PREFECT_API_URL`` is set) and a signing CA.

Building the parser stays cheap: what the commands run is imported when they run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from justering.cli.ca import ensure_ca
from justering.cli.commands import EXIT_ERROR, EXIT_INVALID, EXIT_OK, Commands
from justering.config import Settings, load_settings

__all__ = ["register", "use_prefect"]


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}")
    return port


def _address_options(parser: argparse.ArgumentParser, *, port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=_port, default=port, help=f"port to listen on ({port})")


def register(commands: Commands) -> None:
    demo = commands.add(
        "demo", help="run the whole pipeline locally on a sample meeting", run=_demo
    )
    demo.add_argument(
        "manifest",
        nargs="?",
        type=Path,
        metavar="MANIFEST",
        help="meeting manifest (default: the bundled sample)",
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")

    serve = commands.add(
        "serve",
        help="the web app, the flow runner, the task worker and the reconciler",
        run=_serve,
    )
    _address_options(serve, port=8040)

    mailbox = commands.add(
        "mailbox",
        help="a local SMTP server that keeps what justering sends (for trying it out)",
        run=_mailbox,
    )
    _address_options(mailbox, port=1025)
    mailbox.add_argument(
        "--folder", type=Path, metavar="DIR", help="where mails are kept (default: HOME/mailbox)"
    )

    bench = commands.add(
        "bench",
        help="measure the pipeline against the raw library floor, latency, verify, RSS",
        run=_bench,
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


def use_prefect(settings: Settings, stack: ExitStack, *, wait: bool = True) -> str | None:
    """Point this process (and its children) at Prefect: ``PREFECT_API_URL`` if set,
    else a local server started on loopback for as long as ``stack`` lives (with
    ``wait`` false, still starting on return: ``serve`` waits for it, and starts
    meanwhile). Returns the address of Prefect's UI, or None where the server has
    none (then Prefect is told so, and logs no links to it)."""
    from justering.orchestration.prefect_server import (
        local_prefect_server,
        prefect_environment,
        prefect_ui_url,
    )

    api_url = settings.prefect_api_url
    if api_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
        print("justering: starting a local Prefect server…", file=sys.stderr)
        api_url = stack.enter_context(
            local_prefect_server(
                settings.prefect_home, settings.home / "prefect-server.log", wait=wait
            )
        )
        # The local server serves its UI (started so); asked only once it answers.
        ui_url = prefect_ui_url(api_url) if wait else api_url.removesuffix("/api")
    elif "PREFECT_UI_URL" in os.environ:  # the operator's word (empty: no UI)
        ui_url = os.environ["PREFECT_UI_URL"].strip() or None
    else:
        ui_url = prefect_ui_url(api_url)
    os.environ.update(prefect_environment(settings.prefect_home, api_url, ui_url=ui_url))
    os.environ["JUSTERING_HOME"] = str(settings.home)
    return ui_url


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from justering.orchestration.serve import listen, run_service

    # Warnings from every library, and justering's own account of what it does.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("justering").setLevel(logging.INFO)

    with ExitStack() as stack:
        # The port first: one in use is refused before anything starts.
        stack.enter_context(listener := listen(args.host, args.port))
        if "JUSTERING_PUBLIC_URL" not in os.environ:
            settings = settings.with_public_url(f"http://{args.host}:{args.port}")
            os.environ["JUSTERING_PUBLIC_URL"] = settings.public_url
        ensure_ca(settings)
        use_prefect(settings, stack)
        run_service(settings, listener)
    return EXIT_OK


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from justering.devtools.demo import run_demo

    with ExitStack() as stack:
        # The Prefect server and the service start side by side: serve waits for it.
        ui_url = use_prefect(settings, stack, wait=False)
        if ui_url:
            print(
                f"justering: Prefect's UI is at {ui_url} while the demo runs "
                "(its flow runs are named after the meeting)",
                file=sys.stderr,
            )
        summary = run_demo(settings, args.manifest, progress=not args.json)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
    else:
        print(summary.describe())
    return EXIT_OK if summary.ok else EXIT_INVALID


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    import tempfile

    from justering.devtools.bench import run_bench

    if args.extracts < 1 or args.latency_meetings < 1:
        print("justering: --extracts and --latency-meetings must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    with ExitStack() as stack:
        if getattr(args, "home", None) is None:  # a fresh home, removed afterwards
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="justering-bench-"))
            settings = load_settings(Path(folder))
        use_prefect(settings, stack)
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
