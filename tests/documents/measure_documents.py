"""CPU time per certificate of completion and per extract render, with cProfile's top.

Not a test (no timing is asserted anywhere): run it by hand to see where the time of
a document goes::

    .venv/bin/python tests/documents/measure_documents.py [-n 40] [--top 15]

Each kind of document is made once untimed (to load fonts and libraries, as a
running service has), then N times; the figure is process CPU time over N. The
inputs are those of the bench: the sample § 94, and for the certificate an
extract's trail as the workflow writes it (drafted, notified, viewed and signed
per signer, certified, justered, timestamped) with Latin names.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import hashlib
import io
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parent)]

from fpdf import FPDF  # noqa: E402
from fpdf.fonts import TTFFont  # noqa: E402
from test_rendering import MEETING, SEED_PARAGRAPH  # noqa: E402

from justering.archive.completion_text import CompletionSubject  # noqa: E402
from justering.archive.intyg import render_completion  # noqa: E402
from justering.documents import fonts  # noqa: E402
from justering.documents.rendering import render_extract  # noqa: E402
from justering.model.process import DocumentKind  # noqa: E402
from justering.model.roles import Role  # noqa: E402
from justering.model.trail import GENESIS_HASH, EventKind, TrailEvent, with_hash  # noqa: E402
from justering.pades.validation_results import ExtractValidation, SignatureReport  # noqa: E402

AT = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)


def _event(kind: EventKind, minutes: int, actor: str = "system", role: Role | None = None,
           **detail: str) -> TrailEvent:  # fmt: skip
    return TrailEvent(
        extract=f"{MEETING.meeting_id}/94",
        seq=0,
        kind=kind,
        at=AT + dt.timedelta(minutes=minutes),
        actor=actor,
        actor_email=None,
        role=role.value if role else None,
        version=1,
        document_sha256=hashlib.sha256(b"extract").hexdigest(),
        certificate_sha256=None,
        detail=detail,
    )


def certificate_inputs() -> tuple[tuple[TrailEvent, ...], ExtractValidation]:
    """An extract's trail as the workflow writes it, and its validation."""
    signers = [
        (MEETING.chair.name, Role.CHAIR),
        *((p.name, Role.ADJUSTER) for p in MEETING.adjusters),
        (MEETING.certifier.name, Role.CERTIFIER),
    ]
    events = [_event(EventKind.DRAFTED, 0)]
    for index, (name, role) in enumerate(signers, start=1):
        events += [
            _event(EventKind.NOTIFIED, 10 * index, "system", role, to=name),
            _event(EventKind.VIEWED, 10 * index + 2, name, role),
            _event(EventKind.SIGNED, 10 * index + 3, name, role),
        ]
    events.append(_event(EventKind.CERTIFIED, 60, MEETING.certifier.name, Role.CERTIFIER))
    justered = {
        "justered_on": "2026-06-01",
        "justering_deadline": "2026-06-10",
        "late": "false",
        "announced_on": "2026-06-02",
        "appeal_deadline": "2026-06-23",
        "kept_at": "Kommunkansliet, Nacka stadshus",
        "protocol": "nacka-ksau/protocol",
        "protocol_version": "1",
        "protocol_sha256": hashlib.sha256(b"protocol").hexdigest(),
        "protocol_archive_key": "2026/ksau/protocol",
    }
    events.append(_event(EventKind.JUSTERED, 70, **justered))
    events.append(_event(EventKind.TIMESTAMPED, 71))
    sealed, previous = [], GENESIS_HASH
    for seq, event in enumerate(events, start=1):
        sealed.append(with_hash(dataclasses.replace(event, seq=seq, prev_hash=previous, hash="")))
        previous = sealed[-1].hash
    reports = tuple(
        SignatureReport(
            field_name=f"Signatur-{role.value}-{index}",
            signer_name=name,
            role=role,
            signed_at=AT + dt.timedelta(minutes=10 * index + 3),
            certificate_fingerprint=hashlib.sha256(name.encode()).hexdigest(),
            intact=True,
            valid=True,
            trusted=True,
            covers_whole_file=True,
            modification_level="none",
            validated_at=AT,
        )
        for index, (name, role) in enumerate(signers, start=1)
    )
    return tuple(sealed), ExtractValidation(reports, ())


def _measure(name: str, make: Callable[[], bytes], count: int, top: int) -> float:
    make()  # fonts and libraries loaded, as in a running service
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(count):
        make()
    profile.disable()
    # Timed without the profiler, in rounds: the least CPU time per document over
    # the rounds is the figure (other processes on the machine only ever add to it).
    rounds = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(count):
            make()
        rounds.append((time.process_time() - start) / count * 1000)
    low, median = min(rounds), sorted(rounds)[len(rounds) // 2]
    print(f"\n== {name}: {low:.1f} ms CPU per document (median of 5 rounds {median:.1f})")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
    return low


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=40)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also time each document with fpdf2 parsing the fonts for it (add_font), "
        "in rounds alternating with the fonts parsed once",
    )
    args = parser.parse_args()
    events, validation = certificate_inputs()
    subject = CompletionSubject(
        DocumentKind.EXTRACT, SEED_PARAGRAPH.number, SEED_PARAGRAPH.dnr, SEED_PARAGRAPH.title
    )
    digest = hashlib.sha256(b"signed").hexdigest()

    def certificate() -> bytes:
        return render_completion(MEETING, subject, events, validation, digest, issued_at=AT)

    def extract() -> bytes:
        return render_extract(MEETING, SEED_PARAGRAPH)

    figures = {
        "intyg (render_completion)": _measure("intyg", certificate, args.count, args.top),
        "extract (render_extract)": _measure("extract", extract, args.count, args.top),
    }
    print()
    for name, ms in figures.items():
        print(f"{name}: {ms:.1f} ms CPU per document")
    if args.compare:
        _compare({"intyg": certificate, "extract": extract}, args.count)


def _fpdf2_add_font(document: FPDF, style: str, path: Path) -> None:
    """How every document got its fonts before they were parsed once per process."""
    document.add_font(fonts.FONT_FAMILY, style, path)
    font = document.fonts[f"{fonts.FONT_FAMILY.lower()}{style}"]
    assert isinstance(font, TTFFont)
    font.ttfont.recalcBBoxes = False


def _compare(documents: dict[str, Callable[[], bytes]], count: int) -> None:
    """Least and median CPU ms per document over alternating rounds of each way."""
    ways = {"fonts parsed once": fonts._add_font, "fpdf2 add_font per document": _fpdf2_add_font}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(5):
        for way, add_font in ways.items():
            fonts._add_font = add_font
            for name, make in documents.items():
                make()
                start = time.process_time()
                for _ in range(count):
                    make()
                times.setdefault((name, way), []).append((time.process_time() - start) / count)
    fonts._add_font = ways["fonts parsed once"]
    print()
    for (name, way), rounds in times.items():
        low, median = min(rounds) * 1000, sorted(rounds)[len(rounds) // 2] * 1000
        print(f"{name}, {way}: {low:.1f} ms CPU per document (median {median:.1f})")


if __name__ == "__main__":
    main()
