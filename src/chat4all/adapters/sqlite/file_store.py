"""The embedded file metadata store: the seed's `file_metadata` documents in their own SQLite
file (`files.db`), as JSON plus the columns its queries select on."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Final
from uuid import UUID

import orjson

from chat4all.adapters.sqlite.writer import DEFAULT_BUSY_TIMEOUT, SQLiteReader, SQLiteWriter
from chat4all.domain.errors import AlreadyExists, Conflict, NotFound, Unavailable
from chat4all.domain.files import FileRecord, UploadStatus

SCHEMA_VERSION: Final = 1
_SCHEMA = """
CREATE TABLE file_metadata (
    file_id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    upload_status TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    upload_offset INTEGER NOT NULL,
    expires_at_us INTEGER,
    announced INTEGER NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX file_metadata_owner ON file_metadata (owner_id);
CREATE INDEX file_metadata_status_expiry ON file_metadata (upload_status, expires_at_us)
"""
_OPEN = (UploadStatus.INITIATED.value, UploadStatus.IN_PROGRESS.value)


def _us(t: datetime | None) -> int | None:
    return int(t.timestamp() * 1_000_000) if t else None


def _row(record: FileRecord) -> tuple[object, ...]:
    return (
        record.owner_id.hex,
        record.status.value,
        record.size_bytes,
        record.offset,
        _us(record.expires_at),
        int(record.announced),
        orjson.dumps(record.to_document()).decode(),
        str(record.file_id),
    )


def create_schema_txn(conn: sqlite3.Connection) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return
    if version != 0:
        raise Unavailable(
            f"files.db has schema version {version}; this code knows {SCHEMA_VERSION}"
        )
    for statement in _SCHEMA.split(";"):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def create_txn(conn: sqlite3.Connection, record: FileRecord) -> None:
    try:
        conn.execute(
            "INSERT INTO file_metadata (owner_id, upload_status, size_bytes, upload_offset,"
            " expires_at_us, announced, document, file_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            _row(record),
        )
    except sqlite3.IntegrityError as e:
        raise AlreadyExists(f"file {record.file_id} already exists") from e


def update_txn(conn: sqlite3.Connection, record: FileRecord, expected_offset: int) -> None:
    changed = conn.execute(
        "UPDATE file_metadata SET owner_id = ?, upload_status = ?, size_bytes = ?,"
        " upload_offset = ?, expires_at_us = ?, announced = ?, document = ?"
        " WHERE file_id = ? AND upload_offset = ?",
        (*_row(record), expected_offset),
    ).rowcount
    if changed:
        return
    if conn.execute(
        "SELECT 1 FROM file_metadata WHERE file_id = ?", (str(record.file_id),)
    ).fetchone():
        raise Conflict(f"upload {record.file_id} moved on from offset {expected_offset}")
    raise NotFound(f"no file {record.file_id}")


def get_txn(conn: sqlite3.Connection, file_id: UUID) -> FileRecord | None:
    row = conn.execute(
        "SELECT document FROM file_metadata WHERE file_id = ?", (str(file_id),)
    ).fetchone()
    return FileRecord.from_document(orjson.loads(row[0])) if row else None


def delete_txn(conn: sqlite3.Connection, file_id: UUID) -> None:
    conn.execute("DELETE FROM file_metadata WHERE file_id = ?", (str(file_id),))


def bytes_used_txn(conn: sqlite3.Connection, owner_id: UUID) -> int:
    (total,) = conn.execute(
        "SELECT COALESCE(SUM(size_bytes), 0) FROM file_metadata"
        " WHERE owner_id = ? AND upload_status != ?",
        (owner_id.hex, UploadStatus.EXPIRED.value),
    ).fetchone()
    return int(total)


def select_txn(conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> list[FileRecord]:
    rows = conn.execute(f"SELECT document FROM file_metadata WHERE {where}", args).fetchall()
    return [FileRecord.from_document(orjson.loads(r[0])) for r in rows]


def ping_txn(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


class SQLiteFileStore:
    """`FileStore` on one SQLite file."""

    def __init__(self, writer: SQLiteWriter, reader: SQLiteReader) -> None:
        self._writer = writer
        self._reader = reader

    @classmethod
    async def open(
        cls, path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> SQLiteFileStore:
        writer = await SQLiteWriter.open(path, busy_timeout=busy_timeout)
        try:
            await writer.run(create_schema_txn)
        except BaseException:
            await writer.close()
            raise
        return cls(writer, SQLiteReader(path, busy_timeout=busy_timeout))

    async def create(self, record: FileRecord) -> None:
        await self._writer.run(partial(create_txn, record=record))

    async def get(self, file_id: UUID) -> FileRecord | None:
        return await self._reader.run(partial(get_txn, file_id=file_id))

    async def update(self, record: FileRecord, expected_offset: int) -> None:
        await self._writer.run(partial(update_txn, record=record, expected_offset=expected_offset))

    async def delete(self, file_id: UUID) -> None:
        await self._writer.run(partial(delete_txn, file_id=file_id))

    async def bytes_used(self, owner_id: UUID) -> int:
        return await self._reader.run(partial(bytes_used_txn, owner_id=owner_id))

    async def expired(self, now: datetime, limit: int) -> list[FileRecord]:
        return await self._reader.run(
            partial(
                select_txn,
                where="upload_status IN (?, ?) AND expires_at_us <= ? LIMIT ?",
                args=(*_OPEN, _us(now), limit),
            )
        )

    async def unannounced(self, limit: int) -> list[FileRecord]:
        return await self._reader.run(
            partial(
                select_txn,
                where="upload_status = ? AND announced = 0 LIMIT ?",
                args=(UploadStatus.COMPLETED.value, limit),
            )
        )

    async def ping(self) -> None:
        await self._reader.run(ping_txn)

    async def close(self) -> None:
        await self._writer.close()
        await self._reader.close()
