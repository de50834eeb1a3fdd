"""The Redis hot copies of checkpoints.

PostgreSQL holds every checkpoint durably and decides which versions exist;
Redis holds a copy of recent ones for fast resumes, under one key per
version with a TTL that each read renews. Redis is optional: every failure
is logged once here and reported as "not stored" or "not found", never
raised, so checkpoints keep working through a Redis outage.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "ckpt"
# Keys deleted per round trip when pruning.
_DELETE_CHUNK = 500


def hot_key(session_id: uuid.UUID, version: int) -> str:
    return f"{KEY_PREFIX}:{session_id}:{version}"


class HotCopies:
    """Checkpoint copies in Redis with a sliding TTL."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._redis = client
        self.ttl_seconds = ttl_seconds

    async def put(self, session_id: uuid.UUID, copy: dict[str, Any]) -> bool:
        """Store ``copy`` (which has a ``version``); False when Redis failed."""
        key = hot_key(session_id, int(copy["version"]))
        try:
            await self._redis.set(key, json.dumps(copy), ex=self.ttl_seconds)
        except (RedisError, OSError):
            logger.warning("checkpoint hot copy not written", exc_info=True)
            return False
        return True

    async def get(self, session_id: uuid.UUID, version: int) -> dict[str, Any] | None:
        """The copy of ``version`` with its TTL renewed; None when absent."""
        try:
            raw = await self._redis.getex(
                hot_key(session_id, version), ex=self.ttl_seconds
            )
        except (RedisError, OSError):
            logger.warning("checkpoint hot copy not read", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            copy: dict[str, Any] = json.loads(raw)
        except ValueError:
            # Not written by us; PostgreSQL still has the checkpoint.
            logger.warning("checkpoint hot copy is not JSON; ignored")
            return None
        return copy

    async def drop(self, versions: Iterable[tuple[uuid.UUID, int]]) -> int:
        """Delete the copies of pruned versions; returns how many existed."""
        keys = [hot_key(session_id, version) for session_id, version in versions]
        deleted = 0
        try:
            for start in range(0, len(keys), _DELETE_CHUNK):
                deleted += await self._redis.delete(
                    *keys[start : start + _DELETE_CHUNK]
                )
        except (RedisError, OSError):
            # The copies expire by themselves; PostgreSQL no longer lists them.
            logger.warning("pruned checkpoint hot copies not deleted", exc_info=True)
        return deleted
