"""Two periods compared, with a significance test on their conversion."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.metrics import mean_minutes, rate
from services.funnel.periods import Period
from services.funnel.rollup import (
    OUTCOME_MEASURES,
    Filters,
    SessionSums,
    Snapshot,
    total_sums,
)
from services.funnel.stats import two_proportion_p_value

CONFIDENCE_LEVEL = 0.95


@dataclass(frozen=True)
class PeriodSummary:
    """The figures of one period."""

    label: str
    total_sessions: int
    completed_sessions: int
    conversion_rate: float
    avg_completion_time_minutes: float


@dataclass(frozen=True)
class PeriodChanges:
    """Period 2 minus period 1."""

    conversion_rate_change: float
    conversion_rate_change_percent: float
    completion_time_change_minutes: float
    sessions_change: int
    sessions_change_percent: float


@dataclass(frozen=True)
class Significance:
    """The two-proportion test of the two conversion rates."""

    p_value: float
    is_significant: bool
    confidence_level: float


@dataclass(frozen=True)
class PeriodComparison:
    """Two periods, their differences and the trend."""

    period1: PeriodSummary
    period2: PeriodSummary
    changes: PeriodChanges
    trend: str
    significance: Significance


async def period_comparison(
    session: AsyncSession, first: Period, second: Period, snapshot: Snapshot
) -> PeriodComparison:
    """Compare the sessions started in two periods."""
    sums1 = await total_sums(session, first, snapshot, Filters(), OUTCOME_MEASURES)
    sums2 = await total_sums(session, second, snapshot, Filters(), OUTCOME_MEASURES)
    return compare(first, sums1, second, sums2)


def compare(
    first: Period, sums1: SessionSums, second: Period, sums2: SessionSums
) -> PeriodComparison:
    """The comparison from the sums of both periods.

    Differences use the exact rates and means, then round; a percentage of
    a zero base, or a time change when a period has no completed session,
    is 0. The trend is improving or declining only when the change in
    conversion is significant at the 0.95 level, stable otherwise.
    """
    n1, c1, n2, c2 = sums1.sessions, sums1.completed, sums2.sessions, sums2.completed
    rate1 = Fraction(c1, n1) if n1 else Fraction(0)
    rate2 = Fraction(c2, n2) if n2 else Fraction(0)
    p_value = two_proportion_p_value(c2, n2, c1, n1)
    significant = p_value < 1 - CONFIDENCE_LEVEL
    trend = "stable"
    if significant:
        trend = "improving" if rate2 > rate1 else "declining"
    return PeriodComparison(
        period1=_summary(first, sums1),
        period2=_summary(second, sums2),
        changes=PeriodChanges(
            conversion_rate_change=round(float(rate2 - rate1), 4),
            conversion_rate_change_percent=_percent(rate2 - rate1, rate1),
            completion_time_change_minutes=_time_change(sums1, sums2),
            sessions_change=n2 - n1,
            sessions_change_percent=_percent(n2 - n1, n1),
        ),
        trend=trend,
        significance=Significance(
            p_value=round(p_value, 6),
            is_significant=significant,
            confidence_level=CONFIDENCE_LEVEL,
        ),
    )


def _summary(period: Period, sums: SessionSums) -> PeriodSummary:
    return PeriodSummary(
        label=period.label,
        total_sessions=sums.sessions,
        completed_sessions=sums.completed,
        conversion_rate=rate(sums.completed, sums.sessions),
        avg_completion_time_minutes=mean_minutes(
            sums.total["completion_us"], sums.total["completion_n"]
        ),
    )


def _percent(change: Fraction | int, base: Fraction | int) -> float:
    return round(float(Fraction(change) / base * 100), 2) if base else 0.0


def _time_change(sums1: SessionSums, sums2: SessionSums) -> float:
    n1, n2 = int(sums1.total["completion_n"]), int(sums2.total["completion_n"])
    if not n1 or not n2:
        return 0.0
    minutes1 = Fraction(int(sums1.total["completion_us"]), n1 * 60_000_000)
    minutes2 = Fraction(int(sums2.total["completion_us"]), n2 * 60_000_000)
    return round(float(minutes2 - minutes1), 2)
