"""The overview's Redis cache: it only saves work, so it never fails a call."""

from __future__ import annotations

import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from services.funnel.rollup import Filters

logger = logging.getLogger(__name__)

# Bump the version when the cached message changes meaning.
_OVERVIEW_KEY = "dashboard:overview:v1:{hours}h:client:{client}"


def overview_key(hours: int, filters: Filters) -> str:
    """One entry per set of parameters. Every caller is staff and sees every
    session, so the caller is not part of the key."""
    client = "all" if filters.client_id is None else filters.client_id
    return _OVERVIEW_KEY.format(hours=hours, client=client)


class ResponseCache:
    """Serialised responses in Redis for ``ttl_seconds``."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._redis = client
        self.ttl_seconds = ttl_seconds

    async def get(self, key: str) -> bytes | None:
        """The cached bytes; None when absent or when Redis fails."""
        try:
            value = await self._redis.get(key)
        except RedisError:
            logger.warning("dashboard cache read failed", exc_info=True)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes) -> None:
        try:
            await self._redis.set(key, value, ex=self.ttl_seconds)
        except RedisError:
            logger.warning("dashboard cache write failed", exc_info=True)
