"""Checkpoint retention: prune old versions from PostgreSQL and Redis.

A version is pruned when it is not among the newest ``keep_latest`` of its
session, or when it is older than ``max_age`` (the newest one included: a
session untouched for that long is not coming back). Run it with
``onboarding prune-checkpoints`` or periodically through
``run_prune_checkpoints``, which needs nothing but the settings.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis.asyncio as redis
from sqlalchemy import text

from server.db import Database, create_engine, utcnow
from server.errors import InvalidArgument
from server.settings import Settings
from services.sessions.hotcopy import HotCopies

logger = logging.getLogger(__name__)

# One statement; the window runs on the (session_id, version) unique index.
_PRUNE = """
DELETE FROM session_checkpoints AS c
USING (
    SELECT ranked.id FROM (
        SELECT id, created_at,
               row_number() OVER (PARTITION BY session_id ORDER BY version DESC)
                   AS newest_rank
        FROM session_checkpoints
    ) AS ranked
    WHERE ranked.newest_rank > :keep_latest OR ranked.created_at < :cutoff
) AS doomed
WHERE c.id = doomed.id
RETURNING c.session_id, c.version
"""


@dataclass(frozen=True)
class PruneResult:
    """What one pruning run removed."""

    deleted: int
    sessions: int
    hot_copies_deleted: int


async def prune_checkpoints(
    db: Database,
    client: redis.Redis,
    *,
    keep_latest: int,
    max_age: timedelta,
    now: datetime | None = None,
) -> PruneResult:
    """Delete the versions outside the policy, then their hot copies."""
    if keep_latest < 1:
        raise InvalidArgument("keep_latest must be at least 1.")
    if max_age <= timedelta(0):
        raise InvalidArgument("max_age must be positive.")
    cutoff = (now or utcnow()) - max_age

    async with db.session() as session:
        result = await session.execute(
            text(_PRUNE), {"keep_latest": keep_latest, "cutoff": cutoff}
        )
        pruned = [(row.session_id, row.version) for row in result.all()]
        await session.commit()

    # The TTL is irrelevant for deleting; HotCopies only needs the client.
    hot_deleted = await HotCopies(client, ttl_seconds=0).drop(pruned)
    outcome = PruneResult(
        deleted=len(pruned),
        sessions=len({session_id for session_id, _ in pruned}),
        hot_copies_deleted=hot_deleted,
    )
    logger.info(
        "checkpoints pruned",
        extra={
            "deleted": outcome.deleted,
            "sessions": outcome.sessions,
            "keep_latest": keep_latest,
            "max_age_days": max_age.days,
        },
    )
    return outcome


def run_prune_checkpoints(
    settings: Settings,
    *,
    keep_latest: int | None = None,
    max_age_days: int | None = None,
) -> PruneResult:
    """Prune with the settings' policy unless overridden; blocking.

    The entry point for the CLI and for a periodic job (such as a Celery beat
    task), which own no event loop or connections of their own.
    """
    keep = settings.checkpoint_keep_latest if keep_latest is None else keep_latest
    days = settings.checkpoint_max_age_days if max_age_days is None else max_age_days

    async def run() -> PruneResult:
        db = Database(create_engine(settings))
        client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=1, socket_timeout=5
        )
        try:
            return await prune_checkpoints(
                db, client, keep_latest=keep, max_age=timedelta(days=days)
            )
        finally:
            await client.aclose()
            await db.dispose()

    return asyncio.run(run())
