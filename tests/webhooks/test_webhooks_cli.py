"""``justering clients webhook`` and ``justering webhooks [replay]`` as an operator
uses them: the secret printed once, alone on the last line; bad URLs and unknown
ids refused with exit 2 and a message that names them; a replay the receiver
refuses is exit 1; the list in text and JSON; nothing created in a missing home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from justering.cli.main import main
from justering.ledger.database import Ledger
from justering.ledger.schema import ClientRow
from support.webhooks import loopback_receiver, queue_deliveries


def run(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(home), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    home = tmp_path / "home"
    code, _out, err = run(capsys, home, "clients", "add", "nacka-ns", "--body", "KSAU")
    assert code == 0, err
    return home


def ledger_of(home: Path) -> Ledger:
    return Ledger(f"sqlite:///{home / 'justering.db'}")


def queue(home: Path, client: str = "nacka-ns") -> str:
    ledger = ledger_of(home)
    try:
        [found] = queue_deliveries(ledger, client, 1)
    finally:
        ledger.dispose()
    return found


def test_registering_a_webhook_prints_its_secret_once(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://ns.nacka.example/hook"
    code, out, err = run(capsys, home, "clients", "webhook", "nacka-ns", url)
    assert code == 0, err
    secret = out.splitlines()[-1]
    assert secret.startswith("whsec_") and out == secret + "\n"
    assert url in err and "shown only now" in err
    code, again, _ = run(capsys, home, "clients", "webhook", "nacka-ns", url)
    assert again.strip() != secret  # a new secret each time
    code, listed, _ = run(capsys, home, "clients", "list")
    assert f"webhooks to {url}" in listed and "whsec_" not in listed
    code, out, _ = run(capsys, home, "clients", "webhook", "nacka-ns", "--remove")
    assert code == 0 and "no more webhooks" in out
    ledger = ledger_of(home)
    try:
        with ledger.transaction() as session:
            row = session.get(ClientRow, "nacka-ns")
            assert row is not None and row.webhook_url is None and row.webhook_secret is None
    finally:
        ledger.dispose()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("nacka-ns", "http://ns.nacka.example/hook"), "must be https"),
        (("nacka-ns", "https://a:b@ns.nacka.example/"), "no user name or password"),
        (("nobody", "https://ns.nacka.example/"), "no client nobody"),
        (("nacka-ns",), "either a URL or --remove"),
        (("nacka-ns", "https://ns.nacka.example/", "--remove"), "either a URL or --remove"),
    ],
)
def test_a_bad_registration_is_exit_2_and_says_why(
    home: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    code, out, err = run(capsys, home, "clients", "webhook", *args)
    assert (code, out) == (2, "")
    assert says in err


def test_the_list_and_replay(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, home, "clients", "add", "other", "--body", "KSAU")
    run(capsys, home, "clients", "webhook", "other", "https://other.example/hook")
    with loopback_receiver("whsec_" + "A" * 44) as receiver:
        code, out, _ = run(capsys, home, "clients", "webhook", "nacka-ns", receiver.url)
        receiver.use_secret(out.strip())
        mine, theirs = queue(home), queue(home, "other")

        code, out, _ = run(capsys, home, "webhooks", "--json", "--client", "nacka-ns")
        listed = json.loads(out)["deliveries"]
        assert code == 0 and [d["id"] for d in listed] == [mine]
        assert listed[0]["status"] == "pending" and listed[0]["attempts"] == 0
        assert listed[0]["type"] == "meeting.recorded" and listed[0]["meeting_id"] == "m0"
        code, out, _ = run(capsys, home, "webhooks")
        assert mine in out and theirs in out and "never tried" in out

        receiver.outage = 503
        code, out, _ = run(capsys, home, "webhooks", "replay", mine)
        assert code == 1 and "not accepted" in out
        receiver.outage = None
        code, out, _ = run(capsys, home, "webhooks", "replay", mine)
        assert code == 0 and f"{mine} delivered" in out
    code, out, _ = run(capsys, home, "webhooks", "--client", "nacka-ns")
    assert "delivered" in out and "2 attempt(s)" in out and "HTTP 204" in out
    assert receiver.handled_ids == [mine] and all(p.verified for p in receiver.posts)
    code, out, err = run(capsys, home, "webhooks", "replay", "msg_unknown")
    assert code == 2 and "no webhook delivery msg_unknown" in err


def test_listing_in_a_missing_home_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    code, out, err = run(capsys, missing, "webhooks")
    assert (code, out) == (2, "") and "no justering home" in err
    assert not missing.exists()
