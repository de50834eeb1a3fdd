"""One typed settings object, read from the environment."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEV_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"


class Settings(BaseSettings):
    """Every tunable of the server; each field maps to an upper-case env var."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

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
