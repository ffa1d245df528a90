"""Engines and transactions: the one place that knows how SQLite and PostgreSQL differ.

SQLite: WAL, `synchronous=NORMAL`, foreign keys on and a busy timeout on every connection.
The driver's own transaction handling is switched off so that SQLAlchemy's BEGIN is the real
one; a transaction that will write starts with `BEGIN IMMEDIATE`, so it takes the write lock up
front (waiting up to the busy timeout) instead of failing half-way when it reads before it
writes.

PostgreSQL (asyncpg): its row locks (`SELECT ... FOR UPDATE`) do the job BEGIN IMMEDIATE does on
SQLite. A pool of connections, each checked with a ping before use, so that a server restart
costs at most the calls that were running at that moment; a connect timeout, so that an
unreachable server is an error within seconds, not a hang; and UUIDs decoded as the standard
library's `uuid.UUID` (asyncpg's own UUID class is a subclass that orjson refuses to encode).

Both: JSON is written by one serializer that refuses the NUL character, which PostgreSQL cannot
store in JSONB or text, so that the two stores accept exactly the same metadata.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chat4all.adapters.sql.errors import translate
from chat4all.domain.errors import Unavailable

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "chat4all_write"

# PostgreSQL pool: enough connections for one process's concurrent requests and workers; a
# request that finds them all busy waits `pool_timeout` seconds, then fails as Unavailable.
POSTGRES_POOL = {
    "pool_size": 10,
    "max_overflow": 10,
    "pool_timeout": 10.0,
    "pool_recycle": 1800,  # seconds: recycle before idle-connection killers (proxies, LBs) do
    "pool_pre_ping": True,  # a connection a restart broke is replaced before use
}
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5.0

# Plain URLs name the async driver this store uses: psycopg2 or sqlite3 could not run here.
_URL_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}


def async_url(url: str) -> str:
    """`url` with the async driver named: `postgresql://` -> `postgresql+asyncpg://`,
    `sqlite://` -> `sqlite+aiosqlite://`. URLs that name a driver are left alone."""
    scheme, sep, rest = url.partition("://")
    return f"{_URL_SCHEMES.get(scheme, scheme)}{sep}{rest}" if sep else url


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url` (`sqlite+aiosqlite:///...` or `postgresql+asyncpg://...`;
    plain `sqlite://` and `postgresql://` mean the same)."""
    url = async_url(url)
    kwargs.setdefault("json_serializer", dumps_json)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    if kwargs.get("poolclass") is None:
        for option, value in POSTGRES_POOL.items():
            kwargs.setdefault(option, value)
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("timeout", POSTGRES_CONNECT_TIMEOUT_SECONDS)
    connect_args.setdefault("server_settings", {"application_name": "chat4all"})
    engine = create_async_engine(url, **kwargs)
    _configure_postgres(engine)
    return engine


def dumps_json(value: Any) -> str:
    """JSON for a JSON column; ValueError (the store's InvalidInput) for a NUL character."""
    _refuse_nul(value)
    return json.dumps(value)


def _refuse_nul(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain the NUL character (U+0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key)
            _refuse_nul(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_nul(item)


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


def _configure_postgres(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.run_async(_standard_uuids)


async def _standard_uuids(conn: Any) -> None:
    await conn.set_type_codec(
        "uuid", schema="pg_catalog", format="binary", encoder=_uuid_bytes, decoder=_uuid
    )


def _uuid_bytes(value: UUID | str) -> bytes:
    return (value if isinstance(value, UUID) else UUID(value)).bytes


def _uuid(raw: bytes) -> UUID:
    return UUID(bytes=raw)


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


async def run_transaction(
    engine: AsyncEngine,
    write: bool,
    txn: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`txn` in one transaction, its driver errors turned into Chat4All's. Shielded: a caller
    cancelled mid-transaction (a stopping worker) must not leave the connection inside it; on
    SQLite that would hold the write lock for everyone else."""
    return await asyncio.shield(_transact(engine, write, txn, *args, **kwargs))


async def _transact(
    engine: AsyncEngine,
    write: bool,
    txn: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    try:
        async with transaction(engine, write=write) as conn:
            return await txn(conn, *args, **kwargs)
    except SQLAlchemyError as e:
        raise translate(e) from e
    except OSError as e:  # a driver that lets a refused or dropped connection through
        raise Unavailable(f"the metadata database is unavailable: {e}") from e
