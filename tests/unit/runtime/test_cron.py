"""When a schedule fires: cron read in the schedule's own time zone, across DST changes.

Covers ``opshub.schedules.cron``: wall-clock times stay put across daylight-saving changes
(Europe/Berlin and America/New_York, 2026), a time the clocks skip fires once just after the jump,
a time that happens twice fires once (its first occurrence), results are in UTC and strictly
after ``after``, and invalid expressions or zones are refused with ``InvalidInputError``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opshub.errors import InvalidInputError
from opshub.schedules.cron import next_fire, parse_zone, validate_cron

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def firings(expression: str, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """Every firing in (after, until], by chaining next_fire the way the scheduler does."""
    fired: list[datetime] = []
    while True:
        after = next_fire(expression, zone, after)
        if after > until:
            return fired
        fired.append(after)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_monday_nine_stays_at_nine_local_across_both_berlin_dst_changes() -> None:
    # CET is UTC+1 (winter), CEST UTC+2 (summer); 2026 switches on March 29 and October 25.
    spring = firings("0 9 * * MON", BERLIN, utc(2026, 3, 16), utc(2026, 4, 7))
    assert spring == [
        utc(2026, 3, 16, 8),
        utc(2026, 3, 23, 8),
        utc(2026, 3, 30, 7),
        utc(2026, 4, 6, 7),
    ]

    autumn = firings("0 9 * * MON", BERLIN, utc(2026, 10, 12), utc(2026, 11, 3))
    assert autumn == [
        utc(2026, 10, 12, 7),
        utc(2026, 10, 19, 7),
        utc(2026, 10, 26, 8),
        utc(2026, 11, 2, 8),
    ]

    for fire in spring + autumn:
        local = fire.astimezone(BERLIN)
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


def test_results_are_utc_and_strictly_after_the_given_instant() -> None:
    exactly_a_slot = utc(2026, 3, 23, 8)  # Monday 09:00 in Berlin
    fire = next_fire("0 9 * * MON", BERLIN, exactly_a_slot)
    assert fire.utcoffset() == timedelta(0)
    assert fire == utc(2026, 3, 30, 7)
    # An ``after`` given in another zone means the same instant.
    assert next_fire("0 9 * * MON", BERLIN, exactly_a_slot.astimezone(NEW_YORK)) == fire


def test_a_time_skipped_by_spring_forward_fires_once_right_after_the_jump() -> None:
    # 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that night.
    fired = firings("30 2 * * *", BERLIN, utc(2026, 3, 27, 12), utc(2026, 3, 31, 12))
    assert fired == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 30),  # 03:30 CEST, the same instant "02:30 CET" would have been
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
        utc(2026, 3, 31, 0, 30),
    ]
    on_the_night = [f.astimezone(BERLIN) for f in fired if f.astimezone(BERLIN).day == 29]
    assert [(f.hour, f.minute) for f in on_the_night] == [(3, 30)]


def test_a_time_repeated_by_fall_back_fires_once_at_its_first_occurrence() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    fired = firings("30 2 * * *", BERLIN, utc(2026, 10, 23, 12), utc(2026, 10, 26, 12))
    assert fired == [
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first one; not again at 01:30 UTC (CET)
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    ]
    # Asked from between the two occurrences, it does not fire the second one either.
    assert next_fire("30 2 * * *", BERLIN, utc(2026, 10, 25, 1, 0)) == utc(2026, 10, 26, 1, 30)


def test_sub_hourly_schedule_fires_each_wall_clock_slot_once_on_the_fall_back_night() -> None:
    fired = firings("*/30 * * * *", BERLIN, utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 45))
    local = [f.astimezone(BERLIN).strftime("%H:%M%z") for f in fired]
    # The repeated hour (02:00-02:59) fires once, in summer time: no slot twice, none made up.
    assert local == ["02:00+0200", "02:30+0200", "03:00+0100", "03:30+0100"]
    assert len(set(fired)) == len(fired)


def test_new_york_dst_changes_keep_local_times() -> None:
    # 2026: spring forward March 8 (02:00 EST -> 03:00 EDT),
    # fall back November 1 (02:00 EDT -> 01:00 EST).
    assert firings("30 2 * * *", NEW_YORK, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)) == [
        utc(2026, 3, 8, 7, 30),  # 03:30 EDT: 02:30 was skipped
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]
    assert firings("30 1 * * *", NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12)) == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT, once; the 01:30 EST an hour later does not fire
        utc(2026, 11, 2, 6, 30),  # 01:30 EST
    ]
    assert firings("0 9 * * *", NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 2, 15)) == [
        utc(2026, 10, 31, 13),
        utc(2026, 11, 1, 14),
        utc(2026, 11, 2, 14),
    ]


FIVE = "expected 5 fields (minute hour day-of-month month weekday) or one of @hourly, @daily, "


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 25 * * *", "hour 25 is out of range 0–23"),
        ("61 * * * *", "minute 61 is out of range 0–59"),
        ("0 9 0 * *", "day of month 0 is out of range 1–31"),
        ("0 9 * 13 *", "month 13 is out of range 1–12"),
        ("0 9 * * 8", "weekday 8 is out of range 0–7"),
        ("0 9 * * FOO", "weekday 'foo' is not a number or a name (sun–sat)"),
        ("a b c d e", "minute 'a' is not a number"),
        ("*/0 * * * *", "minute step '0' is not a whole number above 0"),
        ("* * *", FIVE + "@midnight, @weekly, @monthly, @yearly, @annually; got 3"),
        ("0 9 * * MON *", FIVE + "@midnight, @weekly, @monthly, @yearly, @annually; got 6"),
        ("@fortnightly", FIVE + "@midnight, @weekly, @monthly, @yearly, @annually; got 1"),
        ("", FIVE + "@midnight, @weekly, @monthly, @yearly, @annually; got 0"),
    ],
)
def test_invalid_cron_is_refused_saying_precisely_what_is_wrong(
    expression: str, problem: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        validate_cron(expression)
    assert raised.value.details == {"fields": [{"loc": "body.cron", "message": problem}]}
    assert problem in raised.value.message


def test_valid_cron_is_returned_unchanged() -> None:
    assert validate_cron("0 9 * * MON") == "0 9 * * MON"
    assert validate_cron("*/15 8-18 * * 1-5") == "*/15 8-18 * * 1-5"
    assert validate_cron("@daily") == "@daily"


@pytest.mark.parametrize(
    ("macro", "first", "second"),
    [
        ("@hourly", utc(2026, 3, 10, 11), utc(2026, 3, 10, 12)),
        ("@daily", utc(2026, 3, 10, 23), utc(2026, 3, 11, 23)),
        ("@weekly", utc(2026, 3, 14, 23), utc(2026, 3, 21, 23)),  # Sunday 00:00 Berlin
        ("@monthly", utc(2026, 3, 31, 22), utc(2026, 4, 30, 22)),  # the 1st, 00:00 Berlin
    ],
)
def test_cron_nicknames_fire_as_their_expressions(
    macro: str, first: datetime, second: datetime
) -> None:
    after = utc(2026, 3, 10, 10, 30)
    assert firings(macro, BERLIN, after, second) == [first, second]


def test_a_cron_that_never_fires_is_refused_not_looped_on() -> None:
    with pytest.raises(InvalidInputError):
        next_fire("0 0 30 2 *", BERLIN, utc(2026, 1, 1))


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "", "europe/berlin", "Europe/Berlin ", "../etc/passwd", "CET+1"]
)
def test_unknown_time_zone_is_refused(name: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_zone(name)
    assert raised.value.details == {
        "fields": [{"loc": "body.timezone", "message": "unknown time zone"}]
    }


def test_known_time_zones_parse() -> None:
    assert parse_zone("Europe/Berlin") == BERLIN
    assert parse_zone("UTC") == ZoneInfo("UTC")
