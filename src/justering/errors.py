"""Errors that carry their own diagnostics.

Every error raised on purpose by justering derives from :class:`JusteringError`.
Its message names what is wrong (the field, the line, the file, the §) in
English, for the command line and the operator's log. Errors a person meets
behind a link carry *what* went wrong in typed fields (:class:`LinkProblem`,
:class:`Refusal`); the web layer turns those into HTTP statuses and Swedish
pages, the command line into exit codes. No layer parses another's messages.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

__all__ = [
    "PROTOCOL_PARAGRAPH",
    "ArchiveError",
    "ConfigError",
    "IdentityError",
    "InputError",
    "JusteringError",
    "LinkError",
    "LinkProblem",
    "LoginProblem",
    "ManifestError",
    "NotFoundError",
    "ProtocolTextError",
    "Reason",
    "Refusal",
    "RefusedError",
    "SigningError",
    "TrailError",
    "WorkflowError",
]


class JusteringError(Exception):
    """Base of all justering errors; ``str(error)`` is the diagnostic text."""

    def diagnostics(self) -> str:
        """The text to show: what went wrong and, where known, what to do."""
        return str(self)

    def __reduce__(self) -> tuple[object, ...]:
        # Errors raised in a worker process come back whole: with their typed fields
        # (a refusal, a paragraph), which the default pickling of an exception with
        # keyword arguments loses.
        return (_rebuilt, (type(self), self.args, dict(self.__dict__)))


def _rebuilt(
    cls: type[JusteringError], args: tuple[object, ...], fields: dict[str, object]
) -> JusteringError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(fields)
    return error


class ConfigError(JusteringError):
    """The configuration or environment is unusable."""


class InputError(JusteringError):
    """Input from a meeting system is malformed: a manifest, or a protocol's text;
    names where, and the problem."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class ManifestError(InputError):
    """A meeting manifest is malformed, in its ``field``."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"manifest field '{field}'", problem)


class ProtocolTextError(InputError):
    """A protocol text export could not be parsed, at its ``line``."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        super().__init__(f"protocol text line {line}", problem)


class SigningError(JusteringError):
    """A signature could not be made (the TSA did not answer, a certificate field)."""


class TrailError(JusteringError):
    """The signature trail refused an event or found its chain broken."""


class ArchiveError(JusteringError):
    """The object store failed or returned something other than what was written."""


class NotFoundError(JusteringError):
    """Something asked for by its identifier is not in the ledger."""

    def __init__(self, what: str, key: object) -> None:
        self.what = what
        self.key = key
        super().__init__(f"no {what} {key}")


