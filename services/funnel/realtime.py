"""Live figures of the last hours, read straight from the sessions.

The windows are short, so these queries use the indexes on start,
completion, last activity and error time rather than the rollups.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.metrics import mean_minutes, rate
from services.funnel.rollup import Snapshot
from services.sessions.risk import at_risk_sessions

# The longest window the realtime endpoint serves, in hours.
MAX_WINDOW_HOURS = 168
RECENT_ERRORS = 10
AT_RISK_SESSIONS = 10
AT_RISK_LEVEL = "high"

_COUNTS = """
SELECT
    (SELECT count(*) FROM onboarding_sessions
     WHERE furthest_stage < 4 AND last_activity_at >= :active_since) AS active,
    (SELECT count(*) FROM onboarding_sessions
     WHERE completed_at >= :since) AS completed,
    (SELECT COALESCE(sum((extract(epoch FROM completed_at - started_at)
                          * 1000000)::bigint), 0)
     FROM onboarding_sessions WHERE completed_at >= :since) AS completed_us
"""
_BY_STATE = """
SELECT current_state, count(*) AS sessions FROM onboarding_sessions
WHERE started_at >= :since GROUP BY current_state
"""
_RECENT_ERRORS = """
SELECT occurred_at, session_id, data ->> 'error_type' AS error_type, state
FROM session_events
WHERE event_type = 'error' AND occurred_at >= :since
ORDER BY occurred_at DESC, id DESC
LIMIT :limit
"""


@dataclass(frozen=True)
class RecentError:
    """One error event."""

    timestamp: datetime
    session_id: uuid.UUID
    error_type: str
    stage: str


@dataclass(frozen=True)
class AtRiskSession:
    """An active session the risk model rates high or critical."""

    session_id: uuid.UUID
    risk_level: str
    risk_score: float
    last_activity: datetime
    current_stage: str


@dataclass(frozen=True)
class RealtimeMetrics:
    """The live figures of a window ending now."""

    window_hours: int
    active_sessions: int
    sessions_started: int
    sessions_completed: int
    current_conversion_rate: float
    avg_session_duration_minutes: float
    sessions_by_stage: dict[str, int]
    recent_errors: tuple[RecentError, ...]
    at_risk_sessions: tuple[AtRiskSession, ...]
    last_updated: datetime


async def realtime_metrics(
    session: AsyncSession, window_hours: int, snapshot: Snapshot
) -> RealtimeMetrics:
    """Figures of the sessions started, completed or failing in the window."""
    since = snapshot.now - timedelta(hours=window_hours)
    params = {"since": since, "active_since": snapshot.active_since}
    counts = (await session.execute(text(_COUNTS), params)).one()
    by_state = {
        row.current_state: int(row.sessions)
        for row in await session.execute(text(_BY_STATE), params)
    }
    started = sum(by_state.values())
    return RealtimeMetrics(
        window_hours=window_hours,
        active_sessions=int(counts.active),
        sessions_started=started,
        sessions_completed=int(counts.completed),
        current_conversion_rate=rate(counts.completed, started),
        avg_session_duration_minutes=mean_minutes(
            int(counts.completed_us), counts.completed
        ),
        sessions_by_stage=by_state,
        recent_errors=await _recent_errors(session, since),
        at_risk_sessions=await _at_risk(session, snapshot),
        last_updated=snapshot.now,
    )


async def _recent_errors(
    session: AsyncSession, since: datetime
) -> tuple[RecentError, ...]:
    result = await session.execute(
        text(_RECENT_ERRORS), {"since": since, "limit": RECENT_ERRORS}
    )
    return tuple(
        RecentError(row.occurred_at, row.session_id, row.error_type or "", row.state)
        for row in result
    )


async def _at_risk(
    session: AsyncSession, snapshot: Snapshot
) -> tuple[AtRiskSession, ...]:
    # The session recovery risk model, so both endpoints rate alike.
    _, rows = await at_risk_sessions(
        session,
        min_level=AT_RISK_LEVEL,
        limit=AT_RISK_SESSIONS,
        now=snapshot.now,
        active_since=snapshot.active_since,
    )
    return tuple(
        AtRiskSession(
            row.session_id,
            row.risk_level,
            row.risk_score,
            row.last_activity_at,
            row.current_state,
        )
        for row in rows
    )
