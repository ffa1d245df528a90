"""The migrations build exactly the tables of `schema.py`, and running them again is harmless:
on SQLite and on PostgreSQL, each in a database of its own."""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect, text
from sqlalchemy.engine import Connection

from chat4all.adapters.sql.engine import create_engine
from chat4all.adapters.sql.migrate import downgrade, upgrade
from chat4all.adapters.sql.schema import metadata, users
from tests.databases import fresh_postgres_database

HEAD = "0004_channels"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
        return
    async with fresh_postgres_database() as database:
        yield database


async def _on_database(url: str, check: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(check)
    finally:
        await engine.dispose()


def _differences(conn: Connection) -> list[Any]:
    options = {"compare_type": True, "compare_server_default": True}
    with warnings.catch_warnings():
        # SQLite cannot reflect an index on an expression (lower(username)), so Alembic skips
        # it there; `test_indexes_are_named_as_in_schema` checks that it exists.
        warnings.filterwarnings("ignore", message=".*expression-based index")
        return list(compare_metadata(MigrationContext.configure(conn, opts=options), metadata))


def _index_names(conn: Connection) -> set[str]:
    """Indexes made as indexes, not those behind a primary key or unique constraint."""
    query = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        "postgresql": "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
    }[conn.dialect.name]
    return set(conn.execute(text(query)).scalars())


def _check_constraint_names(conn: Connection) -> dict[str, set[str | None]]:
    inspector = inspect(conn)
    return {
        table: {c["name"] for c in inspector.get_check_constraints(table)}
        for table in metadata.tables
    }


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def test_migrations_match_schema(url: str) -> None:
    await upgrade(url)
    assert await _on_database(url, _differences) == []


async def test_check_constraints_are_named_as_in_schema(url: str) -> None:
    await upgrade(url)
    expected = {
        name: {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        for name, table in metadata.tables.items()
    }
    assert await _on_database(url, _check_constraint_names) == expected


async def test_indexes_are_named_as_in_schema(url: str) -> None:
    await upgrade(url)
    expected = {index.name for table in metadata.tables.values() for index in table.indexes}
    assert await _on_database(url, _index_names) == expected


async def test_upgrade_is_idempotent(url: str) -> None:
    await upgrade(url)
    await upgrade(url)
    assert await _on_database(url, _current_revision) == HEAD
    assert await _on_database(url, _differences) == []


async def test_concurrent_upgrades_both_succeed(url: str) -> None:
    await asyncio.gather(upgrade(url), upgrade(url), upgrade(url))
    assert await _on_database(url, _current_revision) == HEAD
    assert await _on_database(url, _differences) == []


async def test_upgrades_from_separate_processes_both_succeed(url: str) -> None:
    # Services starting side by side each upgrade at start: the database serialises them
    # (SQLite's write lock, PostgreSQL's advisory lock), not the lock inside one process.
    script = "import asyncio, sys; from chat4all.adapters.sql import upgrade; asyncio.run(upgrade(sys.argv[1]))"
    runs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, url) for _ in range(2)
    ]
    assert [await run.wait() for run in runs] == [0, 0]
    assert await _on_database(url, _current_revision) == HEAD
    assert await _on_database(url, _differences) == []


async def test_usernames_clashing_by_case_stop_the_upgrade_and_are_named(url: str) -> None:
    await upgrade(url, "0001")
    names = ["Alice", "alice", "bob"]
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for name in names:
                row = {"user_id": uuid4(), "username": name, "email": f"{name}@x.org"}
                await conn.execute(users.insert().values(password_hash="x", **row))
        with pytest.raises(RuntimeError, match="taken more than once: alice;"):
            await upgrade(url)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE users SET username = 'alice2' WHERE username = 'alice'")
            )
    finally:
        await engine.dispose()
    await upgrade(url)
    assert await _on_database(url, _current_revision) == HEAD


async def test_downgrade_to_base_and_back(url: str) -> None:
    await upgrade(url)
    await downgrade(url, "base")
    assert await _on_database(url, lambda conn: inspect(conn).get_table_names()) == [
        "alembic_version"
    ]
    await upgrade(url)
    assert await _on_database(url, _differences) == []
