"""The dashboard heatmap: sessions per stage per period, errors and hours.

Stage counts are the funnel's (sessions that reached a stage or a later
one), summed per bucket of session start from the funnel rollups; the peak
and lowest hours follow the funnel heatmap's rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dashboard.buckets import Bucket, buckets, grouping
from services.funnel.heatmap import extreme_hours
from services.funnel.periods import Period
from services.funnel.rollup import (
    DROP_OFF_MEASURES,
    HOUR_OF_DAY,
    OPEN_STATES,
    SessionSums,
    Snapshot,
    session_sums,
)
from services.sessions.events import ERROR
from services.sessions.states import STAGES, STATES

# granularity parameter -> bucket unit.
GRANULARITIES: dict[str, str] = {"hourly": "hour", "daily": "day", "weekly": "week"}
TOP_ERROR_PATTERNS = 10
_REACHED = tuple(f"reached_{stage.index}" for stage in STAGES[1:])
_MEASURES = (*DROP_OFF_MEASURES, *(m for m in _REACHED if m not in DROP_OFF_MEASURES))

# Error events by the time they happened, through the index on
# (event_type, occurred_at); errors keep the state they happened in.
_ERROR_PATTERNS = f"""
SELECT coalesce(data ->> 'error_type', '') AS error_type, count(*) AS errors,
       array_agg(DISTINCT state) AS states
FROM session_events
WHERE event_type = '{ERROR}' AND occurred_at >= :start AND occurred_at < :end
GROUP BY 1
ORDER BY errors DESC, error_type
LIMIT :limit
"""


@dataclass(frozen=True)
class HeatmapPeriod:
    """One bucket of session start time and its sessions per stage."""

    bucket: Bucket
    stage_counts: tuple[tuple[str, int], ...]
    total_sessions: int


@dataclass(frozen=True)
class ErrorPattern:
    """Error events of one type and the states they happened in."""

    error_type: str
    count: int
    stages: tuple[str, ...]


@dataclass(frozen=True)
class Heatmap:
    """The dashboard heatmap of a period."""

    period: Period
    granularity: str
    periods: tuple[HeatmapPeriod, ...]
    overall_drop_offs: dict[str, int]
    error_patterns: tuple[ErrorPattern, ...]
    peak_drop_off_hour: str
    lowest_drop_off_hour: str


def heatmap_buckets(period: Period, granularity: str) -> list[Bucket]:
    """The periods of the heatmap; too many is a 400 on ``granularity``."""
    return buckets(period, GRANULARITIES[granularity], "granularity")


async def dashboard_heatmap(
    session: AsyncSession,
    period: Period,
    granularity: str,
    listed: list[Bucket],
    snapshot: Snapshot,
) -> Heatmap:
    """Sessions per stage per bucket of ``listed`` (``heatmap_buckets``),
    drop-offs, errors and extreme hours."""
    unit = GRANULARITIES[granularity]
    sums = await session_sums(
        session, period, snapshot, grouping=grouping(unit, period), measures=_MEASURES
    )
    hours = await session_sums(
        session, period, snapshot, grouping=HOUR_OF_DAY, measures=DROP_OFF_MEASURES
    )
    overall = sum(sums.values(), SessionSums())
    # The funnel heatmap's own rule, so both heatmaps name the same hours.
    peak, lowest = extreme_hours(hours)
    return Heatmap(
        period=period,
        granularity=granularity,
        periods=tuple(_period(b, sums.get(b.key, SessionSums())) for b in listed),
        overall_drop_offs={
            state: overall.abandoned_in(state)
            for state in OPEN_STATES
            if overall.abandoned_in(state)
        },
        error_patterns=await _error_patterns(session, period),
        peak_drop_off_hour=peak,
        lowest_drop_off_hour=lowest,
    )


def _period(bucket: Bucket, sums: SessionSums) -> HeatmapPeriod:
    return HeatmapPeriod(
        bucket=bucket,
        stage_counts=tuple((s.name, sums.reached(s.index)) for s in STAGES),
        total_sessions=sums.sessions,
    )


async def _error_patterns(
    session: AsyncSession, period: Period
) -> tuple[ErrorPattern, ...]:
    params = {"start": period.start, "end": period.end, "limit": TOP_ERROR_PATTERNS}
    result = await session.execute(text(_ERROR_PATTERNS), params)
    order = {state: i for i, state in enumerate(STATES)}
    return tuple(
        ErrorPattern(
            row.error_type,
            int(row.errors),
            tuple(sorted(row.states, key=lambda s: (order.get(s, len(order)), s))),
        )
        for row in result
    )
