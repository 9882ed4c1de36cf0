"""Settings: embedded defaults under one home folder, overridden by the environment.

With nothing configured everything runs on one machine: SQLite, the local
archive directory and the outbox folder, all under ``JUSTERING_HOME``. A config
file (``JUSTERING_CONFIG``, TOML) may set the ``[justering]`` defaults
(``settings``), each body's own rules (``bodies``) and the OpenID Connect provider
(``identity``).
"""

from justering.config.bodies import BodyRules
from justering.config.identity import PERSONAL_IDENTITY_NUMBER_CLAIM, IdentitySettings
from justering.config.settings import (
    DEFAULT_HOME,
    HOME_KEY_BYTES,
    IDENTITY_KEY_FILE,
    TRAIL_KEY_FILE,
    Settings,
    home_key,
    load_settings,
)

__all__ = [
    "DEFAULT_HOME",
    "HOME_KEY_BYTES",
    "IDENTITY_KEY_FILE",
    "PERSONAL_IDENTITY_NUMBER_CLAIM",
    "TRAIL_KEY_FILE",
    "BodyRules",
    "IdentitySettings",
    "Settings",
    "home_key",
    "load_settings",
]
