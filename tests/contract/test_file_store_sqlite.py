from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat4all.adapters.sqlite.file_store import SQLiteFileStore
from chat4all.ports.files import FileStore
from tests.contract.file_store_contract import FileStoreContract, new_record


class TestSQLiteFileStore(FileStoreContract):
    @pytest.fixture
    async def files(self, tmp_path: Path) -> AsyncIterator[FileStore]:
        store = await SQLiteFileStore.open(tmp_path / "files.db")
        yield store
        await store.close()


async def test_records_survive_reopening(tmp_path: Path) -> None:
    store = await SQLiteFileStore.open(tmp_path / "files.db")
    record = new_record()
    await store.create(record)
    await store.close()
    again = await SQLiteFileStore.open(tmp_path / "files.db")
    try:
        assert await again.get(record.file_id) == record
    finally:
        await again.close()
