"""What the e-mails say: each kind names what its reader needs, and its plain-text
and HTML alternatives say the same thing (composed once from the same blocks)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re

import pytest

from justering.mail.compose import ExtractLine, MeetingHeader, Message, immediate_first
from justering.mail.messages import HeldNotice, SignedLine, SigningReceiptMail, SigningRequest
from justering.mail.notices import DeclineNotice, JusteringNotice, Overdue, OverdueNotice
from justering.model.process import DocumentKind
from justering.model.roles import Person, Role

DATE = dt.date(2014, 8, 19)
LINES = (
    ExtractLine(94, "KFKS 2012/577-001", "Styrning <och> ledning"),
    ExtractLine(97, None, "Yttrande över väg 222", immediate=True),
)
PROTOCOL = ExtractLine(0, None, "§ 94–97", kind=DocumentKind.PROTOCOL)
IMMEDIATE = ExtractLine(0, None, "§ 97", True, DocumentKind.IMMEDIATE_PROTOCOL)
MEETING = MeetingHeader(
    "nacka-ksau-2014-08-19", "Nacka kommun", "Kommunstyrelsens arbetsutskott", DATE
)


def _request(days_left: int | None = None, role: Role = Role.ADJUSTER) -> SigningRequest:
    justering = role is not Role.CERTIFIER
    return SigningRequest(
        to=Person("Rolf Wasteson", "rolf@nacka.example"),
        role=role,
        meeting=MEETING,
        link="http://justering.test/s/" + "a" * 43,
        expires_at=dt.datetime(2014, 9, 9, 12, tzinfo=dt.UTC),
        deadline=dt.date(2014, 9, 2) if justering else None,
        extracts=immediate_first([*LINES, PROTOCOL, IMMEDIATE] if justering else LINES),
        days_left=days_left,
    )


MESSAGES: dict[str, Message] = {
    "request": _request(),
    "reminder": _request(days_left=1),
    "certifier": _request(role=Role.CERTIFIER),
    "receipt": SigningReceiptMail(
        to=Person("Rolf Wasteson", "rolf@nacka.example"),
        role=Role.ADJUSTER,
        meeting=MEETING,
        signed_at=dt.datetime(2014, 8, 20, 9, 30, tzinfo=dt.UTC),
        items=tuple(SignedLine(line, f"{i}" * 64) for i, line in enumerate(LINES)),
    ),
    "declined": DeclineNotice(
        to=Person("Lena Sekreterare", "lena@nacka.example"),
        declined_by="Rolf Wasteson",
        declined_role=Role.ADJUSTER,
        meeting=MEETING,
        extract=LINES[0],
        version=1,
        comment="Andra att-satsen saknas.\n<b>Rätta</b> den.",
        redraft_link="http://justering.test/r/" + "b" * 43,
        expires_at=dt.datetime(2014, 9, 9, 12, tzinfo=dt.UTC),
    ),
    "overdue": OverdueNotice(
        to=Person("Lena Sekreterare", "lena@nacka.example"),
        meeting=MEETING,
        overdue=(
            Overdue(PROTOCOL, "justerare Rolf Wasteson", dt.date(2014, 9, 2)),
            Overdue(LINES[0], "justerare Rolf Wasteson", dt.date(2014, 9, 2)),
        ),
    ),
    "held": HeldNotice(
        to=Person("Mats Gerdau", "mats@nacka.example"),
        meeting=MEETING,
        declined=LINES[0],
        declined_by="Rolf Wasteson",
        protocols=(PROTOCOL,),
    ),
    "justered": JusteringNotice(
        to=Person("Lena Sekreterare", "lena@nacka.example"),
        meeting=MEETING,
        protocol=PROTOCOL,
        justered_on=dt.date(2014, 9, 4),
        announced_on=dt.date(2014, 9, 4),
        appeal_deadline=dt.date(2014, 9, 25),
        kept_at="Kommunstyrelsens kansli, Nacka stadshus",
        justering_deadline=dt.date(2014, 9, 2),
        late=True,
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
    # the omedelbar justering first (its protocol, its paragraph), then the protocol
    text = reminder.text()
    order = ["Protokollet över", "§ 97", "Protokollet  § 94–97", "§ 94  KFKS"]
    assert [text.index(what) for what in order] == sorted(text.index(what) for what in order)


def test_a_request_to_sign_reads_as_swedish() -> None:
    request = MESSAGES["request"]
    assert request.subject() == (
        "Omedelbar justering – Att signera som justerare: 2 protokoll och 2 protokollsutdrag, "
        "Kommunstyrelsens arbetsutskott 2014-08-19"
    )
    text = request.text()
    assert "Kommunstyrelsens arbetsutskott i Nacka kommun sammanträdde 2014-08-19." in text
    assert "Du signerar protokollet och utdragen ur det på en gång" in text
    assert "Länken är personlig och gäller till 2014-09-09 14:00." in text  # Swedish time


def test_the_certifier_is_asked_to_certify_not_to_justera() -> None:
    """The certifier certifies ("för utdragsbestyrkande"): no "Omedelbar justering"
    in front, no justering deadline, and the act is not used as a person's role."""
    request = MESSAGES["certifier"]
    assert request.subject() == (
        "Att signera för utdragsbestyrkande: 2 protokollsutdrag, "
        "Kommunstyrelsens arbetsutskott 2014-08-19"
    )
    text = request.text()
    assert "Protokollet är justerat." in text and "för utdragsbestyrkande" in text
    assert "Sista dag för justering" not in text
    assert "som utdragsbestyrkande" not in text.lower()


