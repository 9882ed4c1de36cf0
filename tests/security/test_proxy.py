"""Finding 11: behind the documented reverse proxy the archivists' cookie is Secure
(the proxy's X-Forwarded-Proto is believed, from the configured proxy only), the
login limits count the real client (its X-Forwarded-For), and no link token is
written to a log."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from justering.config import load_settings
from justering.errors import ConfigError
from justering.model.meeting import Meeting
from justering.web.app import Hooks, create_app
from justering.web.auth import hash_password
from justering.workflow.services import Services
from support.workflow import (
    newest_token,
    small_meeting,
    sqlite_ledger,  # noqa: F401
    start,
)

PROXY = "10.0.0.5"
PASSWORD = "rätt"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    accounts = tmp_path / "archivists.toml"
    accounts.write_text(f'[archivists]\nanna = "{hash_password(PASSWORD)}"\n')
    return {"JUSTERING_ARCHIVISTS": str(accounts)}


def _login(
    services: Services,
    environ: dict[str, str],
    client: str,
    forwarded: dict[str, str],
    password: str = PASSWORD,
    times: int = 1,
) -> list[httpx.Response]:
    app = create_app(services, Hooks(print, print), environ=environ)

    async def post() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://justering") as web:
            return [
                await web.post(
                    "/arkiv/logga-in",
                    data={"anvandare": "anna", "losenord": password, "next": ""},
                    headers={"Origin": "http://justering", **forwarded},
                )
                for _ in range(times)
            ]

    return asyncio.run(post())


def test_behind_the_trusted_proxy_the_session_cookie_is_secure(
    services: Services, environ: dict[str, str]
) -> None:
    trusting = replace(services, settings=replace(services.settings, trusted_proxies=(PROXY,)))
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    [answer] = _login(trusting, environ, PROXY, https)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    # The same headers from anywhere else are not believed: no https, no Secure.
    [spoofed] = _login(trusting, environ, "10.0.0.6", https)
    assert spoofed.status_code == 303 and "Secure" not in spoofed.headers["set-cookie"]
    # Nor without a configured proxy at all.
    [plain] = _login(services, environ, PROXY, https)
    assert "Secure" not in plain.headers["set-cookie"]


def test_the_login_limits_count_the_client_the_proxy_names(
    services: Services, environ: dict[str, str]
) -> None:
    trusting = replace(services, settings=replace(services.settings, trusted_proxies=(PROXY,)))
    guesses = _login(trusting, environ, PROXY, {"X-Forwarded-For": "203.0.113.9"}, "fel", 6)
    assert [a.status_code for a in guesses] == [401] * 5 + [429]


def test_trusted_proxies_are_read_and_checked() -> None:
    settings = load_settings(environ={"JUSTERING_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/24"})
    assert settings.trusted_proxies == ("10.0.0.5", "192.168.0.0/24")
    with pytest.raises(ConfigError, match=r"'proxy\.example' is not an IP address"):
        load_settings(environ={"JUSTERING_TRUSTED_PROXIES": "proxy.example"})


def test_no_link_token_is_logged(
    services: Services, sample_meeting: Meeting, caplog: pytest.LogCaptureFixture
) -> None:
    meeting = small_meeting(sample_meeting)
    start(services, meeting)
    token = newest_token(services, meeting.chair.email)
    with caplog.at_level(logging.DEBUG), TestClient(create_app(services, Hooks(print, print))) as c:
        assert c.get(f"/s/{token}").status_code == 200
        assert c.get(f"/s/{token[:-1]}x").status_code == 404
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert server  # the app did log (the test client's own request log is not the app's)
    assert not [r for r in server if token[:20] in r.getMessage()]
