"""Permissions and rate-limit resources, declared per RPC in one table.

The interceptor enforces this table for gRPC and REST alike; a completeness
test fails when an RPC of the protos has no entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from server.errors import PermissionDenied, Unauthenticated
from server.security.principal import Principal


class Permission(StrEnum):
    ALLOW_ANY = "AllowAny"
    IS_AUTHENTICATED = "IsAuthenticated"
    IS_ADMIN_USER = "IsAdminUser"
    IS_SUPERUSER = "IsSuperUser"


@dataclass(frozen=True)
class RpcPolicy:
    """What an RPC requires, and which critical resource it consumes."""

    permission: Permission
    critical_resource: str | None = None


_P = "/onboarding.v1."

POLICIES: dict[str, RpcPolicy] = {
    # Authentication itself is open; rate limits still apply per address.
    f"{_P}AuthService/Login": RpcPolicy(Permission.ALLOW_ANY),
    f"{_P}AuthService/RefreshToken": RpcPolicy(Permission.ALLOW_ANY),
    f"{_P}AuthService/GetCurrentUser": RpcPolicy(Permission.IS_AUTHENTICATED),
    # DLQ administration is staff only; clearing is irreversible.
    f"{_P}DlqAdminService/ListTasks": RpcPolicy(Permission.IS_ADMIN_USER),
    f"{_P}DlqAdminService/GetTask": RpcPolicy(Permission.IS_ADMIN_USER),
    # A retry re-runs an LLM-backed task, so it spends the LLM budget.
    f"{_P}DlqAdminService/RetryTask": RpcPolicy(
        Permission.IS_ADMIN_USER, critical_resource="llm_calls"
    ),
    f"{_P}DlqAdminService/DeleteTask": RpcPolicy(Permission.IS_ADMIN_USER),
    f"{_P}DlqAdminService/AbandonTask": RpcPolicy(Permission.IS_ADMIN_USER),
    f"{_P}DlqAdminService/GetStats": RpcPolicy(Permission.IS_ADMIN_USER),
    f"{_P}DlqAdminService/ClearTasks": RpcPolicy(Permission.IS_SUPERUSER),
    # Funnel analytics are staff only.
    f"{_P}FunnelAnalyticsService/GetFunnel": RpcPolicy(Permission.IS_ADMIN_USER),
    f"{_P}FunnelAnalyticsService/GetDropOffHeatmap": RpcPolicy(
        Permission.IS_ADMIN_USER
    ),
    f"{_P}FunnelAnalyticsService/GetCohortComparison": RpcPolicy(
        Permission.IS_ADMIN_USER
    ),
    f"{_P}FunnelAnalyticsService/GetRecommendations": RpcPolicy(
        Permission.IS_ADMIN_USER
    ),
    f"{_P}FunnelAnalyticsService/GetRealtime": RpcPolicy(Permission.IS_ADMIN_USER),
    f"{_P}FunnelAnalyticsService/GetPeriodComparison": RpcPolicy(
        Permission.IS_ADMIN_USER
    ),
    # Session intake is open to any user for their own sessions; staff and
    # superusers (including the product's service accounts, which are staff
    # users with an API key) may start and record sessions of any user.
    f"{_P}SessionRecoveryService/StartSession": RpcPolicy(Permission.IS_AUTHENTICATED),
    f"{_P}SessionRecoveryService/RecordEvents": RpcPolicy(Permission.IS_AUTHENTICATED),
    f"{_P}SessionRecoveryService/BatchRecordEvents": RpcPolicy(
        Permission.IS_AUTHENTICATED
    ),
    # Session recovery is open to any user for their own sessions.
    f"{_P}SessionRecoveryService/CreateCheckpoint": RpcPolicy(
        Permission.IS_AUTHENTICATED
    ),
    f"{_P}SessionRecoveryService/ResumeSession": RpcPolicy(Permission.IS_AUTHENTICATED),
    f"{_P}SessionRecoveryService/ListCheckpoints": RpcPolicy(
        Permission.IS_AUTHENTICATED
    ),
    f"{_P}SessionRecoveryService/GetAbandonmentRisk": RpcPolicy(
        Permission.IS_AUTHENTICATED
    ),
    f"{_P}SessionRecoveryService/ListAtRiskSessions": RpcPolicy(
        Permission.IS_ADMIN_USER
    ),
    # Dashboards are staff only, except replaying one's own session.
    f"{_P}AnalyticsDashboardService/GetOverview": RpcPolicy(Permission.IS_ADMIN_USER),
    f"{_P}AnalyticsDashboardService/GetHeatmap": RpcPolicy(Permission.IS_ADMIN_USER),
    f"{_P}AnalyticsDashboardService/GetSessionReplay": RpcPolicy(
        Permission.IS_AUTHENTICATED
    ),
    f"{_P}AnalyticsDashboardService/GetCohortTrends": RpcPolicy(
        Permission.IS_ADMIN_USER
    ),
}


def check_permission(permission: Permission, principal: Principal) -> None:
    """Raise 401 for anonymous callers and 403 for insufficient rights."""
    if permission is Permission.ALLOW_ANY:
        return
    if not principal.is_authenticated:
        raise Unauthenticated(
            "Authentication credentials were not provided.",
            reason="not_authenticated",
        )
    if permission is Permission.IS_ADMIN_USER and not principal.is_privileged:
        raise PermissionDenied("This endpoint requires a staff user.")
    if permission is Permission.IS_SUPERUSER and not principal.is_superuser:
        raise PermissionDenied("This endpoint requires a superuser.")
