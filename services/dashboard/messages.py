"""Dashboard figures as the protobuf messages of ``onboarding.v1.dashboard``."""

from __future__ import annotations

from onboarding.v1 import dashboard_pb2

from server.convert import struct, timestamp
from services.dashboard.heatmap import Heatmap, HeatmapPeriod
from services.dashboard.overview import Overview, Recovery
from services.dashboard.replay import Replay
from services.dashboard.trends import CohortTrends, TrendCohort
from services.funnel.messages import period_range
from services.funnel.metrics import FunnelMetrics


def overview_response(overview: Overview) -> dashboard_pb2.GetOverviewResponse:
    funnel = overview.funnel
    return dashboard_pb2.GetOverviewResponse(
        overview=_figures(funnel),
        funnel=dashboard_pb2.OverviewFunnel(
            stages=[
                dashboard_pb2.OverviewStage(
                    name=s.name,
                    count=s.count,
                    conversion_rate=s.conversion_rate,
                    drop_off_rate=s.drop_off_rate,
                )
                for s in funnel.stages
            ],
            top_drop_offs=[
                dashboard_pb2.OverviewDropOff(
                    state=p.state, count=p.count, percentage=p.percentage
                )
                for p in overview.top_drop_offs
            ],
        ),
        recovery=_recovery(overview.recovery),
        recommendations=[
            dashboard_pb2.OverviewRecommendation(
                priority=r.priority, recommendation=r.recommendation, impact=r.impact
            )
            for r in overview.recommendations
        ],
        time_range=dashboard_pb2.OverviewTimeRange(
            start=timestamp(overview.period.start),
            end=timestamp(overview.period.end),
            hours=overview.hours,
        ),
        last_updated=timestamp(funnel.last_updated),
    )


def _figures(funnel: FunnelMetrics) -> dashboard_pb2.OverviewFigures:
    return dashboard_pb2.OverviewFigures(
        total_sessions=funnel.total_sessions,
        active_sessions=funnel.active_sessions,
        completed_sessions=funnel.completed_sessions,
        conversion_rate=funnel.overall_conversion_rate,
        avg_completion_time_minutes=funnel.avg_completion_time_minutes,
    )


def _recovery(recovery: Recovery) -> dashboard_pb2.OverviewRecovery:
    return dashboard_pb2.OverviewRecovery(
        checkpoints_created=recovery.checkpoints_created,
        sessions_resumed=recovery.sessions_resumed,
        at_risk_count=recovery.at_risk_count,
        at_risk_sessions=[
            dashboard_pb2.OverviewAtRiskSession(
                session_id=str(s.session_id),
                risk_score=s.risk_score,
                risk_level=s.risk_level,
                last_activity=timestamp(s.last_activity),
            )
            for s in recovery.at_risk_sessions
        ],
    )


def heatmap_response(heatmap: Heatmap) -> dashboard_pb2.GetHeatmapResponse:
    return dashboard_pb2.GetHeatmapResponse(
        heatmap_data=[_heatmap_period(p) for p in heatmap.periods],
        overall_drop_offs=heatmap.overall_drop_offs,
        error_patterns=[
            dashboard_pb2.ErrorPattern(
                error_type=e.error_type, count=e.count, stages=e.stages
            )
            for e in heatmap.error_patterns
        ],
        time_analysis=dashboard_pb2.TimeAnalysis(
            peak_drop_off_hour=heatmap.peak_drop_off_hour,
            lowest_drop_off_hour=heatmap.lowest_drop_off_hour,
        ),
        granularity=heatmap.granularity,
        period=period_range(heatmap.period),
    )


def _heatmap_period(period: HeatmapPeriod) -> dashboard_pb2.HeatmapPeriod:
    bucket = period.bucket
    return dashboard_pb2.HeatmapPeriod(
        time_period=bucket.label,
        start=timestamp(bucket.start),
        end=timestamp(bucket.end),
        stage_counts=[
            dashboard_pb2.StageCount(stage=name, count=count)
            for name, count in period.stage_counts
        ],
        total_sessions=period.total_sessions,
    )


def replay_response(replay: Replay) -> dashboard_pb2.GetSessionReplayResponse:
    return dashboard_pb2.GetSessionReplayResponse(
        session_id=str(replay.session_id),
        timeline=[
            dashboard_pb2.TimelineEvent(
                timestamp=timestamp(e.timestamp),
                event_type=e.event_type,
                data=struct(e.data),
            )
            for e in replay.timeline
        ],
        session_summary=dashboard_pb2.SessionSummary(
            started_at=timestamp(replay.started_at),
            updated_at=timestamp(replay.updated_at),
            current_state=replay.current_state,
            total_events=replay.total_events,
            duration_minutes=replay.duration_minutes,
        ),
    )


def trends_response(trends: CohortTrends) -> dashboard_pb2.GetCohortTrendsResponse:
    t = trends.trends
    return dashboard_pb2.GetCohortTrendsResponse(
        cohorts=[_cohort(c) for c in trends.cohorts],
        trends=dashboard_pb2.Trends(
            conversion_trend=t.conversion_trend,
            conversion_change=t.conversion_change,
            volume_trend=t.volume_trend,
            volume_change_percent=t.volume_change_percent,
        ),
        cohort_type=trends.cohort_type,
        period=period_range(trends.period),
    )


def _cohort(cohort: TrendCohort) -> dashboard_pb2.TrendCohort:
    bucket = cohort.bucket
    return dashboard_pb2.TrendCohort(
        cohort_label=bucket.label,
        start_date=timestamp(bucket.start),
        end_date=timestamp(bucket.end),
        total_sessions=cohort.total_sessions,
        completed_sessions=cohort.completed_sessions,
        conversion_rate=cohort.conversion_rate,
        avg_completion_time_minutes=cohort.avg_completion_time_minutes,
    )
