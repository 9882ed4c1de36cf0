"""The rules of signing with e-legitimation, in the workflow (no HTTP): what a
manifest must give, how a login is matched to its signer (by personnummer, or by a
verified e-mail claim), that each ID token is accepted once, that link-only bodies
sign as before and say so, and that a login is checked again when it is used."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select, update

from justering import workflow
from justering.config import BodyRules, IdentitySettings
from justering.errors import IdentityError, LoginProblem, ManifestError
from justering.identity.oidc import Authentication, LoginRequest
from justering.ledger.schema import MeetingRow, SignerLoginRow
from justering.model.assurance import LOA3, Assurance, SigningMode
from justering.model.meeting import Meeting
from justering.model.personnummer import identity_hash
from justering.model.trail import EventKind
from justering.workflow.identity import finish_login, login_view, start_login
from justering.workflow.services import Services
from support.eid import CHAIR_NUMBER, NUMBERS, STRANGER_NUMBER
from support.workflow import extract_rows, newest_token, snapshot, start, trail

ISSUER = "https://idp.example"


class StubProvider:
    """Stands where the OpenID provider does, answering every login with the
    authentication a test sets: for the rules after the protocol's checks."""

    def __init__(self) -> None:
        self.authentication: Authentication | None = None

    def login_request(self) -> LoginRequest:
        return LoginRequest(
            f"{ISSUER}/authorize",
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(48),
        )

    def authenticate(self, code: str, **_: Any) -> Authentication:
        assert self.authentication is not None
        return self.authentication


def authentication(claims: dict[str, Any], *, acr: str = LOA3, token: str = "") -> Authentication:
    return Authentication(
        issuer=ISSUER,
        subject="subject",
        acr=acr,
        authenticated_at=dt.datetime.now(dt.UTC),
        id_token_sha256=(token or secrets.token_hex(32)),
        claims={"sub": "subject", "acr": acr, **claims},
    )


def with_identity(services: Services, **settings: Any) -> Services:
    identity = IdentitySettings(ISSUER, "justering", "secret", **settings)
    return replace(services, settings=replace(services.settings, identity=identity))


def log_in(services: Services, stub: StubProvider, token: str) -> str:
    """Begin and finish a login on the link; the session secret."""
    request = start_login(services, stub, token)  # type: ignore[arg-type]
    session = finish_login(services, stub, token=token, state=request.state, code="code")  # type: ignore[arg-type]
    return session.secret


def number_claim(number: str) -> dict[str, str]:
    return {"https://id.oidc.se/claim/personalIdentityNumber": number}


# --- the manifest --------------------------------------------------------------------


def test_a_body_that_signs_with_e_legitimation_needs_each_signers_personnummer(
    services: Services, sample_meeting: Meeting
) -> None:
    live = with_identity(services)
    with pytest.raises(ManifestError) as refused:
        workflow.record_meeting(live, sample_meeting)
    assert refused.value.field == "chair.personal_number"
    assert "signs with e-legitimation" in refused.value.problem


def test_or_logins_matched_by_a_verified_email(services: Services, sample_meeting: Meeting) -> None:
    live = with_identity(services, email_claim="email")
    assert workflow.record_meeting(live, sample_meeting)


def test_link_only_bodies_need_no_personnummer(services: Services, sample_meeting: Meeting) -> None:
    live = with_identity(services)
    rules = {"KSAU": BodyRules(signing=SigningMode.LINK)}
    live = replace(live, settings=replace(live.settings, bodies=rules))
    assert workflow.record_meeting(live, sample_meeting)


def test_the_ledger_keeps_the_keyed_hash_not_the_number(
    services: Services, eid_meeting: Meeting
) -> None:
    live = with_identity(services)
    assert workflow.record_meeting(live, eid_meeting)
    assert not workflow.record_meeting(live, eid_meeting)  # the same manifest: idempotent
    with live.ledger.reading() as session:
        stored = session.execute(select(MeetingRow.manifest)).scalar_one()
    text = json.dumps(stored)
    assert not any(number in text for number in NUMBERS)
    key = live.settings.identity_key
    assert stored["chair"]["personal_number_hash"] == identity_hash(key, CHAIR_NUMBER)
    assert "personal_number" not in stored["chair"]
    key_file = live.settings.home / "identity-hash.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert workflow.get_meeting(live, eid_meeting.meeting_id).chair.identity_hash is not None


# --- matching --------------------------------------------------------------------------


