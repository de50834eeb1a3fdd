"""The pure parts: backoff, next step after a failure, categories, broker
URL, ids, and the LLM test double's fault switch."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psycopg
import pydantic
import pytest
import redis
import sqlalchemy.exc

from server.errors import NotFound
from server.settings import Settings
from services.dlq import categories
from services.dlq.capture import correlation_id_of, retry_after_of
from services.dlq.categories import categorize, known_categories, register_category
from services.dlq.celery_app import broker_url
from services.dlq.lifecycle import RetryPolicy, Status, backoff_seconds
from services.dlq.llm import (
    FAULTS_KEY,
    Faults,
    FlakyLLMTestDouble,
    LLMAPIError,
    LLMTimeoutError,
    RateLimitError,
)
from services.dlq.validation import entry_id_of
from tests.conftest import Stack

AT = datetime(2025, 10, 1, 10, 30, tzinfo=UTC)
POLICY = RetryPolicy(max_retries=5, base_seconds=60, cap_seconds=3600)


@pytest.mark.parametrize(
    ("retries_used", "retry_after", "expected"),
    [
        (0, None, 60),
        (1, None, 120),
        (3, None, 480),
        (6, None, 3600),
        (10_000, None, 3600),
        (0, 300, 300),
        (3, 300, 480),
        (6, 7200, 7200),
    ],
)
def test_backoff_doubles_up_to_the_cap_but_never_undercuts_retry_after(
    retries_used: int, retry_after: float | None, expected: float
) -> None:
    delay = backoff_seconds(retries_used, base=60, cap=3600, retry_after=retry_after)

    assert delay == expected


def test_a_failure_with_retries_left_is_pending_until_the_backoff() -> None:
    status, next_at = POLICY.after_failure(
        retryable=True, retries_used=2, max_retries=5, retry_after=None, at=AT
    )

    assert (status, next_at) == (Status.PENDING, AT + timedelta(seconds=240))


def test_a_failure_without_retries_left_is_failed() -> None:
    assert POLICY.after_failure(
        retryable=True, retries_used=5, max_retries=5, retry_after=None, at=AT
    ) == (Status.FAILED, None)


def test_a_failure_retrying_cannot_fix_is_failed_at_once() -> None:
    assert POLICY.after_failure(
        retryable=False, retries_used=0, max_retries=5, retry_after=None, at=AT
    ) == (Status.FAILED, None)


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (RateLimitError("slow down", retry_after=30), "llm_api"),
        (LLMTimeoutError("late"), "llm_api"),
        (LLMAPIError("500"), "llm_api"),
        (ConnectionResetError("reset"), "network"),
        (TimeoutError("late"), "network"),
        (socket.gaierror("no such host"), "network"),
        (psycopg.OperationalError("down"), "database"),
        (
            sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("down")),
            "database",
        ),
        (redis.ConnectionError("down"), "database"),
        (ValueError("bad input"), "validation"),
        (KeyError("bug"), "other"),
    ],
)
def test_categories_come_from_the_most_specific_known_class(
    error: BaseException, category: str
) -> None:
    assert categorize(error) == category


def test_pydantic_validation_errors_are_validation() -> None:
    class Model(pydantic.BaseModel):
        n: int

    with pytest.raises(pydantic.ValidationError) as caught:
        Model(n="x")  # type: ignore[arg-type]

    assert categorize(caught.value) == "validation"


@pytest.fixture
def restored_table() -> Iterator[None]:
    saved = dict(categories.CATEGORY_BY_EXCEPTION)
    yield
    categories.CATEGORY_BY_EXCEPTION.clear()
    categories.CATEGORY_BY_EXCEPTION.update(saved)
    categories._resolved_table.cache_clear()


class QuotaExceeded(Exception):
    """A deployment's own exception."""


def test_a_deployment_extends_the_table(restored_table: None) -> None:
    register_category(f"{__name__}.QuotaExceeded", "billing")
    register_category(KeyError, "validation")

    assert categorize(QuotaExceeded()) == "billing"
    assert categorize(KeyError("x")) == "validation"
    assert known_categories() == (
        "llm_api",
        "network",
        "database",
        "validation",
        "billing",
        "other",
    )


