"""The `FileStore` contract: every adapter's test class subclasses `FileStoreContract` and
provides a `files` fixture giving an open store on fresh, empty storage."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from chat4all.domain.errors import AlreadyExists, Conflict, NotFound
from chat4all.domain.files import Chunk, FileRecord, UploadStatus
from chat4all.ports.files import FileStore

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


def new_record(owner: UUID | None = None, size: int = 1000, expires: datetime | None = None):
    file_id = uuid4()
    return FileRecord(
        file_id=file_id,
        owner_id=owner or uuid4(),
        conversation_id=uuid4(),
        filename='présentation "final".pptx',
        mime_type="application/vnd.ms-powerpoint",
        size_bytes=size,
        storage_key=f"2025/01/15/{file_id}",
        storage_token="token-1",
        created_at=T0,
        updated_at=T0,
        expires_at=expires or T0 + timedelta(hours=24),
    )


class FileStoreContract:
    async def test_a_record_comes_back_as_stored(self, files: FileStore) -> None:
        record = new_record()
        await files.create(record)
        assert await files.get(record.file_id) == record
        assert await files.get(uuid4()) is None
        with pytest.raises(AlreadyExists):
            await files.create(record)

    async def test_progress_and_completion(self, files: FileStore) -> None:
        record = new_record()
        await files.create(record)
        chunk = Chunk(0, 400, "sha256:" + "ab" * 32, T0 + timedelta(minutes=1))
        moved = record.progressed(chunk, T0 + timedelta(minutes=1), T0 + timedelta(hours=25))
        await files.update(moved, expected_offset=0)
        assert await files.get(record.file_id) == moved
        with pytest.raises(Conflict):  # another writer already moved it from 0
            await files.update(moved, expected_offset=0)
        done = replace(
            moved,
            status=UploadStatus.COMPLETED,
            checksum="sha256:" + "cd" * 32,
            completed_at=T0 + timedelta(minutes=2),
            expires_at=None,
        )
        await files.update(done, expected_offset=400)
        assert await files.get(record.file_id) == done
        assert await files.unannounced(10) == [done]
        await files.update(replace(done, announced=True), expected_offset=400)
        assert await files.unannounced(10) == []

    async def test_updating_a_deleted_file_is_not_found(self, files: FileStore) -> None:
        record = new_record()
        await files.create(record)
        await files.delete(record.file_id)
        await files.delete(record.file_id)
        assert await files.get(record.file_id) is None
        with pytest.raises(NotFound):
            await files.update(record, expected_offset=0)

    async def test_expired_lists_only_open_uploads_past_their_time(self, files: FileStore) -> None:
        soon = new_record(expires=T0 + timedelta(hours=1))
        later = new_record(expires=T0 + timedelta(hours=30))
        done = replace(new_record(expires=T0), status=UploadStatus.COMPLETED, expires_at=None)
        gone = replace(new_record(expires=T0), status=UploadStatus.EXPIRED)
        for record in (soon, later, done, gone):
            await files.create(record)
        assert await files.expired(T0 + timedelta(hours=2), 10) == [soon]
        assert {r.file_id for r in await files.expired(T0 + timedelta(days=2), 10)} == {
            soon.file_id,
            later.file_id,
        }
        assert len(await files.expired(T0 + timedelta(days=2), 1)) == 1

    async def test_bytes_used_counts_open_and_completed_uploads(self, files: FileStore) -> None:
        owner = uuid4()
        await files.create(new_record(owner, 100))
        await files.create(replace(new_record(owner, 20), status=UploadStatus.COMPLETED))
        await files.create(replace(new_record(owner, 5000), status=UploadStatus.EXPIRED))
        await files.create(new_record(uuid4(), 7))
        assert await files.bytes_used(owner) == 120
        assert await files.bytes_used(uuid4()) == 0
