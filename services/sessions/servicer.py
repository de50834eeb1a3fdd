"""SessionRecoveryService: session intake, checkpoints, resume and risk."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import grpc
from onboarding.v1 import sessions_pb2, sessions_pb2_grpc

from server.db import utcnow
from server.errors import InvalidArgument
from server.interceptor import add_response_header
from server.security.principal import current_principal
from services.sessions import responses
from services.sessions.access import (
    parse_session_id,
    session_not_found,
    visible_session,
)
from services.sessions.checkpoint_input import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    parse_create,
)
from services.sessions.checkpoints import Checkpoints
from services.sessions.convert import session_message
from services.sessions.hotcopy import HotCopies
from services.sessions.intake import (
    parse_groups,
    parse_start,
    record_groups,
    start_session,
)
from services.sessions.interventions import recommend
from services.sessions.risk import LEVELS, at_risk_sessions, session_risk
from services.sessions.risk_model import RiskModelCache
from services.sessions.validation import FieldErrors

if TYPE_CHECKING:
    from server.app import Resources

DEFAULT_AT_RISK_LEVEL = "high"
DEFAULT_AT_RISK_LIMIT = 20
MAX_AT_RISK_LIMIT = 100
# Response header naming where a resumed checkpoint's data came from.
SOURCE_HEADER = "x-checkpoint-source"


def _limit(value: int, default: int, maximum: int) -> int:
    """0 means the default; anything outside 1..maximum is a 400."""
    if value == 0:
        return default
    errors = FieldErrors()
    errors.check_range("limit", value, minimum=1, maximum=maximum)
    errors.raise_if_any()
    return value


class SessionRecoveryServicer(sessions_pb2_grpc.SessionRecoveryServiceServicer):
    """Serves the Session Recovery API from PostgreSQL and Redis."""

    def __init__(self, resources: Resources) -> None:
        settings = resources.settings
        self._db = resources.db
        self._settings = settings
        self._abandon_after = timedelta(minutes=settings.session_abandon_after_minutes)
        self._hot = HotCopies(resources.redis, settings.checkpoint_ttl_seconds)
        self._checkpoints = Checkpoints(resources.db, self._hot)
        self._model = RiskModelCache(resources.db, settings)

    async def StartSession(
        self,
        request: sessions_pb2.StartSessionRequest,
        context: grpc.aio.ServicerContext,
    ) -> sessions_pb2.StartSessionResponse:
        now = utcnow()
        new = parse_start(request, current_principal(), now)
        status, row = await start_session(self._db, new)
        return sessions_pb2.StartSessionResponse(
            status=status,
            session=session_message(row, utcnow(), self._abandon_after),
        )

    async def RecordEvents(
        self,
        request: sessions_pb2.RecordEventsRequest,
        context: grpc.aio.ServicerContext,
    ) -> sessions_pb2.RecordEventsResponse:
        groups = parse_groups(
            [(request.session_id, request.events)],
            [""],
            max_events=self._settings.session_events_max_batch,
            now=utcnow(),
        )
        stored, sessions = await record_groups(self._db, groups, current_principal())
        group = groups[0]
        return responses.record_response(
            group, stored, sessions[group.session_id], utcnow(), self._abandon_after
        )

    async def BatchRecordEvents(
        self,
        request: sessions_pb2.BatchRecordEventsRequest,
        context: grpc.aio.ServicerContext,
    ) -> sessions_pb2.BatchRecordEventsResponse:
        if not request.requests:
            raise InvalidArgument(
                "Invalid request.",
                field_errors={"requests": ["At least one entry is required."]},
            )
        groups = parse_groups(
            [(entry.session_id, entry.events) for entry in request.requests],
            [f"requests[{index}]." for index in range(len(request.requests))],
            max_events=self._settings.session_events_max_batch,
            now=utcnow(),
        )
        stored, sessions = await record_groups(self._db, groups, current_principal())
        now = utcnow()
        return sessions_pb2.BatchRecordEventsResponse(
            responses=[
                responses.record_response(
                    group, stored, sessions[group.session_id], now, self._abandon_after
                )
                for group in groups
            ],
            recorded_count=stored.total,
            duplicate_count=sum(len(g.rows) for g in groups) - stored.total,
        )

    async def CreateCheckpoint(
        self,
        request: sessions_pb2.CreateCheckpointRequest,
        context: grpc.aio.ServicerContext,
    ) -> sessions_pb2.CreateCheckpointResponse:
        new = parse_create(request, self._settings.checkpoint_max_bytes)
        created = await self._checkpoints.create(current_principal(), new, utcnow())
        return responses.created_response(created, self._hot.ttl_seconds)

    async def ResumeSession(
        self,
        request: sessions_pb2.ResumeSessionRequest,
        context: grpc.aio.ServicerContext,
    ) -> sessions_pb2.ResumeSessionResponse:
        session_id = parse_session_id(request.session_id)
        version = None
        if request.HasField("checkpoint_version"):
            errors = FieldErrors()
            errors.check_range(
                "checkpoint_version", request.checkpoint_version, minimum=1
            )
            errors.raise_if_any()
            version = request.checkpoint_version
        resumed = await self._checkpoints.resume(
            current_principal(), session_id, version, utcnow()
        )
        add_response_header(SOURCE_HEADER, resumed.source)
        return responses.resumed_response(session_id, resumed, utcnow())

    async def ListCheckpoints(
        self,
        request: sessions_pb2.ListCheckpointsRequest,
        context: grpc.aio.ServicerContext,
    ) -> sessions_pb2.ListCheckpointsResponse:
        session_id = parse_session_id(request.session_id)
        limit = _limit(request.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        history = await self._checkpoints.history(
            current_principal(), session_id, limit
        )
        return responses.history_response(session_id, history)

    async def GetAbandonmentRisk(
        self,
        request: sessions_pb2.GetAbandonmentRiskRequest,
        context: grpc.aio.ServicerContext,
    ) -> sessions_pb2.GetAbandonmentRiskResponse:
        session_id = parse_session_id(request.session_id)
        now = utcnow()
        async with self._db.session() as session:
            await visible_session(session, session_id, current_principal())
            risk = await session_risk(session, session_id, now)
        if risk is None:
            # Deleted between the two statements.
            raise session_not_found(session_id)
        model = await self._model.current(now)
        probability = 0.0 if risk.completed else model.probability(risk.risk_score)
        return responses.risk_response(
            risk, recommend(risk), round(probability, 2), now
        )

    async def ListAtRiskSessions(
        self,
        request: sessions_pb2.ListAtRiskSessionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> sessions_pb2.ListAtRiskSessionsResponse:
        errors = FieldErrors()
        level = request.risk_level or DEFAULT_AT_RISK_LEVEL
        errors.check_choice("risk_level", level, LEVELS)
        client_id = None
        if request.HasField("client_id"):
            errors.check_range("client_id", request.client_id, minimum=1)
            client_id = request.client_id
        errors.raise_if_any()
        limit = _limit(request.limit, DEFAULT_AT_RISK_LIMIT, MAX_AT_RISK_LIMIT)

        now = utcnow()
        async with self._db.session() as session:
            total, rows = await at_risk_sessions(
                session,
                min_level=level,
                limit=limit,
                now=now,
                active_since=now - self._abandon_after,
                client_id=client_id,
            )
        return responses.at_risk_response(total, rows)
