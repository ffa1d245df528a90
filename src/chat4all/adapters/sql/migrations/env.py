"""Alembic environment for the metadata store: async engines, one transaction per upgrade.

Alembic runs this file synchronously; `chat4all.adapters.sql.migrate` calls Alembic from a worker
thread, so the `asyncio.run` below never meets a running event loop.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from chat4all.adapters.sql.engine import create_engine, transaction
from chat4all.adapters.sql.schema import metadata

_LOCK_KEY = 0x63_34_61_6C_6C  # "c4all": the advisory lock that serialises upgrades

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set `sqlalchemy.url` in the Alembic config")
    return url


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade --sql`)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several services may start at once: one upgrades, the others wait, then find it done.
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=NullPool)
    try:
        # One writing transaction around the whole upgrade: all of it lands or none of it, and
        # on SQLite a second upgrader waits for the lock, then finds nothing left to do.
        async with transaction(engine, write=True) as connection:
            await connection.run_sync(_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
