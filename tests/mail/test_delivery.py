import datetime as dt
import email
import email.policy
from pathlib import Path

from justering.mail.compose import ExtractLine, MeetingHeader
from justering.mail.delivery import OutboxNotifier, outbox_messages
from justering.mail.messages import SigningRequest
from justering.model.roles import Person, Role


def _request(**changes: object) -> SigningRequest:
    values: dict[str, object] = {
        "to": Person("Mats Gerdau", "mats.gerdau@nacka.example"),
        "role": Role.CHAIR,
        "meeting": MeetingHeader(
            "nacka-ksau-2014-08-19",
            "Nacka kommun",
            "Kommunstyrelsens arbetsutskott",
            dt.date(2014, 8, 19),
        ),
        "link": "http://justering.test/s/abcdefghijklmnopqrstuvwxyz",
        "expires_at": dt.datetime(2014, 9, 9, 12, 0, tzinfo=dt.UTC),
        "deadline": dt.date(2014, 9, 2),
        "extracts": (
            ExtractLine(97, "KFKS 2014/233-311", "Yttrande över väg 222", immediate=True),
            ExtractLine(94, "KFKS 2012/577-001", "Styrning och ledning för öppenhet"),
            ExtractLine(96, None, "Information om mottagandet"),
        ),
    }
    values.update(changes)
    return SigningRequest(**values)  # type: ignore[arg-type]


def test_message_names_everything_a_signer_needs() -> None:
    request = _request()
    text = request.text()
    assert text.startswith("Hej Mats Gerdau,")
    assert "som ordförande" in text
    assert request.link in text.split()
    assert "Sista dag för justering: 2014-09-02" in text
    assert "2014-09-09 14:00" in text  # Swedish summer time
    assert "§ 94  KFKS 2012/577-001  Styrning och ledning för öppenhet" in text
    assert "§ 96  Information om mottagandet" in text
    assert "§ 97  KFKS 2014/233-311  Yttrande över väg 222  (omedelbar justering)" in text
    assert request.subject() == (
        "Omedelbar justering – Att signera som ordförande: 3 protokollsutdrag, "
        "Kommunstyrelsens arbetsutskott 2014-08-19"
    )
    ordinary = _request(extracts=(ExtractLine(94, None, "Styrning"),))
    assert ordinary.subject() == (
        "Att signera som ordförande: protokollsutdrag, Kommunstyrelsens arbetsutskott 2014-08-19"
    )


def test_outbox_writes_one_parsable_message_per_send(tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path / "outbox")
    first = outbox.send(_request())
    second = outbox.send(
        _request(to=Person("Rolf Wasteson", "mats.gerdau@nacka.example"), role=Role.ADJUSTER)
    )
    assert first != second
    files = outbox_messages(tmp_path / "outbox")
    assert len(files) == 2
    assert not list((tmp_path / "outbox").glob("*.tmp"))
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "Mats Gerdau <mats.gerdau@nacka.example>"
    assert parsed["Message-ID"] == first
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    assert "http://justering.test/s/abcdefghijklmnopqrstuvwxyz" in body.get_content()


def test_empty_outbox_lists_nothing(tmp_path: Path) -> None:
    assert outbox_messages(tmp_path / "missing") == []
