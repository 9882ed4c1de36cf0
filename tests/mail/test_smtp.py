"""Notifications over SMTP, sent to a real aiosmtpd server on 127.0.0.1.

The servers speak plain SMTP, STARTTLS and implicit TLS with a self-signed
certificate that the client is told to trust through ``ssl_context``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from justering.errors import ConfigError
from justering.mail.delivery import (
    NotificationError,
    OutboxNotifier,
    SmtpNotifier,
    SmtpServer,
    build_message,
    notifier_for,
)
from support.mails import signing_request

SENDER = "Justering Nacka <justering@nacka.example>"
USER = "justering"
PASSWORD = "p@ss:w/rd 1"
"""Needs percent-encoding in a URL: checks that credentials are decoded."""
URL_PASSWORD = "p%40ss%3Aw%2Frd%201"


# --- a real SMTP server ------------------------------------------------------------------


@dataclass
class Mailbox:
    """The aiosmtpd handler: keeps every envelope it accepts."""

    refuse: set[str] = field(default_factory=set)
    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        parsed = []
        for envelope in self.envelopes:
            assert isinstance(envelope.content, bytes)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    assert isinstance(data, LoginPassword)
    good = data.login.decode() == USER and data.password.decode() == PASSWORD
    return AuthResult(success=good, handled=False)


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, and a client context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return Tls(server, client)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Serve = Callable[..., tuple[Mailbox, int]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start an aiosmtpd server on 127.0.0.1 with the given SMTP options."""
    controllers: list[Controller] = []

    def start(**options: Any) -> tuple[Mailbox, int]:
        mailbox = Mailbox(refuse=options.pop("refuse", set()))
        port = _free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return mailbox, port

    yield start
    for controller in controllers:
        controller.stop()


def _starttls_server(serve: Serve, tls: Tls) -> tuple[Mailbox, int]:
    """Offers AUTH PLAIN only after STARTTLS."""
    return serve(
        tls_context=tls.server,
        authenticator=_authenticate,
        auth_require_tls=True,
        auth_exclude_mechanism=["LOGIN"],
    )


# --- the message ---------------------------------------------------------------------


