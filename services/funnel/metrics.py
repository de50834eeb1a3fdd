"""The funnel of a period: stages, outcomes and where sessions stop.

Figures are computed from the sums of ``services.funnel.rollup`` and rounded
as the API reports them: rates to 4 decimals, minutes to 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.periods import Period
from services.funnel.recommendations import (
    DEFAULT_MIN_CONFIDENCE,
    Recommendation,
    recommend,
)
from services.funnel.rollup import (
    OPEN_STATES,
    Filters,
    SessionSums,
    Snapshot,
    error_sums,
    total_sums,
)
from services.sessions.states import STAGES

# How many drop-off points the funnel lists.
TOP_DROP_OFF_POINTS = 5
# What an abandoned session was doing when it stopped without an error.
INACTIVITY_REASONS: dict[str, str] = {
    "STARTED": "User left before the conversation began",
    "INITIAL_PROMPT": "User left at the initial prompt",
    "COLLECTING_INFO": "User abandoned during question answering",
    "ASKING_QUESTIONS": "User abandoned during question answering",
    "GENERATING_RECOMMENDATIONS": "User left while recommendations were generated",
    "AWAITING_APPROVAL": "User left before approving recommendations",
    "PENDING_APPROVAL": "User left while approval was pending",
}


def rate(part: float, whole: float) -> float:
    """part / whole to 4 decimals; 0.0 for an empty whole."""
    return round(part / whole, 4) if whole else 0.0


def mean_minutes(total_us: float, count: float) -> float:
    """The mean of microsecond durations in minutes, to 2 decimals."""
    # One division of whole numbers, so the mean is correctly rounded.
    return round(total_us / (count * 60_000_000), 2) if count else 0.0


def error_reason(error_type: str) -> str:
    return f"Left after error {error_type}"


@dataclass(frozen=True)
class StageMetrics:
    """One funnel stage."""

    name: str
    session_states: tuple[str, ...]
    count: int
    conversion_rate: float
    drop_off_rate: float
    avg_time_in_stage_minutes: float


@dataclass(frozen=True)
class DropOffPoint:
    """A state where abandoned sessions stopped, and why most did."""

    state: str
    count: int
    percentage: float
    reason: str


@dataclass(frozen=True)
class FunnelMetrics:
    """The funnel of the sessions started in a period."""

    period: Period
    total_sessions: int
    completed_sessions: int
    abandoned_sessions: int
    active_sessions: int
    overall_conversion_rate: float
    avg_completion_time_minutes: float
    stages: tuple[StageMetrics, ...]
    top_drop_off_points: tuple[DropOffPoint, ...]
    recommendations: tuple[Recommendation, ...]
    last_updated: datetime


async def funnel_metrics(
    session: AsyncSession,
    period: Period,
    filters: Filters,
    snapshot: Snapshot,
    *,
    min_sample: int,
) -> FunnelMetrics:
    """The funnel, drop-off points and recommendations of a period."""
    sums = await total_sums(session, period, snapshot, filters)
    errors = await error_sums(session, period, snapshot, filters)
    return FunnelMetrics(
        period=period,
        total_sessions=sums.sessions,
        completed_sessions=sums.completed,
        abandoned_sessions=sums.abandoned,
        active_sessions=sums.active_sessions,
        overall_conversion_rate=rate(sums.completed, sums.sessions),
        avg_completion_time_minutes=mean_minutes(
            sums.total["completion_us"], sums.total["completion_n"]
        ),
        stages=funnel_stages(sums),
        top_drop_off_points=drop_off_points(sums, errors),
        recommendations=tuple(
            r
            for r in recommend(sums, errors, min_sample=min_sample)
            if r.confidence >= DEFAULT_MIN_CONFIDENCE
        ),
        last_updated=snapshot.now,
    )


def funnel_stages(sums: SessionSums) -> tuple[StageMetrics, ...]:
    """The five stages with counts, rates and mean time in stage."""
    stages = []
    for stage in STAGES:
        count = sums.reached(stage.index)
        previous = sums.reached(stage.index - 1) if stage.index else count
        stages.append(
            StageMetrics(
                name=stage.name,
                session_states=stage.states,
                count=count,
                conversion_rate=rate(count, sums.sessions),
                drop_off_rate=rate(previous - count, previous),
                avg_time_in_stage_minutes=_time_in_stage(sums, stage.index),
            )
        )
    return tuple(stages)


def _time_in_stage(sums: SessionSums, stage: int) -> float:
    # From first reaching the stage to first reaching the next one; the
    # last stage ends the session, so no time is spent in it.
    if stage >= len(STAGES) - 1:
        return 0.0
    return mean_minutes(sums.total[f"dur{stage}_us"], sums.total[f"dur{stage}_n"])


def drop_off_points(
    sums: SessionSums, errors: dict[str, SessionSums]
) -> tuple[DropOffPoint, ...]:
    """The states where most abandoned sessions stopped, most first."""
    points = [
        DropOffPoint(
            state=state,
            count=sums.abandoned_in(state),
            percentage=rate(sums.abandoned_in(state), sums.sessions),
            reason=stop_reason(state, sums, errors),
        )
        for state in OPEN_STATES
        if sums.abandoned_in(state) > 0
    ]
    order = {state: i for i, state in enumerate(OPEN_STATES)}
    points.sort(key=lambda p: (-p.count, order[p.state]))
    return tuple(points[:TOP_DROP_OFF_POINTS])


def stop_reason(state: str, sums: SessionSums, errors: dict[str, SessionSums]) -> str:
    """The most common cause among sessions abandoned in ``state``: an
    error type when the session's last event was that error, inactivity
    otherwise. Ties go to inactivity, then to the first error type."""
    measure = f"stopped_{state.lower()}"
    after_error = {e: int(s.finished(measure)) for e, s in errors.items()}
    inactive = sums.abandoned_in(state) - sum(after_error.values())
    best_error = min(after_error, key=lambda e: (-after_error[e], e), default=None)
    if best_error is not None and after_error[best_error] > inactive:
        return error_reason(best_error)
    return INACTIVITY_REASONS[state]
