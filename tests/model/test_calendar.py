"""Swedish statutory dates: the last day of the announcement (KL 8 kap. 12 §: the
second day after the justering) and the appeal deadline (13 kap. 5 §: three weeks
from the announcement), each moved past Saturdays, Sundays, public holidays,
midsommarafton, julafton and nyårsafton (lagen 1930:173); and Swedish local time."""

from __future__ import annotations

import datetime as dt

import pytest
from dateutil.easter import easter

from justering.model.calendar import (
    announcement_deadline,
    appeal_deadline,
    local_date,
    local_minute,
    local_second,
)

# --- the announcement, and the appeal period it starts -------------------------------------

# Each row by hand from a calendar: (justered on, the last day to announce it, the last
# day of appeal when announced at once (justering does), and when announced on that last
# day). The second day after the justering moves past the days no period ends on.
ANNOUNCEMENTS = [
    # Mon + 2 = Wed; Mon + 3 weeks = Mon 29 Jan; Wed 10 Jan + 3 weeks = Wed 31 Jan.
    ("2024-01-08", "2024-01-10", "2024-01-29", "2024-01-31", "weekday"),
    # Thu + 2 = Sat 3 Feb → Mon 5 Feb; Thu 22 Feb; Mon 26 Feb.
    ("2024-02-01", "2024-02-05", "2024-02-22", "2024-02-26", "thursday-weekend"),
    # Fri + 2 = Sun → Mon 5 Feb; Fri 23 Feb; Mon 26 Feb.
    ("2024-02-02", "2024-02-05", "2024-02-23", "2024-02-26", "friday-weekend"),
    # Justered on a Saturday: + 2 = Mon; Sat 24 Feb → Mon 26 Feb both ways.
    ("2024-02-03", "2024-02-05", "2024-02-26", "2024-02-26", "saturday"),
    # Fri 20 Dec + 2 = Sun → Mon 23 Dec (the day before julafton is a weekday);
    # Fri 10 Jan; Mon 13 Jan.
    ("2024-12-20", "2024-12-23", "2025-01-10", "2025-01-13", "before-christmas"),
    # Sun 22 Dec + 2 = julafton Tue 24 → juldagen, annandag jul → Fri 27 Dec;
    # Sun 12 Jan → Mon 13 Jan; Fri 17 Jan.
    ("2024-12-22", "2024-12-27", "2025-01-13", "2025-01-17", "christmas-2024"),
    # Mon 22 Dec 2025 + 2 = julafton Wed 24 → 25, 26, Sat 27, Sun 28 → Mon 29 Dec;
    # Mon 12 Jan; Mon 19 Jan.
    ("2025-12-22", "2025-12-29", "2026-01-12", "2026-01-19", "christmas-2025"),
    # Sun 29 Dec + 2 = nyårsafton Tue 31 → nyårsdagen Wed 1 Jan → Thu 2 Jan;
    # Sun 19 Jan → Mon 20 Jan; Thu 23 Jan.
    ("2024-12-29", "2025-01-02", "2025-01-20", "2025-01-23", "new-year-2025"),
    # Fri 29 Dec 2023 + 2 = Sun 31 (nyårsafton) → nyårsdagen Mon 1 Jan → Tue 2 Jan;
    # Fri 19 Jan; Tue 23 Jan.
    ("2023-12-29", "2024-01-02", "2024-01-19", "2024-01-23", "new-year-2024"),
    # Mon 29 Dec 2025 + 2 = nyårsafton Wed 31 → nyårsdagen Thu 1 Jan → Fri 2 Jan;
    # Mon 19 Jan; Fri 23 Jan.
    ("2025-12-29", "2026-01-02", "2026-01-19", "2026-01-23", "new-year-2026"),
    # Sat 4 Jan 2025 + 2 = trettondedag jul Mon 6 → Tue 7 Jan; Sat 25 → Mon 27 Jan; Tue 28.
    ("2025-01-04", "2025-01-07", "2025-01-27", "2025-01-28", "epiphany"),
    # Midsommarafton Fri 21 June 2024: Wed 19 + 2 = Fri 21 → midsommardagen Sat 22,
    # Sun 23 → Mon 24 June; Wed 10 July; Mon 15 July.
    ("2024-06-19", "2024-06-24", "2024-07-10", "2024-07-15", "midsummer-2024"),
    # Midsommarafton Fri 20 June 2025: Wed 18 + 2 → Mon 23 June; Wed 9 July; Mon 14 July.
    ("2025-06-18", "2025-06-23", "2025-07-09", "2025-07-14", "midsummer-2025"),
    # Midsommarafton Fri 19 June 2026 (the earliest it can be): Wed 17 + 2 → Mon 22 June.
    ("2026-06-17", "2026-06-22", "2026-07-08", "2026-07-13", "midsummer-2026"),
    # Easter 2025 is 20 April: Wed 16 + 2 = långfredag Fri 18 → … annandag påsk Mon 21
    # → Tue 22 April; Wed 7 May; Tue 13 May.
    ("2025-04-16", "2025-04-22", "2025-05-07", "2025-05-13", "easter-2025"),
]


