"""The signature trail: an append-only, hash-chained list of events per extract.

Each event carries the SHA-256 of the extract's document at that step and the
hash of the event before it, so removing, reordering or editing an event breaks
the chain. The trail is stored in the ledger (see :mod:`justering.ledger.schema`) and
archived as JSON next to the certified PDF; :func:`chain_problems` checks it
without any database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from justering.errors import TrailError

__all__ = [
    "GENESIS_HASH",
    "TRAIL_FORMAT",
    "EventKind",
    "TrailEvent",
    "chain_problems",
    "trail_from_json",
    "trail_to_json",
    "with_hash",
]

GENESIS_HASH = "0" * 64
TRAIL_FORMAT = "justering-trail/1"


class EventKind(StrEnum):
    DRAFTED = "drafted"
    NOTIFIED = "notified"
    VIEWED = "viewed"
    """The link was opened by some client (a browser, or a mail scanner that follows
    links): the trail says only that, with the client's User-Agent. That a person
    read and signed is what the ``signed`` event records."""
    SIGNED = "signed"
    DECLINED = "declined"
    REDRAFTED = "redrafted"
    CERTIFIED = "certified"
    ANNOUNCED = "announced"
    """A protocol's justering was announced on the anslagstavla (KL 8 kap. 12 §)."""
    JUSTERED = "justered"
    """On an extract's trail: the protocol that justers its paragraph is justered (the
    detail names that protocol: its reference, SHA-256 and archive key)."""
    HELD = "held"
    """On a protocol's trail: a paragraph was declined; nobody signs until its redraft."""
    TIMESTAMPED = "timestamped"
    """Validation data and a document timestamp were added (PAdES B-LTA)."""
    ARCHIVED = "archived"
    LOGIN_REFUSED = "login_refused"
    """A login with e-legitimation on the signer's link was refused (another person,
    too low an assurance level): nothing was signed. The detail names the identity
    provider, the ``acr``, the authentication time and why, never the person's number."""

    @property
    def swedish(self) -> str:
        """What the event is called in Swedish, as timelines show it."""
        return _SWEDISH[self]


_SWEDISH = {
    EventKind.DRAFTED: "utkast skapat",
    EventKind.NOTIFIED: "underrättad",
    EventKind.VIEWED: "länk öppnad",
    EventKind.SIGNED: "signerat",
    EventKind.DECLINED: "avböjt",
    EventKind.REDRAFTED: "nytt utkast",
    EventKind.CERTIFIED: "bestyrkt",
    EventKind.ANNOUNCED: "anslaget",
    EventKind.JUSTERED: "protokollet justerat",
    EventKind.HELD: "vilande",
    EventKind.TIMESTAMPED: "tidsstämplat",
    EventKind.ARCHIVED: "arkiverat",
    EventKind.LOGIN_REFUSED: "fel inloggning",
}


@dataclass(frozen=True)
class TrailEvent:
    """One event. ``hash`` covers every other field, ``prev_hash`` included."""

    extract: str
    """The document's stable reference: ``<meeting_id>/<paragraph>`` for an extract,
    ``<meeting_id>/protokoll`` (or ``/protokoll-omedelbar``) for a protocol."""
    seq: int
    kind: EventKind
    at: dt.datetime
    actor: str
    """The person's name, or ``system``."""
    actor_email: str | None
    role: str | None
    version: int
    document_sha256: str | None
    certificate_sha256: str | None
    detail: Mapping[str, str] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def content(self) -> dict[str, Any]:
        """The hashed fields, as plain JSON values."""
        data = asdict(self)
        data.pop("hash")
        data["kind"] = self.kind.value
        data["at"] = _format_time(self.at)
        data["detail"] = dict(self.detail)
        return data

    def computed_hash(self) -> str:
        return hashlib.sha256(_canonical(self.content())).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {**self.content(), "hash": self.hash}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _format_time(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise TrailError("trail times must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def with_hash(event: TrailEvent) -> TrailEvent:
    """The event with its ``hash`` filled in."""

    return replace(event, hash=event.computed_hash())


def chain_problems(events: Sequence[TrailEvent], *, expected_head: str | None = None) -> list[str]:
    """What is wrong with a trail's chain; empty when it holds. ``expected_head``,
    the hash the last event must have (the ledger keeps it), catches a cut tail."""
    problems: list[str] = []
    if not events:
        return ["the trail has no events"]
    previous = GENESIS_HASH
    extract = events[0].extract
    for position, event in enumerate(events, start=1):
        where = f"event {position} ({event.kind.value})"
        if event.extract != extract:
            problems.append(f"{where} belongs to extract {event.extract}, not {extract}")
        if event.seq != position:
            problems.append(f"{where} has sequence number {event.seq}, expected {position}")
        if event.prev_hash != previous:
            problems.append(f"{where} does not link to the event before it")
        if event.computed_hash() != event.hash:
            problems.append(f"{where} was altered: its hash does not match its content")
        previous = event.hash
    if expected_head is not None and previous != expected_head:
        problems.append(
            "the trail does not end where the ledger says it does "
            "(events were removed from its end, or added without the ledger)"
        )
    return problems


def trail_to_json(events: Sequence[TrailEvent]) -> bytes:
    document = {"format": TRAIL_FORMAT, "events": [event.to_json() for event in events]}
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


def trail_from_json(data: bytes) -> tuple[TrailEvent, ...]:
    """Parse an archived trail. Raises ``TrailError`` naming what is malformed."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TrailError(f"trail is not valid JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != TRAIL_FORMAT:
        raise TrailError(f"trail is not in format {TRAIL_FORMAT}")
    raw_events = document.get("events")
    if not isinstance(raw_events, list):
        raise TrailError("trail has no event list")
    events = []
    for position, raw in enumerate(raw_events, start=1):
        if not isinstance(raw, dict):
            raise TrailError(f"trail event {position} is not an object")
        try:
            events.append(
                TrailEvent(
                    extract=str(raw["extract"]),
                    seq=int(raw["seq"]),
                    kind=EventKind(raw["kind"]),
                    at=dt.datetime.fromisoformat(raw["at"]),
                    actor=str(raw["actor"]),
                    actor_email=raw["actor_email"],
                    role=raw["role"],
                    version=int(raw["version"]),
                    document_sha256=raw["document_sha256"],
                    certificate_sha256=raw["certificate_sha256"],
                    detail={str(k): str(v) for k, v in dict(raw["detail"]).items()},
                    prev_hash=str(raw["prev_hash"]),
                    hash=str(raw["hash"]),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise TrailError(f"trail event {position} is malformed: {error!r}") from None
        if events[-1].at.tzinfo is None:
            raise TrailError(f"trail event {position} has a time without a time zone")
    return tuple(events)
