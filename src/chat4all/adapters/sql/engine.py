"""Engines and transactions: the one place that knows how SQLite and PostgreSQL differ.

SQLite: WAL, `synchronous=NORMAL`, foreign keys on and a busy timeout on every connection.
The driver's own transaction handling is switched off so that SQLAlchemy's BEGIN is the real
one; a transaction that will write starts with `BEGIN IMMEDIATE`, so it takes the write lock up
front (waiting up to the busy timeout) instead of failing half-way when it reads before it
writes. PostgreSQL needs nothing of this: its row locks (`SELECT ... FOR UPDATE`) do the job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "chat4all_write"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` (`sqlite+aiosqlite:///...` or `postgresql+asyncpg://...`)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, issues BEGIN
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """One transaction: committed when the block ends, rolled back when it raises.

    `write=True` declares that the transaction may write, so that it locks early where the
    database needs that (SQLite).
    """
    async with engine.connect() as conn:
        if write:
            await conn.execution_options(**{_WRITE_OPTION: True})
        async with conn.begin():
            yield conn
