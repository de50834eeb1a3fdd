"""The dashboard's front page: funnel, recovery and risk of the last hours.

The funnel figures are the funnel service's own (``funnel_metrics``) over the
window, and the at-risk sessions those of the session recovery risk model, so
the dashboard never disagrees with the endpoints it summarises.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.metrics import DropOffPoint, FunnelMetrics, funnel_metrics
from services.funnel.periods import Period
from services.funnel.recommendations import Recommendation
from services.funnel.rollup import Filters, Snapshot
from services.sessions.events import CHECKPOINT_CREATED, SESSION_RESUMED
from services.sessions.risk import at_risk_sessions

TOP_DROP_OFFS = 3
TOP_RECOMMENDATIONS = 5
AT_RISK_LEVEL = "high"
AT_RISK_SESSIONS = 10

# Counted from the events, which retention never prunes (checkpoint rows it
# does). Two scans of the index on (event_type, occurred_at): checkpoints
# need no other column, so theirs can be index-only.
_RECOVERY = f"""
SELECT
    (SELECT count(*) FROM session_events AS e
     WHERE e.event_type = '{CHECKPOINT_CREATED}'
       AND e.occurred_at >= :start AND e.occurred_at < :end{{of_client}}
    ) AS checkpoints,
    (SELECT count(DISTINCT e.session_id) FROM session_events AS e
     WHERE e.event_type = '{SESSION_RESUMED}'
       AND e.occurred_at >= :start AND e.occurred_at < :end{{of_client}}
    ) AS resumed
"""
_OF_CLIENT = """
       AND e.session_id IN (SELECT s.id FROM onboarding_sessions AS s
                            WHERE s.client_id = :client_id)"""


@dataclass(frozen=True)
class AtRisk:
    """An active session at high or critical risk."""

    session_id: uuid.UUID
    risk_score: float
    risk_level: str
    last_activity: datetime


@dataclass(frozen=True)
class Recovery:
    """Checkpoints and resumes of the window, and the sessions at risk now."""

    checkpoints_created: int
    sessions_resumed: int
    at_risk_count: int
    at_risk_sessions: tuple[AtRisk, ...]


@dataclass(frozen=True)
class Overview:
    """Everything the overview shows, for one window and client."""

    period: Period
    hours: int
    funnel: FunnelMetrics
    top_drop_offs: tuple[DropOffPoint, ...]
    recommendations: tuple[Recommendation, ...]
    recovery: Recovery


async def overview(
    session: AsyncSession,
    hours: int,
    filters: Filters,
    snapshot: Snapshot,
    *,
    min_sample: int,
) -> Overview:
    """The overview of the ``hours`` before ``snapshot.now``."""
    period = Period(snapshot.now - timedelta(hours=hours), snapshot.now)
    funnel = await funnel_metrics(
        session, period, filters, snapshot, min_sample=min_sample
    )
    return Overview(
        period=period,
        hours=hours,
        funnel=funnel,
        top_drop_offs=funnel.top_drop_off_points[:TOP_DROP_OFFS],
        recommendations=funnel.recommendations[:TOP_RECOMMENDATIONS],
        recovery=await _recovery(session, period, filters, snapshot),
    )


async def _recovery(
    session: AsyncSession, period: Period, filters: Filters, snapshot: Snapshot
) -> Recovery:
    of_client = _OF_CLIENT if filters.client_id is not None else ""
    sql = _RECOVERY.format(of_client=of_client)
    params = {"start": period.start, "end": period.end, "client_id": filters.client_id}
    counts = (await session.execute(text(sql), params)).one()
    total, rows = await at_risk_sessions(
        session,
        min_level=AT_RISK_LEVEL,
        limit=AT_RISK_SESSIONS,
        now=snapshot.now,
        active_since=snapshot.active_since,
        client_id=filters.client_id,
    )
    return Recovery(
        checkpoints_created=int(counts.checkpoints),
        sessions_resumed=int(counts.resumed),
        at_risk_count=total,
        at_risk_sessions=tuple(
            AtRisk(r.session_id, r.risk_score, r.risk_level, r.last_activity_at)
            for r in rows
        ),
    )