def test_classes_of_missing_libraries_are_skipped(restored_table: None) -> None:
    register_category("no_such_sdk.RateLimitError", "llm_api")

    assert categorize(ValueError()) == "validation"


@pytest.mark.parametrize(
    ("redis_url", "celery_broker_url", "expected"),
    [
        ("redis://127.0.0.1:6379/12", "", "redis://127.0.0.1:6379/12"),
        (
            "unix:///tmp/x/redis.sock?db=12",
            "",
            "redis+socket:///tmp/x/redis.sock?virtual_host=12",
        ),
        (
            "unix:///tmp/x/redis.sock",
            "",
            "redis+socket:///tmp/x/redis.sock?virtual_host=0",
        ),
        ("redis://a/1", "redis://broker:6379/3", "redis://broker:6379/3"),
    ],
)
def test_broker_url_defaults_to_redis_in_kombus_spelling(
    redis_url: str, celery_broker_url: str, expected: str
) -> None:
    settings = Settings(redis_url=redis_url, celery_broker_url=celery_broker_url)

    assert broker_url(settings) == expected


@pytest.mark.parametrize(
    ("task_id", "entry_id"), [("dlq_1", 1), ("dlq_123456", 123456)]
)
def test_task_ids_are_dlq_and_a_number(task_id: str, entry_id: int) -> None:
    assert entry_id_of(task_id) == entry_id


@pytest.mark.parametrize("task_id", ["", "dlq_", "dlq_0", "dlq_007", "DLQ_1", "dlq_1x"])
def test_other_task_ids_cannot_exist(task_id: str) -> None:
    with pytest.raises(NotFound):
        entry_id_of(task_id)


def test_retry_after_comes_from_the_error_or_its_response() -> None:
    response = SimpleNamespace(headers={"retry-after": "12"})

    assert retry_after_of(RateLimitError("x", retry_after=300)) == 300
    assert retry_after_of(SimpleNamespace(response=response)) == 12  # type: ignore[arg-type]
    assert retry_after_of(RateLimitError("x", retry_after=1.5)) == 1.5
    assert retry_after_of(ValueError()) is None


def test_correlation_id_prefers_the_header_then_the_task_id_kwarg() -> None:
    header = SimpleNamespace(
        onboarding_correlation_id="h", kwargs={"task_id": "k"}, id="c"
    )
    kwarg = SimpleNamespace(kwargs={"task_id": "k"}, id="c")
    neither = SimpleNamespace(kwargs={}, id="c")

    assert [correlation_id_of(r) for r in (header, kwarg, neither)] == ["h", "k", "c"]


def _double(
    rate_limit: float, timeout: float, client: redis.Redis | None = None
) -> FlakyLLMTestDouble:
    return FlakyLLMTestDouble(Faults(rate_limit, timeout, 30), client)


def test_the_double_fails_at_the_configured_rates() -> None:
    with pytest.raises(RateLimitError) as limited:
        _double(1, 0).complete("hi")
    with pytest.raises(LLMTimeoutError):
        _double(0, 1).embed("hi")

    assert limited.value.retry_after == 30
    assert _double(0, 0).complete("hello") == "[test double reply to 5 characters]"
    assert len(_double(0, 0).embed("hello")) == 8


def test_the_doubles_redis_hash_overrides_its_settings(stack: Stack) -> None:
    client = redis.Redis.from_url(stack.redis_url)
    double = _double(0, 0, client)
    try:
        client.hset(
            FAULTS_KEY, mapping={"rate_limit_rate": "1", "retry_after_seconds": "9"}
        )
        with pytest.raises(RateLimitError) as limited:
            double.complete("hi")
        client.hset(FAULTS_KEY, "rate_limit_rate", "not a number")
        reply = double.complete("hi")
    finally:
        client.delete(FAULTS_KEY)
        client.close()

    assert limited.value.retry_after == 9
    assert reply.startswith("[test double reply")
