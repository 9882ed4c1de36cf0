"""The meeting manifest: the input contract (DESIGN.md, "Meeting manifest").

Every refusal is a ``ManifestError`` whose ``field`` is a path into the
document such as ``adjusters[1].email`` or ``paragraphs[3].number`` (list
indexes count from 0), raised before anything else happens.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import email_validator

from justering.errors import ManifestError, ProtocolTextError
from justering.model.calendar import local_today
from justering.model.meeting import Body, Meeting
from justering.model.minutes import (
    MAX_PROTOCOL_TEXT_BYTES,
    MAX_TITLE_LENGTH,
    Paragraph,
    declares_immediate,
    parse_protocol_text,
    parse_sections,
)
from justering.model.personnummer import (
    IDENTITY_HASH,
    PersonalNumberError,
    normalise_personal_number,
)
from justering.model.roles import Person

__all__ = [
    "DOCUMENT",
    "MAX_MANIFEST_BYTES",
    "load_manifest",
    "load_sample_meeting",
    "parse_manifest",
    "parse_manifest_json",
]

MAX_MANIFEST_BYTES = 10 * 1024 * 1024
"""Largest manifest document accepted (UTF-8 bytes)."""

DOCUMENT = "(manifest)"
"""The ``field`` of errors about the document as a whole (not JSON, not an object)."""

_MEETING_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_BODY_CODE = re.compile(r"[^\W_](?:(?:[^\W_]|[ -]){0,18}[^\W_])?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TEXT_SOURCES = ("protocol_text", "protocol_text_inline", "paragraphs")
_FIELDS = frozenset(
    {"meeting_id", "municipality", "body", "date", "place", "chair", "adjusters", "certifier"}
    | set(_TEXT_SOURCES)
)
_PARAGRAPH_FIELDS = frozenset({"number", "dnr", "title", "text", "immediate"})
_PERSON_FIELDS = frozenset({"name", "email", "personal_number", "personal_number_hash"})
_MAX_LINE = MAX_TITLE_LENGTH
_NOT_IN_A_LINE = frozenset({"Cc", "Cs", "Zl", "Zp", "Cf"})
"""Unicode categories refused in one-line fields: controls (tab too), line separators,
and invisible formatting characters (bidi overrides such as U+202E, zero-width
spaces and joiners), which can make one name look like another."""
MAX_CERTIFICATE_NAME_BYTES = 64
"""What an X.509 certificate holds in a CN or O (RFC 5280 ub-common-name,
ub-organization-name), counted in UTF-8 bytes as ``cryptography`` does: signer
names and the municipality go into every signer's certificate."""


def parse_manifest(
    data: Any, *, base_dir: Path | None = None, today: dt.date | None = None
) -> Meeting:
    """Validate a decoded manifest. Raises ``ManifestError`` naming the field.

    ``protocol_text`` is a file path relative to ``base_dir``; with ``base_dir``
    ``None`` (the web API) it is refused in favour of ``protocol_text_inline``.
    A meeting dated after ``today`` (default: today in Sweden) is refused.
    """
    loader = None if base_dir is None else _file_loader(base_dir)
    return _parse(data, loader, today or local_today())


def parse_manifest_json(
    document: str | bytes, *, base_dir: Path | None = None, today: dt.date | None = None
) -> Meeting:
    """Decode and validate a manifest document (a request body or a file's content).

    Refuses documents over :data:`MAX_MANIFEST_BYTES`, invalid JSON (naming line
    and column), duplicate keys and ``NaN``/``Infinity``.
    """
    return parse_manifest(_decode(document), base_dir=base_dir, today=today)


def load_manifest(path: Path, *, today: dt.date | None = None) -> Meeting:
    """Read and validate a manifest file (JSON); ``protocol_text`` is relative to it."""
    path = Path(path)
    document = _read_bytes(path, MAX_MANIFEST_BYTES, DOCUMENT, "manifest file")
    return parse_manifest_json(document, base_dir=path.parent, today=today)