@pytest.mark.parametrize(
    ("justered", "announce_by", "appeal_at_once", "appeal_at_the_latest"),
    [case[:4] for case in ANNOUNCEMENTS],
    ids=[case[4] for case in ANNOUNCEMENTS],
)
def test_announcement_and_appeal_dates(
    justered: str, announce_by: str, appeal_at_once: str, appeal_at_the_latest: str
) -> None:
    day = dt.date.fromisoformat(justered)
    latest = announcement_deadline(day)
    assert latest == dt.date.fromisoformat(announce_by)
    assert appeal_deadline(day) == dt.date.fromisoformat(appeal_at_once)
    assert appeal_deadline(latest) == dt.date.fromisoformat(appeal_at_the_latest)


# Appeal deadlines that fall on the days lagen 1930:173 moves (announcement day + 21
# days, then past Saturdays, Sundays, public holidays, midsommarafton, julafton and
# nyårsafton), each by hand from a calendar.
APPEALS = [
    # Tue 9 Jan 2024 + 3 weeks = Tue 30 Jan: an ordinary weekday.
    ("2024-01-09", "2024-01-30", "weekday"),
    # Sat 3 Feb + 3 weeks = Sat 24 Feb → Sun 25 → Mon 26 Feb.
    ("2024-02-03", "2024-02-26", "saturday"),
    # Sun 4 Feb + 3 weeks = Sun 25 Feb → Mon 26 Feb.
    ("2024-02-04", "2024-02-26", "sunday"),
    # Easter 2024 is 31 March: Fri 8 Mar + 3 weeks = långfredag 29 Mar → Sat 30,
    # påskdagen 31, annandag påsk Mon 1 Apr → Tue 2 Apr.
    ("2024-03-08", "2024-04-02", "easter-2024"),
    # Easter 2025 is 20 April: långfredag Fri 18 Apr → … → Tue 22 Apr.
    ("2025-03-28", "2025-04-22", "easter-2025"),
    # Skärtorsdagen (Thu 28 Mar 2024) is an ordinary weekday.
    ("2024-03-07", "2024-03-28", "maundy-thursday"),
    # Kristi himmelsfärds dag 2024 = Easter + 39 = Thu 9 May → Fri 10 May.
    ("2024-04-18", "2024-05-10", "ascension"),
    # Annandag pingst (Mon 20 May 2024) stopped being a holiday in 2005.
    ("2024-04-29", "2024-05-20", "whit-monday"),
    # Första maj 2024 is a Wednesday → Thu 2 May.
    ("2024-04-10", "2024-05-02", "first-of-may"),
    # Nationaldagen 2024 is a Thursday → Fri 7 June.
    ("2024-05-16", "2024-06-07", "national-day"),
    # Midsommarafton Fri 21 June 2024, midsommardagen Sat 22 → Mon 24 June.
    ("2024-05-31", "2024-06-24", "midsummer-2024"),
    # 2026: 19 June is the Friday (the earliest possible midsommarafton) → Mon 22 June.
    ("2026-05-29", "2026-06-22", "midsummer-2026"),
    # Julafton Tue 24 Dec 2024, juldagen 25, annandag jul 26 → Fri 27 Dec.
    ("2024-12-03", "2024-12-27", "christmas-2024"),
    # Julafton Wed 24 Dec 2025 → 25, 26, Sat 27, Sun 28 → Mon 29 Dec.
    ("2025-12-03", "2025-12-29", "christmas-2025"),
    # Julafton Sat 24 Dec 2022 → Sun 25, annandag jul Mon 26 → Tue 27 Dec.
    ("2022-12-03", "2022-12-27", "christmas-2022"),
    # Nyårsafton Tue 31 Dec 2024, nyårsdagen Wed 1 Jan 2025 → Thu 2 Jan 2025.
    ("2024-12-10", "2025-01-02", "new-year"),
    # Trettondedag jul Mon 6 Jan 2025 → Tue 7 Jan.
    ("2024-12-16", "2025-01-07", "epiphany"),
]


