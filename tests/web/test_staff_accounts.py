"""The staff's accounts file: ``[archivists]`` as before, and ``[secretaries]`` with
the bodies each one follows; each staff area's sessions take only its own people, and
a cookie or form token of one area is nothing in the other."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from justering.errors import ConfigError
from justering.web.auth import (
    SECRETARY_REALM,
    Accounts,
    Sessions,
    hash_password,
    load_accounts,
)

ARCHIVIST = hash_password("arkiv")
SECRETARY = hash_password("sekr")


def _load(tmp_path: Path, content: str) -> Accounts:
    path = tmp_path / "konton.toml"
    path.write_text(content, "utf-8")
    return load_accounts({"JUSTERING_ARCHIVISTS": str(path)})


def test_an_accounts_file_of_archivists_only_means_what_it_did(tmp_path: Path) -> None:
    accounts = _load(tmp_path, f'[archivists]\nanna = "{ARCHIVIST}"\n')
    assert set(accounts.archivists().hashes) == {"anna"}
    assert accounts.secretaries().hashes == {}
    assert accounts.bodies_of("anna") == frozenset()


def test_secretaries_have_bodies_and_log_in_only_to_their_area(tmp_path: Path) -> None:
    accounts = _load(
        tmp_path,
        f'[archivists]\nanna = "{ARCHIVIST}"\n\n[secretaries]\n'
        f'lena = {{ password = "{SECRETARY}", bodies = ["KSAU", " KS "] }}\n'
        f'[secretaries."Åsa Öberg"]\npassword = "{SECRETARY}"\nbodies = ["BUN"]\n',
    )
    assert accounts.bodies_of("lena") == {"KSAU", "KS"}
    assert accounts.bodies_of("Åsa Öberg") == {"BUN"}
    archive, secretaries = accounts.archivists(), accounts.secretaries()
    assert set(archive.hashes) == {"anna"}
    assert set(secretaries.hashes) == {"lena", "Åsa Öberg"}
    assert secretaries.authenticate("lena", "sekr") and not archive.authenticate("lena", "sekr")
    assert archive.authenticate("anna", "arkiv") and not secretaries.authenticate("anna", "arkiv")


def test_a_session_or_token_of_one_area_is_nothing_in_the_other() -> None:
    both = Accounts({"anna": ARCHIVIST, "lena": SECRETARY}, {"lena": frozenset({"KSAU"})})
    key = b"k" * 32
    archive = Sessions(key, both.archivists())
    secretaries = Sessions(key, both.secretaries(), realm=SECRETARY_REALM)
    assert secretaries.user_of(secretaries.issue("lena")) == "lena"
    assert archive.user_of(archive.issue("anna")) == "anna"
    # the same key, the other area: not a session, not a token
    assert secretaries.user_of(archive.issue("anna")) is None
    assert archive.user_of(secretaries.issue("lena")) is None
    assert not secretaries.csrf_ok("lena", archive.csrf_token("lena"))
    assert not archive.csrf_ok("anna", secretaries.csrf_token("anna"))
    # an archive session forged for a secretary's name is no session either
    everyone = Sessions(key, both)
    assert archive.user_of(everyone.issue("lena")) is None


def _altered(value: str) -> list[str]:
    """``value`` with one character changed in each of its parts (payload, time,
    signature), and every shorter prefix of it."""
    changed = []
    for part in range(3):
        pieces = value.split(".")
        last = pieces[part][-2]
        pieces[part] = pieces[part][:-2] + ("B" if last == "A" else "A") + pieces[part][-1]
        changed.append(".".join(pieces))
    return changed + [value[:end] for end in range(len(value))]


def test_tampered_truncated_foreign_and_stale_cookies_are_no_session() -> None:
    accounts = Accounts({"anna": ARCHIVIST, "bo": ARCHIVIST})
    sessions = Sessions(b"k" * 32, accounts, lifetime=60)
    cookie = sessions.issue("anna", now=1000)
    assert sessions.user_of(cookie, now=1060) == "anna"
    for value in _altered(cookie):
        assert sessions.user_of(value, now=1001) is None, value
    # a payload rewritten to name someone else keeps no valid signature
    payload, stamp, signature = cookie.split(".")
    renamed = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b'"anna"', b'"bo"')
    ).decode()
    assert sessions.user_of(f"{renamed.rstrip('=')}.{stamp}.{signature}", now=1001) is None
    assert Sessions(b"K" * 32, accounts, lifetime=60).user_of(cookie, now=1001) is None
    assert sessions.user_of(cookie, now=1061) is None  # expired
    assert sessions.user_of(cookie, now=999) is None  # stamped in the future
    # a form token is not a cookie, nor the other way round
    assert sessions.user_of(sessions.csrf_token("anna", now=1000), now=1001) is None
    assert not sessions.csrf_ok("anna", cookie, now=1001)


def test_tampered_truncated_foreign_and_stale_csrf_tokens_are_refused() -> None:
    sessions = Sessions(b"k" * 32, Accounts({}), lifetime=60)
    token = sessions.csrf_token("anna", now=1000)
    assert sessions.csrf_ok("anna", token, now=1060)
    for value in _altered(token):
        assert not sessions.csrf_ok("anna", value, now=1001), value
    assert not sessions.csrf_ok("bo", token, now=1001)
    assert not Sessions(b"K" * 32, Accounts({}), lifetime=60).csrf_ok("anna", token, now=1001)
    assert not sessions.csrf_ok("anna", token, now=1061)
    assert not sessions.csrf_ok("anna", token, now=999)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("secretaries = 3\n", "[secretaries] must be a table"),
        ('[secretaries]\nlena = "scrypt$1"\n', "secretary 'lena': expected {password"),
        (
            f'[secretaries]\nlena = {{ password = "{SECRETARY}", bodies = ["KSAU"], x = 1 }}\n',
            "secretary 'lena': expected {password",
        ),
        ('[secretaries]\nlena = { bodies = ["KSAU"] }\n', "password: expected a hash string"),
        (
            '[secretaries]\nlena = { password = "hemligt", bodies = ["KSAU"] }\n',
            "'lena': the password hash is not",
        ),
        (f'[secretaries]\nlena = {{ password = "{SECRETARY}" }}\n', "bodies: expected a list"),
        (
            f'[secretaries]\nlena = {{ password = "{SECRETARY}", bodies = [] }}\n',
            "bodies: expected a list",
        ),
        (
            f'[secretaries]\nlena = {{ password = "{SECRETARY}", bodies = "KSAU" }}\n',
            "bodies: expected a list",
        ),
        (
            f'[secretaries]\nlena = {{ password = "{SECRETARY}", bodies = ["KSAU", " "] }}\n',
            "bodies: expected a list",
        ),
        (
            f'[archivists]\nlena = "{ARCHIVIST}"\n[secretaries]\n'
            f'lena = {{ password = "{SECRETARY}", bodies = ["KSAU"] }}\n',
            "secretary 'lena' is also an archivist",
        ),
    ],
)
def test_malformed_secretaries_are_refused(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        _load(tmp_path, content)
    assert "konton.toml" in caught.value.diagnostics()


def _hash_helper(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "justering.web.auth", "hash", *args],
        input="hemligt lösen\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def test_the_hash_helper_prints_a_secretarys_line(tmp_path: Path) -> None:
    result = _hash_helper("Åsa Öberg", "--bodies", "KSAU, KS")
    assert result.returncode == 0, result.stderr
    accounts = _load(tmp_path, "[secretaries]\n" + result.stdout)
    assert accounts.bodies_of("Åsa Öberg") == {"KSAU", "KS"}
    assert accounts.secretaries().authenticate("Åsa Öberg", "hemligt lösen")
    assert tomllib.loads("[secretaries]\n" + result.stdout)  # plain TOML
    refused = _hash_helper("lena", "--bodies", " , ")
    assert refused.returncode == 2 and "--bodies needs body codes" in refused.stderr
