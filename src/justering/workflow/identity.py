"""Who may sign behind a link: for a body that signs with e-legitimation, a login
(``justering.identity.oidc``) that matches the signer the link was sent to, at the
body's assurance level, made in this browser for this very link.

- :func:`start_login` and :func:`finish_login`: a login begun on a link and the
  provider's answer, used once; a validated login that is another person's, or
  below the body's level, is refused and recorded in the trail (``login_refused``:
  the provider, ``acr``, authentication time and the reason, never the number).
- :func:`login_view` (the gate in front of every page behind the link) and
  :func:`identified_signer` (who acts through the link, signing or declining, and
  what the signature then says about them).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from justering.config import BodyRules, Settings
from justering.errors import IdentityError, LoginProblem
from justering.identity.oidc import Authentication, LoginRequest, OpenIdProvider
from justering.ledger.database import utcnow
from justering.ledger.extracts import append_signer_event, lock_extract, lock_meeting
from justering.ledger.links import grants_of, hash_token
from justering.ledger.logins import add_login, digest, lock_login, login_by_session, prune_logins
from justering.ledger.schema import LinkTokenRow, SignerLoginRow, aware_utc
from justering.model.assurance import (
    LINK_ONLY,
    Assurance,
    SignerIdentity,
    SigningMode,
    assurance_of_acr,
)
from justering.model.meeting import Meeting
from justering.model.personnummer import (
    PersonalNumberError,
    claim_hash,
    identity_hash,
    normalise_personal_number,
    pseudonym,
)
from justering.model.roles import Signer
from justering.model.trail import EventKind
from justering.workflow.services import Services
from justering.workflow.signer_links import GrantState, grant_state, link_signer

__all__ = [
    "RECORDED_REFUSALS",
    "IdentifiedSigner",
    "LoginSession",
    "LoginView",
    "finish_login",
    "identified_signer",
    "login_view",
    "start_login",
]

log = logging.getLogger(__name__)

RECORDED_REFUSALS = frozenset(
    {
        LoginProblem.WRONG_PERSON,
        LoginProblem.ASSURANCE_TOO_LOW,
        LoginProblem.NO_IDENTITY,
        LoginProblem.CANNOT_MATCH,
    }
)
"""Refusals of a valid login, recorded in the trail of the extracts waiting behind the
link. A login that failed the protocol's checks (a forged, replayed or expired token)
identifies no one, so it is refused and logged, not recorded as a person's attempt."""


# --- the gate --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginView:
    """What the login page behind a link shows."""

    signer: Signer
    meeting: Meeting
    expires_at: dt.datetime
    provider_name: str
    minimum: Assurance


def login_view(services: Services, token: str, session_secret: str | None) -> LoginView | None:
    """None when the link may be used by this browser now (its body signs by link, or
    the browser holds a valid login for this link); else what the login page shows.
    ``LinkError`` for a link that cannot be used at all. Records nothing."""
    identity = services.settings.identity
    if identity is None:
        return None
    with services.ledger.reading() as session:
        link, meeting, signer = link_signer(session, token)
        rules = services.settings.body_rules(meeting.body.code)
        if rules.signing is SigningMode.LINK:
            return None
        if _valid_login(session, link, signer, rules, session_secret) is not None:
            return None
        return LoginView(
            signer,
            meeting,
            aware_utc(link.expires_at),
            identity.display_name,
            rules.minimum_assurance,
        )


@dataclass(frozen=True)
class IdentifiedSigner:
    """Who acts through a link now: the link, its meeting, its signer, and how the
    signer was identified."""

    link: LinkTokenRow
    meeting: Meeting
    signer: Signer
    identity: SignerIdentity


def identified_signer(
    session: Session, settings: Settings, token: str, session_secret: str | None
) -> IdentifiedSigner:
    """The signer behind the link ``token``, identified for what they do now (sign,
    decline): by the link alone where the body signs by link; else by the browser's
    login for this link, which must be valid (``IdentityError`` REQUIRED if it is
    not). ``LinkError`` for a link that cannot be used."""
    link, meeting, signer = link_signer(session, token)
    identity = _identity(session, settings, link, meeting, signer, session_secret)
    return IdentifiedSigner(link, meeting, signer, identity)


