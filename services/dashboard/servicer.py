"""AnalyticsDashboardService: the Analytics Dashboard API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from onboarding.v1 import dashboard_pb2, dashboard_pb2_grpc

from server.security.principal import current_principal
from services.dashboard import messages
from services.dashboard.cache import ResponseCache, overview_key
from services.dashboard.heatmap import (
    GRANULARITIES,
    dashboard_heatmap,
    heatmap_buckets,
)
from services.dashboard.overview import overview
from services.dashboard.params import dashboard_period, one_of, overview_params
from services.dashboard.replay import session_replay
from services.dashboard.trends import COHORT_TYPES, cohort_trends, trend_buckets
from services.funnel.reading import AnalyticsReader
from services.sessions.access import parse_session_id

if TYPE_CHECKING:
    from server.app import Resources

HEATMAP_DAYS, TRENDS_DAYS = 7, 30


class AnalyticsDashboardServicer(dashboard_pb2_grpc.AnalyticsDashboardServiceServicer):
    """Serves dashboards built from the funnel and session recovery figures."""

    def __init__(self, resources: Resources) -> None:
        settings = resources.settings
        self._reader = AnalyticsReader(
            resources.db, settings.session_abandon_after_minutes
        )
        self._cache = ResponseCache(
            resources.redis, settings.dashboard_overview_cache_seconds
        )
        self._min_sample = settings.funnel_min_sample_size

    async def GetOverview(
        self,
        request: dashboard_pb2.GetOverviewRequest,
        context: grpc.aio.ServicerContext,
    ) -> dashboard_pb2.GetOverviewResponse:
        hours, filters = overview_params(request)
        key = overview_key(hours, filters)
        cached = await self._cache.get(key)
        if cached is not None:
            return dashboard_pb2.GetOverviewResponse.FromString(cached)

        async with self._reader.session() as session:
            figures = await overview(
                session,
                hours,
                filters,
                self._reader.snapshot(),
                min_sample=self._min_sample,
            )
        response = messages.overview_response(figures)
        await self._cache.put(key, response.SerializeToString())
        return response

    async def GetHeatmap(
        self,
        request: dashboard_pb2.GetHeatmapRequest,
        context: grpc.aio.ServicerContext,
    ) -> dashboard_pb2.GetHeatmapResponse:
        snapshot = self._reader.snapshot()
        granularity = request.granularity or "daily"
        period = dashboard_period(
            request.start_date,
            request.end_date,
            default_days=HEATMAP_DAYS,
            now=snapshot.now,
            errors=one_of(granularity, "granularity", tuple(GRANULARITIES)),
        )
        listed = heatmap_buckets(period, granularity)

        async with self._reader.session() as session:
            heatmap = await dashboard_heatmap(
                session, period, granularity, listed, snapshot
            )
        return messages.heatmap_response(heatmap)

    async def GetSessionReplay(
        self,
        request: dashboard_pb2.GetSessionReplayRequest,
        context: grpc.aio.ServicerContext,
    ) -> dashboard_pb2.GetSessionReplayResponse:
        session_id = parse_session_id(request.session_id)

        async with self._reader.session() as session:
            replay = await session_replay(session, session_id, current_principal())
        return messages.replay_response(replay)

    async def GetCohortTrends(
        self,
        request: dashboard_pb2.GetCohortTrendsRequest,
        context: grpc.aio.ServicerContext,
    ) -> dashboard_pb2.GetCohortTrendsResponse:
        snapshot = self._reader.snapshot()
        cohort_type = request.cohort_type or "weekly"
        period = dashboard_period(
            request.start_date,
            request.end_date,
            default_days=TRENDS_DAYS,
            now=snapshot.now,
            errors=one_of(cohort_type, "cohort_type", tuple(COHORT_TYPES)),
        )
        listed = trend_buckets(period, cohort_type)

        async with self._reader.session() as session:
            trends = await cohort_trends(session, period, cohort_type, listed, snapshot)
        return messages.trends_response(trends)
