"""The blob store contract on the local disk, plus keys that try to leave the folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat4all.adapters.localfs.blob_store import WRITE_SIZE, LocalBlobStore
from chat4all.domain.errors import InvalidInput
from chat4all.ports.blobs import BlobStore
from tests.contract.blob_store_contract import BlobStoreContract


class TestLocalBlobStore(BlobStoreContract):
    part_size = WRITE_SIZE

    @pytest.fixture
    async def blobs(self, tmp_path: Path) -> AsyncIterator[BlobStore]:
        store = LocalBlobStore(tmp_path)
        yield store
        await store.close()


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a/../../b", ""])
async def test_keys_never_leave_the_folder(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidInput):
        await LocalBlobStore(tmp_path / "blobs").begin(key)
