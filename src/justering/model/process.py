"""The legal process, as one table every layer reads: what a meeting signs (its
extracts and its protocols), their statuses, whose turn each is, what a signature
moves them to, what may be redrafted, and what each is called in Swedish.

A meeting signs two kinds of document (Kommunallagen 2017:725):

- **the protocol** (all its paragraphs, in order): justered when the chair and every
  adjuster have signed it (5 kap. 69 §), then announced on the anslagstavla
  (8 kap. 12 §) and archived. The paragraphs under omedelbar justering (5 kap. 70 §)
  are justered at once, as their own small protocol, announced on their own;
- **one extract per paragraph**: signed by the chair and the adjusters with the
  protocol, in the same action; once the protocol that justers its paragraph is
  justered, certified (utdragsbestyrkande) as a true copy of it, then archived.

An extract moves ``awaiting_chair`` → ``awaiting_adjusters`` → ``awaiting_protocol``
(signed, its protocol not yet justered) → ``awaiting_certifier`` → ``certified`` →
``archived``. A protocol moves ``awaiting_chair`` → ``awaiting_adjusters`` →
``justered`` (announced) → ``archived``. While a paragraph's justering is open a
signer may decline its extract: the extract is ``declined``, back with the secretary,
and every protocol holding the paragraph is ``held`` until the redraft, which makes
the next version of the extract and of those protocols, ``awaiting_chair`` again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from justering.model.roles import JUSTERING_ROLES, SIGNING_ORDER, Role
from justering.model.trail import EventKind

__all__ = [
    "SIGNATURE_EVENTS",
    "DocumentKind",
    "ExtractStatus",
    "Stage",
    "status_after_signature",
]


class DocumentKind(StrEnum):
    """What a signed document of a meeting is; the value is stored in the ledger."""

    EXTRACT = "extract"
    """A protocol extract (protokollsutdrag): one paragraph."""
    PROTOCOL = "protocol"
    """The meeting's protocol: every paragraph, in order."""
    IMMEDIATE_PROTOCOL = "immediate_protocol"
    """The paragraphs under omedelbar justering, justered as their own small protocol."""

    @property
    def is_protocol(self) -> bool:
        return self is not DocumentKind.EXTRACT

    @property
    def swedish(self) -> str:
        """What a signer, secretary or archivist calls it."""
        return _KIND_SWEDISH[self]

    @property
    def roles(self) -> tuple[Role, ...]:
        """Who signs it, in order: a protocol is justered, an extract also certified."""
        return JUSTERING_ROLES if self.is_protocol else SIGNING_ORDER

    @property
    def ref_suffix(self) -> str:
        """The last part of its stable reference ``<meeting_id>/<suffix>`` (an
        extract's is its § number)."""
        return _REF_SUFFIX[self]


_KIND_SWEDISH = {
    DocumentKind.EXTRACT: "protokollsutdrag",
    DocumentKind.PROTOCOL: "protokoll",
    DocumentKind.IMMEDIATE_PROTOCOL: "protokoll över omedelbart justerade paragrafer",
}

_REF_SUFFIX = {
    DocumentKind.EXTRACT: "",
    DocumentKind.PROTOCOL: "protokoll",
    DocumentKind.IMMEDIATE_PROTOCOL: "protokoll-omedelbar",
}


