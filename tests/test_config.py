import datetime as dt
import stat
from pathlib import Path

import pytest

from justering.config import HOME_KEY_BYTES, Settings, home_key, load_settings
from justering.errors import ConfigError
from justering.model.assurance import Assurance, SigningMode
from justering.model.roles import Person


def test_embedded_defaults_live_under_the_home(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "h", environ={})
    assert settings.home == (tmp_path / "h").resolve()
    assert settings.database_url == f"sqlite:///{settings.home / 'justering.db'}"
    assert settings.archive_url is None
    assert settings.archive_dir == settings.home / "archive"
    assert settings.outbox_dir == settings.home / "outbox"
    assert settings.ca_dir == settings.home / "ca"
    assert settings.prefect_api_url is None
    assert settings.justering_days == 14


def test_home_from_environment_and_explicit_home_wins(tmp_path: Path) -> None:
    env = {"JUSTERING_HOME": str(tmp_path / "env-home")}
    assert load_settings(environ=env).home == (tmp_path / "env-home").resolve()
    explicit = load_settings(tmp_path / "explicit", environ=env)
    assert explicit.home == (tmp_path / "explicit").resolve()


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "JUSTERING_DATABASE_URL": "postgresql+psycopg://u@db/j",
        "JUSTERING_ARCHIVE_URL": "s3://bucket/prefix",
        "JUSTERING_PUBLIC_URL": "https://justering.example/",
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
    }
    settings = load_settings(tmp_path, environ=env)
    assert settings.database_url == env["JUSTERING_DATABASE_URL"]
    assert settings.archive_url == "s3://bucket/prefix"
    assert settings.public_url == "https://justering.example"
    assert settings.prefect_api_url == env["PREFECT_API_URL"]


def test_config_file_sets_durations(tmp_path: Path) -> None:
    config = tmp_path / "j.toml"
    config.write_text(
        "[justering]\nlink_ttl_days = 3\nsigner_certificate_days = 30\njustering_days = 10\n"
    )
    settings = load_settings(tmp_path, environ={"JUSTERING_CONFIG": str(config)})
    assert settings.link_ttl == dt.timedelta(days=3)
    assert settings.signer_certificate_validity == dt.timedelta(days=30)
    assert settings.justering_days == 10


def test_the_shipped_config_file_is_the_defaults(tmp_path: Path) -> None:
    shipped = Path(__file__).parents[1] / "config" / "justering.toml"
    configured = load_settings(tmp_path, environ={"JUSTERING_CONFIG": str(shipped)})
    defaults = load_settings(tmp_path, environ={})
    assert configured.link_ttl == defaults.link_ttl
    assert configured.signer_certificate_validity == defaults.signer_certificate_validity
    assert configured.justering_days == defaults.justering_days
    assert configured.reminder_days == defaults.reminder_days == (3, 1)
    assert configured.immediate_days == defaults.immediate_days == 1
    assert defaults.bodies == {}
    # beyond the defaults: the förvaringsplats of the sample meeting's body
    assert list(configured.bodies) == ["KSAU"]
    ksau = configured.body_rules("KSAU")
    assert ksau.kept_at == "Kommunstyrelsens kansli, Nacka stadshus"
    assert (ksau.justering_days, ksau.reminder_days) == (14, (3, 1))


