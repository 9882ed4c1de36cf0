"""The small readers every table of the configuration uses: a value from the
environment, a positive count, a list of reminder days, one of an enum's values.
Each raises a ConfigError that names the setting and what was expected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from justering.errors import ConfigError
from justering.model.assurance import Assurance, SigningMode

__all__ = ["choice", "env_value", "login_level", "positive", "reminder_days"]


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's value, stripped; None when it is unset or blank."""
    value = environ.get(name, "").strip()
    return value or None


def positive(value: Any, name: str, unit: str = "days") -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a whole number of {unit}, got {value!r}") from None
    if count <= 0:
        raise ConfigError(f"{name}: must be at least 1 {unit.rstrip('s')}, got {count}")
    return count


def reminder_days(value: Any, where: str) -> tuple[int, ...]:
    name = f"{where}reminder_days"
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise ConfigError(f"{name}: expected a list of whole days >= 0, e.g. [3, 1]; got {value!r}")
    return tuple(sorted(set(value), reverse=True))


def login_level(value: Any, name: str) -> Assurance:
    level = choice(value, name, Assurance)
    if level is Assurance.LINK:
        raise ConfigError(f"{name}: a login's level is loa2, loa3 or loa4")
    return level


_E = TypeVar("_E", SigningMode, Assurance)


def choice(value: Any, name: str, kind: type[_E]) -> _E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ConfigError(f"{name}: expected one of {choices}; got {value!r}") from None