class ExtractStatus(StrEnum):
    """Where a signed document of a meeting (an extract or a protocol, see
    :class:`DocumentKind`) stands; the value is stored in the ledger and shown in JSON."""

    AWAITING_CHAIR = "awaiting_chair"
    AWAITING_ADJUSTERS = "awaiting_adjusters"
    AWAITING_PROTOCOL = "awaiting_protocol"
    """An extract signed by the chair and every adjuster, its protocol not yet justered."""
    AWAITING_CERTIFIER = "awaiting_certifier"
    CERTIFIED = "certified"
    JUSTERED = "justered"
    """A protocol signed by the chair and every adjuster, and announced."""
    ARCHIVED = "archived"
    DECLINED = "declined"
    HELD = "held"
    """A protocol with a declined paragraph: nobody signs it until the redraft."""

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
        """Whether a redraft may replace an extract's current version. A paragraph whose
        protocol is justered (announced) is not redrafted: that would be a new decision."""
        return self.stage.redraftable

    @property
    def to_archive(self) -> bool:
        """Complete: a certified extract, a justered protocol; the next step is the archive."""
        return self in (ExtractStatus.CERTIFIED, ExtractStatus.JUSTERED)

    @classmethod
    def awaiting(cls, role: Role) -> ExtractStatus:
        """The status in which ``role`` signs."""
        return next(status for status, stage in _STAGES.items() if stage.signing_role is role)

    @classmethod
    def in_justering_values(cls) -> tuple[ExtractStatus, ...]:
        return tuple(status for status in cls if status.in_justering)

    @classmethod
    def of_kind(cls, kind: DocumentKind) -> tuple[ExtractStatus, ...]:
        """The statuses a document of ``kind`` can be in."""
        family = _PROTOCOLS if kind.is_protocol else _EXTRACTS
        return tuple(status for status in cls if family in _STAGES[status].kinds)


_EXTRACTS, _PROTOCOLS = "extract", "protocol"


@dataclass(frozen=True)
class Stage:
    """One row of the process table."""

    swedish: str
    signing_role: Role | None = None
    redraftable: bool = False
    kinds: frozenset[str] = frozenset({_EXTRACTS, _PROTOCOLS})
    """Whether extracts, protocols or both pass through it."""


_ONLY_EXTRACTS = frozenset({_EXTRACTS})
_ONLY_PROTOCOLS = frozenset({_PROTOCOLS})

_STAGES: dict[ExtractStatus, Stage] = {
    ExtractStatus.AWAITING_CHAIR: Stage("väntar på ordföranden", Role.CHAIR, redraftable=True),
    ExtractStatus.AWAITING_ADJUSTERS: Stage("väntar på justerare", Role.ADJUSTER, redraftable=True),
    ExtractStatus.AWAITING_PROTOCOL: Stage(
        "signerat, väntar på att protokollet justeras", redraftable=True, kinds=_ONLY_EXTRACTS
    ),
    ExtractStatus.AWAITING_CERTIFIER: Stage(
        "väntar på utdragsbestyrkande", Role.CERTIFIER, kinds=_ONLY_EXTRACTS
    ),
    ExtractStatus.CERTIFIED: Stage("bestyrkt", kinds=_ONLY_EXTRACTS),
    ExtractStatus.JUSTERED: Stage("justerat och anslaget", kinds=_ONLY_PROTOCOLS),
    ExtractStatus.ARCHIVED: Stage("arkiverat"),
    ExtractStatus.DECLINED: Stage(
        "avböjt, åter hos sekreteraren", redraftable=True, kinds=_ONLY_EXTRACTS
    ),
    ExtractStatus.HELD: Stage("vilande: en paragraf har avböjts och rättas", kinds=_ONLY_PROTOCOLS),
}

SIGNATURE_EVENTS = frozenset({EventKind.SIGNED, EventKind.CERTIFIED})
"""The trail events that are signatures (the certifier's is ``certified``)."""


def status_after_signature(
    status: ExtractStatus, kind: DocumentKind, *, all_adjusters_signed: bool
) -> ExtractStatus:
    """Where a signature in ``status`` moves a document of ``kind``. Adjusters sign in
    parallel: once every adjuster has signed, a protocol is justered and an extract
    waits for the protocol that justers its paragraph (which, once justered, sends it
    on to the certifier: :mod:`justering.workflow.protocols`)."""
    if status is ExtractStatus.AWAITING_CHAIR:
        return ExtractStatus.AWAITING_ADJUSTERS
    if status is ExtractStatus.AWAITING_ADJUSTERS:
        if not all_adjusters_signed:
            return status
        return ExtractStatus.JUSTERED if kind.is_protocol else ExtractStatus.AWAITING_PROTOCOL
    if status is ExtractStatus.AWAITING_CERTIFIER and not kind.is_protocol:
        return ExtractStatus.CERTIFIED
    raise ValueError(f"no one signs a {kind.value} that is {status.value}")
