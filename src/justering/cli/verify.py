"""``justering verify TARGET… [--trust CA.pem]… [--accept-unsealed]
[--require-assurance LEVEL] [--json]``: certified extracts checked offline (the
checks are :mod:`justering.archive.verify`). It reads only: without ``--trust`` it
trusts the home's CA, and creates nothing."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from justering.cli.commands import EXIT_INVALID, EXIT_OK, Commands
from justering.config import Settings
from justering.model.assurance import Assurance

__all__ = ["register"]


def register(commands: Commands) -> None:
    verify = commands.add("verify", help="verify certified extracts (read-only)", run=_verify)
    verify.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="a PDF, an archived bundle, a folder of bundles, a file:// or s3:// URI",
    )
    verify.add_argument(
        "--trust",
        type=Path,
        action="append",
        default=[],
        metavar="CA.pem",
        help="trusted CA (PEM); repeatable (default: the home's CA)",
    )
    verify.add_argument(
        "--accept-unsealed",
        action="store_true",
        help="let a bundle archived before trails were sealed pass (its trail is unauthenticated)",
    )
    verify.add_argument(
        "--require-assurance",
        choices=[level.value for level in Assurance],
        metavar="LEVEL",
        help="fail any signature whose signer was identified below LEVEL: link, loa2, "
        "loa3 or loa4 (e-legitimation's tillitsnivå)",
    )
    verify.add_argument("--json", action="store_true", help="print JSON (docs/cli.md)")


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from justering.archive.verify import (
        home_trust_paths,
        load_trust_roots,
        require_assurance,
        verify_targets,
    )

    trust = list(args.trust) or home_trust_paths(settings)
    # pyHanko logs each failed check with a traceback; the checks below name them.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    roots = load_trust_roots(trust)
    results = []
    progress = args.json and sys.stderr.isatty()
    minimum = Assurance(args.require_assurance) if args.require_assurance else None
    for found in verify_targets(args.targets, roots, accept_unsealed=args.accept_unsealed):
        result = found if minimum is None else require_assurance(found, minimum)
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
