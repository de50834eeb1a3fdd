"""Abandonment risk: four weighted factors, each normalised to 0-100.

inactivity (weight 0.3)
    value: whole minutes since the session's last event, 0 once completed;
    normalised: min(minutes, 100).
question_repetition (weight 0.25)
    value: questions the user asked to have repeated;
    normalised: min(25 x count, 100).
error_frequency (weight 0.25)
    value: errors the user ran into;
    normalised: min(25 x count, 100).
session_complexity (weight 0.2)
    value: (answered - avg) / avg to two decimals, where avg is the mean of
    questions answered by the completed sessions of the same client and
    conversation type; 0 while there are none;
    normalised: min(max(125 x value, 0), 100).

``contribution = weight x normalised`` and ``risk_score`` is the sum of the
four contributions. Every value above is a whole number or has two decimals,
so with PostgreSQL's exact ``numeric`` arithmetic each contribution is exact
to two decimals and the contributions add up to the score exactly.

Levels: ``critical`` from 70, ``high`` from 50, ``medium`` from 25, ``low``
below. The choice of these numbers against the spec's example is explained in
docs/risk-model.md.

Scores are computed in SQL only, by one statement shared by the single
session endpoint, the at-risk list and the model fit, so the three always
agree and no endpoint scores sessions in a Python loop.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

WEIGHTS = {
    "inactivity": Decimal("0.3"),
    "question_repetition": Decimal("0.25"),
    "error_frequency": Decimal("0.25"),
    "session_complexity": Decimal("0.2"),
}
# Normalised points per repeated question, per error, and per unit of
# relative complexity; every normalised value is capped at 100.
POINTS_PER_REPEAT = 25
POINTS_PER_ERROR = 25
POINTS_PER_COMPLEXITY = Decimal(125)
NORMALISED_CAP = 100

# The lowest score of each level, highest level first.
LEVEL_THRESHOLDS: tuple[tuple[str, int], ...] = (
    ("critical", 70),
    ("high", 50),
    ("medium", 25),
    ("low", 0),
)
LEVELS = tuple(level for level, _ in LEVEL_THRESHOLDS)
MIN_SCORE = dict(LEVEL_THRESHOLDS)

# One statement scores every candidate session. ``{where}`` picks the
# candidates from ``onboarding_sessions AS s``; ``:with_inactivity`` false
# scores sessions as they were at their last event (for the model fit).
_SCORED = """
WITH candidates AS (
    SELECT s.id, s.user_id, s.client_id, s.conversation_type, s.current_state,
           s.started_at, s.last_activity_at, s.completed_at,
           s.questions_answered, s.questions_repeated, s.error_count
    FROM onboarding_sessions AS s
    WHERE {where}
),
baselines AS (
    SELECT c.client_id, c.conversation_type,
           avg(c.questions_answered) AS avg_answered
    FROM onboarding_sessions AS c
    WHERE c.completed_at IS NOT NULL
      AND (c.client_id, c.conversation_type) IN (
          SELECT client_id, conversation_type FROM candidates)
    GROUP BY c.client_id, c.conversation_type
),
measured AS (
    SELECT k.*,
        CASE WHEN k.completed_at IS NOT NULL OR NOT :with_inactivity THEN 0
             ELSE GREATEST(
                 0, floor(extract(epoch FROM :now - k.last_activity_at) / 60))
        END AS inactive_minutes,
        COALESCE(b.avg_answered > 0, false) AS has_baseline,
        CASE WHEN b.avg_answered > 0
             THEN round((k.questions_answered - b.avg_answered) / b.avg_answered, 2)
             ELSE 0 END AS complexity
    FROM candidates AS k
    LEFT JOIN baselines AS b USING (client_id, conversation_type)
),
contributions AS (
    SELECT m.*,
        :w_inactivity * LEAST(m.inactive_minutes, :cap) AS c_inactivity,
        :w_repetition * LEAST(:per_repeat * m.questions_repeated, :cap)
            AS c_repetition,
        :w_errors * LEAST(:per_error * m.error_count, :cap) AS c_errors,
        :w_complexity * LEAST(GREATEST(:per_complexity * m.complexity, 0), :cap)
            AS c_complexity
    FROM measured AS m
),
summed AS (
    SELECT c.*,
        c.c_inactivity + c.c_repetition + c.c_errors + c.c_complexity AS risk_score
    FROM contributions AS c
),
scored AS (
    SELECT t.*,
        CASE WHEN t.risk_score >= :critical THEN 'critical'
             WHEN t.risk_score >= :high THEN 'high'
             WHEN t.risk_score >= :medium THEN 'medium'
             ELSE 'low' END AS risk_level
    FROM summed AS t
)
"""

_ONE = "SELECT * FROM scored"

_AT_RISK = """
SELECT id, user_id, risk_score, risk_level, last_activity_at, current_state,
       count(*) OVER () AS total
FROM scored
WHERE risk_score >= :min_score
ORDER BY risk_score DESC, last_activity_at, id
LIMIT :limit
"""

_BUCKETS = """
SELECT round(risk_score)::int AS score,
       count(*) AS sessions,
       count(*) FILTER (WHERE completed_at IS NULL) AS abandoned