def test_a_login_matches_by_personnummer(services: Services, eid_meeting: Meeting) -> None:
    live, stub = with_identity(services), StubProvider()
    start(live, eid_meeting)
    token = newest_token(live, eid_meeting.chair.email)
    stub.authentication = authentication(number_claim(f"{CHAIR_NUMBER[:8]}-{CHAIR_NUMBER[8:]}"))
    secret = log_in(live, stub, token)
    assert login_view(live, token, secret) is None
    assert login_view(live, token, None) is not None
    workflow.sign_with_link(live, token, login=secret)


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        (number_claim(STRANGER_NUMBER), LoginProblem.WRONG_PERSON),
        ({}, LoginProblem.NO_IDENTITY),
        (number_claim("191212121213"), LoginProblem.NO_IDENTITY),  # a wrong check digit
        ({"email": "mats.gerdau@nacka.example", "email_verified": True}, LoginProblem.NO_IDENTITY),
    ],
    ids=["another-person", "no-number", "malformed-number", "email-is-not-enough"],
)
def test_a_login_that_is_not_the_signers_is_refused(
    services: Services, eid_meeting: Meeting, claims: dict[str, Any], problem: LoginProblem
) -> None:
    live, stub = with_identity(services, email_claim="email"), StubProvider()
    start(live, eid_meeting)
    token = newest_token(live, eid_meeting.chair.email)
    stub.authentication = authentication(claims)
    before = snapshot(live)
    with pytest.raises(IdentityError) as refused:
        log_in(live, stub, token)
    assert refused.value.problem is problem
    # recorded on what waits behind the link: the protocol and its extract
    assert snapshot(live).events == before.events + 2


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"email": "Mats.Gerdau@nacka.example", "email_verified": True}, None),
        ({"email": "mats.gerdau@nacka.example", "email_verified": False}, LoginProblem.NO_IDENTITY),
        ({"email": "mats.gerdau@nacka.example"}, LoginProblem.NO_IDENTITY),
        ({"email": "eva@nacka.example", "email_verified": True}, LoginProblem.WRONG_PERSON),
    ],
    ids=["verified", "unverified", "not-said", "another-address"],
)
def test_without_a_personnummer_a_verified_email_matches(
    services: Services,
    sample_meeting: Meeting,
    claims: dict[str, Any],
    problem: LoginProblem | None,
) -> None:
    live, stub = with_identity(services, email_claim="email"), StubProvider()
    start(live, sample_meeting)
    token = newest_token(live, sample_meeting.chair.email)
    stub.authentication = authentication(claims)
    if problem is None:
        assert login_view(live, token, log_in(live, stub, token)) is None
        return
    with pytest.raises(IdentityError) as refused:
        log_in(live, stub, token)
    assert refused.value.problem is problem


def test_each_id_token_is_accepted_once(services: Services, eid_meeting: Meeting) -> None:
    live, stub = with_identity(services), StubProvider()
    start(live, eid_meeting)
    token = newest_token(live, eid_meeting.chair.email)
    stub.authentication = authentication(number_claim(CHAIR_NUMBER))
    log_in(live, stub, token)
    with pytest.raises(IdentityError) as refused:
        log_in(live, stub, token)  # the same ID token, in answer to another login
    assert refused.value.problem is LoginProblem.REPLAYED_TOKEN


def test_a_login_is_checked_again_when_it_signs(services: Services, eid_meeting: Meeting) -> None:
    """A login row that no longer says the signer's identity (or the body's level was
    raised since) signs nothing."""
    live, stub = with_identity(services), StubProvider()
    start(live, eid_meeting)
    token = newest_token(live, eid_meeting.chair.email)
    stub.authentication = authentication(number_claim(CHAIR_NUMBER))
    secret = log_in(live, stub, token)
    with live.ledger.transaction() as session:
        session.execute(update(SignerLoginRow).values(identity_hash="0" * 64))
    before = snapshot(live)
    with pytest.raises(IdentityError) as refused:
        workflow.sign_with_link(live, token, login=secret)
    assert refused.value.problem is LoginProblem.REQUIRED
    assert snapshot(live) == before
    with live.ledger.transaction() as session:
        key = live.settings.identity_key
        session.execute(
            update(SignerLoginRow).values(identity_hash=identity_hash(key, CHAIR_NUMBER))
        )
    stricter = BodyRules(signing=SigningMode.E_LEGITIMATION, minimum_assurance=Assurance.LOA4)
    raised = replace(live, settings=replace(live.settings, bodies={"KSAU": stricter}))
    with pytest.raises(IdentityError):
        workflow.sign_with_link(raised, token, login=secret)
    workflow.sign_with_link(live, token, login=secret)


# --- link only ----------------------------------------------------------------------------


def test_a_link_only_body_signs_by_link_and_says_so(
    services: Services, sample_meeting: Meeting
) -> None:
    live = with_identity(services)
    rules = {"KSAU": BodyRules(signing=SigningMode.LINK)}
    live = replace(live, settings=replace(live.settings, bodies=rules))
    start(live, sample_meeting)
    token = newest_token(live, sample_meeting.chair.email)
    assert login_view(live, token, None) is None
    workflow.sign_with_link(live, token)
    extract = extract_rows(live, sample_meeting.meeting_id)[0]
    (signed,) = [e for e in trail(live, extract.id) if e.kind is EventKind.SIGNED]
    assert signed.detail["identification"] == "link" and signed.detail["assurance"] == "link"
    assert "issuer" not in signed.detail


def test_without_a_provider_everything_signs_by_link(
    services: Services, sample_meeting: Meeting
) -> None:
    assert services.settings.identity is None
    start(services, sample_meeting)
    token = newest_token(services, sample_meeting.chair.email)
    assert login_view(services, token, None) is None
    receipt = workflow.sign_with_link(services, token)
    assert receipt.items
    assert dataclasses.asdict(services.settings.body_rules("KSAU"))["signing"] is SigningMode.LINK
