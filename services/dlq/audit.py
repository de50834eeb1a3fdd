"""Rows of ``dlq_audit_log``: who moved an entry, and from what to what."""

from __future__ import annotations

from typing import Any

from server.security.principal import Principal
from services.dlq.models import DlqAuditLog, DlqEntry

SYSTEM_WORKER = "system:worker"
SYSTEM_SWEEP = "system:sweep"


def state_of(entry: DlqEntry) -> dict[str, Any]:
    """The part of an entry that transitions change."""
    return {
        "status": entry.status,
        "retry_count": entry.retry_count,
        "next_retry_at": _iso(entry.next_retry_at),
    }


def by_system(
    entry_id: int,
    action: str,
    actor: str,
    *,
    correlation_id: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> DlqAuditLog:
    """A change made by the worker or the sweep."""
    return DlqAuditLog(
        entry_id=entry_id,
        action=action,
        actor=actor,
        correlation_id=correlation_id,
        before=before,
        after=after,
    )


def by_user(
    entry_id: int,
    action: str,
    principal: Principal,
    correlation_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> DlqAuditLog:
    """A change made through the API."""
    return DlqAuditLog(
        entry_id=entry_id,
        action=action,
        actor=principal.username,
        actor_user_id=principal.user_id,
        correlation_id=correlation_id,
        before=before,
        after=after,
    )


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