def test_every_from_reads_as_swedish() -> None:
    """ "… från X, Y, sammanträdde …" was ungrammatical: a meeting is named after "från"
    as a noun phrase."""
    for name, message in MESSAGES.items():
        text = message.text()
        assert "från Kommunstyrelsens" not in text, name
        assert ", sammanträdde" not in text, name
    assert "från sammanträdet 2014-08-19 med Kommunstyrelsens arbetsutskott i Nacka kommun" in (
        MESSAGES["receipt"].text()
    )


def test_the_receipt_lists_every_document_digest() -> None:
    receipt = MESSAGES["receipt"].text()
    assert "0" * 64 in receipt and "1" * 64 in receipt
    assert "2014-08-20 11:30 CEST" in receipt  # Swedish summer time, UTC+2
    assert "Har du inte signerat detta själv?" in receipt
    assert "PAdES" not in receipt and "elektronisk underskrift" in receipt


def test_the_decline_notice_quotes_the_comment_and_both_ways_to_redraft() -> None:
    notice = MESSAGES["declined"].text()
    assert "  > Andra att-satsen saknas." in notice
    assert "http://justering.test/r/" + "b" * 43 in notice
    assert "justering redraft nacka-ksau-2014-08-19 94 --text" in notice
    assert MESSAGES["declined"].subject().startswith("Avböjt: § 94 behöver ändras")


def test_the_overdue_notice_names_whom_each_extract_waits_for() -> None:
    notice = MESSAGES["overdue"].text()
    assert "Sista dagen för justering har passerat" in notice
    assert "§ 94: sista dag 2014-09-02, väntar på justerare Rolf Wasteson" in notice
    assert "Protokollet: sista dag 2014-09-02, väntar på justerare Rolf Wasteson" in notice
    assert "5 kap. 69 § kommunallagen" in notice
    assert MESSAGES["overdue"].subject().startswith("Justeringen är försenad: 2 dokument")


def test_the_signers_hear_that_the_protocol_waits_for_a_correction() -> None:
    notice = MESSAGES["held"]
    assert notice.subject().startswith("Protokollet väntar: § 94 ska rättas")
    text = notice.text()
    assert "Rolf Wasteson har avböjt att signera § 94" in text
    assert "Protokollet kan inte justeras" in text
    assert "du får en ny länk" in text


def test_the_secretary_hears_of_the_justering_and_that_it_was_late() -> None:
    notice = MESSAGES["justered"]
    assert notice.subject() == (
        "Protokollet är justerat (för sent): Kommunstyrelsens arbetsutskott 2014-08-19"
    )
    text = notice.text()
    assert "Det är justerat 2014-09-04 och justeringen anslogs på anslagstavlan 2014-09-04" in text
    assert "Sista dag för överklagande: 2014-09-25" in text
    assert "Förvaringsplats enligt anslaget: Kommunstyrelsens kansli, Nacka stadshus." in text
    assert "efter sista dagen för justering, 2014-09-02 (5 kap. 69 § kommunallagen)" in text
    on_time = dataclasses.replace(notice, late=False)
    assert "för sent" not in on_time.subject() and "efter sista dagen" not in on_time.text()
