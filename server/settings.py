"""One typed settings object, read from the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEV_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"

# `python3 dev.py run` writes the URLs of the stack it runs here, so CLI
# commands in another terminal reach that stack; real environment variables
# and .env still win.
_STACK_ENV = (
    Path(os.environ.get("DATA_DIR") or Path(__file__).resolve().parent.parent / ".data")
    / "stack.env"
)


class Settings(BaseSettings):
    """Every tunable of the server; each field maps to an upper-case env var."""

    model_config = SettingsConfigDict(env_file=(_STACK_ENV, ".env"), extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/onboarding"
    redis_url: str = "redis://127.0.0.1:6379/0"
    db_connect_timeout_seconds: int = 3
    db_pool_size: int = 10

    grpc_host: str = "0.0.0.0"
    grpc_port: int = 50051
    http_port: int = 8080
    envoy_admin_port: int = 9901
    shutdown_grace_seconds: float = 10.0

    jwt_secret: SecretStr = SecretStr(_DEV_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_access_lifetime_seconds: int = 15 * 60
    jwt_refresh_lifetime_seconds: int = 7 * 24 * 3600
    jwt_issuer: str = "onboarding-reliability"

    rate_limit_standard: int = 100
    rate_limit_staff: int = 500
    rate_limit_window_seconds: int = 300
    rate_limit_critical: dict[str, int] = Field(
        default_factory=lambda: {"llm_calls": 50, "translations": 50}
    )
    rate_limit_critical_window_seconds: int = 3600

    # A session not completed and inactive this long counts as abandoned.
    session_abandon_after_minutes: int = 30
    # Most events one RecordEvents or BatchRecordEvents call may carry, so one
    # request cannot hold the session rows' locks for long.
    session_events_max_batch: int = 1000
    # Seconds a checkpoint's hot copy lives in Redis; reading it renews the TTL.
    checkpoint_ttl_seconds: int = 3600
    # Largest checkpoint data accepted, measured as compact UTF-8 JSON.
    checkpoint_max_bytes: int = 1024 * 1024
    # Retention: the newest versions of each session that pruning always keeps
    # unless they are older than checkpoint_max_age_days.
    checkpoint_keep_latest: int = 20
    # Retention: checkpoints older than this are pruned, the latest included.
    checkpoint_max_age_days: int = 30
    # How often `onboarding beat` schedules the checkpoint retention run.
    checkpoint_prune_interval_seconds: float = 3600.0
    # Finished sessions of EACH outcome (completed, abandoned) needed before the
    # abandonment model is fitted; with fewer the documented prior is used.
    risk_model_min_sessions: int = 30
    # Only sessions started this many days back train the abandonment model.
    risk_model_window_days: int = 90
    # Seconds a fitted abandonment model is reused before it is fitted again.
    risk_model_refit_seconds: int = 900

    # Celery broker; empty means REDIS_URL (a unix:// URL is rewritten for kombu).
    celery_broker_url: str = ""
    # Worker processes of `onboarding worker`; 0 means one per CPU.
    celery_worker_concurrency: int = 0
    # Where `onboarding beat` keeps the last run time of each periodic task.
    celery_beat_schedule_file: str = ".data/celerybeat-schedule"
    # In-worker retries of a DLQ-enabled task before it lands in the DLQ.
    dlq_task_max_retries: int = 3
    # First in-worker retry delay; doubles on each retry.
    dlq_task_backoff_seconds: float = 2.0
    # Cap of an in-worker retry delay, retry-after of a rate limit included.
    dlq_task_backoff_max_seconds: float = 600.0
    # Retries a DLQ entry may use in all (in-worker ones included) before
    # only a forced manual retry can run it again.
    dlq_max_retries: int = 5
    # First automatic DLQ retry delay; doubles with each retry already used.
    dlq_retry_backoff_seconds: float = 60.0
    # Cap of an automatic DLQ retry delay (a provider's retry-after may exceed it).
    dlq_retry_backoff_max_seconds: float = 6 * 3600.0
    # Pending or failed entries older than this are abandoned by the sweep.
    dlq_abandon_after_hours: int = 7 * 24
    # A retry with no outcome after this long is counted as failed (lost run).
    dlq_retry_timeout_seconds: int = 2 * 3600
    # How often `onboarding beat` schedules the DLQ sweep.
    dlq_sweep_interval_seconds: float = 30.0
    # Entries the sweep re-enqueues at most per run.
    dlq_sweep_batch_size: int = 100
    # Extra rows of the DLQ category table: dotted exception class -> category.
    dlq_extra_categories: dict[str, str] = Field(default_factory=dict)
    # estimated_completion of a manual retry when no retry of that task finished.
    dlq_retry_estimate_seconds: int = 60
    # The LLM client of the example tasks; only the test double ships.
    llm_client: Literal["flaky-test-double"] = "flaky-test-double"
    # Share of test-double calls failing with a rate limit (a Redis key overrides).
    llm_test_double_rate_limit_rate: float = 0.5
    # Share of test-double calls failing with a timeout (a Redis key overrides).
    llm_test_double_timeout_rate: float = 0.2
    # The retry-after the test double's rate limits ask for, in seconds.
    llm_test_double_retry_after_seconds: int = 5
    # How long each test-double call takes before answering or failing.
    llm_test_double_latency_seconds: float = 0.0

    # Seconds the realtime funnel figures are cached in Redis (the spec's 300).
    funnel_realtime_cache_seconds: int = 300
    # Fewest sessions a cohort needs to rank as best or worst, and each group
    # a funnel recommendation rule compares needs for the rule to fire.
    funnel_min_sample_size: int = 30

    # Seconds a dashboard overview is served from Redis (the spec's 5 minutes).
    dashboard_overview_cache_seconds: int = 300

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named for SQLAlchemy."""
        url = self.database_url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret.get_secret_value() == _DEV_SECRET


@lru_cache
def get_settings() -> Settings:
    return Settings()
