"""The local SMTP sink (``justering mailbox``), spoken to over real SMTP with smtplib.

Every test starts a real aiosmtpd server on 127.0.0.1 on a free port (port 0) and
reads back what it stored on disk.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import queue
import re
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from justering.devtools.mail_sink import (
    MAX_MESSAGE_BYTES,
    MailSink,
    ReceivedMail,
    parse_received,
    run_mailbox,
    summary_line,
)
from justering.errors import ConfigError
from justering.mail.delivery import OutboxNotifier, SmtpNotifier, build_message
from support.mails import SHORT_LINK, signing_request

SENDER = "Justering Nacka <justering@nacka.example>"
LONG_LINK = (
    "http://127.0.0.1:8000/s/"
    "Zk3vQ9xYb2LmN8pRt5WcHj7KdFs4GaE1uIoPyTrEwQaSdFgHjKlZxCvBnM0123456789abcdefghij"
    "?version=2&roll=justerare"
)
"""Longer than a quoted-printable line, so it is soft-broken in the encoded body."""


@pytest.fixture
def arrived() -> list[ReceivedMail]:
    return []


@pytest.fixture
def sink(tmp_path: Path, arrived: list[ReceivedMail]) -> Iterator[MailSink]:
    with MailSink(tmp_path / "mailbox" / "in", port=0, on_mail=arrived.append) as running:
        yield running


def _smtp(sink: MailSink) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", sink.port, timeout=10)


def _stored(sink: MailSink) -> list[Path]:
    return sorted(sink.folder.glob("*.eml"))


# --- receiving and storing ----------------------------------------------------------------


def test_plain_message_is_stored_and_read_back(sink: MailSink, arrived: list[ReceivedMail]) -> None:
    assert sink.port not in (0, 1025)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = (
        "Hej!\r\n\r\nLänken: https://example.org/a/b?c=1&d=2.\r\n"
        "Samma igen (https://example.org/a/b?c=1&d=2) och <http://example.org/x_(y)>.\r\n"
        "Inte en länk: ftp://example.org/z, mailto:a@example.org\r\n"
    )
    message = (
        "From: Sekreteraren <sekr@nacka.example>\r\n"
        "To: rolf.wasteson@nacka.example\r\n"
        "Subject: Kvitto\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    ).encode()
    with _smtp(sink) as client:
        refused = client.sendmail("bounce@nacka.example", ["rolf.wasteson@nacka.example"], message)
    assert refused == {}
    after = dt.datetime.now(dt.UTC)

    (path,) = _stored(sink)
    assert path.parent == sink.folder
    assert path.name.endswith("-rolf-wasteson-nacka-example.eml")
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0  # the links in it are secrets
    assert not list(sink.folder.glob(".*")), "no temporary file left behind"
    raw = path.read_bytes()
    assert raw.endswith(message)
    assert raw.startswith(b"Return-Path: <bounce@nacka.example>\r\n")

    (mail,) = sink.received()
    assert arrived == [mail]
    assert mail.path == path
    assert mail.sender == "bounce@nacka.example"
    assert mail.recipients == ("rolf.wasteson@nacka.example",)
    assert mail.subject == "Kvitto"
    assert mail.links == ("https://example.org/a/b?c=1&d=2", "http://example.org/x_(y)")
    assert mail.received_at is not None and before <= mail.received_at <= after
    assert parse_received(path) == mail


def test_multipart_quoted_printable_swedish(sink: MailSink) -> None:
    second = "https://justering.example/kvitto/ÅÄÖ-är-kodade?fråga=ja"
    text = (
        "Hej Åsa Öberg,\n\nÖppna länken för att läsa utdragen och signera:\n"
        f"{LONG_LINK}\n\nKvittot (för dina handlingar): {second}.\n"
        f"Länken ovan igen: {LONG_LINK}\n"
    )
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "Åsa Öberg <asa.oberg@nacka.example>, Rolf <rolf@nacka.example>"
    message["Subject"] = "Påminnelse: §§ 97–98 väntar på din signatur, Kommunstyrelsens år"
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(
        f'<p>Hej Åsa,</p><p><a href="{LONG_LINK}">Läs och signera</a>'
        ' <a href="https://only-in-html.example/">här</a></p>',
        subtype="html",
        cte="quoted-printable",
    )
    with _smtp(sink) as client:
        client.send_message(message, to_addrs=["asa.oberg@nacka.example", "rolf@nacka.example"])

    (path,) = _stored(sink)
    raw = path.read_bytes()
    # the parser really has to decode: nothing of it is in the file as it reads
    assert b"Subject: =?utf-8?" in raw
    assert b"=C3=96ppna l=C3=A4nken" in raw  # "Öppna länken"
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    assert LONG_LINK.encode() not in raw
    assert "Påminnelse".encode() not in raw

    (mail,) = sink.received()
    assert mail.subject == "Påminnelse: §§ 97–98 väntar på din signatur, Kommunstyrelsens år"
    assert mail.recipients == ("asa.oberg@nacka.example", "rolf@nacka.example")
    assert mail.links == (LONG_LINK, second)
    assert path.name.endswith("-asa-oberg-nacka-example.eml")


def test_base64_body_and_html_only_message(sink: MailSink) -> None:
    coded = EmailMessage()
    coded["Subject"] = "Protokollet är justerat"
    coded.set_content(f"Se anslagstavlan: {LONG_LINK}\n", charset="utf-8", cte="base64")
    rich = EmailMessage()
    rich["Subject"] = "Bara HTML"
    rich.set_content(
        '<p><a href="http://a.example/1?x=1&amp;y=2">ett</a> <a href="mailto:x@y">post</a>'
        ' <a href="/relative">relativ</a> <a href="HTTPS://b.example/2">två</a></p>',
        subtype="html",
        cte="base64",
    )
    with _smtp(sink) as client:
        client.sendmail("a@nacka.example", ["b@nacka.example"], coded.as_bytes())
        client.sendmail("a@nacka.example", ["b@nacka.example"], rich.as_bytes())

    assert LONG_LINK.encode() not in _stored(sink)[0].read_bytes()
    first, second = sink.received()
    assert (first.subject, first.links) == ("Protokollet är justerat", (LONG_LINK,))
    assert (second.subject, second.links) == (
        "Bara HTML",
        ("http://a.example/1?x=1&y=2", "HTTPS://b.example/2"),
    )
    assert first.path != second.path, "same second, same recipient: still two files"
    assert [p.name for p in _stored(sink)] == [first.path.name, second.path.name]


def test_real_justering_mail_over_smtp_notifier(sink: MailSink) -> None:
    request = signing_request(LONG_LINK)
    message_id = SmtpNotifier(sink.smtp_url, sender=SENDER, timeout=10).send(request)

    (mail,) = sink.received()
    assert mail.sender == "justering@nacka.example"
    assert mail.recipients == ("asa.oberg@nacka.example",)
    assert mail.subject == request.subject()
    assert "justerare" in mail.subject
    assert mail.links == (request.link,)
    stored = email.message_from_bytes(mail.path.read_bytes(), policy=email.policy.default)
    assert stored["Message-ID"] == message_id
    assert stored["To"] == "Åsa Öberg <asa.oberg@nacka.example>"


def test_build_message_sent_directly_and_outbox_file_parse(sink: MailSink, tmp_path: Path) -> None:
    request = signing_request()
    with _smtp(sink) as client:
        client.send_message(build_message(request, sender=SENDER))
    (mail,) = sink.received()
    assert (mail.subject, mail.links) == (request.subject(), (request.link,))
    assert mail.recipients == (request.to.email,)

    # an outbox file has no envelope: From, To and Date stand in for it
    outbox = tmp_path / "outbox"
    OutboxNotifier(outbox, sender=SENDER).send(request)
    (path,) = outbox.glob("*.eml")
    filed = parse_received(path)
    assert filed.sender == "justering@nacka.example"
    assert filed.recipients == (request.to.email,)
    assert (filed.subject, filed.links) == (request.subject(), (request.link,))
    assert filed.received_at is not None
    assert abs(filed.received_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_non_ascii_envelope_address_survives_the_file(sink: MailSink) -> None:
    body = "Subject: Hälsning\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHej\r\n"
    with _smtp(sink) as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        client.sendmail(
            "sekr@nacka.example", ["åsa.öberg@nacka.example"], body.encode(), ["SMTPUTF8"]
        )
    (mail,) = sink.received()
    assert mail.recipients == ("åsa.öberg@nacka.example",)
    assert mail.subject == "Hälsning"
    assert parse_received(mail.path).recipients == mail.recipients


def test_callback_failure_does_not_refuse_the_mail(tmp_path: Path) -> None:
    def broken(mail: ReceivedMail) -> None:
        raise RuntimeError("terminal gone")

    with MailSink(tmp_path, port=0, on_mail=broken) as sink, _smtp(sink) as client:
        assert client.sendmail("a@x.example", ["b@x.example"], b"Subject: x\r\n\r\ny\r\n") == {}
        assert len(sink.received()) == 1
    assert len(list(tmp_path.glob("*.eml"))) == 1


def test_folder_removed_while_running_is_made_again(sink: MailSink) -> None:
    sink.folder.rmdir()
    with _smtp(sink) as client:
        assert client.sendmail("a@x.example", ["b@x.example"], b"Subject: igen\r\n\r\n.\r\n") == {}
    assert [mail.path for mail in sink.received()] == _stored(sink)


# --- refusing -----------------------------------------------------------------------------


def _big_message(size: int) -> bytes:
    line = b"x" * 998 + b"\r\n"
    return b"Subject: stor\r\n\r\n" + line * (size // len(line) + 1)


def test_oversize_message_refused_with_552(sink: MailSink) -> None:
    big = _big_message(MAX_MESSAGE_BYTES + 1)
    with _smtp(sink) as client:
        client.ehlo()
        assert int(client.esmtp_features["size"]) == MAX_MESSAGE_BYTES
        # smtplib announces the size (MAIL FROM ... SIZE=n): refused before the data
        with pytest.raises(smtplib.SMTPSenderRefused) as announced:
            client.sendmail("a@nacka.example", ["b@nacka.example"], big)
        assert announced.value.smtp_code == 552
        # a client that does not announce it is refused after the data
        client.rset()
        assert client.mail("a@nacka.example")[0] == 250
        assert client.rcpt("b@nacka.example")[0] == 250
        code, reply = client.data(big)
        assert (code, reply) == (552, b"Error: Too much mail data")
        assert _stored(sink) == []
        # the session and the server go on
        assert client.sendmail("a@nacka.example", ["b@nacka.example"], _big_message(5000)) == {}
    assert len(_stored(sink)) == 1


def test_port_in_use_is_a_config_error_naming_the_address(sink: MailSink, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{sink.port}: .*already in use"):
        MailSink(tmp_path / "other", port=sink.port).start()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{port}") as error:
            MailSink(tmp_path / "third", port=port).start()
        assert time.monotonic() - started < 2, "no waiting for a start timeout"
    assert "already in use" in error.value.diagnostics()


@pytest.mark.parametrize(("host", "port"), [("127.0.0.1", 70000), ("no-such-host.invalid", 0)])
def test_unusable_address_is_a_config_error(tmp_path: Path, host: str, port: int) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"cannot listen on {host}:{port}")):
        MailSink(tmp_path, host=host, port=port).start()


def test_folder_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "mail"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="mail"):
        MailSink(blocker, port=0).start()


def test_stop_frees_the_port_and_start_again(tmp_path: Path) -> None:
    sink = MailSink(tmp_path, port=0)
    sink.start()
    port = sink.port
    sink.stop()
    assert not sink.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    again = MailSink(tmp_path, port=port)
    with again, smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        assert again.port == port
        client.sendmail("a@x.example", ["b@x.example"], b"Subject: igen\r\n\r\n.\r\n")
    assert [m.subject for m in again.received()] == ["igen"]


# --- the terminal -------------------------------------------------------------------------


def test_summary_line(tmp_path: Path) -> None:
    when = dt.datetime(2024, 3, 5, 12, 3, 4, tzinfo=dt.UTC)
    mail = ReceivedMail(
        tmp_path / "x.eml",
        "justering@nacka.example",
        ("rolf@nacka.example", "asa@nacka.example"),
        "Att signera som ordförande",
        ("http://a.example/s/1", "http://a.example/k/2"),
        when,
    )
    clock = when.astimezone().strftime("%H:%M:%S")
    assert summary_line(mail).splitlines() == [
        f"{clock}  till rolf@nacka.example, asa@nacka.example  «Att signera som ordförande»",
        "    http://a.example/s/1",
        "    http://a.example/k/2",
    ]
    bare = ReceivedMail(tmp_path / "y.eml", "", (), "", ())
    assert "\n" not in summary_line(bare)
    assert "(utan ämne)" in summary_line(bare)


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_run_mailbox_prints_start_line_and_each_mail(tmp_path: Path) -> None:
    out = io.StringIO()
    stop = threading.Event()
    result: list[int] = []
    folder = tmp_path / "mailbox"
    thread = threading.Thread(
        target=lambda: result.append(run_mailbox(folder, "127.0.0.1", 0, out=out, stop=stop))
    )
    thread.start()
    try:
        _wait_for(lambda: "JUSTERING_SMTP_URL=" in out.getvalue(), "the start line")
        first_line = out.getvalue().splitlines()[0]
        match = re.search(r"JUSTERING_SMTP_URL=(smtp://127\.0\.0\.1:(\d+))", out.getvalue())
        assert match is not None
        url, port = match.group(1), int(match.group(2))
        assert port != 0
        assert f"tar emot e-post på 127.0.0.1:{port}" in first_line
        assert f"receiving e-mail on 127.0.0.1:{port}" in first_line
        assert str(folder) in first_line

        request = signing_request(LONG_LINK)
        SmtpNotifier(url, sender=SENDER, timeout=10).send(request)
        _wait_for(lambda: LONG_LINK in out.getvalue(), "the summary of the mail")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert result == [0]
    lines = out.getvalue().splitlines()
    summary = next(line for line in lines if "«" in line)
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d  till asa\.oberg@nacka\.example  «{re.escape(request.subject())}»",
        summary,
    )
    assert lines[lines.index(summary) + 1] == f"    {LONG_LINK}"
    assert "stoppad, 1 meddelande mottaget" in lines[-1]
    assert len(list(folder.glob("*.eml"))) == 1
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_run_mailbox_port_in_use(sink: MailSink, tmp_path: Path) -> None:
    out = io.StringIO()
    with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{sink.port}"):
        run_mailbox(tmp_path / "m", "127.0.0.1", sink.port, out=out, stop=threading.Event())
    assert out.getvalue() == ""


def test_a_mailbox_stopped_at_once_counts_in_the_plural(tmp_path: Path) -> None:
    out, stop = io.StringIO(), threading.Event()
    stop.set()
    assert run_mailbox(tmp_path / "mailbox", "127.0.0.1", 0, out=out, stop=stop) == 0
    last = out.getvalue().splitlines()[-1]
    assert last == "justering mailbox: stoppad, 0 meddelanden mottagna (stopped, 0 received)"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_run_mailbox_stops_cleanly_on_signal(tmp_path: Path, stop_signal: signal.Signals) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from justering.devtools.mail_sink import run_mailbox\n"
        "sys.exit(run_mailbox(Path(sys.argv[1]), '127.0.0.1', 0, out=sys.stdout))\n"
    )
    errors = tmp_path / "stderr.txt"
    lines: queue.Queue[str] = queue.Queue()
    with (
        errors.open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "mailbox")],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
        ) as process,
    ):

        def read() -> None:
            for line in process.stdout or ():
                lines.put(line)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            url = ""
            deadline = time.monotonic() + 30
            while not url:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                if match := re.search(r"JUSTERING_SMTP_URL=(\S+)", line):
                    url = match.group(1)
            SmtpNotifier(url, sender=SENDER, timeout=10).send(signing_request())
            while SHORT_LINK not in lines.get(timeout=10):
                pass
            process.send_signal(stop_signal)
            assert process.wait(timeout=10) == 0, errors.read_text()
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(timeout=10)
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert "stoppad, 1 meddelande mottaget (stopped, 1 received)" in rest[-1]
    assert len(list((tmp_path / "mailbox").glob("*.eml"))) == 1