def _identity(
    session: Session,
    settings: Settings,
    link: LinkTokenRow,
    meeting: Meeting,
    signer: Signer,
    session_secret: str | None,
) -> SignerIdentity:
    rules = settings.body_rules(meeting.body.code)
    if rules.signing is SigningMode.LINK:
        return LINK_ONLY
    row = _valid_login(session, link, signer, rules, session_secret)
    if row is None or row.assurance is None:
        raise IdentityError(LoginProblem.REQUIRED)
    return SignerIdentity(
        Assurance(row.assurance),
        issuer=row.issuer,
        acr=row.acr,
        authenticated_at=aware_utc(row.authenticated_at) if row.authenticated_at else None,
        id_token_sha256=row.id_token_sha256,
        pseudonym=pseudonym(row.identity_hash) if row.identity_hash else None,
    )


def _valid_login(
    session: Session,
    link: LinkTokenRow,
    signer: Signer,
    rules: BodyRules,
    secret: str | None,
) -> SignerLoginRow | None:
    """The browser's login if it is for this link, unexpired, not refused, at the
    body's level, and (again) the signer's."""
    if not secret or len(secret) > 100:
        return None
    row = login_by_session(session, secret)
    if row is None or row.refused is not None or row.session_expires_at is None:
        return None
    if not hmac.compare_digest(row.token_hash, link.token_hash):
        return None  # a login for another link
    if aware_utc(row.session_expires_at) <= utcnow():
        return None
    try:
        level = Assurance(row.assurance or "")
    except ValueError:
        return None
    if not level.at_least(rules.minimum_assurance):
        return None  # the body's level was raised since
    expected = signer.person.identity_hash
    if expected is not None and not hmac.compare_digest(row.identity_hash or "", expected):
        return None
    return row


# --- the login -------------------------------------------------------------------------


def start_login(services: Services, provider: OpenIdProvider, token: str) -> LoginRequest:
    """Begin a login on the link ``token``: where to send the browser. Raises
    ``LinkError`` for an unusable link, ``IdentityError`` PROVIDER_DOWN when the
    provider does not answer (nothing is recorded then)."""
    with services.ledger.reading() as session:
        link, _meeting, _signer = link_signer(session, token)
        token_hash = link.token_hash
    request = provider.login_request()
    with services.ledger.transaction() as session:
        prune_logins(session)
        add_login(
            session,
            token_hash=token_hash,
            state=request.state,
            nonce=request.nonce,
            code_verifier=request.code_verifier,
        )
    return request


@dataclass(frozen=True)
class LoginSession:
    """A login that lets its browser use the link until ``expires_at``."""

    secret: str
    expires_at: dt.datetime
    assurance: Assurance


@dataclass(frozen=True)
class _Started:
    nonce: str
    code_verifier: str
    started_at: dt.datetime


def finish_login(
    services: Services,
    provider: OpenIdProvider,
    *,
    token: str,
    state: str,
    code: str | None,
    error: str | None = None,
) -> LoginSession:
    """The provider's answer to a login begun on the link ``token`` (the browser
    says which link; ``state`` must be the one that login was begun with). The
    answer is used once, whatever comes of it; raises ``IdentityError`` saying why a
    login does not let its browser sign, ``LinkError`` if the link can no longer be
    used."""
    started = _claim_answer(services, token, state)
    try:
        if error is not None or not code:
            raise IdentityError(LoginProblem.CANCELLED, detail=error or "no code")
        authentication = provider.authenticate(
            code,
            nonce=started.nonce,
            code_verifier=started.code_verifier,
            started_at=started.started_at,
        )
    except IdentityError as refused:
        log.warning("login refused: %s", refused.diagnostics())
        _mark_refused(services, state, refused.problem)
        raise
    outcome = _decide(services, token, state, authentication)
    if isinstance(outcome, LoginProblem):
        raise IdentityError(outcome)
    return outcome


def _claim_answer(services: Services, token: str, state: str) -> _Started:
    """Mark the login begun with ``state`` answered, once; what its answer needs."""
    with services.ledger.transaction() as session:
        row = lock_login(session, state) if 0 < len(state) <= 200 else None
        if row is None or not hmac.compare_digest(row.token_hash, hash_token(token)):
            raise IdentityError(LoginProblem.NOT_STARTED)
        if row.answered_at is not None:
            raise IdentityError(LoginProblem.ALREADY_USED)
        now = utcnow()
        if aware_utc(row.expires_at) <= now or not row.nonce or not row.code_verifier:
            raise IdentityError(LoginProblem.NOT_STARTED, detail="the login began too long ago")
        row.answered_at = now
        return _Started(row.nonce, row.code_verifier, aware_utc(row.started_at))


def _mark_refused(services: Services, state: str, problem: LoginProblem) -> None:
    with services.ledger.transaction() as session:
        row = lock_login(session, state)
        if row is not None:
            row.refused, row.nonce, row.code_verifier = problem.value, None, None


