"""Funnel figures as the protobuf messages of ``onboarding.v1.funnel``."""

from __future__ import annotations

from onboarding.v1 import funnel_pb2

from server.convert import timestamp
from services.funnel.cohorts import Cohort, CohortComparison
from services.funnel.comparison import PeriodComparison, PeriodSummary
from services.funnel.heatmap import HeatmapMetrics
from services.funnel.metrics import FunnelMetrics
from services.funnel.periods import Period
from services.funnel.realtime import RealtimeMetrics
from services.funnel.recommendations import Recommendation, RecommendationsReport


def period_range(period: Period) -> funnel_pb2.PeriodRange:
    return funnel_pb2.PeriodRange(
        start=timestamp(period.start), end=timestamp(period.end)
    )


def funnel_response(metrics: FunnelMetrics) -> funnel_pb2.GetFunnelResponse:
    return funnel_pb2.GetFunnelResponse(
        overall_conversion_rate=metrics.overall_conversion_rate,
        total_sessions=metrics.total_sessions,
        completed_sessions=metrics.completed_sessions,
        abandoned_sessions=metrics.abandoned_sessions,
        avg_completion_time_minutes=metrics.avg_completion_time_minutes,
        stages=[
            funnel_pb2.FunnelStage(
                name=s.name,
                session_states=s.session_states,
                count=s.count,
                conversion_rate=s.conversion_rate,
                drop_off_rate=s.drop_off_rate,
                avg_time_in_stage_minutes=s.avg_time_in_stage_minutes,
            )
            for s in metrics.stages
        ],
        top_drop_off_points=[
            funnel_pb2.DropOffPoint(
                state=p.state, count=p.count, percentage=p.percentage, reason=p.reason
            )
            for p in metrics.top_drop_off_points
        ],
        recommendations=[
            funnel_pb2.FunnelRecommendation(
                priority=r.priority,
                recommendation=r.recommendation,
                impact=r.impact,
                confidence=r.confidence,
            )
            for r in metrics.recommendations
        ],
        time_range=funnel_pb2.FunnelTimeRange(
            start=timestamp(metrics.period.start),
            end=timestamp(metrics.period.end),
            days=metrics.period.days,
        ),
        last_updated=timestamp(metrics.last_updated),
    )


def heatmap_response(metrics: HeatmapMetrics) -> funnel_pb2.GetDropOffHeatmapResponse:
    return funnel_pb2.GetDropOffHeatmapResponse(
        heatmap_data=[
            funnel_pb2.HeatmapBucket(
                time_bucket=b.time_bucket,
                sessions_started=b.sessions_started,
                drop_offs_by_stage=b.drop_offs_by_stage,
                completion_rate=b.completion_rate,
            )
            for b in metrics.buckets
        ],
        overall_drop_off_rate=metrics.overall_drop_off_rate,
        highest_drop_off_hour=metrics.highest_drop_off_hour,
        lowest_drop_off_hour=metrics.lowest_drop_off_hour,
        time_range=funnel_pb2.HeatmapTimeRange(
            start=timestamp(metrics.period.start),
            end=timestamp(metrics.period.end),
            granularity=metrics.granularity,
        ),
    )


def cohort_response(
    comparison: CohortComparison,
) -> funnel_pb2.GetCohortComparisonResponse:
    response = funnel_pb2.GetCohortComparisonResponse(
        cohorts=[_cohort(c) for c in comparison.cohorts],
        cohort_by=comparison.cohort_by,
        time_range=period_range(comparison.period),
    )
    # Left unset, and so absent from JSON, when no cohort is large enough.
    if comparison.best is not None:
        response.best_performing_cohort.CopyFrom(_cohort_ref(comparison.best))
    if comparison.worst is not None:
        response.worst_performing_cohort.CopyFrom(_cohort_ref(comparison.worst))
    return response


def _cohort(cohort: Cohort) -> funnel_pb2.Cohort:
    return funnel_pb2.Cohort(
        cohort_id=cohort.cohort_id,
        cohort_name=cohort.cohort_name,
        total_sessions=cohort.total_sessions,
        completed_sessions=cohort.completed_sessions,
        conversion_rate=cohort.conversion_rate,
        avg_completion_time_minutes=cohort.avg_completion_time_minutes,
    )


