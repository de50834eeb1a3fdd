"""Cohort trends: conversion per start-date cohort, and where it is heading.

A cohort is the sessions started in one day, week or calendar month (see
``buckets``). The trend compares the first and the last whole cohorts with
sessions: a cohort cut short by the period's edges is listed but not
compared, so the few days of an unfinished week do not read as a fall in
volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy.ext.asyncio import AsyncSession

from services.dashboard.buckets import Bucket, buckets, grouping
from services.funnel.metrics import mean_minutes, rate
from services.funnel.periods import Period
from services.funnel.rollup import OUTCOME_MEASURES, SessionSums, Snapshot, session_sums

# cohort_type parameter -> bucket unit.
COHORT_TYPES: dict[str, str] = {"daily": "day", "weekly": "week", "monthly": "month"}
# Changes smaller than these, in either direction, are "stable".
CONVERSION_THRESHOLD = Fraction(1, 100)
VOLUME_THRESHOLD_PERCENT = Fraction(5)
CONVERSION_WORDS = ("improving", "declining")
VOLUME_WORDS = ("growing", "shrinking")


@dataclass(frozen=True)
class TrendCohort:
    """The outcome of the sessions started in one bucket."""

    bucket: Bucket
    total_sessions: int
    completed_sessions: int
    conversion_rate: float
    avg_completion_time_minutes: float


@dataclass(frozen=True)
class Trends:
    """The last whole cohort with sessions against the first."""

    conversion_trend: str
    conversion_change: float
    volume_trend: str
    volume_change_percent: float


STABLE = Trends("stable", 0.0, "stable", 0.0)


@dataclass(frozen=True)
class CohortTrends:
    """Every cohort of a period and the trend across them."""

    period: Period
    cohort_type: str
    cohorts: tuple[TrendCohort, ...]
    trends: Trends


def trend_buckets(period: Period, cohort_type: str) -> list[Bucket]:
    """The cohorts of the period; too many is a 400 on ``cohort_type``."""
    return buckets(period, COHORT_TYPES[cohort_type], "cohort_type")


async def cohort_trends(
    session: AsyncSession,
    period: Period,
    cohort_type: str,
    listed: list[Bucket],
    snapshot: Snapshot,
) -> CohortTrends:
    """Conversion per cohort of ``listed`` (``trend_buckets``) and its trend."""
    unit = COHORT_TYPES[cohort_type]
    groups = await session_sums(
        session,
        period,
        snapshot,
        grouping=grouping(unit, period),
        measures=OUTCOME_MEASURES,
    )
    pairs = [(b, groups.get(b.key, SessionSums())) for b in listed]
    return CohortTrends(
        period=period,
        cohort_type=cohort_type,
        cohorts=tuple(_cohort(b, sums) for b, sums in pairs),
        trends=trends([sums for b, sums in pairs if b.whole and sums.sessions]),
    )


def _cohort(bucket: Bucket, sums: SessionSums) -> TrendCohort:
    return TrendCohort(
        bucket=bucket,
        total_sessions=sums.sessions,
        completed_sessions=sums.completed,
        conversion_rate=rate(sums.completed, sums.sessions),
        avg_completion_time_minutes=mean_minutes(
            sums.total["completion_us"], sums.total["completion_n"]
        ),
    )


def trends(compared: list[SessionSums]) -> Trends:
    """The trend from the first to the last of ``compared`` (cohorts with
    sessions, oldest first), from exact rates, rounded once at the end."""
    if len(compared) < 2:
        return STABLE
    first, last = compared[0], compared[-1]
    change = Fraction(last.completed, last.sessions) - Fraction(
        first.completed, first.sessions
    )
    volume = Fraction(last.sessions - first.sessions, first.sessions) * 100
    return Trends(
        conversion_trend=_direction(change, CONVERSION_THRESHOLD, CONVERSION_WORDS),
        conversion_change=round(float(change), 4),
        volume_trend=_direction(volume, VOLUME_THRESHOLD_PERCENT, VOLUME_WORDS),
        volume_change_percent=round(float(volume), 2),
    )


def _direction(change: Fraction, threshold: Fraction, words: tuple[str, str]) -> str:
    up, down = words
    if change >= threshold:
        return up
    if change <= -threshold:
        return down
    return "stable"
