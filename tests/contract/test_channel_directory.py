"""The channel directory contract on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat4all.adapters.sql import SqlMetadataStore, upgrade
from tests.contract.channel_directory_contract import ChannelDirectoryContract
from tests.databases import fresh_postgres_database


class TestSqliteChannelDirectory(ChannelDirectoryContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SqlMetadataStore]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
        await upgrade(url)
        store = await SqlMetadataStore.connect(url)
        try:
            yield store
        finally:
            await store.close()


@pytest.mark.postgres
class TestPostgresChannelDirectory(ChannelDirectoryContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[SqlMetadataStore]:
        async with fresh_postgres_database() as url:
            await upgrade(url)
            store = await SqlMetadataStore.connect(url)
            try:
                yield store
            finally:
                await store.close()
