"""A real PKCS#11 token for the tests: SoftHSM2 (Debian's ``softhsm2``), with its
token folder and configuration under the test session's temporary folder.

A process loads a PKCS#11 module once and sees the tokens that existed then, so
the session has one token, set up before anything loads the module; tests tell
their CAs apart by key label (:meth:`SoftHsm.reference`). ``SOFTHSM2_CONF`` and
the PIN variable are set in this process's environment for the session, and
:meth:`SoftHsm.environment` gives them to a ``justering`` subprocess.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from justering.pades.hsm import TokenReference

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/*/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
"""Where distributions put the SoftHSM2 module (Debian first, then multiarch, Fedora, source)."""
TOKEN_LABEL = "justering-test"
PIN_ENV = "JUSTERING_TEST_HSM_PIN"
PIN = "271828"
SO_PIN = "31415926"


def softhsm2_module() -> Path | None:
    """The SoftHSM2 PKCS#11 module on this machine, or None."""
    for pattern in MODULE_CANDIDATES:
        for found in sorted(glob.glob(pattern)):
            if Path(found).is_file():
                return Path(found)
    return None


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    config: Path
    token_label: str = TOKEN_LABEL
    pin_env: str = PIN_ENV
    pin: str = PIN

    def reference(self, key_label: str | None = None) -> TokenReference:
        """A reference to a key (by default a new, unused label) in the token."""
        return TokenReference(
            self.module, self.token_label, key_label or f"ca-{uuid.uuid4().hex[:10]}", self.pin_env
        )

    def environment(self, base: dict[str, str], *, pin: str | None = PIN) -> dict[str, str]:
        """``base`` with the SoftHSM2 configuration and the PIN (None: no PIN variable)."""
        env = {**base, "SOFTHSM2_CONF": str(self.config)}
        env.pop(self.pin_env, None)
        if pin is not None:
            env[self.pin_env] = pin
        return env

    def init_ca_arguments(self, key_label: str) -> list[str]:
        """``justering ca init`` arguments that put the CA key in this token."""
        return [
            "--pkcs11-module",
            str(self.module),
            "--token-label",
            self.token_label,
            "--pin-env",
            self.pin_env,
            "--key-label",
            key_label,
        ]


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """The session's SoftHSM2 token (skipped where SoftHSM2 is not installed, but
    never in CI: scripts/install-system-packages.sh installs it)."""
    module = softhsm2_module()
    if module is None or shutil.which("softhsm2-util") is None:
        message = "SoftHSM2 is not installed (Debian: apt-get install softhsm2)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    config = folder / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {folder / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\n"
    )
    saved = {name: os.environ.get(name) for name in ("SOFTHSM2_CONF", PIN_ENV)}
    os.environ["SOFTHSM2_CONF"] = str(config)
    os.environ[PIN_ENV] = PIN
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ],
        check=True,
        capture_output=True,
    )
    yield SoftHsm(module, config)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
