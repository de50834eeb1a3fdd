"""The LLM client the onboarding tasks call, and the test double shipped.

No provider SDK ships with this project, so ``FlakyLLMTestDouble`` is the
client of local runs and tests: it answers like a model would but fails at
configurable rates with rate limits and timeouts, so the DLQ fills with real
failures. Its fault rates come from the settings and, when present, from the
Redis hash ``llm-test-double:faults`` read on every call, which lets a test
or an operator change them while the worker runs::

    redis-cli HSET llm-test-double:faults rate_limit_rate 1 timeout_rate 0
    redis-cli HSET llm-test-double:faults latency_seconds 2   # slow answers
    redis-cli DEL llm-test-double:faults        # back to the settings
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Protocol

import redis

from server.settings import Settings

logger = logging.getLogger(__name__)

FAULTS_KEY = "llm-test-double:faults"
EMBEDDING_DIMENSIONS = 8


class LLMError(Exception):
    """A failed call to an LLM provider."""


class RateLimitError(LLMError):
    """The provider asked us to slow down, for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMTimeoutError(LLMError, TimeoutError):
    """The provider did not answer in time."""


class LLMAPIError(LLMError):
    """The provider answered with an error."""


class LLMClient(Protocol):
    """What the onboarding tasks need from a language model."""

    def complete(self, prompt: str, *, system: str = "") -> str:
        """The model's reply to ``prompt``."""
        ...

    def embed(self, text: str) -> list[float]:
        """An embedding vector of ``text``."""
        ...


@dataclass(frozen=True)
class Faults:
    """How often the test double fails, and what retry-after it sends."""

    rate_limit_rate: float
    timeout_rate: float
    retry_after_seconds: int
    latency_seconds: float = 0.0


class FlakyLLMTestDouble:
    """A test double of an LLM client that fails at configurable rates."""

    def __init__(self, defaults: Faults, redis_client: redis.Redis | None) -> None:
        self._defaults = defaults
        self._redis = redis_client
        self._random = random.Random()

    def complete(self, prompt: str, *, system: str = "") -> str:
        self._maybe_fail()
        return f"[test double reply to {len(prompt)} characters]"

    def embed(self, text: str) -> list[float]:
        self._maybe_fail()
        digest = hashlib.sha256(text.encode()).digest()
        return [byte / 255 for byte in digest[:EMBEDDING_DIMENSIONS]]

    def faults(self) -> Faults:
        """The settings' rates, overridden field by field by the Redis hash."""
        if self._redis is None:
            return self._defaults
        try:
            raw = self._redis.hgetall(FAULTS_KEY)
        except redis.RedisError:
            logger.warning("cannot read %s; using the configured rates", FAULTS_KEY)
            return self._defaults
        values = {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]
        defaults = self._defaults
        try:
            return Faults(
                rate_limit_rate=float(
                    values.get("rate_limit_rate", defaults.rate_limit_rate)
                ),
                timeout_rate=float(values.get("timeout_rate", defaults.timeout_rate)),
                retry_after_seconds=int(
                    values.get("retry_after_seconds", defaults.retry_after_seconds)
                ),
                latency_seconds=float(
                    values.get("latency_seconds", defaults.latency_seconds)
                ),
            )
        except ValueError:
            logger.warning(
                "%s holds a non-number; using the configured rates", FAULTS_KEY
            )
            return defaults

    def _maybe_fail(self) -> None:
        faults = self.faults()
        if faults.latency_seconds > 0:
            time.sleep(faults.latency_seconds)
        draw = self._random.random()
        if draw < faults.rate_limit_rate:
            raise RateLimitError(
                "LLM provider rate limit exceeded (test double)",
                retry_after=faults.retry_after_seconds,
            )
        if draw < faults.rate_limit_rate + faults.timeout_rate:
            raise LLMTimeoutError("LLM provider timed out (test double)")


def build_llm_client(settings: Settings) -> LLMClient:
    """The client ``LLM_CLIENT`` names."""
    defaults = Faults(
        rate_limit_rate=settings.llm_test_double_rate_limit_rate,
        timeout_rate=settings.llm_test_double_timeout_rate,
        retry_after_seconds=settings.llm_test_double_retry_after_seconds,
        latency_seconds=settings.llm_test_double_latency_seconds,
    )
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=1, socket_timeout=2
    )
    return FlakyLLMTestDouble(defaults, client)
