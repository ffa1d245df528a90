"""The metadata store contract on SQLite, plus what only SQLite has: pragmas and file errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from chat4all.adapters.sql import SqlMetadataStore, upgrade
from chat4all.domain.errors import Unavailable
from tests.contract.metadata_store_contract import MetadataStoreContract
from tests.contract.webhook_store_contract import WebhookStoreContract


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class TestSqliteMetadataStore(MetadataStoreContract, WebhookStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
        url = sqlite_url(tmp_path / "metadata.db")
        await upgrade(url)
        store = await SqlMetadataStore.connect(url)
        try:
            yield store
        finally:
            await store.close()


async def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "metadata.db")
    await upgrade(url)
    store = await SqlMetadataStore.connect(url)
    try:
        async with store.engine.connect() as conn:
            pragma = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await store.close()
    assert pragma["journal_mode"] == "wal"
    assert pragma["synchronous"] == 1  # NORMAL
    assert pragma["foreign_keys"] == 1
    assert isinstance(pragma["busy_timeout"], int) and pragma["busy_timeout"] > 0


async def test_unusable_database_is_unavailable(tmp_path: Path) -> None:
    # A file that is no database. (A missing folder would do too, but aiosqlite then answers
    # from its worker thread after the test's event loop is gone.)
    path = tmp_path / "metadata.db"
    path.write_bytes(b"this is not a database" * 100)
    store = await SqlMetadataStore.connect(sqlite_url(path))
    try:
        with pytest.raises(Unavailable):
            await store.ping()
    finally:
        await store.close()
