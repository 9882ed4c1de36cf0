"""Logging in with e-legitimation before signing, over HTTP against the real app and
a real OpenID provider on loopback (``support.oidc_provider``): what a signer's
link lets through once its signer has logged in, and every login it refuses, with
nothing signed (the ledger as it was, but for the refusal recorded in the trail
when the login was valid but wrong)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from io import BytesIO
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import RSAKey
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import update

from justering.config import BodyRules
from justering.ledger.extracts import load_document
from justering.ledger.schema import SignerLoginRow
from justering.model.assurance import LOA2, LOA3, LOA4, Assurance, SigningMode
from justering.model.meeting import Meeting
from justering.model.trail import EventKind, TrailEvent
from justering.pades.assurance import POLICY_OIDS, assurance_of
from justering.pades.validate import validate_extract
from justering.web.auth import session_key
from justering.web.signer import form_token
from justering.workflow.services import Services
from support.eid import (
    NUMBERS,
    EidSite,
    eid_site,
    query_of,
    session_cookie,
)
from support.oidc_provider import CLIENT_ID, LoopbackProvider
from support.workflow import (
    Snapshot,
    extract_rows,
    newest_token,
    snapshot,
    sqlite_ledger,  # noqa: F401
    start,
    trail,
)

LOGIN_BUTTON = "Logga in med Test-e-legitimation"
SIGN_BUTTON = "Signera protokollet och utdragen"  # the chair signs the protocol with them


@pytest.fixture
def site(services: Services, provider: LoopbackProvider) -> Iterator[EidSite]:
    with eid_site(services, provider) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as running:
        yield running


@pytest.fixture
def chair_token(site: EidSite, eid_meeting: Meeting) -> str:
    """The meeting recorded and drafted; the link e-mailed to its chair."""
    start(site.services, eid_meeting)
    return newest_token(site.services, eid_meeting.chair.email)


def events_of(site: EidSite, meeting: Meeting, kind: EventKind) -> list[TrailEvent]:
    (extract,) = extract_rows(site.services, meeting.meeting_id)
    return [event for event in trail(site.services, extract.id) if event.kind is kind]


WAITING = 2
"""What waits behind the chair's link of a one-paragraph meeting: the protocol and its
extract; a refused login is recorded on each."""


def assert_nothing_signed(site: EidSite, before: Snapshot, *, refusals: int = 0) -> None:
    """The ledger as ``before``, but for ``refusals`` refused logins (a login_refused
    event on each document waiting behind the link)."""
    after = snapshot(site.services)
    assert after.extracts == before.extracts
    assert after.documents == before.documents
    assert after.used_links == before.used_links
    assert after.events == before.events + refusals * WAITING


def assert_refused(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text[:800]
    assert words in answer.text, answer.text[:800]
    assert "Det gick inte" in answer.text
    assert "justering_signer" not in answer.headers.get("set-cookie", "")


def signatures(site: EidSite, meeting: Meeting) -> list[Any]:
    (extract,) = extract_rows(site.services, meeting.meeting_id)
    with site.services.ledger.reading() as session:
        pdf = load_document(session, extract.head_sha256)
    return list(validate_extract(pdf, site.services.trust_roots, complete=False).signatures)


# --- through --------------------------------------------------------------------------------


def test_the_chair_logs_in_then_signs_and_the_signature_says_so(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    answer = site.log_in(client, chair_token, "chair")
    assert answer.status_code == 303 and answer.headers["location"] == f"/s/{chair_token}"
    cookie = answer.headers["set-cookie"]
    assert f"Path=/s/{chair_token}" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get(site.link(chair_token))
    assert SIGN_BUTTON in page.text and LOGIN_BUTTON not in page.text
    assert site.sign(client, chair_token).status_code == 200

    (signed,) = events_of(site, eid_meeting, EventKind.SIGNED)
    token = site.provider.issued[-1]
    assert signed.detail["identification"] == "e-legitimation"
    assert signed.detail["assurance"] == "loa3"
    assert signed.detail["issuer"] == site.provider.issuer
    assert signed.detail["acr"] == LOA3
    assert signed.detail["id_token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert signed.detail["auth_time"].startswith(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(claims["auth_time"]))
    )

    (signature,) = signatures(site, eid_meeting)
    assert signature.assurance.assurance is Assurance.LOA3
    assert signature.assurance.identity_provider == site.provider.issuer
    assert signature.assurance.acr == LOA3
    assert signature.assurance.swedish == "inloggad med e-legitimation, tillitsnivå 3"


def test_the_certificate_names_the_level_and_a_pseudonym_never_the_number(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    site.log_in(client, chair_token, "chair")
    site.sign(client, chair_token)
    (extract,) = extract_rows(site.services, eid_meeting.meeting_id)
    with site.services.ledger.reading() as session:
        pdf = load_document(session, extract.head_sha256)
    (signature,) = signatures(site, eid_meeting)
    certificate = _certificate_in(pdf, signature.certificate_fingerprint)
    policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [POLICY_OIDS[Assurance.LOA3]]
    (serial,) = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    assert str(serial.value).startswith("ID-") and len(str(serial.value)) == 35
    der = certificate.public_bytes(serialization.Encoding.DER)
    for number in NUMBERS:
        assert number.encode() not in der and number.encode() not in pdf
        assert number[2:].encode() not in pdf  # nor the ten-digit form
    assert assurance_of(certificate).authenticated_at is not None


def _certificate_in(pdf: bytes, fingerprint: str) -> x509.Certificate:
    reader = PdfFileReader(BytesIO(pdf))
    for embedded in reader.embedded_signatures:
        certificate = x509.load_der_x509_certificate(embedded.signer_cert.dump())
        if certificate.fingerprint(hashes.SHA256()).hex() == fingerprint:
            return certificate
    raise AssertionError("no such certificate in the PDF")


# --- the gate ---------------------------------------------------------------------------------


def test_until_the_signer_logs_in_the_link_shows_nothing_and_signs_nothing(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    before = snapshot(site.services)
    (extract,) = extract_rows(site.services, eid_meeting.meeting_id)
    page = client.get(site.link(chair_token))
    assert page.status_code == 200
    assert LOGIN_BUTTON in page.text and "tillitsnivå 3 eller högre" in page.text
    assert SIGN_BUTTON not in page.text and eid_meeting.paragraphs[0].title not in page.text
    assert page.headers["cache-control"] == "no-store"
    pdf = client.get(f"{site.link(chair_token)}/utdrag/{extract.id}.pdf")
    assert not pdf.content.startswith(b"%PDF") and LOGIN_BUTTON in pdf.text
    image = client.get(f"{site.link(chair_token)}/utdrag/{extract.id}/sida/1.png")
    assert image.status_code == 401 and not image.content.startswith(b"\x89PNG")

    csrf = form_token(session_key(site.services.settings.home), chair_token)
    sign = client.post(site.link(chair_token), data={"csrf": csrf, "extract": [str(extract.id)]})
    assert_refused(sign, 401, "Logga in med e-legitimation")
    decline = client.post(
        f"{site.link(chair_token)}/avbojning",
        data={"csrf": csrf, "extract": str(extract.id), "comment": "Fel"},
    )
    assert_refused(decline, 401, "Logga in med e-legitimation")
    # a forged session cookie is no login either
    client.cookies.set("justering_signer", "forged.value", path=f"/s/{chair_token}")
    assert LOGIN_BUTTON in client.get(site.link(chair_token)).text
    assert_nothing_signed(site, before)
    assert events_of(site, eid_meeting, EventKind.VIEWED) == []


def test_a_login_is_for_its_link_only(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    """The same chair's link to another meeting needs its own login: the session is
    bound to the link in the ledger, and its cookie is only sent under the link."""
    other = replace(eid_meeting, meeting_id="eid-ksau-2")
    start(site.services, other)
    other_token = newest_token(site.services, eid_meeting.chair.email)
    assert other_token != chair_token
    site.log_in(client, chair_token, "chair")
    value = session_cookie(client)
    assert value
    assert SIGN_BUTTON in client.get(site.link(chair_token)).text
    assert LOGIN_BUTTON in client.get(site.link(other_token)).text  # not sent there
    with httpx.Client(timeout=30, cookies={"justering_signer": value}) as thief:
        assert LOGIN_BUTTON in thief.get(site.link(other_token)).text  # sent: refused


def test_a_login_ends(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    site.log_in(client, chair_token, "chair")
    assert SIGN_BUTTON in client.get(site.link(chair_token)).text
    with site.services.ledger.transaction() as session:
        session.execute(update(SignerLoginRow).values(session_expires_at=SignerLoginRow.started_at))
    before = snapshot(site.services)
    assert LOGIN_BUTTON in client.get(site.link(chair_token)).text
    (extract,) = extract_rows(site.services, eid_meeting.meeting_id)
    csrf = form_token(session_key(site.services.settings.home), chair_token)
    sign = client.post(site.link(chair_token), data={"csrf": csrf, "extract": [str(extract.id)]})
    assert_refused(sign, 401, "Logga in med e-legitimation")
    assert_nothing_signed(site, before)


# --- the wrong person, the wrong level: refused and recorded -------------------------------


def test_a_forwarded_link_needs_the_forwardees_own_login_which_is_refused(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    before = snapshot(site.services)
    answer = site.log_in(client, chair_token, "stranger")
    assert_refused(answer, 403, "någon annan än den som länken skickades till")
    assert session_cookie(client) is None
    assert LOGIN_BUTTON in client.get(site.link(chair_token)).text
    assert_nothing_signed(site, before, refusals=1)
    (refusal,) = events_of(site, eid_meeting, EventKind.LOGIN_REFUSED)
    assert refusal.detail["reason"] == "wrong_person"
    assert refusal.detail["issuer"] == site.provider.issuer and refusal.detail["acr"] == LOA3
    assert refusal.detail["auth_time"]
    assert refusal.actor == eid_meeting.chair.name  # whose link it was
    assert not any(n in json.dumps(refusal.to_json()) for n in NUMBERS)
    assert "Främling" not in json.dumps(refusal.to_json())

    # the chair, in their own browser, can still log in and sign
    with httpx.Client(timeout=30) as own:
        site.log_in(own, chair_token, "chair")
        assert site.sign(own, chair_token).status_code == 200


@pytest.mark.parametrize(
    "acr",
    [LOA2, "http://id.swedenconnect.se/loa/1.0/uncertified-loa3", "urn:okand"],
    ids=["loa2", "uncertified", "unknown"],
)
def test_a_login_below_the_bodys_assurance_is_refused(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client, acr: str
) -> None:
    site.provider.people["chair"]["acr"] = acr
    before = snapshot(site.services)
    answer = site.log_in(client, chair_token, "chair")
    assert_refused(answer, 403, "inte den tillitsnivå som nämnden kräver")
    assert_nothing_signed(site, before, refusals=1)
    (refusal,) = events_of(site, eid_meeting, EventKind.LOGIN_REFUSED)
    assert refusal.detail["reason"] == "assurance_too_low" and refusal.detail["acr"] == acr


def test_a_body_may_require_more_than_the_default(
    services: Services, provider: LoopbackProvider, eid_meeting: Meeting, client: httpx.Client
) -> None:
    rules = BodyRules(signing=SigningMode.E_LEGITIMATION, minimum_assurance=Assurance.LOA4)
    with eid_site(services, provider, bodies={"KSAU": rules}) as site:
        start(site.services, eid_meeting)
        token = newest_token(site.services, eid_meeting.chair.email)
        assert "tillitsnivå 4 eller högre" in client.get(site.link(token)).text
        assert_refused(site.log_in(client, token, "chair"), 403, "tillitsnivå")
        provider.people["chair"]["acr"] = LOA4
        with httpx.Client(timeout=30) as again:
            assert site.log_in(again, token, "chair").status_code == 303
            assert site.sign(again, token).status_code == 200
        (signature,) = signatures(site, eid_meeting)
        assert signature.assurance.assurance is Assurance.LOA4


# --- the protocol: forged, replayed, stale answers -----------------------------------------


def _resign(
    provider: LoopbackProvider, change: Callable[[dict[str, Any]], None]
) -> Callable[[str], str]:
    """A token swapper: the genuine ID token's claims, changed, signed again with a key
    of the same ``kid`` that is not the provider's (a forgery)."""
    forger = RSAKey.generate_key(2048, parameters={"kid": str(provider.key.kid)})

    def swap(genuine: str) -> str:
        claims = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
        change(claims)
        return jwt.encode({"alg": "RS256", "kid": str(provider.key.kid)}, claims, forger)

    return swap


