"""Generated meetings for the bench: N paragraphs of about a page each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from justering.devtools.bench.constants import PAGE_CHARACTERS
from justering.errors import ConfigError
from justering.model.manifest import load_sample_meeting, parse_manifest
from justering.model.meeting import Meeting, meeting_to_dict
from justering.model.minutes import Section, declares_immediate
from justering.model.roles import Person

__all__ = [
    "bench_meeting",
    "bench_paragraphs",
]


def _about_a_page(sections: Sequence[Section]) -> tuple[Section, ...]:
    """The leading sections of a sample paragraph up to about one page, leaving out
    any that declare omedelbar justering (bench paragraphs are justered normally)."""
    kept: list[Section] = []
    size = 0
    for section in sections:
        if declares_immediate([section]):
            continue
        length = len(section.text) + len(section.heading or "")
        if kept and size + length > PAGE_CHARACTERS:
            break
        kept.append(section)
        size += length
    return tuple(kept)


def bench_paragraphs(
    count: int,
    *,
    first: int = 1,
    series: int = 100,
    year: int = 2014,
    sample: Meeting | None = None,
) -> list[dict[str, Any]]:
    """``count`` manifest paragraphs (§ ``first`` …) of about one page each, cycling
    through the sample's paragraphs, each with its own diarienummer
    ``KFKS YEAR/SERIES-§``. (The archive keys extracts by body, date, diarienummer
    and §, so meetings of one body on one day need different § numbers, and runs
    in one home different series.)"""
    if count < 1:
        raise ConfigError(f"--extracts: expected at least 1, got {count}")
    bases = (sample or load_sample_meeting()).paragraphs
    paragraphs = []
    for index in range(count):
        base = bases[index % len(bases)]
        text = "\n\n".join(
            part
            for section in _about_a_page(base.sections)
            for part in (section.heading, section.text)
            if part
        )
        paragraphs.append(
            {
                "number": first + index,
                "dnr": f"KFKS {year}/{series}-{first + index}",
                "title": base.title,
                "text": text,
                "immediate": False,
            }
        )
    return paragraphs


def _tagged(person: Person, tag: str) -> Person:
    """The person with a plus-address unique to one bench meeting: ``a+tag@b``."""
    local, _, domain = person.email.partition("@")
    return Person(person.name, f"{local}+{tag}@{domain}")


def bench_meeting(
    meeting_id: str,
    paragraphs: int,
    *,
    first: int = 1,
    series: int = 100,
    adjusters: int = 1,
    tag: str,
    date: dt.date,
) -> Meeting:
    """A meeting like the sample's (Nacka KSAU), held on ``date``, with ``paragraphs``
    generated paragraphs from § ``first`` (see :func:`bench_paragraphs`), one or two
    adjusters, and signers addressed uniquely by ``tag`` (so that every message in
    the outbox names its meeting)."""
    sample = load_sample_meeting()
    second = Person("Christina Ståldal", "christina.staldal@nacka.example")
    people = [*sample.adjusters, second][:adjusters]
    document = meeting_to_dict(
        replace(
            sample,
            meeting_id=meeting_id,
            date=date,
            chair=_tagged(sample.chair, tag),
            adjusters=tuple(_tagged(person, tag) for person in people),
            certifier=_tagged(sample.certifier, tag),
        )
    )
    document["paragraphs"] = bench_paragraphs(
        paragraphs, first=first, series=series, year=date.year, sample=sample
    )
    return parse_manifest(document)
