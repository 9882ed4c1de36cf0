"""Finding 4: a name is a name. A chair named ``Mats Gerdau <attacker@evil.example>,
Mats Gerdau`` gets exactly one message, at the chair's own address, over a real
SMTP server; an address that is more than one addr-spec never gets that far."""

from __future__ import annotations

import email.policy
from collections.abc import Iterator
from dataclasses import replace
from email.headerregistry import Address
from email.parser import BytesParser
from pathlib import Path

import pytest

from justering import workflow
from justering.devtools.mail_sink import MailSink
from justering.errors import ManifestError
from justering.model.manifest import parse_manifest
from justering.model.meeting import Meeting, meeting_to_dict
from justering.workflow.services import Services
from support.workflow import (
    small_meeting,
    sqlite_ledger,  # noqa: F401
)

HOSTILE_NAMES = [
    "Mats Gerdau <attacker@evil.example>, Mats Gerdau",
    "Wasteson, Rolf",
    '"Rolf" <rolf@evil.example>',
    "Åsa Öberg; bcc: spy@evil.example",
]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mailbox", port=0) as server:
        yield server


@pytest.fixture
def smtp_services(services: Services, sink: MailSink) -> Services:
    """The workflow sending its e-mail over SMTP to the sink."""
    from justering.mail.delivery import SmtpNotifier

    notifier = SmtpNotifier(
        f"smtp://127.0.0.1:{sink.port}", sender="Justering <justering@kommun.example>"
    )
    return replace(services, notifier=notifier)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_name_with_commas_brackets_or_quotes_is_one_recipient(
    smtp_services: Services, sink: MailSink, sample_meeting: Meeting, name: str
) -> None:
    meeting = small_meeting(sample_meeting)
    chair = replace(meeting.chair, name=name)
    meeting = parse_manifest(meeting_to_dict(replace(meeting, chair=chair)))  # accepted as a name
    workflow.record_meeting(smtp_services, meeting)
    workflow.advance_meeting(smtp_services, meeting.meeting_id)
    [mail] = sink.received()
    assert mail.recipients == (meeting.chair.email,)
    parsed = BytesParser(policy=email.policy.default).parsebytes(mail.path.read_bytes())
    [to] = parsed["To"].addresses
    assert to == Address(display_name=name, addr_spec=meeting.chair.email)


@pytest.mark.parametrize(
    "address",
    [
        "a@b.se>,<evil@evil.example",
        "Mats <mats@nacka.example>",
        "mats@nacka.example, evil@evil.example",
        "mats@nacka.example\r\nBcc: evil@evil.example",
        "mats@nacka.example (kommentar)",
        "måns@nacka.example",  # the certificate's subjectAltName takes ASCII only
    ],
)
def test_an_address_must_be_exactly_one_addr_spec(sample_meeting: Meeting, address: str) -> None:
    document = meeting_to_dict(small_meeting(sample_meeting))
    document["chair"]["email"] = address
    with pytest.raises(ManifestError) as refused:
        parse_manifest(document)
    assert refused.value.field == "chair.email"
