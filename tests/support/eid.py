"""Signing with e-legitimation in the tests: personnummer that pass their check,
a meeting whose signers have them, the web app served on loopback and logging in
at a :class:`~support.oidc_provider.LoopbackProvider`, and a signer that follows
the login over plain HTTP (httpx) as a browser would.

    with eid_site(services, provider) as site:
        answer = site.log_in(client, token, "chair")
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from justering import workflow
from justering.config import BodyRules
from justering.devtools.signer_client import read_forms
from justering.model.meeting import Meeting
from justering.web.app import Hooks, create_app
from justering.web.login import CALLBACK_PATH
from justering.workflow.services import Services
from support.browser import base_url_of, loopback_listener, serve_app
from support.oidc_provider import LoopbackProvider, person
from support.workflow import recording


def with_check_digit(eleven: str) -> str:
    """``ÅÅÅÅMMDDNNN`` completed with its Luhn check digit."""
    total = 0
    for position, char in enumerate(eleven[2:]):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return eleven + str((10 - total % 10) % 10)


CHAIR_NUMBER = with_check_digit("19121212121")
ADJUSTER_NUMBER = with_check_digit("19640823323")
CERTIFIER_NUMBER = with_check_digit("19780309561")
STRANGER_NUMBER = with_check_digit("19850517238")
"""Someone the manifest does not name (the link was forwarded to them)."""
NUMBERS = (CHAIR_NUMBER, ADJUSTER_NUMBER, CERTIFIER_NUMBER, STRANGER_NUMBER)


def with_numbers(meeting: Meeting) -> Meeting:
    """``meeting`` (one adjuster) with a personnummer for each signer."""
    (adjuster,) = meeting.adjusters
    return replace(
        meeting,
        chair=replace(meeting.chair, personal_number=CHAIR_NUMBER),
        adjusters=(replace(adjuster, personal_number=ADJUSTER_NUMBER),),
        certifier=replace(meeting.certifier, personal_number=CERTIFIER_NUMBER),
    )


def people_of(meeting: Meeting) -> dict[str, dict[str, Any]]:
    """The provider's people: the meeting's three signers and a stranger, by ``sub``."""
    (adjuster,) = meeting.adjusters
    return {
        "chair": person("chair", meeting.chair.name, CHAIR_NUMBER),
        "adjuster": person("adjuster", adjuster.name, ADJUSTER_NUMBER),
        "certifier": person("certifier", meeting.certifier.name, CERTIFIER_NUMBER),
        "stranger": person("stranger", "Sven Främling", STRANGER_NUMBER),
    }


@dataclass
class EidSite:
    """The web app on loopback, with signers logging in at ``provider``."""

    base_url: str
    services: Services
    provider: LoopbackProvider
    failures: list[BaseException] = field(default_factory=list)

    def link(self, token: str) -> str:
        return f"{self.base_url}/s/{token}"

    def begin_login(self, client: httpx.Client, token: str) -> httpx.Response:
        """Press the login button: the answer that sends the browser to the provider."""
        page = client.get(self.link(token))
        assert page.status_code == 200 and "/logga-in" in page.text, page.text[:500]
        return client.get(f"{self.link(token)}/logga-in")

    def authorize(self, client: httpx.Client, start: httpx.Response, sub: str | None) -> str:
        """At the provider: log in as ``sub`` (None: cancel); the callback URL."""
        assert start.status_code == 303, start.text[:500]
        at_provider = start.headers["location"]
        assert at_provider.startswith(self.provider.issuer), at_provider
        assert client.get(at_provider).status_code == 200
        answer = client.post(at_provider, data={"sub": sub} if sub else {})
        assert answer.status_code == 302, answer.text[:500]
        callback = answer.headers["location"]
        assert callback.startswith(f"{self.base_url}{CALLBACK_PATH}?"), callback
        return str(callback)

    def log_in(self, client: httpx.Client, token: str, sub: str | None) -> httpx.Response:
        """The whole login as ``sub``; the answer to the provider's redirect back."""
        return client.get(self.authorize(client, self.begin_login(client, token), sub))

    def sign(self, client: httpx.Client, token: str) -> httpx.Response:
        """Open the link (logged in) and submit its signing form."""
        page = client.get(self.link(token))
        assert page.status_code == 200, page.text[:500]
        forms = read_forms(page.text)
        assert "sign" in forms.actions, page.text[:500]
        data: dict[str, Any] = {}
        for name, value in forms.fields["sign"]:
            data.setdefault(name, []).append(value)
        return client.post(f"{self.base_url}{forms.actions['sign']}", data=data)


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


@contextmanager
def eid_site(
    services: Services,
    provider: LoopbackProvider,
    *,
    bodies: Mapping[str, BodyRules] | None = None,
    **identity: Any,
) -> Iterator[EidSite]:
    """Serve the app with ``provider`` as the identity provider (every body signs with
    e-legitimation unless ``bodies`` says otherwise); the meeting moves on for real
    after each signature."""
    listener = loopback_listener()
    base_url = base_url_of(listener)
    provider.redirect_uris.append(f"{base_url}{CALLBACK_PATH}")
    settings = replace(
        services.settings,
        public_url=base_url,
        identity=provider.identity_settings(**identity),
        bodies=dict(bodies or {}),
    )
    live = replace(services, settings=settings)
    site = EidSite(base_url, live, provider)
    advance = recording(site.failures, lambda m: workflow.advance_meeting(live, m))

    def started(meeting_id: str) -> None:
        workflow.draft_meeting(live, meeting_id)
        workflow.advance_meeting(live, meeting_id)

    with serve_app(create_app(live, Hooks(started, advance)), listener=listener):
        yield site
    assert site.failures == [], "schedule_advance failed"


def session_cookie(client: httpx.Client) -> str | None:
    for cookie in client.cookies.jar:
        if cookie.name == "justering_signer":
            return cookie.value
    return None


LINK = re.compile(r"/s/([A-Za-z0-9_-]+)")
