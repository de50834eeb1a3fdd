"""Checkpoints: create, resume and list versioned session states.

PostgreSQL is the source of truth: it decides which versions exist and what
their hashes are. Redis serves the payload of recent versions (see
``hotcopy``); a hot copy is used only when its hash matches PostgreSQL's, so
a copy left over from an outage can never be served for a newer checkpoint.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import Database
from server.errors import AlreadyExists, NotFound
from server.security.principal import Principal
from services.sessions.access import visible_session
from services.sessions.checkpoint_input import NewCheckpoint
from services.sessions.events import (
    CHECKPOINT_CREATED,
    SESSION_RESUMED,
    EventRow,
    server_event,
)
from services.sessions.eventstore import store_events
from services.sessions.hotcopy import HotCopies
from services.sessions.models import Checkpoint

# What a resumed conversation does next, by the state it resumes in.
NEXT_ACTIONS: dict[str, tuple[str, str]] = {
    "STARTED": ("send_initial_prompt", "Start the conversation with its first prompt"),
    "INITIAL_PROMPT": ("send_initial_prompt", "Repeat the opening prompt"),
    "COLLECTING_INFO": ("continue_questions", "Resume answering remaining questions"),
    "ASKING_QUESTIONS": ("continue_questions", "Resume answering remaining questions"),
    "GENERATING_RECOMMENDATIONS": (
        "generate_recommendations",
        "Generate the recommendations again from the saved answers",
    ),
    "AWAITING_APPROVAL": (
        "review_recommendations",
        "Show the recommendations for the user to review",
    ),
    "PENDING_APPROVAL": ("check_approval", "Check the status of the pending approval"),
    "COMPLETED": ("show_summary", "The session is complete; show its summary"),
}


@dataclass(frozen=True)
class Stored:
    """A checkpoint as PostgreSQL knows it, without its data."""

    version: int
    state: str
    checkpoint_hash: str
    created_at: datetime


@dataclass(frozen=True)
class Created:
    """The outcome of CreateCheckpoint."""

    status: str
    checkpoint: Stored
    in_redis: bool


@dataclass(frozen=True)
class Resumed:
    """A restored checkpoint and where its data came from."""

    checkpoint: Stored
    data: dict[str, Any]
    source: str


@dataclass(frozen=True)
class HistoryEntry:
    """One listed checkpoint with the figures of its data summary."""

    version: int
    state: str
    checkpoint_hash: str
    created_at: datetime
    answers_count: int
    progress: float | None


@dataclass(frozen=True)
class History:
    """A page of a session's checkpoints, newest first."""

    total: int
    entries: list[HistoryEntry]


_LATEST = """
SELECT version, state, checkpoint_hash, created_at FROM session_checkpoints
WHERE session_id = :session_id
ORDER BY version DESC
LIMIT 1
"""
_VERSION = """
SELECT version, state, checkpoint_hash, created_at FROM session_checkpoints
WHERE session_id = :session_id AND version = :version
"""
_DATA = """
SELECT data FROM session_checkpoints
WHERE session_id = :session_id AND version = :version
"""
# The summary is computed in PostgreSQL so listing never ships whole payloads.
_HISTORY = """
SELECT version, state, checkpoint_hash, created_at,
       CASE WHEN jsonb_typeof(data -> 'answers') = 'array'
            THEN jsonb_array_length(data -> 'answers') ELSE 0 END AS answers_count,
       CASE WHEN jsonb_typeof(data -> 'progress') = 'number'
            THEN (data ->> 'progress')::float8 END AS progress,
       count(*) OVER () AS total
FROM session_checkpoints
WHERE session_id = :session_id
ORDER BY version DESC
LIMIT :limit
"""