class Reason(StrEnum):
    """Why a request is refused, as a typed value: each member is its stable value (in
    logs, JSON and tests) and carries the English sentence the operator reads
    (``english``), as :class:`http.HTTPStatus` carries its phrase. The web layer gives
    each reason its HTTP status and Swedish sentence (``justering.web.refusals``)."""

    english: str

    def __new__(cls, value: str, english: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.english = english
        return member


class LinkProblem(Reason):
    """Why a link cannot be used."""

    INVALID = "invalid", "the link is not valid"
    """No such link (or a signer's link where a secretary's is expected)."""
    REVOKED = "revoked", "the link was revoked (the extract was declined or changed)"
    USED = "used", "the link has already been used"
    EXPIRED = "expired", "the link has expired"
    NOT_GRANTED = "not_granted", "the link does not grant that extract"
    REPLACED = "replaced", "the extract changed since the link was sent"
    """The extract was redrafted since the link was sent."""


PROTOCOL_PARAGRAPH = 0
"""The ``paragraph`` of an error about a protocol rather than one paragraph's extract
(a protocol's row has § 0)."""


def _where(paragraph: int | None) -> str:
    if paragraph is None:
        return ""
    return "the protocol: " if paragraph == PROTOCOL_PARAGRAPH else f"§ {paragraph}: "


class RefusedError(JusteringError):
    """A request refused for a typed ``reason``: ``paragraph`` says which extract it
    concerns (:data:`PROTOCOL_PARAGRAPH`: the protocol; None: none in particular),
    ``detail`` adds what is known (a status, the problems found)."""

    def __init__(self, reason: Reason, *, paragraph: int | None = None, detail: str = "") -> None:
        self.reason = reason
        self.paragraph = paragraph
        self.detail = detail
        more = f" ({detail})" if detail else ""
        super().__init__(_where(paragraph) + reason.english + more)


class LinkError(RefusedError):
    """A link cannot be used; ``problem`` says why."""

    def __init__(self, problem: LinkProblem, *, paragraph: int | None = None) -> None:
        self.problem = problem
        super().__init__(problem, paragraph=paragraph)


class Refusal(Reason):
    """Why the workflow refuses a step asked of it."""

    NOTHING_CHOSEN = "nothing_chosen", "no extract was chosen"
    ALREADY_SIGNED = "already_signed", "already signed by this signer"
    NOT_YOUR_TURN = "not_your_turn", "it is not this role's turn to sign"
    DECLINED = "declined", "declined: back with the secretary for a redraft"
    TAMPERED = "tampered", "the document was altered after it was stored or signed; not signed"
    CHANGED_WHILE_SIGNING = (
        "changed_while_signing",
        "the extracts changed while they were signed; try again",
    )
    ALREADY_REDRAFTED = "already_redrafted", "already redrafted"
    JUSTERING_COMPLETE = (
        "justering_complete",
        "the justering is complete; it cannot be declined or redrafted",
    )
    """The protocol that justers the paragraph is justered: it can no longer be
    declined or redrafted."""
    COMMENT_MISSING = "comment_missing", "a comment is required"
    COMMENT_TOO_LONG = "comment_too_long", "the comment is too long"
    COMMENT_CONTROL_CHARACTERS = (
        "comment_control_characters",
        "the comment contains control characters",
    )
    JUSTERING_INCOMPLETE = "justering_incomplete", "the justering is not complete"
    NOT_CERTIFIED = "not_certified", "not certified"
    DOES_NOT_VALIDATE = "does_not_validate", "its PDF does not validate; not archived"
    CHANGED_WHILE_ARCHIVING = "changed_while_archiving", "it changed while it was archived; retry"
    PROTOCOL_HELD = "protocol_held", "the protocol waits for a declined paragraph to be redrafted"
    NOT_IN_PROTOCOL = "not_in_protocol", "the protocol does not show that paragraph"
    """A paragraph declined through a protocol must be one the protocol shows."""
    NOTHING_TO_SIGN = "nothing_to_sign", "nothing waits for this signer"
    """A link sent again to a signer with nothing waiting for them."""
    AWAITING_REDRAFT = "awaiting_redraft", "what this signer signs next waits for a redraft"
    """A link sent again while what the signer would sign waits for a redraft."""
    MEETING_FINISHED = "meeting_finished", "every signature of the meeting is made"
    """A link sent again for a meeting whose every signature is made."""
    NOT_DECLINED = "not_declined", "not declined; only a declined paragraph is redrafted"


class WorkflowError(RefusedError):
    """A step is refused: ``refusal`` says why."""

    def __init__(self, refusal: Refusal, *, paragraph: int | None = None, detail: str = "") -> None:
        self.refusal = refusal
        super().__init__(refusal, paragraph=paragraph, detail=detail)


class LoginProblem(Reason):
    """Why a login with e-legitimation (OpenID Connect) does not let anyone sign."""

    REQUIRED = "required", "a login with e-legitimation is required for this link"
    """No login (or an expired one) for this link; the body signs with e-legitimation."""
    PROVIDER_DOWN = "provider_down", "the identity provider did not answer"
    """The identity provider did not answer (or not sensibly); nothing was recorded."""
    CANCELLED = "cancelled", "the login was cancelled at the identity provider"
    """The provider sent the signer back without a login (cancelled, or refused)."""
    NOT_STARTED = "not_started", "no login was started for this answer (wrong or stale state)"
    ALREADY_USED = "already_used", "this login answer was already used"
    """The provider's answer was used once already (a replayed ``state``)."""
    CODE_REFUSED = "code_refused", "the identity provider refused the authorization code"
    """The provider refused the authorization code (replayed, expired, or not ours)."""
    INVALID_TOKEN = "invalid_token", "the ID token is not valid"
    """The ID token failed a check: signature, issuer, audience, expiry, nonce."""
    REPLAYED_TOKEN = "replayed_token", "the ID token was presented before"
    NOT_FRESH = "not_fresh", "the identity provider did not authenticate the signer anew"
    """The provider did not authenticate the signer anew for this login (``auth_time``)."""
    ASSURANCE_TOO_LOW = (
        "assurance_too_low",
        "the login's assurance level is below the body's minimum",
    )
    """The login's assurance level (``acr``) is below what the body requires."""
    WRONG_PERSON = "wrong_person", "the login is not the signer the link was sent to"
    NO_IDENTITY = "no_identity", "the ID token does not identify the person"
    CANNOT_MATCH = "cannot_match", "there is nothing to match the signer by"
    """Nothing to match the signer by: no personnummer in the manifest, and no e-mail
    claim configured."""


class IdentityError(RefusedError):
    """A login does not let anyone sign: ``problem`` says why, ``detail`` adds what is
    known for the operator's log (never a personal identity number)."""

    def __init__(self, problem: LoginProblem, *, detail: str = "") -> None:
        self.problem = problem
        super().__init__(problem, detail=detail)
