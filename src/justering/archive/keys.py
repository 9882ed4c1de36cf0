"""Archive keys: where an extract's bundle lives, derived safely from its body,
meeting, diarienummer, § and version (diarienummer contain ``/`` and spaces); and
where a meeting's protocol lives, beside its extracts, by its version.

The meeting (its key in the ledger, scoped to the meeting system that started it)
and the version are part of the key, so two meetings never share a bundle: not a
corrected manifest under a new meeting id, not another client's meeting with the
same body, date, dnr and §, not version 2 of a redrafted extract.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata

from justering.errors import ArchiveError

__all__ = ["PROTOCOLS", "check_key", "check_prefix", "extract_prefix", "protocol_prefix"]

_MAX_KEY_BYTES = 1024  # S3's limit on a key
_MAX_SLUG = 60
_HASH_CHARS = 12
_SPECIAL_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L"}
)
# Values in these shapes map to a slug by "/" and " " -> "-" alone, and the mapping
# is one-to-one on each shape (the separators are fixed by the shape), so no hash is
# needed. Every other value gets a hash of its exact text appended.
_PLAIN_BODY = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
_PLAIN_DNR = re.compile(r"(?:[A-Z]+ )?[0-9]{4}/[0-9]+(?:-[0-9]+)*")
_PLAIN_MEETING = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_PLAIN_NAME = re.compile(r"[a-z]+(?:-[a-z]+)*")

PROTOCOLS = "protokoll"
"""The key segment under a meeting where its protocols live: no diarienummer's
segment is ever this word (those hold a number, end with a hash, or are
``utan-dnr``), so protocol and extract keys never meet."""


# --- keys ------------------------------------------------------------------------


def _slug(value: str, plain: re.Pattern[str], empty: str) -> str:
    """A readable, safe key segment for ``value``; one-to-one on distinct values."""
    if plain.fullmatch(value) and len(value) <= _MAX_SLUG:
        return value.replace("/", "-").replace(" ", "-")
    ascii_text = (
        unicodedata.normalize("NFKD", value.translate(_SPECIAL_LETTERS))
        .encode("ascii", "ignore")
        .decode("ascii")
    )
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-")[:_MAX_SLUG].strip("-")
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    # Hashed slugs contain a lower-case "h"; plain ones have no lower-case letters.
    return f"{slug or empty}-h{digest}"


def extract_prefix(
    body_code: str,
    meeting_date: dt.date,
    meeting_id: str,
    dnr: str | None,
    paragraph: int,
    version: int,
) -> str:
    """The archive prefix of one version of an extract, e.g.
    ``KSAU/2014/nacka-ksau-2014-08-19/KFKS-2012-577-001/2014-08-19-p94-v1``.

    Safe for any input: segments are ASCII letters, digits and ``-``, never empty,
    bounded in length; a value that had to change beyond ``/`` and space -> ``-``
    gets a short hash of its exact text, so different values never share a key.
    """
    if isinstance(paragraph, bool) or paragraph < 1:
        raise ArchiveError(f"paragraph number must be a positive integer, not {paragraph!r}")
    if isinstance(version, bool) or version < 1:
        raise ArchiveError(f"version must be a positive integer, not {version!r}")
    body = _slug(body_code, _PLAIN_BODY, "organ")
    meeting = _slug(meeting_id, _PLAIN_MEETING, "mote")
    dnr_part = "utan-dnr" if dnr is None else _slug(dnr, _PLAIN_DNR, "dnr")
    date = meeting_date.isoformat()
    return f"{body}/{meeting_date.year:04d}/{meeting}/{dnr_part}/{date}-p{paragraph}-v{version}"


def protocol_prefix(
    body_code: str, meeting_date: dt.date, meeting_id: str, name: str, version: int
) -> str:
    """The archive prefix of one version of a meeting's protocol, beside its extracts,
    e.g. ``KSAU/2014/nacka-ksau-2014-08-19/protokoll/2014-08-19-protokoll-v1``;
    ``name`` tells the protocol from the small protocol of the omedelbar justering
    (``protokoll-omedelbar``). Safe for any input, as :func:`extract_prefix`."""
    if isinstance(version, bool) or version < 1:
        raise ArchiveError(f"version must be a positive integer, not {version!r}")
    body = _slug(body_code, _PLAIN_BODY, "organ")
    meeting = _slug(meeting_id, _PLAIN_MEETING, "mote")
    document = _slug(name, _PLAIN_NAME, "protokoll")
    date = meeting_date.isoformat()
    return f"{body}/{meeting_date.year:04d}/{meeting}/{PROTOCOLS}/{date}-{document}-v{version}"


def check_key(key: str) -> str:
    """Refuse keys that could mean something else on a filesystem or to S3."""
    if not key or len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY_BYTES:
        raise ArchiveError(f"invalid archive key {key!r}: empty or longer than 1024 bytes")
    if "\\" in key or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in key):
        raise ArchiveError(f"invalid archive key {key!r}: backslash or control character")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise ArchiveError(
                f"invalid archive key {key!r}: empty segment or segment starting with '.'"
            )
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key with an optional trailing ``/``."""
    if prefix:
        check_key(prefix.removesuffix("/"))
    return prefix
