"""Time buckets of a period: the heatmap's periods and the trends' cohorts.

Hours and days are clock hours and calendar days, months calendar months,
all in UTC. A week is seven days counted from midnight of the period's first
day, as the spec's cohorts (starting on a Wednesday) are. Every bucket starts
at a whole hour or midnight, so the whole hours and days of the funnel
rollups each fall into exactly one bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.errors import InvalidArgument
from services.funnel.heatmap import MAX_BUCKETS, truncate
from services.funnel.periods import Period
from services.funnel.rollup import Grouping, by_time_bucket


@dataclass(frozen=True)
class Bucket:
    """One bucket: where the SQL grouping keys it, and what it covers."""

    # The unclipped start, as the grouping of ``grouping`` returns it.
    key: datetime
    start: datetime
    end: datetime
    # Whether the whole unit lies inside the period (no clipping).
    whole: bool
    label: str


def grouping(unit: str, period: Period) -> Grouping:
    """The SQL grouping whose keys are the bucket keys of ``buckets``."""
    if unit != "week":
        return by_time_bucket(unit)
    # As UTC wall time, like the funnel's groupings: naive values are fast.
    return Grouping(
        "date_bin('7 days', {time} AT TIME ZONE 'UTC', :week_origin)",
        params={"week_origin": _first_key(period.start, unit).replace(tzinfo=None)},
    )


def buckets(period: Period, unit: str, field: str) -> list[Bucket]:
    """Every bucket of the period, oldest first; more than ``MAX_BUCKETS``
    is a 400 naming ``field``, the parameter that chose the unit."""
    found: list[Bucket] = []
    for key in _keys(period, unit):
        if len(found) == MAX_BUCKETS:
            raise InvalidArgument(
                "Invalid query parameters.",
                field_errors={
                    field: [
                        f"The period spans more than {MAX_BUCKETS} {unit}s; choose "
                        "a longer unit or a shorter period."
                    ]
                },
            )
        found.append(_bucket(key, unit, period))
    return found


def _bucket(key: datetime, unit: str, period: Period) -> Bucket:
    end = _next(key, unit)
    start = max(key, period.start)
    return Bucket(
        key=key,
        start=start,
        end=min(end, period.end),
        whole=key >= period.start and end <= period.end,
        label=f"{start:%Y-%m-%dT%H:00}" if unit == "hour" else f"{start:%Y-%m-%d}",
    )


def _keys(period: Period, unit: str) -> Iterator[datetime]:
    key = _first_key(period.start, unit)
    while key < period.end:
        yield key
        key = _next(key, unit)


def _first_key(start: datetime, unit: str) -> datetime:
    if unit in ("hour", "day"):
        return truncate(start, unit)
    midnight = truncate(start, "day")
    return midnight.replace(day=1) if unit == "month" else midnight


def _next(key: datetime, unit: str) -> datetime:
    if unit == "hour":
        return key + timedelta(hours=1)
    if unit == "day":
        return key + timedelta(days=1)
    if unit == "week":
        return key + timedelta(weeks=1)
    if key.month == 12:
        return key.replace(year=key.year + 1, month=1)
    return key.replace(month=key.month + 1)
