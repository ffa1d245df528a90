from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient

from chat4all.adapters.mongo.file_store import MongoFileStore
from chat4all.ports.files import FileStore
from tests.contract.file_store_contract import FileStoreContract
from tests.servers import server_url, unique_name

pytestmark = pytest.mark.mongo


class TestMongoFileStore(FileStoreContract):
    @pytest.fixture
    async def files(self) -> AsyncIterator[FileStore]:
        url, name = server_url("mongo"), unique_name("chat4all_test")
        store = await MongoFileStore.connect(url, name)
        try:
            yield store
        finally:
            await store.close()
            client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
            await client.drop_database(name)
            await client.close()