def load_sample_meeting() -> Meeting:
    """The sample meeting bundled with the package (Nacka KSAU, 19 August 2014)."""
    samples = resources.files("justering").joinpath("samples")

    def load(name: str) -> str:
        return samples.joinpath(name).read_text(encoding="utf-8")

    return _parse(_decode(samples.joinpath("meeting.json").read_bytes()), load, local_today())


# --- validation ------------------------------------------------------------------------------

_Loader = Callable[[str], str]
"""Reads the file a ``protocol_text`` names; raises ``ManifestError`` on failure."""


def _parse(data: Any, load_text: _Loader | None, today: dt.date) -> Meeting:
    obj = _object(data, DOCUMENT, _FIELDS, required=_FIELDS - set(_TEXT_SOURCES))
    meeting_id = _string(obj, "meeting_id", "meeting_id")
    if not _MEETING_ID.fullmatch(meeting_id):
        raise ManifestError(
            "meeting_id",
            "must be 1 to 100 characters of A-Z a-z 0-9 . _ - starting with a letter or digit",
        )
    body_obj = _object(obj["body"], "body", {"code", "name"})
    code = _string(body_obj, "code", "body.code")
    if not _BODY_CODE.fullmatch(code):
        raise ManifestError(
            "body.code", "must be a short code (up to 20 letters, digits, spaces, -) like 'KSAU'"
        )
    chair = _person(obj["chair"], "chair")
    adjusters = _adjusters(obj["adjusters"], chair)
    meeting = Meeting(
        meeting_id=meeting_id,
        municipality=_certificate_name(obj, "municipality", "municipality"),
        body=Body(code, _string(body_obj, "name", "body.name")),
        date=_date(obj["date"], today),
        place=_string(obj, "place", "place"),
        chair=chair,
        adjusters=adjusters,
        certifier=_person(obj["certifier"], "certifier"),
        paragraphs=_paragraphs(obj, load_text),
    )
    return meeting


def _object(
    value: Any,
    field: str,
    allowed: frozenset[str] | set[str],
    *,
    required: frozenset[str] | set[str] | None = None,
) -> dict[str, Any]:
    """``value`` as a JSON object with only ``allowed`` keys, all of ``required`` (default: all)."""
    if not isinstance(value, dict):
        raise ManifestError(field, f"must be a JSON object, not {_json_type(value)}")
    prefix = "" if field == DOCUMENT else f"{field}."
    for key in value:
        if key not in allowed:
            raise ManifestError(
                f"{prefix}{key}", f"unknown field; allowed: {', '.join(sorted(allowed))}"
            )
    for key in sorted(allowed if required is None else required):
        if key not in value:
            raise ManifestError(f"{prefix}{key}", "is missing")
    return value


def _string(obj: dict[str, Any], key: str, field: str) -> str:
    """A non-empty string of one line (at most 500 characters), NFC, stripped."""
    value = obj[key]
    if not isinstance(value, str):
        raise ManifestError(field, f"must be a string, not {_json_type(value)}")
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise ManifestError(field, "must not be empty")
    if len(value) > _MAX_LINE:
        raise ManifestError(field, f"is longer than {_MAX_LINE} characters")
    for char in value:
        if unicodedata.category(char) in _NOT_IN_A_LINE:
            name = unicodedata.name(char, "").lower() or "a control character"
            raise ManifestError(
                field,
                "must be one line of visible text: found U+"
                f"{ord(char):04X} ({name}), which is not allowed here",
            )
    return value


def _certificate_name(obj: dict[str, Any], key: str, field: str) -> str:
    """A one-line string that also fits in a certificate's CN or O."""
    value = _string(obj, key, field)
    size = len(value.encode("utf-8"))
    if size > MAX_CERTIFICATE_NAME_BYTES:
        raise ManifestError(
            field,
            f"is {size} bytes in UTF-8; a signer's certificate holds at most "
            f"{MAX_CERTIFICATE_NAME_BYTES} (X.509, RFC 5280)",
        )
    return value


