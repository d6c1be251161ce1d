"""The simulator's exchange calendar (issue 23): NYSE sessions, holidays and
early closes, checked against dates exchange-calendars' XNYS gives."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tradecycle.connectors import sim_calendar as cal

# exchange-calendars 4.13, XNYS: the weekdays without a session, and the 13:00 closes.
XNYS_HOLIDAYS = {
    2026: ["2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25", "2026-06-19", "2026-07-03",
           "2026-09-07", "2026-11-26", "2026-12-25"],
    2027: ["2027-01-01", "2027-01-18", "2027-02-15", "2027-03-26", "2027-05-31", "2027-06-18", "2027-07-05",
           "2027-09-06", "2027-11-25", "2027-12-24"],
}
XNYS_EARLY_CLOSES = ["2026-11-27", "2026-12-24", "2027-11-26"]


@pytest.mark.parametrize("year", sorted(XNYS_HOLIDAYS))
def test_weekdays_without_a_session_are_the_nyse_holidays(year):
    day, missing = date(year, 1, 1), []
    while day.year == year:
        if day.weekday() < 5 and not cal.is_session(day):
            missing.append(day.isoformat())
        day += timedelta(days=1)
    assert missing == XNYS_HOLIDAYS[year]


def test_no_weekend_session_and_new_years_day_on_a_saturday_is_not_made_up():
    assert not cal.is_session(date(2026, 3, 1))  # a Sunday
    assert not cal.is_session(date(2026, 2, 28))  # a Saturday
    assert cal.is_session(date(2027, 12, 31))  # 2028-01-01 is a Saturday


def test_sessions_open_at_0930_and_close_at_1600_new_york_or_1300_on_early_closes():
    opens, closes = cal.session_bounds(date(2026, 3, 2))  # winter: New York is UTC-5
    assert (opens, closes) == (datetime(2026, 3, 2, 14, 30, tzinfo=UTC), datetime(2026, 3, 2, 21, 0, tzinfo=UTC))
    opens, closes = cal.session_bounds(date(2026, 7, 1))  # summer: UTC-4
    assert (opens, closes) == (datetime(2026, 7, 1, 13, 30, tzinfo=UTC), datetime(2026, 7, 1, 20, 0, tzinfo=UTC))
    for day in XNYS_EARLY_CLOSES:
        closes = cal.session_bounds(date.fromisoformat(day))[1]
        assert closes.astimezone(cal.NEW_YORK).hour == 13, day


def test_open_next_open_and_the_last_trade_of_a_weekend():
    saturday = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert not cal.is_open(saturday)
    assert cal.next_open(saturday) == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    assert cal.last_trade_time(saturday) == datetime(2026, 2, 27, 21, 0, tzinfo=UTC)  # Friday's close
    monday = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert cal.is_open(monday) and cal.last_trade_time(monday) == monday
    assert cal.next_close(monday) == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)


def test_open_seconds_between_count_only_sessions():
    friday_noon = datetime(2026, 2, 27, 17, 0, tzinfo=UTC)  # 12:00 in New York
    monday_noon = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert cal.open_seconds_between(friday_noon, monday_noon) == 4 * 3600 + 2.5 * 3600  # Friday 12-16, Monday 9:30-12
    assert cal.open_seconds_between(datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, 23, tzinfo=UTC)) == 0
