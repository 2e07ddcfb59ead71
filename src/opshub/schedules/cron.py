"""When a schedule fires next: a cron expression read in the schedule's own time zone.

Cron fields are wall-clock times, so the walk happens in local time without a UTC offset and
each candidate is placed in the zone afterwards. Across a DST change that gives what people
expect: "0 9 * * MON" stays at 09:00 local; a time the clocks skip (02:30 on a spring-forward
night) fires at the same instant after the jump (03:30); a time that happens twice (fall back)
fires once, at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

from opshub.errors import InvalidInputError


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)",
            details={"fields": [{"loc": "body.timezone", "message": "unknown time zone"}]},
        ) from None


def validate_cron(expression: str) -> str:
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise InvalidInputError(
            f"{expression!r} is not a 5-field cron expression (minute hour day month weekday)",
            details={"fields": [{"loc": "body.cron", "message": "invalid cron expression"}]},
        )
    return expression


def next_fire(expression: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first firing strictly after ``after`` (aware), in UTC."""
    local = after.astimezone(zone).replace(tzinfo=None)
    try:
        walk = croniter(expression, local - timedelta(hours=3))
        while True:
            candidate: datetime = walk.get_next(datetime)
            fire = candidate.replace(tzinfo=zone, fold=0).astimezone(UTC)
            if fire > after:
                return fire
    except (CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError) as exc:
        raise InvalidInputError(f"the cron expression never fires: {expression!r}") from exc
