"""Finding 7: the archivists' login is limited per account and per address, with a
wait that grows, a Swedish 429 page that says how long, and at most two password
checks (32 MiB of scrypt each) at once, whatever arrives in parallel."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from justering.web import auth
from justering.web.app import Hooks, create_app
from justering.web.auth import LoginGuard, hash_password
from justering.workflow.services import Services
from support.workflow import sqlite_ledger  # noqa: F401

USER, PASSWORD = "anna", "rätt lösenord"
ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    accounts = tmp_path / "archivists.toml"
    accounts.write_text(
        f'[archivists]\n{USER} = "{hash_password(PASSWORD)}"\nbo = "{hash_password("b")}"\n'
    )
    return {"JUSTERING_ARCHIVISTS": str(accounts)}


@pytest.fixture
def app(services: Services, environ: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(services, Hooks(print, print), environ=environ)) as client:
        yield client


def login(app: TestClient, user: str, password: str) -> httpx.Response:
    return app.post(
        "/arkiv/logga-in",
        data={"anvandare": user, "losenord": password, "next": "/arkiv/"},
        headers=ORIGIN,
        follow_redirects=False,
    )


def test_guessing_one_account_is_stopped_and_told_how_long_to_wait(app: TestClient) -> None:
    for _ in range(5):
        assert login(app, USER, "gissning").status_code == 401
    refused = login(app, USER, "gissning")
    assert refused.status_code == 429
    assert "För många försök att logga in" in refused.text
    wait = int(refused.headers["retry-after"])
    assert 0 < wait <= 15 * 60
    assert "minut" in refused.text
    # The right password does not get through the wait either ...
    assert login(app, USER, PASSWORD).status_code == 429
    # ... while another account is not held up by it.
    assert login(app, "bo", "b").status_code == 303


def test_many_accounts_from_one_address_are_stopped_too() -> None:
    guard = LoginGuard()
    for n in range(20):
        assert guard.attempt(f"user{n}", "198.51.100.7").allowed
    verdict = guard.attempt("user-21", "198.51.100.7")
    assert not verdict.allowed and verdict.retry_after > 0
    assert guard.attempt("user-21", "198.51.100.8").allowed  # another address


def test_a_right_password_clears_the_accounts_count() -> None:
    guard = LoginGuard(per_account="3 per 15 minutes")
    for _ in range(2):
        assert guard.attempt(USER, "a").allowed
    guard.succeeded(USER)
    for _ in range(3):
        assert guard.attempt(USER, "a").allowed
    assert not guard.attempt(USER, "a").allowed


def test_parallel_bogus_logins_hash_at_most_two_passwords_at_once(
    services: Services, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 logins at once (as in the attack): scrypt never runs more than twice at a
    time, and the ones that find no slot are told to try again (429)."""
    running, peak, lock = 0, 0, threading.Lock()
    real = auth._scrypt

    def counted(*args: object) -> bytes:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real(*args)  # type: ignore[arg-type]
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(auth, "_scrypt", counted)
    app = create_app(services, Hooks(print, print), environ=environ)

    async def attack() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

            async def one(n: int) -> int:
                answer = await client.post(
                    "/arkiv/logga-in",
                    data={"anvandare": f"user{n}", "losenord": "x", "next": ""},
                    headers=ORIGIN,
                )
                return answer.status_code

            return await asyncio.gather(*(one(n) for n in range(40)))

    statuses = asyncio.run(attack())
    assert peak <= 2
    assert set(statuses) <= {401, 429} and statuses.count(401) >= 2
