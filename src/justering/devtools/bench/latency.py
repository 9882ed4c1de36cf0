"""Click → next message: when a signer's click leads to the next signer's message."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import httpx

from justering.devtools.bench.constants import POLL_SECONDS, WAIT_SECONDS
from justering.devtools.demo import link_in
from justering.devtools.signer_client import sign_everything
from justering.errors import ConfigError
from justering.mail.delivery import outbox_messages
from justering.model.meeting import Meeting
from justering.model.roles import Role

__all__ = [
    "NEXT_ROLE",
    "Click",
    "Outbox",
    "SentMessage",
    "click_latencies",
    "outbox_time",
    "percentile",
    "sign_through_page",
]


def percentile(values: Iterable[float], fraction: float) -> float:
    """The ``fraction`` (0–1) percentile, interpolating linearly between the closest
    ranks (numpy's default): p50 of 1, 2, 3, 4 is 2.5."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= fraction <= 1:
        raise ValueError(f"percentile fraction {fraction} is not within 0..1")
    position = fraction * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


# --- clicks and the messages they cause ---------------------------------------------------


@dataclass(frozen=True)
class Click:
    """A signer's signature POST: ``at`` (epoch seconds) is just before it was sent."""

    meeting_id: str
    role: Role
    at: float


@dataclass(frozen=True)
class SentMessage:
    """A request to sign in the outbox: ``at`` is when it was sent (epoch seconds)."""

    meeting_id: str
    role: Role
    at: float
    email: str
    link: str | None
    path: Path


NEXT_ROLE = {Role.CHAIR: Role.ADJUSTER, Role.ADJUSTER: Role.CERTIFIER}
"""Whose message a completed stage causes: the chair's click the adjusters', the
last adjuster's click the certifier's. The certifier's click causes none."""


def click_latencies(clicks: Sequence[Click], sent_messages: Sequence[SentMessage]) -> list[float]:
    """Seconds from each click that hands a meeting on to the next signers' first
    message for that meeting sent after it, in click order. Of several adjusters'
    clicks only the meeting's last one hands on. Raises ``ValueError`` for a
    click whose next message is missing."""
    last_adjuster: dict[str, float] = {}
    for click in clicks:
        if click.role is Role.ADJUSTER:
            last_adjuster[click.meeting_id] = max(
                click.at, last_adjuster.get(click.meeting_id, click.at)
            )
    latencies = []
    for click in sorted(clicks, key=lambda c: c.at):
        following = NEXT_ROLE.get(click.role)
        if following is None:
            continue
        if click.role is Role.ADJUSTER and click.at < last_adjuster[click.meeting_id]:
            continue
        sent = [
            sent.at
            for sent in sent_messages
            if sent.meeting_id == click.meeting_id
            and sent.role is following
            and sent.at >= click.at
        ]
        if not sent:
            raise ValueError(
                f"no {following.value} message for {click.meeting_id} after the "
                f"{click.role.value}'s click"
            )
        latencies.append(min(sent) - click.at)
    return latencies


def outbox_time(path: Path) -> float:
    """When an outbox message was sent: the UTC time that starts its file name
    (``20250101T120000123456-chair-….eml``), as epoch seconds."""
    stamp = path.name.partition("-")[0]
    try:
        moment = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(f"{path.name}: not an outbox file name (no time stamp)") from None
    return moment.timestamp()


def _recipient(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    addresses = getattr(message["To"], "addresses", ())
    return str(addresses[0].addr_spec).lower() if addresses else ""


class Outbox:
    """The signing requests that reach the outbox for the bench's own signers;
    messages that were there before the bench, receipts and strangers are skipped."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen = set(outbox_messages(directory))
        self.signers: dict[str, tuple[str, Role]] = {}
        self.sent_messages: list[SentMessage] = []

    def expect(self, meeting: Meeting) -> None:
        for role in (Role.CHAIR, Role.ADJUSTER, Role.CERTIFIER):
            for signer in meeting.signers(role):
                self.signers[signer.email.lower()] = (meeting.meeting_id, role)

    def poll(self) -> list[SentMessage]:
        new = []
        for path in outbox_messages(self.directory):
            if path in self.seen:
                continue
            self.seen.add(path)
            kind = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
            if kind not in {role.value for role in Role}:
                continue  # a receipt, a reminder, a sent to the secretary
            recipient = _recipient(path)
            owner = self.signers.get(recipient)
            if owner is None:
                continue
            meeting_id, role = owner
            new.append(
                SentMessage(meeting_id, role, outbox_time(path), recipient, link_in(path), path)
            )
        self.sent_messages.extend(new)
        return new

    def wait_for(
        self, wanted: Callable[[SentMessage], bool], count: int, what: str
    ) -> list[SentMessage]:
        """Poll until ``count`` sent_messages (seen before or now) satisfy ``wanted``."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            self.poll()
            found = [sent for sent in self.sent_messages if wanted(sent)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise ConfigError(f"bench: {what} did not arrive within {WAIT_SECONDS:.0f} s")
            time.sleep(POLL_SECONDS)


def sign_through_page(client: httpx.Client, sent: SentMessage) -> Click | None:
    """Act as the signer of ``sent`` through the real page and form (every extract
    it offers); the click's time is taken just before the POST. None if the link was
    already used."""
    if sent.link is None:
        raise ConfigError(f"bench: {sent.path.name} has no signer link")
    signed = sign_everything(client, sent.link)
    return None if signed is None else Click(sent.meeting_id, sent.role, signed.posted_at)