def _email(obj: dict[str, Any], field: str) -> str:
    """One e-mail address (an addr-spec) and nothing else: no display name, no second
    address, no comment; ASCII (it goes into the certificate's subjectAltName)."""
    text = _string(obj, "email", field)
    try:
        email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=False, allow_display_name=False
        )
    except email_validator.EmailNotValidError as error:
        raise ManifestError(field, f"{text!r} is not one e-mail address: {error}") from None
    return text  # valid as written: kept as the meeting system wrote it


def _date(value: Any, today: dt.date) -> dt.date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ManifestError("date", f"must be a date as YYYY-MM-DD, not {json.dumps(value)}")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ManifestError("date", f"{value} is not a real date") from None
    if day > today:
        raise ManifestError(
            "date",
            f"{value} is in the future (today is {today.isoformat()} in Sweden): a meeting "
            "is sent once it has been held, and its protocol is justered after it "
            "(5 kap. 69 § kommunallagen)",
        )
    return day


def _person(value: Any, field: str) -> Person:
    obj = _object(value, field, _PERSON_FIELDS, required={"name", "email"})
    person = Person(_certificate_name(obj, "name", f"{field}.name"), _email(obj, f"{field}.email"))
    if "personal_number" in obj and "personal_number_hash" in obj:
        raise ManifestError(f"{field}.personal_number_hash", "give personal_number, not both")
    if "personal_number" in obj:
        number = obj["personal_number"]
        if not isinstance(number, str):
            raise ManifestError(
                f"{field}.personal_number", f"must be a string of digits, not {_json_type(number)}"
            )
        try:
            person = replace(person, personal_number=normalise_personal_number(number))
        except PersonalNumberError as error:  # its message never repeats the number
            raise ManifestError(f"{field}.personal_number", str(error)) from None
    if "personal_number_hash" in obj:  # the form the ledger keeps (meeting_to_dict)
        digest = obj["personal_number_hash"]
        if not isinstance(digest, str) or not IDENTITY_HASH.fullmatch(digest):
            raise ManifestError(
                f"{field}.personal_number_hash", "must be 64 lowercase hexadecimal digits"
            )
        person = replace(person, identity_hash=digest)
    return person