def test_bodies_have_their_own_rules(tmp_path: Path) -> None:
    config = tmp_path / "j.toml"
    config.write_text(
        "[justering]\njustering_days = 12\nreminder_days = [1, 5]\n"
        "[bodies.KSAU]\njustering_days = 7\nsecretary_name = 'Kim R'\n"
        "secretary_email = 'kim@kommun.example'\n"
        "[bodies.BN]\nreminder_days = [2]\n"
    )
    settings = load_settings(tmp_path, environ={"JUSTERING_CONFIG": str(config)})
    assert settings.reminder_days == (5, 1)
    ksau = settings.body_rules("KSAU")
    assert (ksau.justering_days, ksau.reminder_days) == (7, (5, 1))
    assert ksau.secretary == Person("Kim R", "kim@kommun.example")
    bn = settings.body_rules("BN")
    assert (bn.justering_days, bn.reminder_days, bn.secretary) == (12, (2,), None)
    other = settings.body_rules("KF")
    assert (other.justering_days, other.reminder_days, other.secretary) == (12, (5, 1), None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[justering]\nlink_ttl_days = 0\n", "link_ttl_days: must be at least 1 day"),
        ("[justering]\njustering_days = 'x'\n", "justering_days: expected a whole number"),
        ("[justering\n", "JUSTERING_CONFIG"),
        ("[justering]\nreminder_days = 3\n", "reminder_days: expected a list"),
        ("[bodies.KS]\nreminder_days = [-1]\n", r"bodies\.KS\.reminder_days"),
        ("[bodies.KS]\njustering_dagar = 3\n", r"bodies\.KS\.justering_dagar: unknown"),
        ("[bodies.KS]\nsecretary_name = 'A'\n", "set both"),
        ("[bodies.KS]\nsecretary_name = 'A'\nsecretary_email = 'a'\n", "not an e-mail"),
        ("[bodies.KS]\njustering_days = 0\n", r"bodies\.KS\.justering_days"),
        # The law in the config: named with its paragraph.
        ("[justering]\njustering_days = 30\n", r"justering_days: at most 14 .*5 kap\. 69 §"),
        ("[bodies.KS]\njustering_days = 15\n", r"bodies\.KS\.justering_days: at most 14"),
        ("[justering]\nappeal_weeks = 1\n", r"appeal_weeks: .*three weeks.*13 kap\. 5 §"),
        ("[justering]\nappeal_weeks = 4\n", r"appeal_weeks: .*remove the setting"),
        ("[justering]\nimmediate_justering_days = 2\n", r"0 \(the meeting day\) or 1.*70 §"),
        ("[bodies.KS]\nimmediate_justering_days = true\n", r"bodies\.KS\.immediate_justering"),
        ("[justering]\nprotocol_kept_at = ''\n", "protocol_kept_at: expected the förvaringsplats"),
        ('[bodies.KS]\nprotocol_kept_at = "a\\nb"\n', r"bodies\.KS\.protocol_kept_at"),
    ],
)
def test_bad_config_is_refused_naming_the_setting(
    tmp_path: Path, content: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, environ={"JUSTERING_CONFIG": str(config)})


def test_the_forvaringsplats_and_the_omedelbar_deadline_per_body(tmp_path: Path) -> None:
    config = tmp_path / "j.toml"
    config.write_text(
        "[justering]\nprotocol_kept_at = 'Kansliet, Stadshuset'\nappeal_weeks = 3\n"
        "[bodies.KSAU]\nprotocol_kept_at = 'KS kansli, Granitvägen 15'\n"
        "immediate_justering_days = 0\njustering_days = 14\n",
        encoding="utf-8",
    )
    settings = load_settings(tmp_path, environ={"JUSTERING_CONFIG": str(config)})
    ksau = settings.body_rules("KSAU")
    assert (ksau.kept_at, ksau.immediate_days, ksau.justering_days) == (
        "KS kansli, Granitvägen 15",
        0,
        14,
    )
    other = settings.body_rules("BN")
    assert (other.kept_at, other.immediate_days) == ("Kansliet, Stadshuset", 1)
    bare = load_settings(tmp_path, environ={})
    assert bare.body_rules("KSAU").kept_at is None  # required: a meeting is then refused


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings(tmp_path, environ={"JUSTERING_CONFIG": str(tmp_path / "nope.toml")})


def test_a_home_key_is_made_once_0600_and_the_same_for_everyone(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "home" / "some.key"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: home_key(path, what="a key", if_damaged="x"), range(8)))
    assert len(set(keys)) == 1 and len(keys[0]) == HOME_KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == keys[0]


def test_a_damaged_home_key_is_named_with_what_to_do(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "home", environ={})
    path = settings.trail_key_file
    assert path == settings.home / "trail-head.key"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"short")
    with pytest.raises(ConfigError, match=r"trail-head\.key: the trail key is too short; restore"):
        home_key(path, what="the trail key", if_damaged="restore it")
    assert path.read_bytes() == b"short"  # never replaced


# --- e-legitimation ---------------------------------------------------------------------

OIDC_ENV = {
    "JUSTERING_OIDC_ISSUER": "https://broker.example/oidc",
    "JUSTERING_OIDC_CLIENT_ID": "justering-nacka",
    "JUSTERING_OIDC_CLIENT_SECRET": "s3cret",
}


def _with_config(tmp_path: Path, text: str, **env: str) -> Settings:
    config = tmp_path / "j.toml"
    config.write_text(text, encoding="utf-8")
    return load_settings(tmp_path, environ={"JUSTERING_CONFIG": str(config), **env})


def test_without_a_provider_every_body_signs_by_link(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ={})
    assert settings.identity is None
    assert settings.body_rules("KSAU").signing is SigningMode.LINK


def test_a_provider_from_the_environment_makes_e_legitimation_the_default(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, environ=OIDC_ENV)
    identity = settings.identity
    assert identity is not None
    assert identity.issuer == "https://broker.example/oidc"
    assert identity.client_id == "justering-nacka" and identity.client_secret == "s3cret"
    assert "s3cret" not in repr(identity)
    assert identity.identity_claim == "https://id.oidc.se/claim/personalIdentityNumber"
    assert identity.acr_values == ("http://id.elegnamnden.se/loa/1.0/loa3",)
    rules = settings.body_rules("KSAU")
    assert rules.signing is SigningMode.E_LEGITIMATION
    assert rules.minimum_assurance is Assurance.LOA3