def test_message_arrives_with_text_and_html_in_utf8(serve: Serve, tls: Tls) -> None:
    mailbox, port = serve()
    notifier = SmtpNotifier(f"smtp://127.0.0.1:{port}", sender=SENDER, ssl_context=tls.client)
    message_id = notifier.send(signing_request())
    (envelope,) = mailbox.envelopes
    assert envelope.mail_from == "justering@nacka.example"
    assert envelope.rcpt_tos == ["asa.oberg@nacka.example"]
    (message,) = mailbox.messages()
    assert message["Message-ID"] == message_id
    assert message_id.endswith("@nacka.example>")
    assert message["From"] == SENDER
    assert message["To"] == "Åsa Öberg <asa.oberg@nacka.example>"
    assert message["Subject"] == (
        "Omedelbar justering – Att signera som justerare: 2 protokollsutdrag, "
        "Kommunstyrelsens arbetsutskott 2014-08-19"
    )
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.iter_parts()
    assert (plain.get_content_type(), rich.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content().replace("\r\n", "\n") == signing_request().text()
    assert signing_request().link in plain.get_content()
    html = rich.get_content()
    assert 'href="http://justering.test/s/abcdefghijklmnopqrstuvwxyz?x=1&amp;y=2"' in html
    assert "Hej Åsa Öberg," in html
    assert "Yttrande över väg 222" in html


def test_html_part_says_what_the_text_says_escaped_and_self_contained() -> None:
    html = signing_request().html()
    for line in (
        "Kommunstyrelsens arbetsutskott i Nacka kommun sammanträdde 2014-08-19.",
        "väntar på din signatur som justerare",
        "KFKS 2014/233-311",
        "(omedelbar justering)",
        "Sista dag för justering: 2014-09-02.",
        "gäller till 2014-09-09 14:00.",
        "Vidarebefordra den inte.",
    ):
        assert line in html
    assert "Förslag &lt;utkast&gt; &amp; beslut" in html
    assert "<utkast>" not in html
    assert "<img" not in html and "<link" not in html and "<style" not in html
    assert html.count("(omedelbar justering)") == 1


def test_outbox_message_has_the_same_alternatives(tmp_path: Path) -> None:
    OutboxNotifier(tmp_path).send(signing_request())
    (path,) = tmp_path.glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert str(build_message(signing_request())["Message-ID"]).endswith("@justering.invalid>")


# --- encryption and login ------------------------------------------------------------


def test_login_over_starttls_with_credentials_from_the_url(serve: Serve, tls: Tls) -> None:
    mailbox, port = _starttls_server(serve, tls)
    url = f"smtp://{USER}:{URL_PASSWORD}@127.0.0.1:{port}"
    SmtpNotifier(url, sender=SENDER, ssl_context=tls.client, environ={}).send(signing_request())
    assert len(mailbox.envelopes) == 1


def test_credentials_from_the_environment(serve: Serve, tls: Tls) -> None:
    mailbox, port = _starttls_server(serve, tls)
    environ = {"JUSTERING_SMTP_USER": USER, "JUSTERING_SMTP_PASSWORD": PASSWORD}
    notifier = SmtpNotifier(
        f"smtp://127.0.0.1:{port}", sender=SENDER, ssl_context=tls.client, environ=environ
    )
    notifier.send(signing_request())
    assert len(mailbox.envelopes) == 1


def test_wrong_password_is_a_notification_error(serve: Serve, tls: Tls) -> None:
    mailbox, port = _starttls_server(serve, tls)
    url = f"smtp://{USER}:wrong@127.0.0.1:{port}"
    notifier = SmtpNotifier(url, sender=SENDER, ssl_context=tls.client, environ={})
    with pytest.raises(NotificationError, match=f"127.0.0.1:{port} refused the login.*535"):
        notifier.send(signing_request())
    assert mailbox.envelopes == []


def test_untrusted_certificate_is_a_notification_error(serve: Serve, tls: Tls) -> None:
    mailbox, port = _starttls_server(serve, tls)
    url = f"smtp://{USER}:{URL_PASSWORD}@127.0.0.1:{port}"
    notifier = SmtpNotifier(url, sender=SENDER, environ={})  # system trust store
    with pytest.raises(NotificationError, match=f"127.0.0.1:{port}.*CERTIFICATE_VERIFY_FAILED"):
        notifier.send(signing_request())
    assert mailbox.envelopes == []


def test_implicit_tls_with_login(serve: Serve, tls: Tls) -> None:
    # aiosmtpd does not count implicit TLS as TLS for auth_require_tls
    mailbox, port = serve(
        ssl_context=tls.server,
        authenticator=_authenticate,
        auth_require_tls=False,
        auth_exclude_mechanism=["LOGIN"],
    )
    url = f"smtps://{USER}:{URL_PASSWORD}@127.0.0.1:{port}"
    SmtpNotifier(url, sender=SENDER, ssl_context=tls.client, environ={}).send(signing_request())
    (message,) = mailbox.messages()
    assert message["To"].addresses[0].addr_spec == "asa.oberg@nacka.example"


def test_password_is_never_sent_without_encryption(serve: Serve) -> None:
    mailbox, port = serve(authenticator=_authenticate, auth_require_tls=False)
    url = f"smtp://{USER}:{URL_PASSWORD}@127.0.0.1:{port}"
    with pytest.raises(ConfigError, match="does not offer STARTTLS: refusing"):
        SmtpNotifier(url, sender=SENDER, environ={}).send(signing_request())
    assert mailbox.envelopes == []


# --- delivery failures ---------------------------------------------------------------


def test_server_down_names_host_and_port() -> None:
    port = _free_port()
    notifier = SmtpNotifier(f"smtp://127.0.0.1:{port}", sender=SENDER, timeout=5)
    with pytest.raises(NotificationError, match=f"SMTP server 127.0.0.1:{port}: .*refused"):
        notifier.send(signing_request())


def test_refused_recipient_is_named(serve: Serve) -> None:
    mailbox, port = serve(refuse={"asa.oberg@nacka.example"})
    notifier = SmtpNotifier(f"smtp://127.0.0.1:{port}", sender=SENDER)
    with pytest.raises(NotificationError, match=re.escape("asa.oberg@nacka.example: 550 5.1.1")):
        notifier.send(signing_request())
    assert mailbox.envelopes == []


# --- configuration -------------------------------------------------------------------


def test_url_defaults_and_credentials() -> None:
    assert SmtpServer.parse("smtp://mail.example", {}) == SmtpServer("mail.example", 25, False)
    assert SmtpServer.parse("smtps://u%40x:pw@mail.example", {}) == SmtpServer(
        "mail.example", 465, True, "u@x", "pw"
    )
    environ = {"JUSTERING_SMTP_USER": "env-user", "JUSTERING_SMTP_PASSWORD": "env-pw"}
    assert SmtpServer.parse("smtp://url-user@mail.example:587", environ) == SmtpServer(
        "mail.example", 587, False, "url-user", "env-pw"
    )


@pytest.mark.parametrize(
    ("url", "environ", "problem"),
    [
        ("smtp://user:p%C3%B6@mail.example", {}, "ASCII"),
        ("http://mail.example", {}, "expected smtp://"),
        ("smtp://mail.example:port", {}, "bad port"),
        ("smtp://", {}, "no host name"),
        ("smtp://mail.example", {"JUSTERING_SMTP_PASSWORD": "pw"}, "no user"),
    ],
)
def test_bad_url_is_a_config_error(url: str, environ: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        SmtpServer.parse(url, environ)


def test_sender_must_be_a_real_address() -> None:
    with pytest.raises(ConfigError, match="JUSTERING_MAIL_FROM"):
        SmtpNotifier("smtp://mail.example", sender="justering <noreply@justering.invalid>")
    with pytest.raises(ConfigError, match="JUSTERING_MAIL_FROM"):
        SmtpNotifier("smtp://mail.example", sender="justering")


def test_notifier_for_chooses_smtp_only_when_configured(tmp_path: Path) -> None:
    outbox = notifier_for(None, outbox=tmp_path, sender=SENDER)
    assert isinstance(outbox, OutboxNotifier) and outbox.directory == tmp_path
    assert outbox.sender == SENDER
    smtp = notifier_for("smtps://mail.example", outbox=tmp_path, sender=SENDER, environ={})
    assert isinstance(smtp, SmtpNotifier)
    assert smtp.server.address == "mail.example:465"
    assert smtp.sender == SENDER
