"""The check the crash and scale-out suites share: whatever crashed or ran twice,
the ledger holds each step of each extract exactly once."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from justering.model.meeting import Meeting
from support.cluster import EventRow

__all__ = ["EXTRACT_STEPS", "assert_each_step_once"]

Step = tuple[str, str | None]
"""An event's kind and the signer's slot (None for steps no signer takes)."""

EXTRACT_STEPS: tuple[Step, ...] = (
    ("drafted", None),
    ("signed", "chair-0"),
    ("signed", "adjuster-0"),
    ("signed", "adjuster-1"),
    ("certified", "certifier-0"),
    ("archived", None),
)
"""The steps of an extract of a meeting with two adjusters, from draft to archive."""


def assert_each_step_once(
    events: Iterable[EventRow], meeting: Meeting, steps: Iterable[Step] = EXTRACT_STEPS
) -> None:
    """Every paragraph of ``meeting`` has an extract, all of whose events are of its
    first version, and each of ``steps`` happened to it exactly once."""
    by_paragraph: defaultdict[int, Counter[Step]] = defaultdict(Counter)
    for event in events:
        assert event.version == 1, event
        by_paragraph[event.paragraph][(event.kind, event.slot)] += 1
    assert sorted(by_paragraph) == [p.number for p in meeting.paragraphs]
    once = dict.fromkeys(steps, 1)
    for paragraph, counts in by_paragraph.items():
        assert {step: counts[step] for step in once} == once, (paragraph, counts)