def test_the_identity_table_and_bodies(tmp_path: Path) -> None:
    settings = _with_config(
        tmp_path,
        """
[identity]
issuer = "https://broker.example/oidc"
client_id = "from-the-file"
display_name = "BankID eller Freja eID+"
identity_claim = "urn:broker:personnummer"
acr_values = ["http://id.elegnamnden.se/loa/1.0/loa4"]
minimum_assurance = "loa2"
max_age_seconds = 60
login_minutes = 5
email_claim = "email"
[identity.acr]
"urn:broker:bankid" = "loa3"
[bodies.KSAU]
signing = "link"
[bodies.KF]
minimum_assurance = "loa4"
""",
        JUSTERING_OIDC_CLIENT_ID="from-the-environment",
        JUSTERING_OIDC_CLIENT_SECRET="s3cret",
    )
    identity = settings.identity
    assert identity is not None
    assert identity.client_id == "from-the-environment"
    assert identity.display_name == "BankID eller Freja eID+"
    assert identity.identity_claim == "urn:broker:personnummer"
    assert identity.minimum_assurance is Assurance.LOA2
    assert (identity.max_age_seconds, identity.login_minutes) == (60, 5)
    assert identity.email_claim == "email" and identity.email_verified_claim == "email_verified"
    assert identity.extra_acr == {"urn:broker:bankid": Assurance.LOA3}
    assert settings.body_rules("KSAU").signing is SigningMode.LINK
    assert settings.body_rules("KF").signing is SigningMode.E_LEGITIMATION
    assert settings.body_rules("KF").minimum_assurance is Assurance.LOA4
    assert settings.body_rules("BUN").minimum_assurance is Assurance.LOA2


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ('[bodies.KSAU]\nsigning = "e-legitimation"\n', {}, "needs an identity provider"),
        ('[bodies.KSAU]\nsigning = "bankid"\n', OIDC_ENV, "expected one of e-legitimation, link"),
        ('[bodies.KSAU]\nminimum_assurance = "link"\n', OIDC_ENV, "loa2, loa3 or loa4"),
        ('[identity]\nclient_id = "x"\n', {}, "identity.issuer: missing"),
        ('[identity]\nclient_secret = "x"\n', OIDC_ENV, "JUSTERING_OIDC_CLIENT_SECRET"),
        ("[identity]\nunknown = 1\n", OIDC_ENV, "identity.unknown: unknown setting"),
        ('[identity]\nscopes = ["profile"]\n', OIDC_ENV, "must include openid"),
        ("[identity]\nmax_age_seconds = -1\n", OIDC_ENV, "max_age_seconds"),
        ('[identity.acr]\n"urn:x" = "high"\n', OIDC_ENV, "identity.acr.urn:x"),
        ("", {**OIDC_ENV, "JUSTERING_OIDC_CLIENT_SECRET": ""}, "JUSTERING_OIDC_CLIENT_SECRET"),
        ("", {**OIDC_ENV, "JUSTERING_OIDC_ISSUER": "http://broker.example"}, "https://"),
        ("", {**OIDC_ENV, "JUSTERING_OIDC_ISSUER": "https://b.example/?x=1"}, "no query"),
    ],
)
def test_identity_refusals(tmp_path: Path, text: str, env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _with_config(tmp_path, text, **env)
    assert fragment in refused.value.diagnostics()


def test_a_loopback_provider_may_speak_http(tmp_path: Path) -> None:
    env = {**OIDC_ENV, "JUSTERING_OIDC_ISSUER": "http://127.0.0.1:9400"}
    identity = load_settings(tmp_path, environ=env).identity
    assert identity is not None and identity.issuer == "http://127.0.0.1:9400"


def test_the_identity_key_is_a_home_key(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "home", environ={})
    key = settings.identity_key
    assert len(key) == HOME_KEY_BYTES and settings.identity_key == key
    path = settings.home / "identity-hash.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_one_reads_a_home_key_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow random source holds the first process between making the file and
    filling it; the others must still read the whole key, never an empty file."""
    import secrets
    import time
    from concurrent.futures import ThreadPoolExecutor

    random_bytes = secrets.token_bytes

    def slowly(count: int | None = None) -> bytes:
        time.sleep(0.05)
        return random_bytes(count)

    monkeypatch.setattr(secrets, "token_bytes", slowly)
    path = tmp_path / "home" / "race.key"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: home_key(path, what="a key", if_damaged="x"), range(8)))
    assert len(set(keys)) == 1 and len(keys[0]) == HOME_KEY_BYTES
    assert [p.name for p in path.parent.iterdir()] == ["race.key"]
