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


# The nicknames cron(8) documents, as the expression each stands for.
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_DAYS = "sun mon tue wed thu fri sat".split()
# (name, lowest, highest, names): weekday 7 is Sunday again, as in cron(8).
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("weekday", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)


def expand(expression: str) -> str:
    """The five fields of an expression, a nickname such as ``@daily`` spelled out."""
    return MACROS.get(expression.strip().lower(), expression)


def validate_cron(expression: str) -> str:
    fields = expand(expression).split()
    if len(fields) == 5 and croniter.is_valid(" ".join(fields)):
        return expression
    problem = _problem(fields) or "it can't be read"
    raise InvalidInputError(
        f"{expression!r} is not a valid cron expression: {problem}",
        details={"fields": [{"loc": "body.cron", "message": problem}]},
    )


def _problem(fields: list[str]) -> str | None:
    """What is wrong with the fields, in words ("hour 25 is out of range 0–23")."""
    if len(fields) != 5:
        nicknames = ", ".join(MACROS)
        return (
            f"expected 5 fields (minute hour day-of-month month weekday) or one of {nicknames}; "
            f"got {len(fields)}"
        )
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in text.lower().split(","):
            problem = _item_problem(item, name, low, high, names)
            if problem:
                return problem
    return None


def _item_problem(item: str, name: str, low: int, high: int, names: dict[str, int]) -> str | None:
    span, _, step = item.partition("/")
    if step and not (step.isdigit() and int(step) > 0):
        return f"{name} step {step!r} is not a whole number above 0"
    if span in ("*", "?"):
        return None
    bounds = span.split("-")
    if len(bounds) > 2 or not all(bounds):
        return f"{name} {span!r} is not a value or a range (a-b)"
    for bound in bounds:
        value = names.get(bound, int(bound) if bound.isdigit() else None)
        if value is None:
            known = list(names)
            return f"{name} {bound!r} is not a number" + (
                f" or a name ({known[0]}–{known[-1]})" if known else ""
            )
        if not low <= value <= high:
            return f"{name} {value} is out of range {low}–{high}"
    return None


def next_fire(expression: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first firing strictly after ``after`` (aware), in UTC."""
    local = after.astimezone(zone).replace(tzinfo=None)
    try:
        walk = croniter(expand(expression), local - timedelta(hours=3))
        while True:
            candidate: datetime = walk.get_next(datetime)
            fire = candidate.replace(tzinfo=zone, fold=0).astimezone(UTC)
            if fire > after:
                return fire
    except (CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError) as exc:
        raise InvalidInputError(f"the cron expression never fires: {expression!r}") from exc
