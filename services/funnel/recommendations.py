"""Recommendations derived by fixed rules from the measured funnel.

Each rule compares a group of sessions with a reference group and fires
only when the measured gap is large; its confidence is that of a one-sided
test of the gap, so it grows with the sample sizes. The rules are listed in
``docs/funnel-definitions.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.periods import Period
from services.funnel.rollup import (
    OPEN_STATES,
    Filters,
    SessionSums,
    Snapshot,
    error_sums,
    total_sums,
)
from services.funnel.stats import (
    mean_above_confidence,
    proportion_above_confidence,
    sample_variance,
)
from services.sessions.states import STAGES

# The spec's default for min_confidence.
DEFAULT_MIN_CONFIDENCE = 0.7
# A rate is "well above" its reference when it is both this many times
# larger and this much larger in absolute terms.
RATE_FACTOR, RATE_GAP = 1.5, 0.02
# Likewise for mean stage durations, the gap in seconds.
DURATION_FACTOR, DURATION_GAP_SECONDS = 1.5, 60.0
PRIORITY_RANK = {"high": 0, "medium": 1, "low": 2}


@dataclass(frozen=True)
class Recommendation:
    """One rule's finding, its evidence and its expected effect."""

    id: str
    priority: str
    confidence: float
    category: str
    recommendation: str
    reasoning: str
    conversion_rate_increase: float
    completion_time_decrease_minutes: float
    implementation_effort: str
    data_points: int

    @property
    def impact(self) -> str:
        """The expected effect in words."""
        if self.conversion_rate_increase > 0:
            points = self.conversion_rate_increase * 100
            return f"Could improve conversion by {points:.1f} percentage points"
        minutes = self.completion_time_decrease_minutes
        return f"Could save {minutes:.1f} minutes per completed session"


@dataclass(frozen=True)
class RecommendationsReport:
    """The recommendations of a period at or above a confidence."""

    period: Period
    recommendations: tuple[Recommendation, ...]
    potential_conversion_increase: float
    potential_time_saved_minutes: float


async def recommendations_report(
    session: AsyncSession,
    period: Period,
    snapshot: Snapshot,
    *,
    min_confidence: float,
    min_sample: int,
) -> RecommendationsReport:
    """Every recommendation of the period at least ``min_confidence`` sure."""
    sums = await total_sums(session, period, snapshot, Filters())
    errors = await error_sums(session, period, snapshot)
    listed = tuple(
        r
        for r in recommend(sums, errors, min_sample=min_sample)
        if r.confidence >= min_confidence
    )
    return RecommendationsReport(
        period=period,
        recommendations=listed,
        potential_conversion_increase=round(
            sum(r.conversion_rate_increase for r in listed), 4
        ),
        potential_time_saved_minutes=round(
            sum(r.completion_time_decrease_minutes for r in listed), 2
        ),
    )


def recommend(
    sums: SessionSums, errors: dict[str, SessionSums], *, min_sample: int
) -> list[Recommendation]:
    """All findings, most important first, numbered rec_001, rec_002, ...

    Numbers are given before any confidence filter, so a finding keeps its
    id whatever ``min_confidence`` a caller asks for.
    """
    findings = [
        *_stage_drop_offs(sums, min_sample),
        *_error_drop_offs(sums, errors, min_sample),
        *_repeated_questions(sums, min_sample),
        *_slow_stages(sums, min_sample),
    ]
    findings.sort(
        key=lambda r: (
            PRIORITY_RANK[r.priority],
            -r.conversion_rate_increase,
            -r.completion_time_decrease_minutes,
            -r.confidence,
            r.recommendation,
        )
    )
    return [replace(r, id=f"rec_{i:03d}") for i, r in enumerate(findings, 1)]


def _finding(
    *,
    confidence: float,
    category: str,
    recommendation: str,
    reasoning: str,
    conversion_gain: float = 0.0,
    minutes_saved: float = 0.0,
    effort: str,
    data_points: float,
) -> Recommendation:
    gain, minutes = round(conversion_gain, 4), round(minutes_saved, 2)
    return Recommendation(
        id="",
        priority=_priority(gain, minutes),
        confidence=round(confidence, 4),
        category=category,
        recommendation=recommendation,
        reasoning=reasoning,
        conversion_rate_increase=gain,
        completion_time_decrease_minutes=minutes,
        implementation_effort=effort,
        data_points=int(data_points),
    )


def _priority(gain: float, minutes: float) -> str:
    if gain >= 0.03 or minutes >= 5:
        return "high"
    if gain >= 0.01 or minutes >= 2:
        return "medium"
    return "low"


def _well_above(rate: float, reference: float) -> bool:
    return rate >= RATE_FACTOR * reference and rate - reference >= RATE_GAP


