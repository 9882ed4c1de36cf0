"""What a refused request means to the person who made it: the HTTP status and
the Swedish sentence for each kind of domain error. The only place where errors
become statuses; pages and the API read it."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from justering.errors import (
    PROTOCOL_PARAGRAPH,
    InputError,
    JusteringError,
    LinkError,
    LinkProblem,
    LoginProblem,
    NotFoundError,
    Reason,
    Refusal,
    RefusedError,
    SigningError,
    WorkflowError,
)

__all__ = ["REFUSED", "Answer", "answer_for"]


REFUSED: tuple[type[JusteringError], ...] = (LinkError, WorkflowError, NotFoundError)
"""The errors that refuse what a request asks (the link's state, a step out of turn,
something that is not there): an error page that names whom to contact, no fault."""


@dataclass(frozen=True)
class Answer:
    """How the web app answers an error: a status and what a person reads."""

    status: int
    swedish: str


_STATUSES: dict[HTTPStatus, frozenset[Reason]] = {
    HTTPStatus.BAD_REQUEST: frozenset(
        {
            Refusal.NOTHING_CHOSEN,
            Refusal.COMMENT_MISSING,
            Refusal.COMMENT_TOO_LONG,
            Refusal.COMMENT_CONTROL_CHARACTERS,
            Refusal.NOT_IN_PROTOCOL,
            LoginProblem.NOT_STARTED,
        }
    ),
    HTTPStatus.UNAUTHORIZED: frozenset(
        {
            LoginProblem.REQUIRED,
            LoginProblem.CANCELLED,
            LoginProblem.CODE_REFUSED,
            LoginProblem.INVALID_TOKEN,
            LoginProblem.REPLAYED_TOKEN,
            LoginProblem.NOT_FRESH,
        }
    ),
    HTTPStatus.FORBIDDEN: frozenset(
        {
            LoginProblem.ASSURANCE_TOO_LOW,
            LoginProblem.WRONG_PERSON,
            LoginProblem.NO_IDENTITY,
            LoginProblem.CANNOT_MATCH,
        }
    ),
    HTTPStatus.NOT_FOUND: frozenset(
        {
            LinkProblem.INVALID,
            LinkProblem.NOT_GRANTED,
        }
    ),
    HTTPStatus.GONE: frozenset(
        {
            LinkProblem.REVOKED,
            LinkProblem.USED,
            LinkProblem.EXPIRED,
            LinkProblem.REPLACED,
        }
    ),
    HTTPStatus.SERVICE_UNAVAILABLE: frozenset(
        {
            LoginProblem.PROVIDER_DOWN,
        }
    ),
}
"""The status of each reason that is not a conflict with where things stand (409
Conflict, the rest): what was sent is incomplete (400), no valid login (401), a login
that may not sign (403), no such link (404), a link that no longer works (410), the
identity provider not answering (503)."""

_AGAIN = "Öppna länken i e-postmeddelandet och logga in igen."
_NOTHING_SIGNED = "Inget har signerats."
_SWEDISH: dict[Reason, str] = {
    LinkProblem.INVALID: "Länken är ogiltig.",
    LinkProblem.REVOKED: (
        "Länken har återkallats: utdraget har avböjts eller ändrats sedan den skickades, "
        "eller så har du fått en ny länk i ett senare e-postmeddelande."
    ),
    LinkProblem.USED: "Länken har redan använts.",
    LinkProblem.EXPIRED: "Länken har gått ut.",
    LinkProblem.NOT_GRANTED: "Länken gäller inte det utdraget.",
    LinkProblem.REPLACED: "{where} har ändrats sedan länken skickades; du får en ny länk.",
    Refusal.NOTHING_CHOSEN: "Markera minst ett utdrag att signera.",
    Refusal.ALREADY_SIGNED: "{where} är redan signerat av dig.",
    Refusal.NOT_YOUR_TURN: (
        "{where}: det är inte din tur att signera ännu. Du får ett meddelande när det är dags."
    ),
    Refusal.DECLINED: "{where} har avböjts och har gått tillbaka till sekreteraren för rättelse.",
    Refusal.TAMPERED: (
        "{where} signeras inte: dokumentet har ändrats efter att det sparades eller "
        "signerades. Kontakta nämndens sekreterare."
    ),
    Refusal.CHANGED_WHILE_SIGNING: "Utdragen ändrades under signeringen; försök igen.",
    Refusal.ALREADY_REDRAFTED: "{where} har redan fått en ny version.",
    Refusal.JUSTERING_COMPLETE: (
        "{where} kan inte längre avböjas eller rättas: protokollet är redan justerat."
    ),
    Refusal.COMMENT_MISSING: "Skriv en kommentar om vad som behöver ändras.",
    Refusal.COMMENT_TOO_LONG: "Kommentaren är för lång ({detail}).",
    Refusal.COMMENT_CONTROL_CHARACTERS: "Kommentaren innehåller otillåtna styrtecken.",
    Refusal.JUSTERING_INCOMPLETE: "{where}: justeringen är inte klar.",
    Refusal.NOT_CERTIFIED: "{where} är inte bestyrkt.",
    Refusal.DOES_NOT_VALIDATE: "{where} kan inte arkiveras: underskrifterna håller inte.",
    Refusal.CHANGED_WHILE_ARCHIVING: "{where} ändrades under arkiveringen; försök igen.",
    Refusal.PROTOCOL_HELD: (
        "Protokollet väntar på att en avböjd paragraf rättas; du får en ny länk när den "
        "rättade versionen är klar att signera."
    ),
    Refusal.NOT_IN_PROTOCOL: "Protokollet innehåller inte den paragrafen ({detail}).",
    Refusal.NOTHING_TO_SIGN: "{detail} har inget att signera just nu, så ingen ny länk skickades.",
    Refusal.AWAITING_REDRAFT: (
        "Ingen ny länk skickades till {detail}: det som ska signeras väntar på att en avböjd "
        "paragraf rättas. Rätta paragrafen först; länken skickas sedan av sig själv."
    ),
    Refusal.MEETING_FINISHED: (
        "Sammanträdet är färdigsignerat: alla underskrifter är gjorda, så ingen ny länk behövs."
    ),
    Refusal.NOT_DECLINED: "{where} är inte avböjd, så det finns inget att rätta.",
    LoginProblem.REQUIRED: (
        "Logga in med e-legitimation för att läsa och signera utdragen. Inloggningen gäller "
        "bara din länk, i den här webbläsaren, en kort stund."
    ),
    LoginProblem.PROVIDER_DOWN: (
        "Inloggningstjänsten för e-legitimation svarar inte just nu. Inget har sparats och "
        "länken gäller fortfarande: försök igen om en stund."
    ),
    LoginProblem.CANCELLED: f"Inloggningen avbröts. {_NOTHING_SIGNED} {_AGAIN}",
    LoginProblem.NOT_STARTED: (
        "Inloggningen kunde inte kopplas till din länk: den påbörjades i en annan webbläsare "
        f"eller för länge sedan. {_AGAIN}"
    ),
    LoginProblem.ALREADY_USED: f"Den här inloggningen har redan använts. {_AGAIN}",
    LoginProblem.CODE_REFUSED: (
        f"Inloggningstjänsten godtog inte inloggningen. {_NOTHING_SIGNED} {_AGAIN}"
    ),
    LoginProblem.INVALID_TOKEN: (
        f"Inloggningen kunde inte kontrolleras och godtas därför inte. {_NOTHING_SIGNED} {_AGAIN}"
    ),
    LoginProblem.REPLAYED_TOKEN: (
        f"Inloggningen godtas inte: beviset för den har använts förut. {_NOTHING_SIGNED} {_AGAIN}"
    ),
    LoginProblem.NOT_FRESH: (
        "För att signera behöver du legitimera dig på nytt, men inloggningstjänsten använde "
        f"en äldre inloggning. {_NOTHING_SIGNED} {_AGAIN}"
    ),
    LoginProblem.ASSURANCE_TOO_LOW: (
        "Din e-legitimation har inte den tillitsnivå som nämnden kräver för att signera. "
        f"{_NOTHING_SIGNED} Logga in med en e-legitimation med högre tillitsnivå, till exempel "
        "BankID eller Freja eID+."
    ),
    LoginProblem.WRONG_PERSON: (
        "Du är inloggad som någon annan än den som länken skickades till. "
        f"{_NOTHING_SIGNED} Försöket har antecknats. Har länken skickats vidare till dig? "
        "Be nämndens sekreterare om en egen länk."
    ),
    LoginProblem.NO_IDENTITY: (
        "Inloggningen talar inte om vem du är (inget personnummer), så vi kan inte "
        f"kontrollera att du är rätt person. {_NOTHING_SIGNED}"
    ),
    LoginProblem.CANNOT_MATCH: (
        "Vi kan inte kontrollera att du är rätt person: ditt personnummer saknas i "
        f"underlaget för sammanträdet. {_NOTHING_SIGNED}"
    ),
}
"""What the person who asked reads, for each reason: ``{where}`` is the extract or
the protocol concerned, ``{detail}`` what the error adds."""


_SIGNING_FAILED = (
    "Signeringen kunde inte göras just nu; inget har sparats och länken gäller "
    "fortfarande. Försök igen om en stund."
)


def answer_for(error: JusteringError) -> Answer:
    """The status and Swedish sentence for ``error``."""
    if isinstance(error, RefusedError):
        text = _fill(_SWEDISH[error.reason], error.paragraph, error.detail)
        return Answer(_status(error.reason), text)
    if isinstance(error, NotFoundError):
        return Answer(404, "Det som efterfrågades finns inte.")
    if isinstance(error, InputError):
        return Answer(422, error.diagnostics())
    if isinstance(error, SigningError):
        return Answer(503, _SIGNING_FAILED)
    return Answer(500, "Något gick fel hos oss. Försök igen om en stund.")


def _status(reason: Reason) -> HTTPStatus:
    for status, reasons in _STATUSES.items():
        if reason in reasons:
            return status
    return HTTPStatus.CONFLICT


def _fill(text: str, paragraph: int | None, detail: str) -> str:
    if paragraph is None:
        where = "Utdraget"
    elif paragraph == PROTOCOL_PARAGRAPH:
        where = "Protokollet"
    else:
        where = f"§ {paragraph}"
    return text.format(where=where, detail=detail)
