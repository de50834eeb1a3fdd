"""PostgreSQL access: the async engine, sessions, and error translation.

Connection failures become ``Unavailable`` here, once, so every service
answers 503 while the database is down and recovers when it returns.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, MetaData, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from server.errors import Unavailable
from server.settings import Settings

logger = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; migrations import its metadata."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        connect_args={"connect_timeout": settings.db_connect_timeout_seconds},
    )


class Database:
    """Owns the engine and hands out sessions that translate outages."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; connection loss surfaces as ``Unavailable``."""
        try:
            async with self._sessions() as session:
                yield session
        except (exc.OperationalError, exc.InterfaceError, OSError) as err:
            logger.warning("database unavailable: %s", err.__class__.__name__)
            raise Unavailable(
                "The database is unavailable; try again shortly.",
                reason="database_unavailable",
            ) from err

    async def dispose(self) -> None:
        await self.engine.dispose()