class Checkpoints:
    """Checkpoint operations over PostgreSQL and the Redis hot copies."""

    def __init__(self, db: Database, hot: HotCopies) -> None:
        self._db = db
        self._hot = hot

    async def create(
        self, principal: Principal, new: NewCheckpoint, now: datetime
    ) -> Created:
        """Store ``new`` unless it equals the latest checkpoint and is not forced."""
        async with self._db.session() as session:
            # The row lock serialises writers of one session, so the version
            # check below sees every committed checkpoint.
            await visible_session(session, new.session_id, principal, lock=True)
            latest = await _fetch(session, _LATEST, session_id=new.session_id)
            if latest and _is_repeat(latest, new):
                status, stored = "unchanged", latest
            else:
                if latest and new.version <= latest.version:
                    raise _version_conflict(new, latest.version)
                stored = await _insert(session, principal, new, now)
                status = "created"
            await session.commit()

        in_redis = await self._hot.put(new.session_id, _hot_document(stored, new.data))
        return Created(status, stored, in_redis)

    async def resume(
        self,
        principal: Principal,
        session_id: uuid.UUID,
        version: int | None,
        now: datetime,
    ) -> Resumed:
        """The latest or the given checkpoint, from Redis when its copy is valid."""
        async with self._db.session() as session:
            await visible_session(session, session_id, principal)
            target = await _target(session, session_id, version)

        copy = await self._hot.get(session_id, target.version)
        fresh = (
            copy is not None and copy.get("checkpoint_hash") == target.checkpoint_hash
        )
        async with self._db.session() as session:
            await visible_session(session, session_id, principal, lock=True)
            if fresh and copy is not None:
                data = copy["data"]
            else:
                data = await _data(session, session_id, target)
            await store_events(
                session, [_resumed_event(session_id, target, now, fresh)]
            )
            await session.commit()

        if not fresh:
            # Warm the hot copy again so the next resume is served from Redis.
            await self._hot.put(session_id, _hot_document(target, data))
        return Resumed(target, data, "redis" if fresh else "postgresql")

    async def history(
        self, principal: Principal, session_id: uuid.UUID, limit: int
    ) -> History:
        async with self._db.session() as session:
            await visible_session(session, session_id, principal)
            result = await session.execute(
                text(_HISTORY), {"session_id": session_id, "limit": limit}
            )
            rows = result.all()
        entries = [
            HistoryEntry(
                row.version,
                row.state,
                row.checkpoint_hash,
                row.created_at,
                row.answers_count,
                row.progress,
            )
            for row in rows
        ]
        return History(rows[0].total if rows else 0, entries)


def _is_repeat(latest: Stored, new: NewCheckpoint) -> bool:
    """An unforced checkpoint equal to the latest stores nothing new."""
    return latest.checkpoint_hash == new.checkpoint_hash and not new.force


async def _fetch(session: AsyncSession, sql: str, **params: Any) -> Stored | None:
    row = (await session.execute(text(sql), params)).first()
    if row is None:
        return None
    return Stored(row.version, row.state, row.checkpoint_hash, row.created_at)


async def _insert(
    session: AsyncSession, principal: Principal, new: NewCheckpoint, now: datetime
) -> Stored:
    assert principal.user_id is not None
    session.add(
        Checkpoint(
            session_id=new.session_id,
            version=new.version,
            state=new.state,
            data=new.data,
            checkpoint_hash=new.checkpoint_hash,
            size_bytes=new.size_bytes,
            created_by=principal.user_id,
            created_at=now,
        )
    )
    try:
        await session.flush()
    except exc.IntegrityError as err:
        # Only reachable if a writer bypassed the row lock; same answer.
        raise _version_conflict(new, new.version) from err
    event_data = {"checkpoint_version": new.version, "state": new.state}
    event = server_event(
        new.session_id,
        f"checkpoint:{new.version}",
        CHECKPOINT_CREATED,
        now,
        None,
        event_data,
    )
    await store_events(session, [event])
    return Stored(new.version, new.state, new.checkpoint_hash, now)


def _version_conflict(new: NewCheckpoint, latest_version: int) -> AlreadyExists:
    return AlreadyExists(
        f"Checkpoint version {new.version} is not newer than the latest stored "
        f"version {latest_version}.",
        reason="checkpoint_version_conflict",
        extra={"session_id": str(new.session_id), "latest_version": latest_version},
    )


async def _target(
    session: AsyncSession, session_id: uuid.UUID, version: int | None
) -> Stored:
    if version is None:
        latest = await _fetch(session, _LATEST, session_id=session_id)
        if latest is None:
            raise NotFound(
                "No checkpoints available for this session",
                reason="no_checkpoints_found",
                extra={
                    "session_id": str(session_id),
                    "suggestion": "Start a new session instead",
                },
            )
        return latest
    found = await _fetch(session, _VERSION, session_id=session_id, version=version)
    if found is None:
        raise _missing_version(session_id, version)
    return found


def _missing_version(session_id: uuid.UUID, version: int) -> NotFound:
    return NotFound(
        f"Checkpoint version {version} does not exist for this session.",
        reason="checkpoint_not_found",
        extra={"session_id": str(session_id), "checkpoint_version": version},
    )


async def _data(
    session: AsyncSession, session_id: uuid.UUID, target: Stored
) -> dict[str, Any]:
    params = {"session_id": session_id, "version": target.version}
    row = (await session.execute(text(_DATA), params)).first()
    if row is None:
        # Pruned between finding it and reading it.
        raise _missing_version(session_id, target.version)
    data: dict[str, Any] = row.data
    return data


def _hot_document(stored: Stored, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": stored.version,
        "state": stored.state,
        "checkpoint_hash": stored.checkpoint_hash,
        "created_at": stored.created_at.isoformat(),
        "data": data,
    }


def _resumed_event(
    session_id: uuid.UUID, target: Stored, now: datetime, from_redis: bool
) -> EventRow:
    data = {
        "checkpoint_version": target.version,
        "restored_state": target.state,
        "source": "redis" if from_redis else "postgresql",
    }
    # Every resume is its own event, so the id is unique per call.
    event_id = f"resume:{uuid.uuid4()}"
    return server_event(session_id, event_id, SESSION_RESUMED, now, None, data)
