"""What kommunallagen (2017:725) allows the configuration to say about the justering:
each reader takes a value from the config file and returns it, or raises a
``ConfigError`` naming the setting and the paragraph of the law.

- ``justering_days``: the protocol is justered no later than fourteen days after
  the meeting (5 kap. 69 §);
- ``immediate_justering_days``: omedelbar justering is done at the meeting (5 kap.
  70 §): the meeting day (0) or the day after (1), no later;
- ``protocol_kept_at``: the förvaringsplats the announcement gives (8 kap. 12 §);
- ``appeal_weeks``: not a setting: the appeal period is three weeks (13 kap. 5 §).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from justering.errors import ConfigError
from justering.model.calendar import APPEAL_WEEKS, MAX_JUSTERING_DAYS

__all__ = [
    "immediate_justering_days",
    "justering_days",
    "justering_rules",
    "protocol_kept_at",
    "refuse_appeal_weeks",
]


def justering_rules(
    table: Mapping[str, Any], where: str, defaults: tuple[int, str | None, int]
) -> tuple[int, str | None, int]:
    """A config table's ``justering_days``, ``protocol_kept_at`` and
    ``immediate_justering_days`` (``where`` prefixes their names in errors: ``""`` or
    ``"bodies.KSAU."``), each the default where the table has none."""
    days, kept_at, immediate = defaults
    if "justering_days" in table:
        days = justering_days(table["justering_days"], f"{where}justering_days")
    if "protocol_kept_at" in table:
        kept_at = protocol_kept_at(table["protocol_kept_at"], f"{where}protocol_kept_at")
    if "immediate_justering_days" in table:
        name = f"{where}immediate_justering_days"
        immediate = immediate_justering_days(table["immediate_justering_days"], name)
    return days, kept_at, immediate


def justering_days(value: Any, name: str) -> int:
    """Days from the meeting to the last day of its justering: 1 to 14."""
    if type(value) is not int or value <= 0:
        raise ConfigError(f"{name}: expected a whole number of days, at least 1, got {value!r}")
    if value > MAX_JUSTERING_DAYS:
        raise ConfigError(
            f"{name}: at most {MAX_JUSTERING_DAYS} days, got {value}: the protocol is "
            "justered no later than fourteen days after the meeting (5 kap. 69 § "
            "kommunallagen)"
        )
    return value


def immediate_justering_days(value: Any, name: str) -> int:
    """The omedelbar justering's last day: 0 the meeting day, 1 the day after."""
    if value not in (0, 1) or isinstance(value, bool):
        raise ConfigError(
            f"{name}: expected 0 (the meeting day) or 1 (the day after), got {value!r}: "
            "omedelbar justering is done at the meeting (5 kap. 70 § kommunallagen)"
        )
    return int(value)


def protocol_kept_at(value: Any, name: str) -> str:
    """The förvaringsplats: one line of text."""
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise ConfigError(
            f"{name}: expected the förvaringsplats as one line of text, e.g. "
            f"'Kommunstyrelsens kansli, Stadshuset'; got {value!r}"
        )
    return value.strip()


def refuse_appeal_weeks(value: Any) -> None:
    """``appeal_weeks`` may only say what the law says (3), for old config files."""
    if value != APPEAL_WEEKS or isinstance(value, bool):
        raise ConfigError(
            f"appeal_weeks: the appeal period is three weeks from the announcement by law "
            f"(13 kap. 5 § kommunallagen) and cannot be changed; got {value!r}: remove the "
            "setting"
        )
