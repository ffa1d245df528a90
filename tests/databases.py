"""A fresh PostgreSQL database per test, on the shared server that scripts/infra/ starts.

The server is shared (other test runs, other xdist workers), so every test gets a database of
its own: CREATE DATABASE takes a few tens of milliseconds, and it is dropped after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.servers import server_url, unique_name


def with_database(url: str, database: str, *, driver: str | None = None) -> str:
    """`url` pointing at `database`, optionally with a SQLAlchemy driver (`postgresql+asyncpg`)."""
    parts = urlsplit(url)
    scheme = driver or parts.scheme
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@asynccontextmanager
async def fresh_postgres_database(prefix: str = "c4test") -> AsyncIterator[str]:
    """Create an empty database; yield its `postgresql+asyncpg://` URL; drop it afterwards
    (`WITH (FORCE)` ends the connections a test left open)."""
    admin = server_url("postgres")
    name = unique_name(prefix)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield with_database(admin, name, driver="postgresql+asyncpg")
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The plain `postgresql://` DSN asyncpg takes, from a `postgresql+asyncpg://` URL."""
    parts = urlsplit(sqlalchemy_url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))
