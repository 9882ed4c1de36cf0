"""Swedish time and statutory periods.

Every date and time a person reads is Swedish local time (Europe/Stockholm);
UTC is kept only in machine formats. A statutory period (the latest day of the
announcement, KL 8 kap. 12 §; the appeal period, KL 13 kap. 5 §) that ends on a
Saturday, Sunday, public holiday, midsommarafton, julafton or nyårsafton ends on
the next weekday instead (lagen 1930:173 om beräkning av lagstadgad tid).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = [
    "ANNOUNCEMENT_DAYS",
    "APPEAL_WEEKS",
    "MAX_JUSTERING_DAYS",
    "SWEDISH_TIME",
    "announcement_deadline",
    "appeal_deadline",
    "local_date",
    "local_minute",
    "local_second",
    "local_time",
    "local_today",
    "period_may_end_on",
]

SWEDISH_TIME = ZoneInfo("Europe/Stockholm")
"""The time zone of every date and time a person reads."""

MAX_JUSTERING_DAYS = 14
"""The protocol is justered no later than fourteen days after the meeting (KL 5 kap. 69 §)."""
ANNOUNCEMENT_DAYS = 2
"""The justering is announced no later than the second day after it (KL 8 kap. 12 §)."""
APPEAL_WEEKS = 3
"""An appeal must reach the court within three weeks of the announcement (KL 13 kap. 5 §)."""


def local_time(moment: dt.datetime) -> dt.datetime:
    """An aware ``moment`` in Swedish local time; a naive one is refused (whose
    clock it was read from is unknown)."""
    if moment.tzinfo is None:
        raise ValueError(f"a time without a time zone has no Swedish time: {moment.isoformat()}")
    return moment.astimezone(SWEDISH_TIME)


def local_date(moment: dt.datetime) -> dt.date:
    """The Swedish calendar day of an aware ``moment``."""
    return local_time(moment).date()


def local_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date in Sweden."""
    return local_date(now or dt.datetime.now(dt.UTC))


def local_minute(moment: dt.datetime, *, zone: bool = False) -> str:
    """``2014-08-19 14:30`` in Swedish local time (for a person to read); with ``zone``
    the zone's abbreviation follows (``14:30 CEST``), where a reader may be elsewhere
    or compare with a time in UTC."""
    local = local_time(moment)
    return local.strftime("%Y-%m-%d %H:%M") + (f" {local.tzname()}" if zone else "")


def local_second(moment: dt.datetime) -> str:
    """``2014-08-19 14:30:05 CEST``: Swedish local time to the second, with its zone
    (the certificate of completion, the archivist's timeline)."""
    local = local_time(moment)
    return local.strftime("%Y-%m-%d %H:%M:%S ") + str(local.tzname())


def _easter_sunday(year: int) -> dt.date:
    """Påskdagen (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * weekday_shift) // 433
    month = (h + weekday_shift - 7 * m + 90) // 25
    day = (h + weekday_shift - 7 * m + 33 * month + 19) % 32
    return dt.date(year, month, day)


def _saturday_between(start: dt.date) -> dt.date:
    """The Saturday in the seven days from ``start``."""
    return start + dt.timedelta(days=(5 - start.weekday()) % 7)


@lru_cache(maxsize=64)
def _days_without_deadline(year: int) -> frozenset[dt.date]:
    """The weekdays of ``year`` on which no statutory period ends: the public
    holidays (lagen 1989:253 om allmänna helgdagar) and midsommarafton,
    julafton and nyårsafton (1930:173, 2 §). Saturdays and Sundays come on top."""
    easter = _easter_sunday(year)
    midsummer_day = _saturday_between(dt.date(year, 6, 20))
    all_saints_day = _saturday_between(dt.date(year, 10, 31))
    movable = {
        easter - dt.timedelta(days=2),  # långfredag
        easter,  # påskdagen
        easter + dt.timedelta(days=1),  # annandag påsk
        easter + dt.timedelta(days=39),  # Kristi himmelsfärds dag
        easter + dt.timedelta(days=49),  # pingstdagen
        midsummer_day - dt.timedelta(days=1),  # midsommarafton
        midsummer_day,  # midsommardagen
        all_saints_day,  # alla helgons dag
    }
    fixed = {
        (1, 1),  # nyårsdagen
        (1, 6),  # trettondedag jul
        (5, 1),  # första maj
        (6, 6),  # Sveriges nationaldag
        (12, 24),  # julafton
        (12, 25),  # juldagen
        (12, 26),  # annandag jul
        (12, 31),  # nyårsafton
    }
    return frozenset(movable | {dt.date(year, month, day) for month, day in fixed})


def period_may_end_on(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _days_without_deadline(day.year)


def _period_end(last: dt.date) -> dt.date:
    """``last``, or the next day a statutory period may end on (lagen 1930:173)."""
    while not period_may_end_on(last):
        last += dt.timedelta(days=1)
    return last


def announcement_deadline(justered_on: dt.date) -> dt.date:
    """The last day the justering may be announced on the anslagstavla: the second
    day after it (KL 8 kap. 12 §), moved to the next weekday when that day is a
    Saturday, Sunday, public holiday, midsommarafton, julafton or nyårsafton."""
    return _period_end(justered_on + dt.timedelta(days=ANNOUNCEMENT_DAYS))


def appeal_deadline(announced_on: dt.date) -> dt.date:
    """The last day an appeal can reach the court: three weeks from the day of the
    announcement (KL 13 kap. 5 §), moved to the next weekday when that day is a
    Saturday, Sunday, public holiday, midsommarafton, julafton or nyårsafton
    (lagen 1930:173)."""
    return _period_end(announced_on + dt.timedelta(weeks=APPEAL_WEEKS))
