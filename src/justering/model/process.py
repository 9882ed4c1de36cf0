"""The legal process of one extract, as one table every layer reads: its statuses,
whose turn each is, what a signature moves it to, what may be redrafted, and
what each is called in Swedish.

An extract moves ``awaiting_chair`` → ``awaiting_adjusters`` → ``awaiting_certifier``
(the justering is complete and announced) → ``certified`` → ``archived``. While the
justering is open (chair or adjusters) a signer may decline it: ``declined``, back
with the secretary until a redraft makes the next version, ``awaiting_chair``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from justering.model.roles import Role
from justering.model.trail import EventKind

__all__ = [
    "SIGNATURE_EVENTS",
    "ExtractStatus",
    "Stage",
    "status_after_signature",
]


class ExtractStatus(StrEnum):
    """Where an extract stands; the value is stored in the ledger and shown in JSON."""

    AWAITING_CHAIR = "awaiting_chair"
    AWAITING_ADJUSTERS = "awaiting_adjusters"
    AWAITING_CERTIFIER = "awaiting_certifier"
    CERTIFIED = "certified"
    ARCHIVED = "archived"
    DECLINED = "declined"

    @property
    def stage(self) -> Stage:
        """This status's row of the process table."""
        return _STAGES[self]

    @property
    def swedish(self) -> str:
        """The status as a secretary or archivist reads it."""
        return self.stage.swedish

    @property
    def signing_role(self) -> Role | None:
        """Whose turn it is to sign, or None when no one signs in this status."""
        return self.stage.signing_role

    @property
    def in_justering(self) -> bool:
        """Waiting for the chair or the adjusters: what the justering deadline concerns."""
        return self.signing_role in (Role.CHAIR, Role.ADJUSTER)

    @property
    def redraftable(self) -> bool:
        """Whether a redraft may replace the current version. A justering that is
        complete (announced) is not redrafted: that would be a new decision."""
        return self.stage.redraftable

    @classmethod
    def awaiting(cls, role: Role) -> ExtractStatus:
        """The status in which ``role`` signs."""
        return next(status for status, stage in _STAGES.items() if stage.signing_role is role)

    @classmethod
    def in_justering_values(cls) -> tuple[ExtractStatus, ...]:
        return tuple(status for status in cls if status.in_justering)


@dataclass(frozen=True)
class Stage:
    """One row of the process table."""

    swedish: str
    signing_role: Role | None = None
    redraftable: bool = False


_STAGES: dict[ExtractStatus, Stage] = {
    ExtractStatus.AWAITING_CHAIR: Stage("väntar på ordföranden", Role.CHAIR, redraftable=True),
    ExtractStatus.AWAITING_ADJUSTERS: Stage("väntar på justerare", Role.ADJUSTER, redraftable=True),
    ExtractStatus.AWAITING_CERTIFIER: Stage("väntar på utdragsbestyrkande", Role.CERTIFIER),
    ExtractStatus.CERTIFIED: Stage("bestyrkt"),
    ExtractStatus.ARCHIVED: Stage("arkiverat"),
    ExtractStatus.DECLINED: Stage("avböjt, åter hos sekreteraren", redraftable=True),
}

SIGNATURE_EVENTS = frozenset({EventKind.SIGNED, EventKind.CERTIFIED})
"""The trail events that are signatures (the certifier's is ``certified``)."""


def status_after_signature(status: ExtractStatus, *, all_adjusters_signed: bool) -> ExtractStatus:
    """Where a signature in ``status`` moves the extract. Adjusters sign in parallel:
    the extract waits for the certifier once every adjuster has signed."""
    if status is ExtractStatus.AWAITING_CHAIR:
        return ExtractStatus.AWAITING_ADJUSTERS
    if status is ExtractStatus.AWAITING_ADJUSTERS:
        return ExtractStatus.AWAITING_CERTIFIER if all_adjusters_signed else status
    if status is ExtractStatus.AWAITING_CERTIFIER:
        return ExtractStatus.CERTIFIED
    raise ValueError(f"no one signs an extract that is {status.value}")
