"""Alembic environment: runs migrations with a synchronous psycopg engine."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import server.security.models  # noqa: F401  (registers tables on Base)
from server.db import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
