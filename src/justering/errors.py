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
    "Refusal",
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


class LinkProblem(StrEnum):
    """Why a link cannot be used."""

    INVALID = "invalid"
    """No such link (or a signer's link where a secretary's is expected)."""
    REVOKED = "revoked"
    USED = "used"
    EXPIRED = "expired"
    NOT_GRANTED = "not_granted"
    """The link does not grant the extract asked for."""
    REPLACED = "replaced"
    """The extract was redrafted since the link was sent."""


_LINK_TEXT = {
    LinkProblem.INVALID: "the link is not valid",
    LinkProblem.REVOKED: "the link was revoked (the extract was declined or changed)",
    LinkProblem.USED: "the link has already been used",
    LinkProblem.EXPIRED: "the link has expired",
    LinkProblem.NOT_GRANTED: "the link does not grant that extract",
    LinkProblem.REPLACED: "the extract changed since the link was sent",
}


PROTOCOL_PARAGRAPH = 0
"""The ``paragraph`` of an error about a protocol rather than one paragraph's extract
(a protocol's row has § 0)."""


def _where(paragraph: int | None) -> str:
    if paragraph is None:
        return ""
    return "the protocol: " if paragraph == PROTOCOL_PARAGRAPH else f"§ {paragraph}: "


class LinkError(JusteringError):
    """A link cannot be used; ``problem`` says why, ``paragraph`` where it concerns one
    (:data:`PROTOCOL_PARAGRAPH` for a protocol)."""

    def __init__(self, problem: LinkProblem, *, paragraph: int | None = None) -> None:
        self.problem = problem
        self.paragraph = paragraph
        super().__init__(_where(paragraph) + _LINK_TEXT[problem])


class Refusal(StrEnum):
    """Why the workflow refuses a step asked of it."""

    NOTHING_CHOSEN = "nothing_chosen"
    ALREADY_SIGNED = "already_signed"
    NOT_YOUR_TURN = "not_your_turn"
    DECLINED = "declined"
    """The extract was declined and is back with the secretary."""
    TAMPERED = "tampered"
    """The stored document or its earlier signatures were altered."""
    CHANGED_WHILE_SIGNING = "changed_while_signing"
    ALREADY_REDRAFTED = "already_redrafted"
    JUSTERING_COMPLETE = "justering_complete"
    """The protocol that justers the paragraph is justered: it can no longer be
    declined or redrafted."""
    COMMENT_MISSING = "comment_missing"
    COMMENT_TOO_LONG = "comment_too_long"
    COMMENT_CONTROL_CHARACTERS = "comment_control_characters"
    JUSTERING_INCOMPLETE = "justering_incomplete"
    NOT_CERTIFIED = "not_certified"
    DOES_NOT_VALIDATE = "does_not_validate"
    CHANGED_WHILE_ARCHIVING = "changed_while_archiving"
    PROTOCOL_HELD = "protocol_held"
    """The protocol waits for a declined paragraph's redraft: nobody signs it now."""
    NOT_IN_PROTOCOL = "not_in_protocol"
    """A paragraph declined through a protocol must be one the protocol shows."""
    NOTHING_TO_SIGN = "nothing_to_sign"
    """A link sent again to a signer with nothing waiting for them."""
    AWAITING_REDRAFT = "awaiting_redraft"
    """A link sent again while what the signer would sign waits for a redraft."""
    MEETING_FINISHED = "meeting_finished"
    """A link sent again for a meeting whose every signature is made."""
    NOT_DECLINED = "not_declined"
    """Only a declined paragraph is redrafted."""


_REFUSAL_TEXT = {
    Refusal.NOTHING_CHOSEN: "no extract was chosen",
    Refusal.ALREADY_SIGNED: "already signed by this signer",
    Refusal.NOT_YOUR_TURN: "it is not this role's turn to sign",
    Refusal.DECLINED: "declined: back with the secretary for a redraft",
    Refusal.TAMPERED: "the document was altered after it was stored or signed; not signed",
    Refusal.CHANGED_WHILE_SIGNING: "the extracts changed while they were signed; try again",
    Refusal.ALREADY_REDRAFTED: "already redrafted",
    Refusal.JUSTERING_COMPLETE: "the justering is complete; it cannot be declined or redrafted",
    Refusal.COMMENT_MISSING: "a comment is required",
    Refusal.COMMENT_TOO_LONG: "the comment is too long",
    Refusal.COMMENT_CONTROL_CHARACTERS: "the comment contains control characters",
    Refusal.JUSTERING_INCOMPLETE: "the justering is not complete",
    Refusal.NOT_CERTIFIED: "not certified",
    Refusal.DOES_NOT_VALIDATE: "its PDF does not validate; not archived",
    Refusal.CHANGED_WHILE_ARCHIVING: "it changed while it was archived; retry",
    Refusal.PROTOCOL_HELD: "the protocol waits for a declined paragraph to be redrafted",
    Refusal.NOT_IN_PROTOCOL: "the protocol does not show that paragraph",
    Refusal.NOTHING_TO_SIGN: "nothing waits for this signer",
    Refusal.AWAITING_REDRAFT: "what this signer signs next waits for a redraft",
    Refusal.MEETING_FINISHED: "every signature of the meeting is made",
    Refusal.NOT_DECLINED: "not declined; only a declined paragraph is redrafted",
}


