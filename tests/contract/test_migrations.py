"""The migrations build exactly the tables of `schema.py`, and running them again is harmless."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, inspect
from sqlalchemy.engine import Connection

from chat4all.adapters.sql.engine import create_engine
from chat4all.adapters.sql.migrate import downgrade, upgrade
from chat4all.adapters.sql.schema import metadata


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"


async def _on_database(url: str, check: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(check)
    finally:
        await engine.dispose()


def _differences(conn: Connection) -> list[Any]:
    options = {"compare_type": True, "compare_server_default": True}
    return list(compare_metadata(MigrationContext.configure(conn, opts=options), metadata))


def _check_constraint_names(conn: Connection) -> dict[str, set[str | None]]:
    inspector = inspect(conn)
    return {
        table: {c["name"] for c in inspector.get_check_constraints(table)}
        for table in metadata.tables
    }


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def test_migrations_match_schema(tmp_path: Path) -> None:
    url = _url(tmp_path)
    await upgrade(url)
    assert await _on_database(url, _differences) == []


async def test_check_constraints_are_named_as_in_schema(tmp_path: Path) -> None:
    url = _url(tmp_path)
    await upgrade(url)
    expected = {
        name: {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        for name, table in metadata.tables.items()
    }
    assert await _on_database(url, _check_constraint_names) == expected


async def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = _url(tmp_path)
    await upgrade(url)
    await upgrade(url)
    assert await _on_database(url, _current_revision) == "0001"
    assert await _on_database(url, _differences) == []


async def test_concurrent_upgrades_both_succeed(tmp_path: Path) -> None:
    url = _url(tmp_path)
    await asyncio.gather(upgrade(url), upgrade(url), upgrade(url))
    assert await _on_database(url, _current_revision) == "0001"
    assert await _on_database(url, _differences) == []


async def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = _url(tmp_path)
    await upgrade(url)
    await downgrade(url, "base")
    assert await _on_database(url, lambda conn: inspect(conn).get_table_names()) == [
        "alembic_version"
    ]
    await upgrade(url)
    assert await _on_database(url, _differences) == []