def _cohort_ref(cohort: Cohort) -> funnel_pb2.CohortRef:
    return funnel_pb2.CohortRef(
        cohort_id=cohort.cohort_id, conversion_rate=cohort.conversion_rate
    )


def recommendations_response(
    report: RecommendationsReport,
) -> funnel_pb2.GetRecommendationsResponse:
    return funnel_pb2.GetRecommendationsResponse(
        recommendations=[_recommendation(r) for r in report.recommendations],
        total_recommendations=len(report.recommendations),
        aggregated_impact=funnel_pb2.AggregatedImpact(
            potential_conversion_increase=report.potential_conversion_increase,
            potential_time_saved_minutes=report.potential_time_saved_minutes,
        ),
        time_range=period_range(report.period),
    )


def _recommendation(r: Recommendation) -> funnel_pb2.Recommendation:
    return funnel_pb2.Recommendation(
        id=r.id,
        priority=r.priority,
        confidence=r.confidence,
        category=r.category,
        recommendation=r.recommendation,
        reasoning=r.reasoning,
        expected_impact=funnel_pb2.ExpectedImpact(
            conversion_rate_increase=r.conversion_rate_increase,
            completion_time_decrease_minutes=r.completion_time_decrease_minutes,
        ),
        implementation_effort=r.implementation_effort,
        data_points=r.data_points,
    )


def realtime_response(
    metrics: RealtimeMetrics, cache_ttl: int
) -> funnel_pb2.GetRealtimeResponse:
    return funnel_pb2.GetRealtimeResponse(
        active_sessions=metrics.active_sessions,
        sessions_started_last_hour=metrics.sessions_started,
        sessions_completed_last_hour=metrics.sessions_completed,
        current_conversion_rate=metrics.current_conversion_rate,
        avg_session_duration_minutes=metrics.avg_session_duration_minutes,
        sessions_by_stage=metrics.sessions_by_stage,
        recent_errors=[
            funnel_pb2.RecentError(
                timestamp=timestamp(e.timestamp),
                session_id=str(e.session_id),
                error_type=e.error_type,
                stage=e.stage,
            )
            for e in metrics.recent_errors
        ],
        at_risk_sessions=[
            funnel_pb2.RealtimeAtRiskSession(
                session_id=str(s.session_id),
                risk_level=s.risk_level,
                risk_score=s.risk_score,
                last_activity=timestamp(s.last_activity),
                current_stage=s.current_stage,
            )
            for s in metrics.at_risk_sessions
        ],
        cache_ttl=cache_ttl,
        last_updated=timestamp(metrics.last_updated),
    )


def comparison_response(
    comparison: PeriodComparison,
) -> funnel_pb2.GetPeriodComparisonResponse:
    changes = comparison.changes
    significance = comparison.significance
    return funnel_pb2.GetPeriodComparisonResponse(
        period1=_summary(comparison.period1),
        period2=_summary(comparison.period2),
        comparison=funnel_pb2.PeriodChanges(
            conversion_rate_change=changes.conversion_rate_change,
            conversion_rate_change_percent=changes.conversion_rate_change_percent,
            completion_time_change_minutes=changes.completion_time_change_minutes,
            sessions_change=changes.sessions_change,
            sessions_change_percent=changes.sessions_change_percent,
        ),
        trend=comparison.trend,
        statistical_significance=funnel_pb2.StatisticalSignificance(
            p_value=significance.p_value,
            is_significant=significance.is_significant,
            confidence_level=significance.confidence_level,
        ),
    )


def _summary(summary: PeriodSummary) -> funnel_pb2.PeriodSummary:
    return funnel_pb2.PeriodSummary(
        label=summary.label,
        total_sessions=summary.total_sessions,
        completed_sessions=summary.completed_sessions,
        conversion_rate=summary.conversion_rate,
        avg_completion_time_minutes=summary.avg_completion_time_minutes,
    )
