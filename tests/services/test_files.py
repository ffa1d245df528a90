"""The file service on both profiles' stores (SQLite + local disk, FerretDB + MinIO) with a
fake clock: expiry and the sweep, `file.uploaded` through the outbox, and an upload resumed
by another process (no hasher in memory), whose SHA-256 comes from storage."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from pymongo import AsyncMongoClient

from chat4all.adapters.localfs.blob_store import LocalBlobStore
from chat4all.adapters.mongo.file_store import MongoFileStore
from chat4all.adapters.s3.blob_store import MIN_PART_SIZE, S3BlobStore, S3Location
from chat4all.adapters.sqlite.file_store import SQLiteFileStore
from chat4all.bootstrap import Platform, build_embedded
from chat4all.domain.conversations import ConversationType
from chat4all.domain.errors import Gone, NotFound
from chat4all.domain.events import Topic
from chat4all.domain.files import UploadMetadata, UploadStatus
from chat4all.ports.blobs import BlobStore
from chat4all.ports.files import FileStore
from chat4all.services.files import FilePolicy, FileService
from tests.contract.blob_store_contract import pieces
from tests.fakes import FakeClock
from tests.integration.harness import settings_for_tests
from tests.servers import MINIO_KEYS, server_url, unique_name


@dataclass
class Stores:
    files: FileStore
    blobs: BlobStore


@pytest.fixture(
    params=["embedded", pytest.param("cluster", marks=[pytest.mark.mongo, pytest.mark.minio])]
)
async def stores(request, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "embedded":
        files: FileStore = await SQLiteFileStore.open(tmp_path / "files.db")
        blobs: BlobStore = LocalBlobStore(tmp_path / "blobs")
        yield Stores(files, blobs)
        await files.close()
        return
    url, name = server_url("mongo"), unique_name("chat4all_test")
    files = await MongoFileStore.connect(url, name)
    bucket = unique_name("files").replace("_", "-")
    blobs = await S3BlobStore.connect(
        S3Location(server_url("minio"), bucket, *MINIO_KEYS), part_size=MIN_PART_SIZE
    )
    yield Stores(files, blobs)
    await blobs.close()
    await files.close()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    await client.drop_database(name)
    await client.close()


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    """For its conversations and outbox; its workers stay stopped so the outbox keeps events."""
    platform = await build_embedded(settings_for_tests(tmp_path / "platform"))
    yield platform
    await platform.stop()


def service(platform: Platform, stores: Stores, clock: FakeClock) -> FileService:
    policy = FilePolicy(signing_secret=b"k" * 32, expiry=timedelta(hours=24))
    return FileService(
        stores.files, stores.blobs, platform.store, platform.conversations, clock, policy
    )


async def members(platform: Platform) -> tuple[UUID, UUID]:
    alice = await platform.auth.register(f"a{uuid4().hex[:8]}", "a@example.com", "password-1")
    bob = await platform.auth.register(f"b{uuid4().hex[:8]}", "b@example.com", "password-1")
    view, _ = await platform.conversations.create(
        alice.user_id, ConversationType.PRIVATE, [bob.user_id]
    )
    return alice.user_id, view.conversation.conversation_id


async def test_expired_uploads_are_410_and_the_sweep_frees_their_space(platform, stores) -> None:
    clock = FakeClock()
    files = service(platform, stores, clock)
    alice, conversation = await members(platform)
    record = await files.create_upload(
        alice, 10 * 1024 * 1024, UploadMetadata("a.bin", "application/octet-stream", conversation)
    )
    await files.append(alice, record.file_id, 0, pieces(os.urandom(MIN_PART_SIZE + 5)))
    clock.advance(23 * 3600)  # activity moves the expiry: 24 h after the last chunk
    assert (await files.upload(alice, record.file_id)).offset == MIN_PART_SIZE + 5
    assert await files.sweep() == 0
    clock.advance(3601)
    with pytest.raises(Gone):
        await files.upload(alice, record.file_id)
    assert await files.sweep() == 1
    stored = await stores.files.get(record.file_id)
    assert stored is not None and stored.status is UploadStatus.EXPIRED
    with pytest.raises(NotFound):  # the bytes are gone
        await stores.blobs.written(record.storage_key, record.storage_token)
    with pytest.raises(Gone):
        await files.append(alice, record.file_id, MIN_PART_SIZE + 5, pieces(b"late"))
    assert await files.sweep() == 0


async def test_completion_announces_the_file_once(platform, stores) -> None:
    clock = FakeClock()
    files = service(platform, stores, clock)
    alice, conversation = await members(platform)
    data = os.urandom(1000)
    record = await files.create_upload(
        alice, len(data), UploadMetadata("a.txt", "text/plain", conversation)
    )
    done = await files.append(alice, record.file_id, 0, pieces(data))
    assert done.complete and done.announced
    assert done.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
    events = [
        e.event
        for e in await platform.store.outbox_batch(100)
        if e.event.type == Topic.FILE_UPLOADED
    ]
    assert [e.id for e in events] == [f"uploaded:{record.file_id}"]
    assert events[0].key == str(conversation)
    assert events[0].data["checksum"] == done.checksum
    await files.sweep()  # nothing left to announce
    assert (
        len(
            [
                e
                for e in await platform.store.outbox_batch(100)
                if e.event.type == Topic.FILE_UPLOADED
            ]
        )
        == 1
    )


async def test_an_upload_resumed_elsewhere_is_hashed_from_storage(platform, stores) -> None:
    clock = FakeClock()
    data = os.urandom(MIN_PART_SIZE + 3000)
    alice, conversation = await members(platform)
    first = service(platform, stores, clock)
    record = await first.create_upload(
        alice, len(data), UploadMetadata("a.bin", "application/octet-stream", conversation)
    )
    await first.append(alice, record.file_id, 0, pieces(data[:4000]))
    other = service(platform, stores, clock)  # another gateway: no hasher for this upload
    done = await other.append(alice, record.file_id, 4000, pieces(data[4000:]))
    assert done.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
    url = (await other.link_for_channel(record.file_id)).url
    query = dict(p.split("=") for p in url.split("?")[1].split("&"))
    download = await first.download(
        record.file_id, int(query["expires"]), query["signature"], "bytes=10-19"
    )
    assert download.body is not None
    assert b"".join([p async for p in download.body]) == data[10:20]


async def test_an_upload_stopped_before_completion_completes_on_head(platform, stores) -> None:
    """A process that stored the last chunk and stopped before completing the file: the
    client's HEAD finishes the job."""
    clock = FakeClock()
    alice, conversation = await members(platform)
    files = service(platform, stores, clock)
    data = os.urandom(3000)
    meta = UploadMetadata("a.bin", "application/octet-stream", conversation)
    record = await files.create_upload(alice, len(data), meta)
    # what the crashed process left: every byte stored, the record not told
    await stores.blobs.append(record.storage_key, record.storage_token, 0, pieces(data))
    restarted = service(platform, stores, clock)
    done = await restarted.resume_point(alice, record.file_id)
    assert done.complete and done.offset == len(data)
    assert done.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