class WorkflowError(JusteringError):
    """A step is refused: ``refusal`` says why, ``paragraph`` which extract (or
    :data:`PROTOCOL_PARAGRAPH`, the protocol), and ``detail`` adds what is known (a
    status, the problems found)."""

    def __init__(self, refusal: Refusal, *, paragraph: int | None = None, detail: str = "") -> None:
        self.refusal = refusal
        self.paragraph = paragraph
        self.detail = detail
        more = f" ({detail})" if detail else ""
        super().__init__(_where(paragraph) + _REFUSAL_TEXT[refusal] + more)


class LoginProblem(StrEnum):
    """Why a login with e-legitimation (OpenID Connect) does not let anyone sign."""

    REQUIRED = "required"
    """No login (or an expired one) for this link; the body signs with e-legitimation."""
    PROVIDER_DOWN = "provider_down"
    """The identity provider did not answer (or not sensibly); nothing was recorded."""
    CANCELLED = "cancelled"
    """The provider sent the signer back without a login (cancelled, or refused)."""
    NOT_STARTED = "not_started"
    """No login was started in this browser for this answer (a wrong or stale ``state``)."""
    ALREADY_USED = "already_used"
    """The provider's answer was used once already (a replayed ``state``)."""
    CODE_REFUSED = "code_refused"
    """The provider refused the authorization code (replayed, expired, or not ours)."""
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (a reason, not a secret)
    """The ID token failed a check: signature, issuer, audience, expiry, nonce."""
    REPLAYED_TOKEN = "replayed_token"  # noqa: S105
    """The ID token was presented before."""
    NOT_FRESH = "not_fresh"
    """The provider did not authenticate the signer anew for this login (``auth_time``)."""
    ASSURANCE_TOO_LOW = "assurance_too_low"
    """The login's assurance level (``acr``) is below what the body requires."""
    WRONG_PERSON = "wrong_person"
    """The login is someone else's than the signer the link was sent to."""
    NO_IDENTITY = "no_identity"
    """The ID token lacks the claim that identifies the person."""
    CANNOT_MATCH = "cannot_match"
    """Nothing to match the signer by: no personnummer in the manifest, and no e-mail
    claim configured."""


_LOGIN_TEXT = {
    LoginProblem.REQUIRED: "a login with e-legitimation is required for this link",
    LoginProblem.PROVIDER_DOWN: "the identity provider did not answer",
    LoginProblem.CANCELLED: "the login was cancelled at the identity provider",
    LoginProblem.NOT_STARTED: "no login was started for this answer (wrong or stale state)",
    LoginProblem.ALREADY_USED: "this login answer was already used",
    LoginProblem.CODE_REFUSED: "the identity provider refused the authorization code",
    LoginProblem.INVALID_TOKEN: "the ID token is not valid",
    LoginProblem.REPLAYED_TOKEN: "the ID token was presented before",
    LoginProblem.NOT_FRESH: "the identity provider did not authenticate the signer anew",
    LoginProblem.ASSURANCE_TOO_LOW: "the login's assurance level is below the body's minimum",
    LoginProblem.WRONG_PERSON: "the login is not the signer the link was sent to",
    LoginProblem.NO_IDENTITY: "the ID token does not identify the person",
    LoginProblem.CANNOT_MATCH: "there is nothing to match the signer by",
}


class IdentityError(JusteringError):
    """A login does not let anyone sign: ``problem`` says why, ``detail`` adds what is
    known for the operator's log (never a personal identity number)."""

    def __init__(self, problem: LoginProblem, *, detail: str = "") -> None:
        self.problem = problem
        self.detail = detail
        more = f" ({detail})" if detail else ""
        super().__init__(_LOGIN_TEXT[problem] + more)
