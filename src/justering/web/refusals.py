"""What a refused request means to the person who made it: the HTTP status and
the Swedish sentence for each kind of domain error. The only place where errors
become statuses; pages and the API read it."""

from __future__ import annotations

from dataclasses import dataclass

from justering.errors import (
    PROTOCOL_PARAGRAPH,
    JusteringError,
    LinkError,
    LinkProblem,
    ManifestError,
    NotFoundError,
    ProtocolTextError,
    Refusal,
    SigningError,
    WorkflowError,
)

__all__ = ["Answer", "answer_for"]


@dataclass(frozen=True)
class Answer:
    """How the web app answers an error: a status and what a person reads."""

    status: int
    swedish: str


_LINK: dict[LinkProblem, tuple[int, str]] = {
    LinkProblem.INVALID: (404, "Länken är ogiltig."),
    LinkProblem.REVOKED: (
        410,
        "Länken har återkallats: utdraget har avböjts eller ändrats sedan den skickades.",
    ),
    LinkProblem.USED: (410, "Länken har redan använts."),
    LinkProblem.EXPIRED: (410, "Länken har gått ut."),
    LinkProblem.NOT_GRANTED: (404, "Länken gäller inte det utdraget."),
    LinkProblem.REPLACED: (410, "{where} har ändrats sedan länken skickades; du får en ny länk."),
}

_REFUSAL: dict[Refusal, tuple[int, str]] = {
    Refusal.NOTHING_CHOSEN: (400, "Markera minst ett utdrag att signera."),
    Refusal.ALREADY_SIGNED: (409, "{where} är redan signerat av dig."),
    Refusal.NOT_YOUR_TURN: (
        409,
        "{where}: det är inte din tur att signera ännu. Du får ett meddelande när det är dags.",
    ),
    Refusal.DECLINED: (
        409,
        "{where} har avböjts och har gått tillbaka till sekreteraren för rättelse.",
    ),
    Refusal.TAMPERED: (
        409,
        "{where} signeras inte: dokumentet har ändrats efter att det sparades eller "
        "signerades. Kontakta nämndens sekreterare.",
    ),
    Refusal.CHANGED_WHILE_SIGNING: (409, "Utdragen ändrades under signeringen; försök igen."),
    Refusal.ALREADY_REDRAFTED: (409, "{where} har redan fått en ny version."),
    Refusal.JUSTERING_COMPLETE: (
        409,
        "{where} kan inte längre avböjas eller rättas: protokollet är redan justerat.",
    ),
    Refusal.COMMENT_MISSING: (400, "Skriv en kommentar om vad som behöver ändras."),
    Refusal.COMMENT_TOO_LONG: (400, "Kommentaren är för lång ({detail})."),
    Refusal.COMMENT_CONTROL_CHARACTERS: (400, "Kommentaren innehåller otillåtna styrtecken."),
    Refusal.JUSTERING_INCOMPLETE: (409, "{where}: justeringen är inte klar."),
    Refusal.NOT_CERTIFIED: (409, "{where} är inte bestyrkt."),
    Refusal.DOES_NOT_VALIDATE: (409, "{where} kan inte arkiveras: underskrifterna håller inte."),
    Refusal.CHANGED_WHILE_ARCHIVING: (409, "{where} ändrades under arkiveringen; försök igen."),
    Refusal.PROTOCOL_HELD: (
        409,
        "Protokollet väntar på att en avböjd paragraf rättas; du får en ny länk när den "
        "rättade versionen är klar att signera.",
    ),
    Refusal.NOT_IN_PROTOCOL: (400, "Protokollet innehåller inte den paragrafen ({detail})."),
}

_SIGNING_FAILED = (
    "Signeringen kunde inte göras just nu; inget har sparats och länken gäller "
    "fortfarande. Försök igen om en stund."
)


def answer_for(error: JusteringError) -> Answer:
    """The status and Swedish sentence for ``error``."""
    if isinstance(error, LinkError):
        status, text = _LINK[error.problem]
        return Answer(status, _fill(text, error.paragraph, ""))
    if isinstance(error, WorkflowError):
        status, text = _REFUSAL[error.refusal]
        return Answer(status, _fill(text, error.paragraph, error.detail))
    if isinstance(error, NotFoundError):
        return Answer(404, "Det som efterfrågades finns inte.")
    if isinstance(error, ManifestError | ProtocolTextError):
        return Answer(422, error.diagnostics())
    if isinstance(error, SigningError):
        return Answer(503, _SIGNING_FAILED)
    return Answer(500, "Något gick fel hos oss. Försök igen om en stund.")


def _fill(text: str, paragraph: int | None, detail: str) -> str:
    if paragraph is None:
        where = "Utdraget"
    elif paragraph == PROTOCOL_PARAGRAPH:
        where = "Protokollet"
    else:
        where = f"§ {paragraph}"
    return text.format(where=where, detail=detail)
