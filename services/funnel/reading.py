"""How the analytics servicers read: one consistent snapshot per response."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.db import Database
from services.funnel.periods import utc_now
from services.funnel.rollup import Snapshot, begin_consistent_read


class AnalyticsReader:
    """Hands out the moment figures are computed at and the session to read."""

    def __init__(self, db: Database, abandon_after_minutes: int) -> None:
        self._db = db
        self._abandon_after = timedelta(minutes=abandon_after_minutes)

    def snapshot(self) -> Snapshot:
        """Now, and the inactivity cut-off that tells abandoned from active."""
        return Snapshot(utc_now(), self._abandon_after)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction, so every figure of a response agrees."""
        async with self._db.session() as session:
            await begin_consistent_read(session)
            yield session
