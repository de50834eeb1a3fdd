"""Alembic environment: runs migrations with a synchronous psycopg engine."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context
from sqlalchemy import engine_from_config, pool

import server.security.models  # noqa: F401  (registers tables on Base)
import services
from server.db import Base


def _import_service_models() -> None:
    """Register every ``services.<name>.models`` module's tables on Base."""
    for module in pkgutil.iter_modules(services.__path__):
        try:
            importlib.import_module(f"services.{module.name}.models")
        except ModuleNotFoundError as err:
            if err.name != f"services.{module.name}.models":
                raise


_import_service_models()
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
