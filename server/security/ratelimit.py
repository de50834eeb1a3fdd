"""Fixed-window rate limits in Redis, atomic under concurrency.

One Lua script counts every window a request falls under (the endpoint's and
any critical resource's) and stops at the first one over its limit, so a
rejected request never spends a critical budget.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as redis
from redis.exceptions import RedisError

from server.errors import RateLimited
from server.security.principal import Principal
from server.settings import Settings

logger = logging.getLogger(__name__)

_SCRIPT = """
local result = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window_ms = tonumber(ARGV[2 * i])
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('PEXPIRE', key, window_ms) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window_ms)
    ttl = window_ms
  end
  table.insert(result, count)
  table.insert(result, ttl)
  if count > limit then return result end
end
return result
"""


@dataclass(frozen=True)
class Window:
    """One limit a request counts against."""

    key: str
    resource: str
    limit: int
    seconds: int


@dataclass(frozen=True)
class Decision:
    """The outcome for the most restrictive window counted."""

    allowed: bool
    resource: str
    limit: int
    remaining: int
    reset_at: int
    retry_after: int

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("x-ratelimit-limit", str(self.limit)),
            ("x-ratelimit-remaining", str(self.remaining)),
            ("x-ratelimit-reset", str(self.reset_at)),
        ]

    def error(self) -> RateLimited:
        reset_time = datetime.fromtimestamp(self.reset_at, UTC)
        return RateLimited(
            f"Rate limit exceeded for resource '{self.resource}'",
            resource=self.resource,
            retry_after=self.retry_after,
            limit=self.limit,
            reset_time=reset_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


class RateLimiter:
    """Counts requests per caller per endpoint and per critical resource."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._script = client.register_script(_SCRIPT)

    def windows(
        self, principal: Principal, caller_key: str, endpoint: str, resource: str | None
    ) -> list[Window]:
        s = self._settings
        limit = s.rate_limit_staff if principal.is_privileged else s.rate_limit_standard
        windows = [
            Window(
                key=f"rl:{caller_key}:{endpoint}",
                resource=endpoint,
                limit=limit,
                seconds=s.rate_limit_window_seconds,
            )
        ]
        if resource is not None and resource in s.rate_limit_critical:
            windows.append(
                Window(
                    key=f"rl:{caller_key}:resource:{resource}",
                    resource=resource,
                    limit=s.rate_limit_critical[resource],
                    seconds=s.rate_limit_critical_window_seconds,
                )
            )
        return windows

    async def hit(self, windows: list[Window]) -> Decision | None:
        """Count one request; None when Redis is unreachable (fail open)."""
        args: list[int] = []
        for window in windows:
            args += [window.limit, window.seconds * 1000]
        try:
            raw = await self._script(keys=[w.key for w in windows], args=args)
        except RedisError as err:
            logger.warning("rate limiter unavailable, admitting: %s", err)
            return None
        return self._decide(windows, [int(x) for x in raw])

    @staticmethod
    def _decide(windows: list[Window], raw: list[int]) -> Decision:
        now_ms = int(time.time() * 1000)
        decisions = []
        for i in range(len(raw) // 2):
            window, count, ttl_ms = windows[i], raw[2 * i], raw[2 * i + 1]
            decisions.append(
                Decision(
                    allowed=count <= window.limit,
                    resource=window.resource,
                    limit=window.limit,
                    remaining=max(0, window.limit - count),
                    reset_at=(now_ms + ttl_ms + 999) // 1000,
                    retry_after=max(1, (ttl_ms + 999) // 1000),
                )
            )
        rejected = [d for d in decisions if not d.allowed]
        if rejected:
            return rejected[0]
        return min(decisions, key=lambda d: (d.remaining, -d.reset_at))