FROM scored
GROUP BY 1
ORDER BY 1
"""


def _params(now: datetime, *, with_inactivity: bool = True) -> dict[str, Any]:
    return {
        "now": now,
        "with_inactivity": with_inactivity,
        "w_inactivity": WEIGHTS["inactivity"],
        "w_repetition": WEIGHTS["question_repetition"],
        "w_errors": WEIGHTS["error_frequency"],
        "w_complexity": WEIGHTS["session_complexity"],
        "per_repeat": POINTS_PER_REPEAT,
        "per_error": POINTS_PER_ERROR,
        "per_complexity": POINTS_PER_COMPLEXITY,
        "cap": NORMALISED_CAP,
        "critical": MIN_SCORE["critical"],
        "high": MIN_SCORE["high"],
        "medium": MIN_SCORE["medium"],
    }


@dataclass(frozen=True)
class Factor:
    """One factor of a session's score."""

    name: str
    value: float
    weight: float
    contribution: float
    description: str


@dataclass(frozen=True)
class SessionRisk:
    """A scored session."""

    session_id: uuid.UUID
    risk_score: float
    risk_level: str
    factors: list[Factor]
    inactive_minutes: int
    completed: bool
    last_activity_at: datetime
    started_at: datetime
    current_state: str


async def session_risk(
    db: AsyncSession, session_id: uuid.UUID, now: datetime
) -> SessionRisk | None:
    """Score one session; None when it does not exist."""
    sql = _SCORED.format(where="s.id = :session_id") + _ONE
    params = {**_params(now), "session_id": session_id}
    row = (await db.execute(text(sql), params)).first()
    if row is None:
        return None
    return SessionRisk(
        session_id=row.id,
        risk_score=float(row.risk_score),
        risk_level=row.risk_level,
        factors=_factors(row),
        inactive_minutes=int(row.inactive_minutes),
        completed=row.completed_at is not None,
        last_activity_at=row.last_activity_at,
        started_at=row.started_at,
        current_state=row.current_state,
    )


def _factors(row: Any) -> list[Factor]:
    minutes = int(row.inactive_minutes)
    complexity = Decimal(row.complexity)
    return [
        Factor(
            "inactivity",
            minutes,
            float(WEIGHTS["inactivity"]),
            float(row.c_inactivity),
            _inactivity_text(minutes, row.completed_at is not None),
        ),
        Factor(
            "question_repetition",
            row.questions_repeated,
            float(WEIGHTS["question_repetition"]),
            float(row.c_repetition),
            f"User repeated {_count(row.questions_repeated, 'question')}",
        ),
        Factor(
            "error_frequency",
            row.error_count,
            float(WEIGHTS["error_frequency"]),
            float(row.c_errors),
            f"{_count(row.error_count, 'error')} encountered during session",
        ),
        Factor(
            "session_complexity",
            float(complexity),
            float(WEIGHTS["session_complexity"]),
            float(row.c_complexity),
            _complexity_text(complexity, row.has_baseline),
        ),
    ]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _inactivity_text(minutes: int, completed: bool) -> str:
    if completed:
        return "Session completed; inactivity no longer counts"
    return f"Session inactive for {_count(minutes, 'minute')}"


def _complexity_text(complexity: Decimal, has_baseline: bool) -> str:
    if not has_baseline:
        return "No completed sessions of this client and type to compare with yet"
    percent = abs(complexity * 100).normalize()
    if complexity > 0:
        return f"Session is {percent:f}% more complex than average"
    if complexity < 0:
        return f"Session is {percent:f}% less complex than average"
    return "Session is as complex as average"


@dataclass(frozen=True)
class AtRiskRow:
    """One entry of the at-risk list."""

    session_id: uuid.UUID
    user_id: int
    risk_score: float
    risk_level: str
    last_activity_at: datetime
    current_state: str


async def at_risk_sessions(
    db: AsyncSession,
    *,
    min_level: str,
    limit: int,
    now: datetime,
    active_since: datetime,
    client_id: int | None = None,
) -> tuple[int, list[AtRiskRow]]:
    """Active sessions at or above ``min_level``, riskiest first, and their total.

    Active means not completed and with an event since ``active_since`` (the
    abandonment timeout ago). Reusable by dashboards that show at-risk
    sessions.
    """
    where = "s.completed_at IS NULL AND s.last_activity_at >= :active_since"
    if client_id is not None:
        where += " AND s.client_id = :client_id"
    params = {
        **_params(now),
        "active_since": active_since,
        "client_id": client_id,
        "min_score": MIN_SCORE[min_level],
        "limit": limit,
    }
    result = await db.execute(text(_SCORED.format(where=where) + _AT_RISK), params)
    rows = result.all()
    total = int(rows[0].total) if rows else 0
    return total, [
        AtRiskRow(
            r.id,
            r.user_id,
            float(r.risk_score),
            r.risk_level,
            r.last_activity_at,
            r.current_state,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class ScoreBucket:
    """Finished sessions with one (rounded) score, and how many were abandoned."""

    score: int
    sessions: int
    abandoned: int


async def finished_score_buckets(
    db: AsyncSession, *, now: datetime, abandoned_before: datetime, since: datetime
) -> list[ScoreBucket]:
    """Finished sessions started since ``since``, grouped by their final score.

    Finished means completed, or abandoned: not completed and without an
    event since ``abandoned_before``. Inactivity is left out of these scores
    because for finished sessions it would restate the outcome itself.
    """
    where = (
        "s.started_at >= :since AND "
        "(s.completed_at IS NOT NULL OR s.last_activity_at < :abandoned_before)"
    )
    params = {
        **_params(now, with_inactivity=False),
        "since": since,
        "abandoned_before": abandoned_before,
    }
    result = await db.execute(text(_SCORED.format(where=where) + _BUCKETS), params)
    return [ScoreBucket(r.score, r.sessions, r.abandoned) for r in result.all()]