@pytest.mark.parametrize(
    ("announced", "deadline"), [case[:2] for case in APPEALS], ids=[case[2] for case in APPEALS]
)
def test_appeal_deadline_for_known_dates(announced: str, deadline: str) -> None:
    assert appeal_deadline(dt.date.fromisoformat(announced)) == dt.date.fromisoformat(deadline)


def _friday_from(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=(4 - day.weekday()) % 7)


@pytest.mark.parametrize("year", range(1990, 2101))
def test_movable_holidays_every_year(year: int) -> None:
    """Checked against dateutil's Easter and the definition of midsommarafton
    (the Friday from 19 to 25 June)."""
    three_weeks = dt.timedelta(weeks=3)
    good_friday = easter(year) - dt.timedelta(days=2)
    # långfredag, Saturday, påskdagen, annandag påsk: the Tuesday after Easter.
    assert appeal_deadline(good_friday - three_weeks) == easter(year) + dt.timedelta(days=2)
    assert announcement_deadline(good_friday - dt.timedelta(days=2)) == easter(year) + dt.timedelta(
        days=2
    )
    ascension = easter(year) + dt.timedelta(days=39)
    assert appeal_deadline(ascension - three_weeks) == ascension + dt.timedelta(days=1)
    midsummer_eve = _friday_from(dt.date(year, 6, 19))
    assert appeal_deadline(midsummer_eve - three_weeks) == midsummer_eve + dt.timedelta(days=3)
    assert announcement_deadline(midsummer_eve - dt.timedelta(days=2)) == (
        midsummer_eve + dt.timedelta(days=3)
    )
    # The Thursday before midsommarafton is a working day.
    thursday = midsummer_eve - dt.timedelta(days=1)
    if thursday != dt.date(year, 6, 6):
        assert appeal_deadline(thursday - three_weeks) == thursday


def test_the_appeal_period_is_the_statutory_three_weeks() -> None:
    """No length to choose: 13 kap. 5 § KL fixes it (the config refuses any other)."""
    with pytest.raises(TypeError):
        appeal_deadline(dt.date(2024, 1, 9), 1)  # type: ignore[call-arg]


# --- Swedish local time --------------------------------------------------------------------


def test_local_times_are_swedish_with_the_zone_where_asked() -> None:
    summer = dt.datetime(2014, 8, 19, 12, 2, 5, tzinfo=dt.UTC)
    winter = dt.datetime(2030, 1, 9, 23, 30, tzinfo=dt.UTC)
    assert local_minute(summer) == "2014-08-19 14:02"
    assert local_minute(summer, zone=True) == "2014-08-19 14:02 CEST"
    assert local_second(summer) == "2014-08-19 14:02:05 CEST"
    assert local_minute(winter, zone=True) == "2030-01-10 00:30 CET"
    assert local_date(winter) == dt.date(2030, 1, 10)  # still the 9th in UTC
    with pytest.raises(ValueError, match="time zone"):
        local_date(dt.datetime(2030, 1, 9, 23, 30))
