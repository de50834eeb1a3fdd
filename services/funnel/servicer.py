"""FunnelAnalyticsService: the Funnel Analytics API over the funnel figures."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc
from onboarding.v1 import funnel_pb2, funnel_pb2_grpc
from redis.exceptions import RedisError

from server.errors import InvalidArgument
from services.funnel import messages
from services.funnel.cohorts import COHORT_DIMENSIONS, cohort_comparison
from services.funnel.comparison import period_comparison
from services.funnel.heatmap import (
    GRANULARITIES,
    MAX_BUCKETS,
    bucket_count,
    heatmap_metrics,
)
from services.funnel.metrics import funnel_metrics
from services.funnel.periods import period_from, periods_from
from services.funnel.reading import AnalyticsReader
from services.funnel.realtime import MAX_WINDOW_HOURS, realtime_metrics
from services.funnel.recommendations import (
    DEFAULT_MIN_CONFIDENCE,
    recommendations_report,
)
from services.funnel.rollup import Filters
from services.sessions.states import CONVERSATION_TYPES

if TYPE_CHECKING:
    from server.app import Resources

logger = logging.getLogger(__name__)

FUNNEL_DAYS, HEATMAP_DAYS = 30, 7
REALTIME_CACHE_KEY = "funnel:realtime:v1:{hours}h"


def _one_of(value: str, field: str, choices: tuple[str, ...]) -> dict[str, list[str]]:
    if value in choices:
        return {}
    return {field: [f"Must be one of: {', '.join(choices)}."]}


class FunnelAnalyticsServicer(funnel_pb2_grpc.FunnelAnalyticsServiceServicer):
    """Serves funnel figures computed in PostgreSQL from the session rollups."""

    def __init__(self, resources: Resources) -> None:
        settings = resources.settings
        self._reader = AnalyticsReader(
            resources.db, settings.session_abandon_after_minutes
        )
        self._redis = resources.redis
        self._min_sample = settings.funnel_min_sample_size
        self._cache_ttl = settings.funnel_realtime_cache_seconds

    async def GetFunnel(
        self, request: funnel_pb2.GetFunnelRequest, context: grpc.aio.ServicerContext
    ) -> funnel_pb2.GetFunnelResponse:
        snapshot = self._reader.snapshot()
        conversation_type = request.conversation_type or None
        errors = {}
        if conversation_type is not None:
            errors = _one_of(
                conversation_type, "conversation_type", tuple(CONVERSATION_TYPES)
            )
        period = period_from(
            request.start_date,
            request.end_date,
            default_days=FUNNEL_DAYS,
            now=snapshot.now,
            errors=errors,
        )
        client_id = request.client_id if request.HasField("client_id") else None
        filters = Filters(client_id, conversation_type)

        async with self._reader.session() as session:
            metrics = await funnel_metrics(
                session, period, filters, snapshot, min_sample=self._min_sample
            )
        return messages.funnel_response(metrics)

    async def GetDropOffHeatmap(
        self,
        request: funnel_pb2.GetDropOffHeatmapRequest,
        context: grpc.aio.ServicerContext,
    ) -> funnel_pb2.GetDropOffHeatmapResponse:
        snapshot = self._reader.snapshot()
        granularity = request.granularity or "hourly"
        period = period_from(
            request.start_date,
            request.end_date,
            default_days=HEATMAP_DAYS,
            now=snapshot.now,
            errors=_one_of(granularity, "granularity", tuple(GRANULARITIES)),
        )
        if bucket_count(period, granularity) > MAX_BUCKETS:
            raise InvalidArgument(
                "Invalid query parameters.",
                field_errors={
                    "granularity": [
                        f"The period spans more than {MAX_BUCKETS} {granularity} "
                        "buckets; choose a coarser granularity or a shorter period."
                    ]
                },
            )

        async with self._reader.session() as session:
            metrics = await heatmap_metrics(session, period, granularity, snapshot)
        return messages.heatmap_response(metrics)

    async def GetCohortComparison(
        self,
        request: funnel_pb2.GetCohortComparisonRequest,
        context: grpc.aio.ServicerContext,
    ) -> funnel_pb2.GetCohortComparisonResponse:
        snapshot = self._reader.snapshot()
        cohort_by = request.cohort_by or "client"
        period = period_from(
            request.start_date,
            request.end_date,
            default_days=FUNNEL_DAYS,
            now=snapshot.now,
            errors=_one_of(cohort_by, "cohort_by", tuple(COHORT_DIMENSIONS)),
        )

        async with self._reader.session() as session:
            comparison = await cohort_comparison(
                session, period, cohort_by, snapshot, min_sample=self._min_sample
            )
        return messages.cohort_response(comparison)

    async def GetRecommendations(
        self,
        request: funnel_pb2.GetRecommendationsRequest,
        context: grpc.aio.ServicerContext,
    ) -> funnel_pb2.GetRecommendationsResponse:
        snapshot = self._reader.snapshot()
        min_confidence = DEFAULT_MIN_CONFIDENCE
        errors = {}
        if request.HasField("min_confidence"):
            min_confidence = request.min_confidence
            # NaN fails both comparisons, so it is rejected too.
            if not 0 <= min_confidence <= 1:
                errors["min_confidence"] = ["Must be a number from 0 to 1."]
        period = period_from(
            request.start_date,
            request.end_date,
            default_days=FUNNEL_DAYS,
            now=snapshot.now,
            errors=errors,
        )

        async with self._reader.session() as session:
            report = await recommendations_report(
                session,
                period,
                snapshot,
                min_confidence=min_confidence,
                min_sample=self._min_sample,
            )
        return messages.recommendations_response(report)

    async def GetRealtime(
        self,
        request: funnel_pb2.GetRealtimeRequest,
        context: grpc.aio.ServicerContext,
    ) -> funnel_pb2.GetRealtimeResponse:
        hours = request.time_range_hours or 1
        if not 1 <= hours <= MAX_WINDOW_HOURS:
            raise InvalidArgument(
                "Invalid query parameters.",
                field_errors={
                    "time_range_hours": [f"Must be from 1 to {MAX_WINDOW_HOURS}."]
                },
            )
        key = REALTIME_CACHE_KEY.format(hours=hours)
        cached = await self._cached(key)
        if cached is not None:
            return funnel_pb2.GetRealtimeResponse.FromString(cached)

        async with self._reader.session() as session:
            metrics = await realtime_metrics(session, hours, self._reader.snapshot())
        response = messages.realtime_response(metrics, self._cache_ttl)
        await self._cache(key, response.SerializeToString())
        return response

    async def GetPeriodComparison(
        self,
        request: funnel_pb2.GetPeriodComparisonRequest,
        context: grpc.aio.ServicerContext,
    ) -> funnel_pb2.GetPeriodComparisonResponse:
        snapshot = self._reader.snapshot()
        first, second = periods_from(
            [
                (
                    request.period1_start,
                    request.period1_end,
                    ("period1_start", "period1_end"),
                ),
                (
                    request.period2_start,
                    request.period2_end,
                    ("period2_start", "period2_end"),
                ),
            ],
            default_days=None,
            now=snapshot.now,
        )

        async with self._reader.session() as session:
            comparison = await period_comparison(session, first, second, snapshot)
        return messages.comparison_response(comparison)

    async def _cached(self, key: str) -> bytes | None:
        # The cache only saves work: without Redis the figures are computed.
        try:
            value = await self._redis.get(key)
        except RedisError:
            logger.warning("realtime cache read failed", exc_info=True)
            return None
        return value if isinstance(value, bytes) else None

    async def _cache(self, key: str, value: bytes) -> None:
        try:
            await self._redis.set(key, value, ex=self._cache_ttl)
        except RedisError:
            logger.warning("realtime cache write failed", exc_info=True)
