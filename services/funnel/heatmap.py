"""Drop-offs by time: per start-time bucket and per hour of the day."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.metrics import rate
from services.funnel.periods import Period
from services.funnel.rollup import (
    DROP_OFF_MEASURES,
    HOUR_OF_DAY,
    OPEN_STATES,
    SessionSums,
    Snapshot,
    by_time_bucket,
    session_sums,
)

# Granularity parameter -> date_trunc unit and bucket length.
GRANULARITIES: dict[str, tuple[str, timedelta]] = {
    "hourly": ("hour", timedelta(hours=1)),
    "daily": ("day", timedelta(days=1)),
    "weekly": ("week", timedelta(weeks=1)),
}
# Keeps a response well under the gRPC message limit.
MAX_BUCKETS = 2000


@dataclass(frozen=True)
class HeatmapBucket:
    """Sessions started in one bucket and where the abandoned ones stopped."""

    time_bucket: str
    sessions_started: int
    drop_offs_by_stage: dict[str, int]
    completion_rate: float


@dataclass(frozen=True)
class HeatmapMetrics:
    """The heatmap of a period."""

    period: Period
    granularity: str
    buckets: tuple[HeatmapBucket, ...]
    overall_drop_off_rate: float
    highest_drop_off_hour: str
    lowest_drop_off_hour: str


def bucket_count(period: Period, granularity: str) -> int:
    """How many buckets of ``granularity`` the period touches."""
    if period.end <= period.start:
        return 0
    unit, length = GRANULARITIES[granularity]
    return math.ceil((period.end - truncate(period.start, unit)) / length)


def truncate(moment: datetime, unit: str) -> datetime:
    """The start of the hour, day or week (Monday) of ``moment``, as
    PostgreSQL's date_trunc in UTC."""
    moment = moment.replace(minute=0, second=0, microsecond=0)
    if unit == "hour":
        return moment
    moment = moment.replace(hour=0)
    if unit == "week":
        moment -= timedelta(days=moment.weekday())
    return moment


async def heatmap_metrics(
    session: AsyncSession, period: Period, granularity: str, snapshot: Snapshot
) -> HeatmapMetrics:
    """Drop-offs and completion per bucket of session start time."""
    unit, _ = GRANULARITIES[granularity]
    buckets = await session_sums(
        session,
        period,
        snapshot,
        grouping=by_time_bucket(unit),
        measures=DROP_OFF_MEASURES,
    )
    hours = await session_sums(
        session, period, snapshot, grouping=HOUR_OF_DAY, measures=DROP_OFF_MEASURES
    )
    overall = sum(buckets.values(), SessionSums())
    highest, lowest = extreme_hours(hours)
    return HeatmapMetrics(
        period=period,
        granularity=granularity,
        buckets=tuple(
            _bucket(start, buckets[start], unit) for start in sorted(buckets)
        ),
        overall_drop_off_rate=rate(overall.abandoned, overall.sessions),
        highest_drop_off_hour=highest,
        lowest_drop_off_hour=lowest,
    )


def _bucket(start: datetime, sums: SessionSums, unit: str) -> HeatmapBucket:
    label = f"{start:%Y-%m-%dT%H:00}" if unit == "hour" else f"{start:%Y-%m-%d}"
    return HeatmapBucket(
        time_bucket=label,
        sessions_started=sums.sessions,
        drop_offs_by_stage={
            state: sums.abandoned_in(state)
            for state in OPEN_STATES
            if sums.abandoned_in(state)
        },
        completion_rate=rate(sums.completed, sums.sessions),
    )


def extreme_hours(hours: dict[int, SessionSums]) -> tuple[str, str]:
    """The hours of day (UTC, by session start) with the highest and the
    lowest share of abandoned sessions; the earlier hour wins a tie."""
    rates = {
        hour: Fraction(sums.abandoned, sums.sessions)
        for hour, sums in hours.items()
        if sums.sessions
    }
    if not rates:
        return "", ""
    highest = min(rates, key=lambda h: (-rates[h], h))
    lowest = min(rates, key=lambda h: (rates[h], h))
    return _hour_label(highest), _hour_label(lowest)


def _hour_label(hour: int) -> str:
    return f"{hour:02d}:00-{(hour + 1) % 24:02d}:00"