def _stage_drop_offs(sums: SessionSums, min_sample: int) -> Iterator[Recommendation]:
    """A stage transition that loses far more sessions than the others."""
    entered = {k: sums.reached(k - 1) for k in range(1, 5)}
    lost = {k: entered[k] - sums.reached(k) for k in range(1, 5)}
    for k in range(1, 5):
        n, x = entered[k], lost[k]
        n_other = sum(v for j, v in entered.items() if j != k)
        x_other = sum(v for j, v in lost.items() if j != k)
        if n < min_sample or n_other < min_sample:
            continue
        if not _well_above(x / n, x_other / n_other):
            continue
        stopped, next_stage = STAGES[k - 1], STAGES[k]
        yield _finding(
            confidence=proportion_above_confidence(x, n, x_other, n_other),
            category="user_experience",
            recommendation=(
                f"Reduce drop-off during {stopped.name} "
                f"({', '.join(stopped.states)}) so that more sessions reach "
                f"{next_stage.name}"
            ),
            reasoning=(
                f"{x} of the {n} sessions that reached {stopped.name} "
                f"({x / n:.1%}) did not reach {next_stage.name}, against "
                f"{x_other} of {n_other} ({x_other / n_other:.1%}) at the "
                "other stage transitions"
            ),
            conversion_gain=_gain_at_baseline(sums, k, x_other / n_other),
            effort="medium",
            data_points=n,
        )


def _gain_at_baseline(sums: SessionSums, k: int, baseline: float) -> float:
    """Conversion gained if transition k lost only ``baseline`` of its
    sessions and later stages converted as measured (at the baseline when
    no session got past k)."""
    would_reach = sums.reached(k - 1) * (1 - baseline)
    if sums.reached(k):
        later = sums.completed / sums.reached(k)
    else:
        later = (1 - baseline) ** (4 - k)
    return (would_reach * later - sums.completed) / sums.sessions


def _error_drop_offs(
    sums: SessionSums, errors: dict[str, SessionSums], min_sample: int
) -> Iterator[Recommendation]:
    """An error type after which sessions are abandoned far more often."""
    n_ref, x_ref = sums.finished("noerr_n"), sums.finished("noerr_open")
    for error_type in sorted(errors):
        group = errors[error_type]
        n, x = group.finished("sessions"), group.finished("open")
        if (
            n < min_sample
            or n_ref < min_sample
            or not _well_above(x / n, x_ref / n_ref)
        ):
            continue
        right_after = sum(group.finished(f"stopped_{s.lower()}") for s in OPEN_STATES)
        yield _finding(
            confidence=proportion_above_confidence(x, n, x_ref, n_ref),
            category="performance",
            recommendation=(
                f"Reduce {error_type} errors, or recover from them without "
                "losing the session"
            ),
            reasoning=(
                f"{x:.0f} of {n:.0f} finished sessions whose last error was "
                f"{error_type} were abandoned ({x / n:.1%}), against "
                f"{x_ref:.0f} of {n_ref:.0f} finished sessions without errors "
                f"({x_ref / n_ref:.1%}); {right_after:.0f} abandoned sessions "
                f"stopped right after {error_type}"
            ),
            conversion_gain=n * (x / n - x_ref / n_ref) / sums.sessions,
            effort="medium",
            data_points=n + n_ref,
        )


def _repeated_questions(sums: SessionSums, min_sample: int) -> Iterator[Recommendation]:
    """Sessions with repeated questions are abandoned far more often."""
    n = sums.finished("repeat_n")
    x = sums.finished("repeat_open")
    n_ref = sums.finished("reached_1") - n
    x_ref = sums.finished("reached_1_open") - x
    if n < min_sample or n_ref < min_sample or not _well_above(x / n, x_ref / n_ref):
        return
    yield _finding(
        confidence=proportion_above_confidence(x, n, x_ref, n_ref),
        category="content",
        recommendation=(
            "Reword the questions users are asked to repeat during "
            "Information Collection"
        ),
        reasoning=(
            f"{x:.0f} of {n:.0f} finished sessions with a repeated question "
            f"were abandoned ({x / n:.1%}), against {x_ref:.0f} of {n_ref:.0f} "
            f"finished sessions without one ({x_ref / n_ref:.1%})"
        ),
        conversion_gain=n * (x / n - x_ref / n_ref) / sums.sessions,
        effort="low",
        data_points=n + n_ref,
    )


def _slow_stages(sums: SessionSums, min_sample: int) -> Iterator[Recommendation]:
    """A stage that takes far longer than the others."""
    durations = {
        k: (
            sums.total[f"dur{k}_n"],
            sums.total[f"dur{k}_us"] / 1_000_000,
            sums.total[f"dur{k}_sq"],
        )
        for k in range(4)
    }
    for k, (n, seconds, squares) in durations.items():
        others = [v for j, v in durations.items() if j != k]
        n_other = sum(o[0] for o in others)
        if n < min_sample or n_other < min_sample:
            continue
        seconds_other = sum(o[1] for o in others)
        mean, mean_other = seconds / n, seconds_other / n_other
        if (
            mean < DURATION_FACTOR * mean_other
            or mean - mean_other < DURATION_GAP_SECONDS
        ):
            continue
        variance = sample_variance(seconds, squares, n)
        variance_other = sample_variance(
            seconds_other, sum(o[2] for o in others), n_other
        )
        stage, next_stage = STAGES[k], STAGES[k + 1]
        yield _finding(
            confidence=mean_above_confidence(
                mean, variance, n, mean_other, variance_other, n_other
            ),
            category="performance" if k == 2 else "user_experience",
            recommendation=(
                f"Shorten the {stage.name} stage ({', '.join(stage.states)})"
            ),
            reasoning=(
                f"{n:.0f} sessions took {mean / 60:.1f} minutes on average from "
                f"reaching {stage.name} to reaching {next_stage.name}, against "
                f"{mean_other / 60:.1f} minutes over {n_other:.0f} passages "
                "through the other stages"
            ),
            minutes_saved=(mean - mean_other) / 60,
            effort="medium",
            data_points=n,
        )
