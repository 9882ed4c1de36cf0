"""What a refused request means to the person who made it: the HTTP status and
the Swedish sentence for each kind of domain error. The only place where errors
become statuses; pages and the API read it."""

from __future__ import annotations

from dataclasses import dataclass

from justering.errors import (
    PROTOCOL_PARAGRAPH,
    IdentityError,
    InputError,
    JusteringError,
    LinkError,
    LinkProblem,
    LoginProblem,
    NotFoundError,
    Refusal,
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


_LINK: dict[LinkProblem, tuple[int, str]] = {
    LinkProblem.INVALID: (404, "Länken är ogiltig."),
    LinkProblem.REVOKED: (
        410,
        "Länken har återkallats: utdraget har avböjts eller ändrats sedan den skickades, "
        "eller så har du fått en ny länk i ett senare e-postmeddelande.",
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
    Refusal.NOTHING_TO_SIGN: (
        409,
        "{detail} har inget att signera just nu, så ingen ny länk skickades.",
    ),
    Refusal.AWAITING_REDRAFT: (
        409,
        "Ingen ny länk skickades till {detail}: det som ska signeras väntar på att en avböjd "
        "paragraf rättas. Rätta paragrafen först; länken skickas sedan av sig själv.",
    ),
    Refusal.MEETING_FINISHED: (
        409,
        "Sammanträdet är färdigsignerat: alla underskrifter är gjorda, så ingen ny länk behövs.",
    ),
    Refusal.NOT_DECLINED: (409, "{where} är inte avböjd, så det finns inget att rätta."),
}

_AGAIN = "Öppna länken i e-postmeddelandet och logga in igen."
_NOTHING_SIGNED = "Inget har signerats."
_LOGIN: dict[LoginProblem, tuple[int, str]] = {
    LoginProblem.REQUIRED: (
        401,
        "Logga in med e-legitimation för att läsa och signera utdragen. Inloggningen gäller "
        "bara din länk, i den här webbläsaren, en kort stund.",
    ),
    LoginProblem.PROVIDER_DOWN: (
        503,
        "Inloggningstjänsten för e-legitimation svarar inte just nu. Inget har sparats och "
        "länken gäller fortfarande: försök igen om en stund.",
    ),
    LoginProblem.CANCELLED: (401, f"Inloggningen avbröts. {_NOTHING_SIGNED} {_AGAIN}"),
    LoginProblem.NOT_STARTED: (
        400,
        "Inloggningen kunde inte kopplas till din länk: den påbörjades i en annan webbläsare "
        f"eller för länge sedan. {_AGAIN}",
    ),
    LoginProblem.ALREADY_USED: (409, f"Den här inloggningen har redan använts. {_AGAIN}"),
    LoginProblem.CODE_REFUSED: (
        401,
        f"Inloggningstjänsten godtog inte inloggningen. {_NOTHING_SIGNED} {_AGAIN}",
    ),
    LoginProblem.INVALID_TOKEN: (
        401,
        f"Inloggningen kunde inte kontrolleras och godtas därför inte. {_NOTHING_SIGNED} {_AGAIN}",
    ),
    LoginProblem.REPLAYED_TOKEN: (
        401,
        f"Inloggningen godtas inte: beviset för den har använts förut. {_NOTHING_SIGNED} {_AGAIN}",
    ),
    LoginProblem.NOT_FRESH: (
        401,
        "För att signera behöver du legitimera dig på nytt, men inloggningstjänsten använde "
        f"en äldre inloggning. {_NOTHING_SIGNED} {_AGAIN}",
    ),
    LoginProblem.ASSURANCE_TOO_LOW: (
        403,
        "Din e-legitimation har inte den tillitsnivå som nämnden kräver för att signera. "
        f"{_NOTHING_SIGNED} Logga in med en e-legitimation med högre tillitsnivå, till exempel "
        "BankID eller Freja eID+.",
    ),
    LoginProblem.WRONG_PERSON: (
        403,
        "Du är inloggad som någon annan än den som länken skickades till. "
        f"{_NOTHING_SIGNED} Försöket har antecknats. Har länken skickats vidare till dig? "
        "Be nämndens sekreterare om en egen länk.",
    ),
    LoginProblem.NO_IDENTITY: (
        403,
        "Inloggningen talar inte om vem du är (inget personnummer), så vi kan inte "
        f"kontrollera att du är rätt person. {_NOTHING_SIGNED}",
    ),
    LoginProblem.CANNOT_MATCH: (
        403,
        "Vi kan inte kontrollera att du är rätt person: ditt personnummer saknas i "
        f"underlaget för sammanträdet. {_NOTHING_SIGNED}",
    ),
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
    if isinstance(error, IdentityError):
        status, text = _LOGIN[error.problem]
        return Answer(status, text)
    if isinstance(error, NotFoundError):
        return Answer(404, "Det som efterfrågades finns inte.")
    if isinstance(error, InputError):
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