def _tampered(**claims: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda genuine: {**genuine, **claims}


INVALID = "kunde inte kontrolleras"


@pytest.mark.parametrize(
    "misbehave",
    [
        pytest.param(
            lambda p: setattr(p, "tamper", _tampered(exp=int(time.time()) - 600)), id="expired"
        ),
        pytest.param(lambda p: setattr(p, "tamper", _tampered(nonce="another")), id="wrong-nonce"),
        pytest.param(
            lambda p: setattr(p, "tamper", _tampered(iss="https://idp.example")),
            id="another-issuer",
        ),
        pytest.param(
            lambda p: setattr(p, "tamper", _tampered(aud=["another-client"])), id="another-audience"
        ),
        pytest.param(
            lambda p: setattr(p, "tamper", _tampered(aud=["another-client"], azp=CLIENT_ID)),
            id="another-audience-naming-us-as-azp",
        ),
        pytest.param(
            lambda p: setattr(p, "tamper", _tampered(aud=[CLIENT_ID, "another-client"])),
            id="shared-audience-without-azp",
        ),
        pytest.param(
            lambda p: setattr(p, "tamper", _tampered(azp="another-client")), id="another-azp"
        ),
        pytest.param(
            lambda p: setattr(p, "swap_id_token", _resign(p, lambda c: None)), id="forged-signature"
        ),
        pytest.param(
            lambda p: setattr(p, "tamper", _tampered(iat=int(time.time()) + 3600)),
            id="issued-later",
        ),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused(
    site: EidSite,
    eid_meeting: Meeting,
    chair_token: str,
    client: httpx.Client,
    misbehave: Callable[[LoopbackProvider], None],
) -> None:
    misbehave(site.provider)
    before = snapshot(site.services)
    assert_refused(site.log_in(client, chair_token, "chair"), 401, INVALID)
    assert_nothing_signed(site, before)
    assert LOGIN_BUTTON in client.get(site.link(chair_token)).text


def test_an_id_token_from_another_provider_is_refused(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    """Signed by another provider's key (another ``kid``), with this one's claims."""
    with LoopbackProvider(dict(site.provider.people)) as other:

        def swap(genuine: str) -> str:
            claims = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
            return jwt.encode({"alg": "RS256", "kid": str(other.key.kid)}, claims, other.key)

        site.provider.swap_id_token = swap
        before = snapshot(site.services)
        assert_refused(site.log_in(client, chair_token, "chair"), 401, INVALID)
        assert_nothing_signed(site, before)


def test_a_replayed_id_token_is_refused(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    """An ID token from an earlier login, handed back by a provider (or whoever stands
    between it and us) in answer to a new one."""
    site.log_in(client, chair_token, "chair")
    earlier = site.provider.issued[-1]
    site.provider.swap_id_token = lambda _new: earlier
    before = snapshot(site.services)
    with httpx.Client(timeout=30) as again:
        assert_refused(site.log_in(again, chair_token, "chair"), 401, INVALID)
        assert session_cookie(again) is None
    assert_nothing_signed(site, before)


def test_an_old_authentication_is_refused(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    """The provider reused a login from an hour ago (``auth_time``), though a fresh one
    was asked for (``max_age=0``, ``prompt=login``)."""
    site.provider.auth_time_offset = -3600
    start_answer = site.begin_login(client, chair_token)
    asked = query_of(start_answer.headers["location"])
    assert asked["max_age"] == "0" and asked["prompt"] == "login"
    before = snapshot(site.services)
    answer = client.get(site.authorize(client, start_answer, "chair"))
    assert_refused(answer, 401, "legitimera dig på nytt")
    assert_nothing_signed(site, before)


def test_the_login_asks_for_pkce_state_nonce_and_the_configured_level(
    site: EidSite, chair_token: str, client: httpx.Client
) -> None:
    asked = query_of(site.begin_login(client, chair_token).headers["location"])
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 43 and len(asked["nonce"]) >= 43
    assert asked["acr_values"] == LOA3 and asked["client_id"] == CLIENT_ID
    assert "openid" in asked["scope"].split()
    assert asked["redirect_uri"] == f"{site.base_url}/inloggning/retur"


def test_a_replayed_answer_is_refused(
    site: EidSite, chair_token: str, client: httpx.Client
) -> None:
    start_answer = site.begin_login(client, chair_token)
    pending = client.cookies.get("justering_inloggning")
    callback = site.authorize(client, start_answer, "chair")
    assert client.get(callback).status_code == 303
    before = snapshot(site.services)
    # the same answer again, even with the browser's own pending cookie
    with httpx.Client(timeout=30) as replayer:
        replayer.cookies.set("justering_inloggning", pending or "", path="/inloggning")
        assert_refused(replayer.get(callback), 409, "redan använts")
        assert session_cookie(replayer) is None
    # and by someone without it
    with httpx.Client(timeout=30) as stranger:
        assert_refused(stranger.get(callback), 400, "påbörjades i en annan webbläsare")
    assert_nothing_signed(site, before)


def test_a_replayed_authorization_code_is_refused(
    site: EidSite, chair_token: str, client: httpx.Client
) -> None:
    """An authorization code used once, sent again with a new login's state: the
    provider refuses it (and with PKCE the code is no use without its verifier)."""
    first = query_of(site.authorize(client, site.begin_login(client, chair_token), "chair"))
    assert client.get(f"{site.base_url}/inloggning/retur", params=first).status_code == 303
    with httpx.Client(timeout=30) as again:
        state = query_of(site.begin_login(again, chair_token).headers["location"])["state"]
        before = snapshot(site.services)
        answer = again.get(
            f"{site.base_url}/inloggning/retur", params={"code": first["code"], "state": state}
        )
        assert_refused(answer, 401, "godtog inte inloggningen")
        assert session_cookie(again) is None
    assert_nothing_signed(site, before)


def test_a_wrong_state_is_refused(site: EidSite, chair_token: str, client: httpx.Client) -> None:
    answer = query_of(site.authorize(client, site.begin_login(client, chair_token), "chair"))
    before = snapshot(site.services)
    forged = {**answer, "state": answer["state"][:-2] + "xx"}
    assert_refused(client.get(f"{site.base_url}/inloggning/retur", params=forged), 400, "kopplas")
    assert session_cookie(client) is None
    assert_nothing_signed(site, before)


def test_a_cancelled_login_is_refused(
    site: EidSite, chair_token: str, client: httpx.Client
) -> None:
    before = snapshot(site.services)
    assert_refused(site.log_in(client, chair_token, None), 401, "Inloggningen avbröts")
    assert_nothing_signed(site, before)


# --- the provider down ------------------------------------------------------------------------


def test_a_provider_that_is_down_gets_a_swedish_page_and_the_link_works_later(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    before = snapshot(site.services)
    with site.provider.unavailable():
        answer = site.begin_login(client, chair_token)
        assert_refused(answer, 503, "svarar inte just nu")
        assert "länken gäller fortfarande" in answer.text
        assert f'href="/s/{chair_token}"' in answer.text
    assert_nothing_signed(site, before)
    assert site.log_in(client, chair_token, "chair").status_code == 303
    assert site.sign(client, chair_token).status_code == 200


def test_a_provider_that_fails_while_answering_gets_the_same_page(
    site: EidSite, chair_token: str, client: httpx.Client
) -> None:
    callback = site.authorize(client, site.begin_login(client, chair_token), "chair")
    before = snapshot(site.services)
    with site.provider.unavailable():  # the token endpoint does not answer
        assert_refused(client.get(callback), 503, "svarar inte just nu")
    assert_nothing_signed(site, before)
    with httpx.Client(timeout=30) as later:
        assert site.log_in(later, chair_token, "chair").status_code == 303
        assert site.sign(later, chair_token).status_code == 200


# --- declining ----------------------------------------------------------------------------------


def test_declining_needs_the_login_too(
    site: EidSite, eid_meeting: Meeting, chair_token: str, client: httpx.Client
) -> None:
    site.log_in(client, chair_token, "chair")
    page = client.get(site.link(chair_token))
    (extract,) = extract_rows(site.services, eid_meeting.meeting_id)
    csrf = form_token(session_key(site.services.settings.home), chair_token)
    assert f'value="{csrf}"' in page.text
    declined = client.post(
        f"{site.link(chair_token)}/avbojning",
        data={"csrf": csrf, "extract": str(extract.id), "comment": "Beslutet är fel återgivet."},
    )
    assert declined.status_code == 200, declined.text[:500]
    assert events_of(site, eid_meeting, EventKind.DECLINED)


def test_the_login_button_leads_back_when_no_login_is_needed(
    site: EidSite, chair_token: str, client: httpx.Client
) -> None:
    site.log_in(client, chair_token, "chair")
    shown = site.provider.logins
    with site.services.ledger.reading() as session:
        logins = session.query(SignerLoginRow).count()
    again = client.get(f"{site.link(chair_token)}/logga-in")
    assert again.status_code == 303 and again.headers["location"] == f"/s/{chair_token}"
    assert site.provider.logins == shown
    with site.services.ledger.reading() as session:
        assert session.query(SignerLoginRow).count() == logins
    unknown = client.get(f"{site.base_url}/s/{'x' * 43}/logga-in")
    assert_refused(unknown, 404, "Länken är ogiltig")
