"""Session replay: one session's events in order, as the dashboard shows them.

Each event's ``data`` holds the fields the spec shows for its type. Fields
that the session row or the event's own columns know (the session's
language, the state a transition went to, the state an error happened in)
are taken from there, so events written without those data keys replay the
same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from server.security.principal import Principal
from services.funnel.metrics import mean_minutes
from services.sessions.access import visible_session
from services.sessions.events import (
    ACTIVITY,
    CHECKPOINT_CREATED,
    ERROR,
    QUESTION_ANSWERED,
    QUESTION_REPEATED,
    SESSION_RESUMED,
    SESSION_START,
    STATE_TRANSITION,
)
from services.sessions.models import OnboardingSession

# Keeps the largest replay (1000 texts of 1000 characters) under the gRPC
# message limit; total_events still counts every event.
MAX_TIMELINE_EVENTS = 1000
_MICROSECOND = timedelta(microseconds=1)

# The data keys each event type shows, as the intake stores them.
_STORED_KEYS: dict[str, tuple[str, ...]] = {
    QUESTION_ANSWERED: ("question_index", "question", "answer_length"),
    QUESTION_REPEATED: ("question_index", "question"),
    CHECKPOINT_CREATED: ("checkpoint_version", "state"),
    SESSION_RESUMED: ("checkpoint_version", "restored_state", "source"),
    ACTIVITY: ("kind",),
    ERROR: ("error_type", "message"),
}

_TIMELINE = """
SELECT occurred_at, event_type, state, data, count(*) OVER () AS total
FROM session_events
WHERE session_id = :session_id
ORDER BY occurred_at, id
LIMIT :limit
"""


@dataclass(frozen=True)
class TimelineEvent:
    """One event of the replay."""

    timestamp: datetime
    event_type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Replay:
    """A session's timeline and summary."""

    session_id: uuid.UUID
    timeline: tuple[TimelineEvent, ...]
    started_at: datetime
    updated_at: datetime
    current_state: str
    total_events: int
    duration_minutes: float


async def session_replay(
    session: AsyncSession, session_id: uuid.UUID, principal: Principal
) -> Replay:
    """The replay of a session the caller may see; 404 otherwise."""
    row = await visible_session(session, session_id, principal)
    params = {"session_id": session_id, "limit": MAX_TIMELINE_EVENTS}
    events = (await session.execute(text(_TIMELINE), params)).all()
    duration_us = (row.last_activity_at - row.started_at) // _MICROSECOND
    return Replay(
        session_id=session_id,
        timeline=tuple(
            TimelineEvent(e.occurred_at, e.event_type, event_data(row, e))
            for e in events
        ),
        started_at=row.started_at,
        updated_at=row.last_activity_at,
        current_state=row.current_state,
        total_events=int(events[0].total) if events else 0,
        # The funnel's exact rounding of microseconds to minutes.
        duration_minutes=mean_minutes(duration_us, 1),
    )


def event_data(row: OnboardingSession, event: Any) -> dict[str, Any]:
    """The replayed data of one stored event of ``row``'s session."""
    if event.event_type == SESSION_START:
        return {"language": row.language, "conversation_type": row.conversation_type}
    if event.event_type == STATE_TRANSITION:
        return {"current_state": event.state}
    stored = event.data or {}
    data = {k: stored[k] for k in _STORED_KEYS.get(event.event_type, ()) if k in stored}
    if event.event_type == ERROR:
        data["stage"] = event.state
    return data
