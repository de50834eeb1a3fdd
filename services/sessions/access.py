"""Who may reach which session, and how a session id is read.

A standard user reaches only their own sessions; staff reach all. A session
that exists but belongs to someone else answers exactly like one that does
not exist (404, never 403), so session ids cannot be probed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.errors import InvalidArgument, NotFound
from server.security.principal import Principal
from services.sessions.models import OnboardingSession


def parse_session_id(raw: str, field: str = "session_id") -> uuid.UUID:
    """The session id as a UUID; a 400 naming ``field`` otherwise."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        message = "This field is required." if not raw else "Must be a UUID."
        raise InvalidArgument(
            "Invalid session id.", field_errors={field: [message]}
        ) from None


def session_not_found(session_id: uuid.UUID) -> NotFound:
    return NotFound(
        "Session not found.",
        reason="session_not_found",
        extra={"session_id": str(session_id)},
    )


async def visible_sessions(
    db: AsyncSession,
    ids: Iterable[uuid.UUID],
    principal: Principal,
    *,
    lock: bool = False,
) -> dict[uuid.UUID, OnboardingSession]:
    """The sessions among ``ids`` the caller may reach, freshly loaded.

    With ``lock`` the rows are locked FOR NO KEY UPDATE in id order, so
    writers touching several sessions cannot deadlock each other, while the
    foreign-key checks of concurrent event inserts are not blocked.
    """
    wanted = sorted(set(ids))
    query = (
        select(OnboardingSession)
        .where(OnboardingSession.id.in_(wanted))
        .order_by(OnboardingSession.id)
        .execution_options(populate_existing=True)
    )
    if not principal.can_see_all_sessions():
        query = query.where(OnboardingSession.user_id == principal.user_id)
    if lock:
        query = query.with_for_update(key_share=True)
    rows = (await db.scalars(query)).all()
    return {row.id: row for row in rows}


async def require_all(
    db: AsyncSession,
    ids: list[uuid.UUID],
    principal: Principal,
    *,
    lock: bool = False,
) -> dict[uuid.UUID, OnboardingSession]:
    """Every session of ``ids``, or ``session_not_found`` for the first missing."""
    found = await visible_sessions(db, ids, principal, lock=lock)
    for session_id in ids:
        if session_id not in found:
            raise session_not_found(session_id)
    return found


async def visible_session(
    db: AsyncSession,
    session_id: uuid.UUID,
    principal: Principal,
    *,
    lock: bool = False,
) -> OnboardingSession:
    """One session the caller may reach, else ``session_not_found``."""
    found = await require_all(db, [session_id], principal, lock=lock)
    return found[session_id]
