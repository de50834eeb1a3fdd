"""Building the SessionRecoveryService response messages."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from onboarding.v1 import sessions_pb2

from server.convert import struct, timestamp
from services.sessions.checkpoints import (
    NEXT_ACTIONS,
    Created,
    History,
    HistoryEntry,
    Resumed,
)
from services.sessions.convert import session_message, whole_minutes
from services.sessions.eventstore import Stored
from services.sessions.intake import EventGroup
from services.sessions.interventions import (
    ACTION_BY_LEVEL,
    PRIORITY_BY_LEVEL,
    Intervention,
)
from services.sessions.models import OnboardingSession
from services.sessions.risk import AtRiskRow, SessionRisk


def record_response(
    group: EventGroup,
    stored: Stored,
    session: OnboardingSession,
    now: datetime,
    abandon_after: timedelta,
) -> sessions_pb2.RecordEventsResponse:
    inserted = stored.inserted_for(group.session_id)
    duplicates = [row.event_id for row in group.rows if row.event_id not in inserted]
    return sessions_pb2.RecordEventsResponse(
        session_id=str(group.session_id),
        recorded_count=len(group.rows) - len(duplicates),
        duplicate_count=len(duplicates),
        duplicate_event_ids=duplicates,
        session=session_message(session, now, abandon_after),
    )


def created_response(
    created: Created, ttl_seconds: int
) -> sessions_pb2.CreateCheckpointResponse:
    checkpoint = created.checkpoint
    return sessions_pb2.CreateCheckpointResponse(
        status=created.status,
        checkpoint_version=checkpoint.version,
        checkpoint_hash=checkpoint.checkpoint_hash,
        created_at=timestamp(checkpoint.created_at),
        storage=sessions_pb2.CheckpointStorage(redis=created.in_redis, postgresql=True),
        ttl_seconds=ttl_seconds if created.in_redis else 0,
    )


def resumed_response(
    session_id: uuid.UUID, resumed: Resumed, now: datetime
) -> sessions_pb2.ResumeSessionResponse:
    checkpoint = resumed.checkpoint
    action, description = NEXT_ACTIONS[checkpoint.state]
    age = max(0, int((now - checkpoint.created_at).total_seconds()))
    return sessions_pb2.ResumeSessionResponse(
        status="resumed",
        session_id=str(session_id),
        restored_state=checkpoint.state,
        restored_data=struct(resumed.data),
        checkpoint_version=checkpoint.version,
        checkpoint_age_seconds=age,
        next_action=sessions_pb2.NextAction(type=action, description=description),
    )


def history_response(
    session_id: uuid.UUID, history: History
) -> sessions_pb2.ListCheckpointsResponse:
    return sessions_pb2.ListCheckpointsResponse(
        session_id=str(session_id),
        total_checkpoints=history.total,
        checkpoints=[
            sessions_pb2.CheckpointSummary(
                version=entry.version,
                state=entry.state,
                created_at=timestamp(entry.created_at),
                checkpoint_hash=entry.checkpoint_hash,
                data_summary=struct(_summary(entry)),
            )
            for entry in history.entries
        ],
    )


def _summary(entry: HistoryEntry) -> dict[str, float | int]:
    summary: dict[str, float | int] = {"answers_count": entry.answers_count}
    if entry.progress is not None:
        summary["progress"] = entry.progress
    return summary


def risk_response(
    risk: SessionRisk,
    intervention: Intervention,
    probability: float,
    now: datetime,
) -> sessions_pb2.GetAbandonmentRiskResponse:
    return sessions_pb2.GetAbandonmentRiskResponse(
        session_id=str(risk.session_id),
        risk_score=risk.risk_score,
        risk_level=risk.risk_level,
        risk_factors=[
            sessions_pb2.RiskFactor(
                factor=factor.name,
                value=factor.value,
                weight=factor.weight,
                contribution=factor.contribution,
                description=factor.description,
            )
            for factor in risk.factors
        ],
        intervention_recommendation=sessions_pb2.Intervention(
            type=intervention.type,
            priority=intervention.priority,
            message=intervention.message,
            actions=intervention.actions,
        ),
        predicted_abandonment_probability=probability,
        last_activity=timestamp(risk.last_activity_at),
        session_age_minutes=whole_minutes(now - risk.started_at),
        current_stage=risk.current_state,
    )


def at_risk_response(
    total: int, rows: list[AtRiskRow]
) -> sessions_pb2.ListAtRiskSessionsResponse:
    return sessions_pb2.ListAtRiskSessionsResponse(
        total_at_risk=total,
        sessions=[
            sessions_pb2.AtRiskSession(
                session_id=str(row.session_id),
                user_id=row.user_id,
                risk_score=row.risk_score,
                risk_level=row.risk_level,
                last_activity=timestamp(row.last_activity_at),
                current_stage=row.current_state,
                intervention_priority=PRIORITY_BY_LEVEL[row.risk_level],
                recommended_action=ACTION_BY_LEVEL[row.risk_level],
            )
            for row in rows
        ],
    )