def _adjusters(value: Any, chair: Person) -> tuple[Person, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        raise ManifestError("adjusters", "must be a list of one or two people {name, email}")
    adjusters = tuple(_person(item, f"adjusters[{i}]") for i, item in enumerate(value))
    for i, person in enumerate(adjusters):
        if same := _same_person(person, chair):
            raise ManifestError(
                f"adjusters[{i}].{same}", "the chair cannot also be an adjuster (justerare)"
            )
    if len(adjusters) == 2 and (same := _same_person(*adjusters)):
        raise ManifestError(f"adjusters[1].{same}", "the two adjusters must be different people")
    return adjusters


def _same_person(a: Person, b: Person) -> str | None:
    """The field that makes ``a`` and ``b`` the same person, if one does."""
    if a.email.casefold() == b.email.casefold():
        return "email"
    if a.personal_number is not None and a.personal_number == b.personal_number:
        return "personal_number"
    return None


def _paragraphs(obj: dict[str, Any], load_text: _Loader | None) -> tuple[Paragraph, ...]:
    given = [key for key in _TEXT_SOURCES if key in obj]
    if len(given) != 1:
        problem = "is missing" if not given else f"conflicts with {', '.join(given[1:])}"
        raise ManifestError(
            given[0] if given else "protocol_text",
            f"{problem}: give exactly one of protocol_text (a file), "
            "protocol_text_inline (the text) or paragraphs (a list)",
        )
    source = given[0]
    if source == "paragraphs":
        return _paragraph_list(obj["paragraphs"])
    if source == "protocol_text":
        if load_text is None:
            raise ManifestError(
                "protocol_text",
                "a file path is not accepted here; send the text itself as protocol_text_inline",
            )
        name = obj["protocol_text"]
        if not isinstance(name, str) or not name.strip():
            raise ManifestError("protocol_text", "must be a file path (a non-empty string)")
        text, where = load_text(name), f"{name}, "
    else:
        value = obj["protocol_text_inline"]
        if not isinstance(value, str):
            raise ManifestError(
                "protocol_text_inline", f"must be a string, not {_json_type(value)}"
            )
        text, where = value, ""
    try:
        return parse_protocol_text(text)
    except ProtocolTextError as error:
        raise ManifestError(source, f"{where}line {error.line}: {error.problem}") from None


def _paragraph_list(value: Any) -> tuple[Paragraph, ...]:
    if not isinstance(value, list) or not value:
        raise ManifestError("paragraphs", "must be a non-empty list of paragraphs")
    paragraphs: list[Paragraph] = []
    seen: dict[int, int] = {}
    for i, item in enumerate(value):
        field = f"paragraphs[{i}]"
        obj = _object(item, field, _PARAGRAPH_FIELDS, required={"number", "title", "text"})
        number = obj["number"]
        if type(number) is not int or not 1 <= number <= 999_999:
            raise ManifestError(f"{field}.number", "must be a whole number from 1 (the § number)")
        if number in seen:
            raise ManifestError(
                f"{field}.number", f"duplicate § {number} (also paragraphs[{seen[number]}])"
            )
        seen[number] = i
        dnr = None if obj.get("dnr") is None else _string(obj, "dnr", f"{field}.dnr")
        title = _string(obj, "title", f"{field}.title")
        text = obj["text"]
        if not isinstance(text, str):
            raise ManifestError(f"{field}.text", f"must be a string, not {_json_type(text)}")
        try:
            sections = parse_sections(text)
        except ProtocolTextError as error:
            raise ManifestError(f"{field}.text", f"line {error.line}: {error.problem}") from None
        immediate = obj.get("immediate")
        if immediate is None:
            immediate = declares_immediate(sections)
        elif not isinstance(immediate, bool):
            raise ManifestError(f"{field}.immediate", "must be true or false")
        paragraphs.append(Paragraph(number, dnr, title, sections, immediate))
    return tuple(paragraphs)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- documents and files ---------------------------------------------------------------------


def _decode(document: str | bytes) -> Any:
    raw = (
        document.encode("utf-8", errors="surrogatepass") if isinstance(document, str) else document
    )
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            DOCUMENT, f"is {len(raw)} bytes; the limit is {MAX_MANIFEST_BYTES} bytes"
        )
    if isinstance(document, bytes):
        try:
            document = document.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ManifestError(
                DOCUMENT, f"is not UTF-8 (byte {error.start}): {error.reason}"
            ) from None
    try:
        return json.loads(
            document, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant
        )
    except json.JSONDecodeError as error:
        raise ManifestError(
            DOCUMENT, f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise ManifestError(DOCUMENT, "is nested too deeply") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ManifestError(DOCUMENT, f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ManifestError(DOCUMENT, f"{name} is not allowed in a manifest")


def _file_loader(base_dir: Path) -> _Loader:
    def load(name: str) -> str:
        path = base_dir / name
        raw = _read_bytes(path, MAX_PROTOCOL_TEXT_BYTES, "protocol_text", "protocol text file")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ManifestError(
                "protocol_text", f"{path} is not UTF-8 text (byte {error.start})"
            ) from None

    return load


def _read_bytes(path: Path, limit: int, field: str, what: str) -> bytes:
    """The content of ``path``, refusing a missing, unreadable or too large file."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ManifestError(field, f"{what} {path} is not a file")
        if size > limit:
            raise ManifestError(field, f"{what} {path} is {size} bytes; the limit is {limit} bytes")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ManifestError(field, f"{what} {path} does not exist") from None
    except OSError as error:
        raise ManifestError(field, f"cannot read {what} {path}: {error.strerror}") from None
    if len(data) > limit:
        raise ManifestError(field, f"{what} {path} is larger than the limit of {limit} bytes")
    return data
