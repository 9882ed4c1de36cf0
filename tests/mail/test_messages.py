"""What the e-mails say: each kind names what its reader needs, and its plain-text
and HTML alternatives say the same thing (composed once from the same blocks)."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from justering.mail.messages import (
    DeclineNotice,
    ExtractLine,
    MeetingHeader,
    Message,
    Overdue,
    OverdueNotice,
    SignedLine,
    SigningReceiptMail,
    SigningRequest,
    immediate_first,
)
from justering.model.roles import Person, Role

DATE = dt.date(2014, 8, 19)
LINES = (
    ExtractLine(94, "KFKS 2012/577-001", "Styrning <och> ledning"),
    ExtractLine(97, None, "Yttrande över väg 222", immediate=True),
)


def _request(days_left: int | None = None) -> SigningRequest:
    return SigningRequest(
        to=Person("Rolf Wasteson", "rolf@nacka.example"),
        role=Role.ADJUSTER,
        meeting=MeetingHeader("nacka-ksau-2014-08-19", "Nacka kommun", "KSAU", DATE),
        link="http://justering.test/s/" + "a" * 43,
        expires_at=dt.datetime(2014, 9, 9, 12, tzinfo=dt.UTC),
        deadline=dt.date(2014, 9, 2),
        extracts=immediate_first(LINES),
        days_left=days_left,
    )


MESSAGES: dict[str, Message] = {
    "request": _request(),
    "reminder": _request(days_left=1),
    "receipt": SigningReceiptMail(
        to=Person("Rolf Wasteson", "rolf@nacka.example"),
        role=Role.ADJUSTER,
        meeting=MeetingHeader("nacka-ksau-2014-08-19", "Nacka kommun", "KSAU", DATE),
        signed_at=dt.datetime(2014, 8, 20, 9, 30, tzinfo=dt.UTC),
        items=tuple(SignedLine(line, f"{i}" * 64) for i, line in enumerate(LINES)),
    ),
    "declined": DeclineNotice(
        to=Person("Lena Sekreterare", "lena@nacka.example"),
        declined_by="Rolf Wasteson",
        declined_role=Role.ADJUSTER,
        meeting=MeetingHeader("nacka-ksau-2014-08-19", "Nacka kommun", "KSAU", DATE),
        extract=LINES[0],
        version=1,
        comment="Andra att-satsen saknas.\n<b>Rätta</b> den.",
        redraft_link="http://justering.test/r/" + "b" * 43,
        expires_at=dt.datetime(2014, 9, 9, 12, tzinfo=dt.UTC),
    ),
    "overdue": OverdueNotice(
        to=Person("Lena Sekreterare", "lena@nacka.example"),
        meeting=MeetingHeader("nacka-ksau-2014-08-19", "Nacka kommun", "KSAU", DATE),
        deadline=dt.date(2014, 9, 2),
        overdue=(Overdue(LINES[0], "justerare Rolf Wasteson"),),
    ),
}


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"\s+", text) if w]


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_text_and_html_say_the_same(name: str) -> None:
    message = MESSAGES[name]
    text, page = message.text(), message.html()
    visible = html.unescape(re.sub(r"<[^>]+>", " ", page))
    for word in _words(text):
        assert word.lstrip(">") in visible, f"{name}: {word!r} missing from the HTML"
    assert "<b>" not in page  # what the sender wrote is escaped
    assert html.escape(message.subject()) in page
    assert page.startswith("<!DOCTYPE html>") and 'lang="sv"' in page


def test_the_reminder_says_so_and_when() -> None:
    reminder = MESSAGES["reminder"]
    assert reminder.subject().startswith("Påminnelse: Omedelbar justering – Att signera")
    assert "tiden för justering går ut i morgon" in reminder.text()
    assert reminder.kind == "reminder-adjuster" and MESSAGES["request"].kind == "adjuster"
    # immediate paragraphs first
    assert reminder.text().index("§ 97") < reminder.text().index("§ 94")


def test_the_receipt_lists_every_document_digest() -> None:
    receipt = MESSAGES["receipt"].text()
    assert "0" * 64 in receipt and "1" * 64 in receipt
    assert "2014-08-20 11:30" in receipt  # Swedish summer time, UTC+2
    assert "Har du inte signerat detta själv?" in receipt


def test_the_decline_notice_quotes_the_comment_and_both_ways_to_redraft() -> None:
    notice = MESSAGES["declined"].text()
    assert "  > Andra att-satsen saknas." in notice
    assert "http://justering.test/r/" + "b" * 43 in notice
    assert "justering redraft nacka-ksau-2014-08-19 94 --text" in notice
    assert MESSAGES["declined"].subject().startswith("Avböjt: § 94 behöver ändras")


def test_the_overdue_notice_names_whom_each_extract_waits_for() -> None:
    notice = MESSAGES["overdue"].text()
    assert "Sista dag för justering var 2014-09-02" in notice
    assert "§ 94: väntar på justerare Rolf Wasteson" in notice
