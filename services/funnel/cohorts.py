"""Conversion compared across clients, conversation types or languages."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.metrics import mean_minutes, rate
from services.funnel.periods import Period
from services.funnel.rollup import (
    OUTCOME_MEASURES,
    SessionSums,
    Snapshot,
    by_dimension,
    session_sums,
)
from services.sessions.states import CONVERSATION_TYPES

# cohort_by parameter -> session column.
COHORT_DIMENSIONS: dict[str, str] = {
    "client": "client_id",
    "conversation_type": "conversation_type",
    "language": "language",
}
# Readable names of the languages products commonly send; others show
# their tag.
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "hi": "Hindi",
    "it": "Italian",
    "ja": "Japanese",
    "mr": "Marathi",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ta": "Tamil",
    "zh": "Chinese",
}


@dataclass(frozen=True)
class Cohort:
    """The conversion of one cohort."""

    cohort_id: str
    cohort_name: str
    total_sessions: int
    completed_sessions: int
    conversion_rate: float
    avg_completion_time_minutes: float
    # The exact rate, so ties are ties; conversion_rate is rounded.
    exact_rate: Fraction


@dataclass(frozen=True)
class CohortComparison:
    """Every cohort of a period, and the best and worst large enough one."""

    period: Period
    cohort_by: str
    cohorts: tuple[Cohort, ...]
    best: Cohort | None
    worst: Cohort | None


async def cohort_comparison(
    session: AsyncSession,
    period: Period,
    cohort_by: str,
    snapshot: Snapshot,
    *,
    min_sample: int,
) -> CohortComparison:
    """Cohorts largest first; best and worst among those with at least
    ``min_sample`` sessions (larger cohort, then lower id, wins a tie)."""
    groups = await session_sums(
        session,
        period,
        snapshot,
        grouping=by_dimension(COHORT_DIMENSIONS[cohort_by]),
        measures=OUTCOME_MEASURES,
    )
    cohorts = sorted(
        (
            _cohort(cohort_by, key, sums)
            for key, sums in groups.items()
            if sums.sessions
        ),
        key=lambda c: (-c.total_sessions, c.cohort_id),
    )
    eligible = [c for c in cohorts if c.total_sessions >= min_sample]
    return CohortComparison(
        period=period,
        cohort_by=cohort_by,
        cohorts=tuple(cohorts),
        best=min(
            eligible,
            key=lambda c: (-c.exact_rate, -c.total_sessions, c.cohort_id),
            default=None,
        ),
        worst=min(
            eligible,
            key=lambda c: (c.exact_rate, -c.total_sessions, c.cohort_id),
            default=None,
        ),
    )


def _cohort(cohort_by: str, key: str, sums: SessionSums) -> Cohort:
    return Cohort(
        cohort_id=key,
        cohort_name=cohort_name(cohort_by, key),
        total_sessions=sums.sessions,
        completed_sessions=sums.completed,
        conversion_rate=rate(sums.completed, sums.sessions),
        avg_completion_time_minutes=mean_minutes(
            sums.total["completion_us"], sums.total["completion_n"]
        ),
        exact_rate=Fraction(sums.completed, sums.sessions),
    )


def cohort_name(cohort_by: str, key: str) -> str:
    if cohort_by == "client":
        return f"Client {key}"
    if cohort_by == "conversation_type":
        return CONVERSATION_TYPES.get(key, key.replace("_", " ").title())
    base, _, region = key.partition("-")
    name = LANGUAGE_NAMES.get(base.lower())
    if name is None:
        return key
    return f"{name} ({key})" if region else name
