"""The `BlobStore` contract: every adapter's test class subclasses `BlobStoreContract` and
provides a `blobs` fixture (an open store on fresh storage) and `part_size`, the size at which
the adapter sends bytes on (S3: a multipart part), so the cases cross that boundary."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from chat4all.domain.errors import Conflict, NotFound
from chat4all.ports.blobs import BlobStore


async def pieces(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Dropped(Exception):
    """A connection that broke in the middle of a request."""


async def broken_after(data: bytes, cut: int) -> AsyncIterator[bytes]:
    async for piece in pieces(data[:cut]):
        yield piece
    raise Dropped


async def read_all(blobs: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([p async for p in blobs.read(key, start, end)])


def refuse() -> None:
    raise ValueError("checksum mismatch")


class BlobStoreContract:
    part_size: int

    @pytest.fixture
    def key(self) -> str:
        return f"2025/01/15/{uuid4()}"

    async def test_appends_in_several_requests_make_the_object(
        self, blobs: BlobStore, key: str
    ) -> None:
        data = os.urandom(2 * self.part_size + 12345)
        token = await blobs.begin(key)
        assert await blobs.written(key, token) == 0
        cuts = [0, 1000, self.part_size + 7, 2 * self.part_size + 100, len(data)]
        for a, b in itertools.pairwise(cuts):
            assert await blobs.append(key, token, a, pieces(data[a:b])) == b
            assert await blobs.written(key, token) == b
        await blobs.finish(key, token)
        assert await read_all(blobs, key) == data
        assert await read_all(blobs, key, 5, 10) == data[5:11]
        tail = await read_all(blobs, key, len(data) - 3)
        assert tail == data[-3:]

    async def test_a_wrong_offset_is_a_conflict_and_changes_nothing(
        self, blobs: BlobStore, key: str
    ) -> None:
        token = await blobs.begin(key)
        await blobs.append(key, token, 0, pieces(b"abc"))
        with pytest.raises(Conflict):
            await blobs.append(key, token, 2, pieces(b"zzz"))
        with pytest.raises(Conflict):
            await blobs.append(key, token, 4, pieces(b"zzz"))
        assert await blobs.written(key, token) == 3

    async def test_a_refused_chunk_is_discarded_whole(self, blobs: BlobStore, key: str) -> None:
        data = os.urandom(self.part_size + 999)
        token = await blobs.begin(key)
        await blobs.append(key, token, 0, pieces(data[:100]))
        with pytest.raises(ValueError):
            await blobs.append(key, token, 100, pieces(os.urandom(self.part_size * 2)), refuse)
        assert await blobs.written(key, token) == 100
        accepted = await blobs.append(key, token, 100, pieces(data[100:]), lambda: None)
        assert accepted == len(data)
        await blobs.finish(key, token)
        assert hashlib.sha256(await read_all(blobs, key)).digest() == hashlib.sha256(data).digest()

    async def test_a_dropped_connection_keeps_what_arrived(
        self, blobs: BlobStore, key: str
    ) -> None:
        data = os.urandom(self.part_size + 50_000)
        cut = self.part_size + 20_000
        token = await blobs.begin(key)
        with pytest.raises(Dropped):
            await blobs.append(key, token, 0, broken_after(data, cut))
        assert await blobs.written(key, token) == cut
        await blobs.append(key, token, cut, pieces(data[cut:]))
        await blobs.finish(key, token)
        assert await read_all(blobs, key) == data

    async def test_a_dropped_connection_with_a_checksum_keeps_nothing(
        self, blobs: BlobStore, key: str
    ) -> None:
        token = await blobs.begin(key)
        with pytest.raises(Dropped):
            await blobs.append(key, token, 0, broken_after(os.urandom(5000), 3000), lambda: None)
        assert await blobs.written(key, token) == 0

    async def test_finishing_twice_is_harmless(self, blobs: BlobStore, key: str) -> None:
        """A process that stopped after finishing, before recording it, finishes again."""
        token = await blobs.begin(key)
        await blobs.append(key, token, 0, pieces(b"hello"))
        await blobs.finish(key, token)
        await blobs.finish(key, token)
        assert await read_all(blobs, key) == b"hello"

    async def test_an_empty_object(self, blobs: BlobStore, key: str) -> None:
        token = await blobs.begin(key)
        await blobs.finish(key, token)
        assert await read_all(blobs, key) == b""

    async def test_an_aborted_upload_is_gone(self, blobs: BlobStore, key: str) -> None:
        token = await blobs.begin(key)
        await blobs.append(key, token, 0, pieces(os.urandom(self.part_size + 10)))
        await blobs.abort(key, token)
        await blobs.abort(key, token)  # again: nothing happens
        with pytest.raises(NotFound):
            await blobs.written(key, token)

    async def test_deleted_objects_are_gone(self, blobs: BlobStore, key: str) -> None:
        token = await blobs.begin(key)
        await blobs.append(key, token, 0, pieces(b"hello"))
        await blobs.finish(key, token)
        await blobs.delete(key)
        await blobs.delete(key)
        with pytest.raises(NotFound):
            await read_all(blobs, key)
