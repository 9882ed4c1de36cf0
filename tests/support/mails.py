"""A message to send in the mail tests: a signing request whose subject and body hold
non-ASCII text, markup-like characters and a link with a query."""

from __future__ import annotations

import datetime as dt

from justering.mail.compose import ExtractLine, MeetingHeader
from justering.mail.messages import SigningRequest
from justering.model.roles import Person, Role

__all__ = ["SHORT_LINK", "signing_request"]

SHORT_LINK = "http://justering.test/s/abcdefghijklmnopqrstuvwxyz?x=1&y=2"


def signing_request(link: str = SHORT_LINK) -> SigningRequest:
    """Åsa Öberg, adjuster, asked to sign §§ 97 (omedelbar justering) and 98."""
    return SigningRequest(
        to=Person("Åsa Öberg", "asa.oberg@nacka.example"),
        role=Role.ADJUSTER,
        meeting=MeetingHeader(
            "nacka-ksau-2014-08-19",
            "Nacka kommun",
            "Kommunstyrelsens arbetsutskott",
            dt.date(2014, 8, 19),
        ),
        link=link,
        expires_at=dt.datetime(2014, 9, 9, 12, 0, tzinfo=dt.UTC),
        deadline=dt.date(2014, 9, 2),
        extracts=(
            ExtractLine(97, "KFKS 2014/233-311", "Yttrande över väg 222", immediate=True),
            ExtractLine(98, None, "Förslag <utkast> & beslut"),
        ),
    )
