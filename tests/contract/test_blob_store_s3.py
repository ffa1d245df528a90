"""The blob store contract on MinIO, plus what only S3 has: parts of the configured size."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from chat4all.adapters.s3.blob_store import MIN_PART_SIZE, S3BlobStore, S3Location
from chat4all.ports.blobs import BlobStore
from tests.contract.blob_store_contract import BlobStoreContract, pieces
from tests.servers import MINIO_KEYS, server_url, unique_name

pytestmark = pytest.mark.minio


def location() -> S3Location:
    return S3Location(server_url("minio"), unique_name("test").replace("_", "-"), *MINIO_KEYS)


class TestS3BlobStore(BlobStoreContract):
    part_size = MIN_PART_SIZE

    @pytest.fixture
    async def blobs(self) -> AsyncIterator[BlobStore]:
        store = await S3BlobStore.connect(location(), part_size=self.part_size)
        yield store
        await store.close()


async def test_parts_are_the_configured_size_and_the_tail_waits_on_s3() -> None:
    where = location()
    store = await S3BlobStore.connect(where, part_size=MIN_PART_SIZE)
    key = f"k/{uuid4()}"
    try:
        token = await store.begin(key)
        data = os.urandom(MIN_PART_SIZE + 100)
        await store.append(key, token, 0, pieces(data[:50]))
        await store.append(key, token, 50, pieces(data[50:]))
        parts = await store._parts(key, token)
        assert [size for _, size, _ in parts] == [MIN_PART_SIZE]
        assert await store._tail_size(key, 2) == 100
        # another gateway (another client) continues the same upload from S3 alone
        other = await S3BlobStore.connect(where, part_size=MIN_PART_SIZE)
        try:
            assert await other.written(key, token) == len(data)
        finally:
            await other.close()
        await store.finish(key, token)
        assert b"".join([p async for p in store.read(key)]) == data
    finally:
        await store.close()


async def test_parts_under_five_mib_are_refused() -> None:
    with pytest.raises(ValueError):
        await S3BlobStore.connect(location(), part_size=MIN_PART_SIZE - 1)