def _decide(
    services: Services, token: str, state: str, authentication: Authentication
) -> LoginSession | LoginProblem:
    """Match the login to the link's signer and the body's level, and record what
    came of it (committed, also when it is refused: the refusal is returned)."""
    settings = services.settings
    if settings.identity is None:
        raise IdentityError(LoginProblem.CANNOT_MATCH, detail="no identity provider configured")
    minutes = settings.identity.login_minutes
    with services.ledger.transaction() as session:
        link, meeting, signer = link_signer(session, token)
        lock_meeting(session, meeting.meeting_id)  # before the extracts: one lock order
        row = lock_login(session, state)
        if row is None:
            raise IdentityError(LoginProblem.NOT_STARTED)
        row.nonce = row.code_verifier = None
        replayed = session.execute(
            select(SignerLoginRow.state_sha256).where(
                SignerLoginRow.id_token_sha256 == authentication.id_token_sha256
            )
        ).first()
        if replayed is not None:
            row.refused = LoginProblem.REPLAYED_TOKEN.value
            log.warning("login refused: an ID token presented before")
            return LoginProblem.REPLAYED_TOKEN
        rules = settings.body_rules(meeting.body.code)
        found, problem, level = _match(settings, rules, signer, authentication)
        row.issuer, row.acr = authentication.issuer, authentication.acr
        row.authenticated_at = authentication.authenticated_at
        row.id_token_sha256, row.identity_hash = authentication.id_token_sha256, found
        if problem is not None or level is None:
            problem = problem or LoginProblem.ASSURANCE_TOO_LOW
            row.refused = problem.value
            _record_refusal(session, link, signer, authentication, problem)
            return problem
        secret = secrets.token_urlsafe(32)
        expires = utcnow() + dt.timedelta(minutes=minutes)
        row.session_sha256, row.session_expires_at, row.assurance = digest(secret), expires, level
        return LoginSession(secret, expires, level)


def _match(
    settings: Settings, rules: BodyRules, signer: Signer, authentication: Authentication
) -> tuple[str | None, LoginProblem | None, Assurance | None]:
    """(the login's identity hash, why it does not match the signer, its level)."""
    identity = settings.identity
    if identity is None:
        return None, LoginProblem.CANNOT_MATCH, None
    claims, key, expected = authentication.claims, settings.identity_key, signer.person
    found: str | None = None
    value = claims.get(identity.identity_claim)
    if isinstance(value, str):
        try:
            found = identity_hash(key, normalise_personal_number(value))
        except PersonalNumberError:
            found = None
    problem: LoginProblem | None = None
    if expected.identity_hash is not None:
        if found is None:
            problem = LoginProblem.NO_IDENTITY
        elif not hmac.compare_digest(found, expected.identity_hash):
            problem = LoginProblem.WRONG_PERSON
    elif identity.email_claim is not None:
        email = claims.get(identity.email_claim)
        verified = identity.email_verified_claim
        if not isinstance(email, str) or (
            verified is not None and claims.get(verified) is not True
        ):
            problem = LoginProblem.NO_IDENTITY
        elif email.casefold() != expected.email.casefold():
            problem = LoginProblem.WRONG_PERSON
        elif found is None:
            found = claim_hash(key, identity.email_claim, email.casefold())
    else:
        problem = LoginProblem.CANNOT_MATCH
    level = assurance_of_acr(authentication.acr, identity.extra_acr)
    if level is not None and not level.at_least(rules.minimum_assurance):
        level = None
    if problem is None and level is None:
        problem = LoginProblem.ASSURANCE_TOO_LOW
    return found, problem, level


def _record_refusal(
    session: Session,
    link: LinkTokenRow,
    signer: Signer,
    authentication: Authentication,
    problem: LoginProblem,
) -> None:
    """``login_refused`` on every extract waiting for the signer behind the link."""
    detail = {
        "reason": problem.value,
        "issuer": authentication.issuer,
        "acr": authentication.acr or "",
        "auth_time": authentication.authenticated_at.isoformat(),
        "id_token_sha256": authentication.id_token_sha256,
    }
    recorded = 0
    for grant in grants_of(session, link.token_hash):
        extract = lock_extract(session, grant.extract_id)
        if grant_state(session, extract, grant.version, signer) is GrantState.PENDING:
            append_signer_event(session, extract, EventKind.LOGIN_REFUSED, signer, detail=detail)
            recorded += 1
    log.warning(
        "login refused on the link of %s (%s): %s; recorded on %d extracts",
        signer.slot,
        link.meeting_id,
        problem.value,
        recorded,
    )
