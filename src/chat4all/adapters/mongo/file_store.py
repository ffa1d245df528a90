"""The file metadata store on MongoDB: the seed's `file_metadata` collection, one document per
file (`_id` = file_id), plus `expires_at_us` for the expiry sweep's range query. Every method is
one single-document write or one query, so it is atomic on MongoDB and on FerretDB alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from chat4all.adapters.mongo import schema
from chat4all.adapters.mongo.errors import translated
from chat4all.domain.errors import AlreadyExists, Conflict, NotFound
from chat4all.domain.files import FileRecord, UploadStatus

Document = dict[str, Any]
_OPEN = [UploadStatus.INITIATED.value, UploadStatus.IN_PROGRESS.value]


def _encode(record: FileRecord) -> Document:
    doc = record.to_document()
    doc["_id"] = doc["file_id"]
    expires = record.expires_at
    doc["expires_at_us"] = int(expires.timestamp() * 1_000_000) if expires else None
    return doc


def _decode(doc: Document) -> FileRecord:
    return FileRecord.from_document(doc)


class MongoFileStore:
    """`FileStore` on one MongoDB database. Build it with `connect`."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self._client = client
        self._files = client[database][schema.FILES]

    @classmethod
    async def connect(
        cls,
        url: str,
        database: str = "chat4all",
        *,
        server_selection_timeout: float = 2.0,
        max_pool_size: int = 4,
        create_indexes: bool = True,
    ) -> MongoFileStore:
        """Connect to `url`; with `create_indexes`, create the collections and indexes that are
        missing (`MongoMessageStore.connect` creates the same ones: a process that made that
        one already can skip the round trips)."""
        timeout_ms = int(server_selection_timeout * 1000)
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=10_000,
            maxPoolSize=max_pool_size,
            tz_aware=True,
            appname="chat4all-files",
        )
        try:
            with translated("connecting to the file store"):
                await client.admin.command("ping")
                if create_indexes:
                    await schema.create_indexes(client[database])
        except BaseException:
            await client.close()
            raise
        return cls(client, database)

    async def create(self, record: FileRecord) -> None:
        try:
            with translated("storing a new file"):
                await self._files.insert_one(_encode(record))
        except Conflict as e:
            if isinstance(e.__cause__, DuplicateKeyError):
                raise AlreadyExists(f"file {record.file_id} already exists") from e
            raise

    async def get(self, file_id: UUID) -> FileRecord | None:
        with translated("reading a file"):
            doc = await self._files.find_one({"_id": str(file_id)})
        return _decode(doc) if doc else None

    async def update(self, record: FileRecord, expected_offset: int) -> None:
        with translated("updating a file"):
            result = await self._files.replace_one(
                {"_id": str(record.file_id), "upload_offset": expected_offset}, _encode(record)
            )
            if result.matched_count:
                return
            exists = await self._files.count_documents({"_id": str(record.file_id)}, limit=1)
        if exists:
            raise Conflict(f"upload {record.file_id} moved on from offset {expected_offset}")
        raise NotFound(f"no file {record.file_id}")

    async def delete(self, file_id: UUID) -> None:
        with translated("deleting a file"):
            await self._files.delete_one({"_id": str(file_id)})

    async def bytes_used(self, owner_id: UUID) -> int:
        with translated("adding up a user's files"):
            total = 0
            async for doc in self._files.find(
                {
                    "upload_initiated_by": str(owner_id),
                    "upload_status": {"$ne": UploadStatus.EXPIRED.value},
                },
                {"size_bytes": 1},
            ):
                total += int(doc["size_bytes"])
        return total

    async def expired(self, now: datetime, limit: int) -> list[FileRecord]:
        cutoff = int(now.timestamp() * 1_000_000)
        return await self._find(
            {"upload_status": {"$in": _OPEN}, "expires_at_us": {"$lte": cutoff}}, limit
        )

    async def unannounced(self, limit: int) -> list[FileRecord]:
        return await self._find(
            {"upload_status": UploadStatus.COMPLETED.value, "announced": False}, limit
        )

    async def _find(self, query: Document, limit: int) -> list[FileRecord]:
        with translated("looking for files"):
            return [_decode(d) async for d in self._files.find(query).limit(limit)]

    async def ping(self) -> None:
        with translated("pinging the file store"):
            await self._client.admin.command("ping")

    async def close(self) -> None:
        await self._client.close()
