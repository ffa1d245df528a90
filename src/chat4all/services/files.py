"""Files: resumable uploads (what tus asks of the server), signed downloads, the expiry sweep.

Bytes stream from the request to the blob store; nothing holds a whole chunk. The whole file's
SHA-256 is computed while the bytes pass, by a hasher this process keeps per open upload. When
an upload resumes on another process (or after a restart) that hasher is missing, and the file
is hashed once more from storage when it completes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

from chat4all.domain.errors import (
    ChecksumMismatch,
    Conflict,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    TooLarge,
)
from chat4all.domain.events import file_uploaded
from chat4all.domain.files import (
    MAX_FILE_SIZE,
    ByteRange,
    Chunk,
    FileRecord,
    UploadMetadata,
    UploadStatus,
    parse_range,
    sign_download,
    signature_valid,
)
from chat4all.domain.ratelimit import Rule
from chat4all.ports.blobs import BlobStore
from chat4all.ports.clock import Clock
from chat4all.ports.files import FileStore
from chat4all.ports.messages import MessageStore
from chat4all.ports.ratelimit import RateLimiter
from chat4all.services.interfaces import Conversations
from chat4all.services.limits import take_or_refuse

SWEEP_BATCH = 100
MAX_HASHERS = 10_000  # open uploads whose SHA-256 this process carries on (~200 bytes each)


@dataclass(frozen=True)
class FilePolicy:
    signing_secret: bytes
    max_size: int = MAX_FILE_SIZE
    quota_bytes: int = 10 * MAX_FILE_SIZE  # per user, open and completed uploads together
    expiry: timedelta = timedelta(hours=24)  # after the last activity on an open upload
    link_ttl: timedelta = timedelta(hours=1)
    create_rate: Rule | None = None  # new uploads per user; None: unlimited
    public_base_url: str = ""  # prefix of download links ("" keeps them relative)


@dataclass(frozen=True)
class Download:
    record: FileRecord
    range: ByteRange | None  # None: the whole file
    body: AsyncIterator[bytes] | None  # None for HEAD


@dataclass
class _Hasher:
    offset: int
    sha256: Any  # hashlib's object


@dataclass(frozen=True)
class ChannelFile:
    url: str
    filename: str
    mime_type: str
    size_bytes: int


class FileService:
    def __init__(
        self,
        files: FileStore,
        blobs: BlobStore,
        outbox: MessageStore,
        conversations: Conversations,
        clock: Clock,
        policy: FilePolicy,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._files = files
        self._blobs = blobs
        self._outbox = outbox
        self._conversations = conversations
        self._clock = clock
        self._policy = policy
        self._limiter = limiter
        self._hashers: dict[UUID, _Hasher] = {}
        self._locks: dict[UUID, asyncio.Lock] = {}

    @property
    def policy(self) -> FilePolicy:
        return self._policy

    # uploads

    async def create_upload(self, owner: UUID, length: int, meta: UploadMetadata) -> FileRecord:
        """A new, empty upload of `length` bytes into a conversation `owner` is a member of."""
        if length < 0:
            raise InvalidInput("Upload-Length must be a non-negative integer")
        if length > self._policy.max_size:
            raise TooLarge(
                f"the file is {length} bytes; the largest accepted is {self._policy.max_size}"
            )
        await take_or_refuse(
            self._limiter,
            f"upload:{owner}",
            self._policy.create_rate,
            self._clock.now(),
            "new uploads",
        )
        await self._conversations.member_ids(meta.conversation_id, owner)
        used = await self._files.bytes_used(owner)
        if used + length > self._policy.quota_bytes:
            raise TooLarge(
                f"this upload would bring your files to {used + length} bytes; "
                f"your quota is {self._policy.quota_bytes}"
            )
        now = self._clock.now()
        file_id = uuid4()
        key = f"{now:%Y/%m/%d}/{file_id}"
        token = await self._blobs.begin(key)
        record = FileRecord(
            file_id=file_id,
            owner_id=owner,
            conversation_id=meta.conversation_id,
            filename=meta.filename,
            mime_type=meta.mime_type,
            size_bytes=length,
            storage_key=key,
            storage_token=token,
            storage_provider=self._blobs.provider,
            created_at=now,
            updated_at=now,
            expires_at=now + self._policy.expiry,
        )
        try:
            await self._files.create(record)
        except BaseException:
            await self._blobs.abort(key, token)  # nothing half made is left behind
            raise
        self._keep_hasher(file_id, _Hasher(0, hashlib.sha256()))
        if length == 0:
            record = await self._complete(record)
        return record

    async def upload(self, requester: UUID, file_id: UUID) -> FileRecord:
        """The caller's upload (tus HEAD): `NotFound` for anyone else, `Gone` once expired."""
        record = await self._files.get(file_id)
        if record is None or record.owner_id != requester:
            raise NotFound(f"no upload {file_id}")
        if record.status is UploadStatus.EXPIRED or (
            record.status.open
            and record.expires_at is not None
            and record.expires_at <= self._clock.now()
        ):
            raise Gone(f"upload {file_id} expired; start a new one")
        return record

    async def append(
        self,
        requester: UUID,
        file_id: UUID,
        offset: int,
        data: AsyncIterable[bytes],
        checksum: tuple[str, bytes] | None = None,
    ) -> FileRecord:
        """Append a chunk at `offset` (tus PATCH). With `checksum` the chunk is all or nothing
        (`ChecksumMismatch`: discarded, offset unchanged); without, a dropped connection keeps
        what arrived. The last byte completes the file."""
        lock = self._locks.setdefault(file_id, asyncio.Lock())
        if lock.locked():
            raise Conflict(f"upload {file_id} is receiving another chunk right now")
        async with lock:
            try:
                return await self._append(requester, file_id, offset, data, checksum)
            finally:
                self._locks.pop(file_id, None)

    async def _append(
        self,
        requester: UUID,
        file_id: UUID,
        offset: int,
        data: AsyncIterable[bytes],
        checksum: tuple[str, bytes] | None,
    ) -> FileRecord:
        record = await self.upload(requester, file_id)
        if offset != record.offset:
            raise Conflict(f"Upload-Offset is {offset}, but the upload is at {record.offset}")
        if record.complete:
            raise Conflict(f"upload {file_id} is already complete")
        hasher = self._hashers.get(file_id)
        # The whole-file hash goes on only from where this process's hasher stands.
        whole = hasher.sha256.copy() if hasher is not None and hasher.offset == offset else None
        claimed = hashlib.new(checksum[0]) if checksum else None
        room = record.size_bytes - offset
        received = 0

        async def passing() -> AsyncIterator[bytes]:
            nonlocal received
            async for piece in data:
                received += len(piece)
                if received > room:
                    raise TooLarge(
                        f"the chunk passes the declared Upload-Length by {received - room}"
                    )
                if claimed is not None:
                    claimed.update(piece)
                if whole is not None:
                    whole.update(piece)
                yield piece

        def verify() -> None:
            assert claimed is not None and checksum is not None
            if not hmac.compare_digest(claimed.digest(), checksum[1]):
                raise ChecksumMismatch(
                    f"the chunk's {checksum[0]} does not match Upload-Checksum; it was discarded"
                )

        try:
            new_offset = await self._blobs.append(
                record.storage_key,
                record.storage_token,
                offset,
                passing(),
                verify if checksum else None,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            # The client went away mid-chunk (or sent too much): without a checksum what
            # arrived is kept, so record it, and the client resumes after it.
            if checksum is None and received:
                self._hashers.pop(file_id, None)
                await self._catch_up(record)
            raise
        chunk_checksum = f"{checksum[0]}:{checksum[1].hex()}" if checksum else None
        return await self._progress(record, offset, new_offset - offset, chunk_checksum, whole)

    async def resume_point(self, requester: UUID, file_id: UUID) -> FileRecord:
        """The upload as `upload` gives it, its offset first caught up with the blob store,
        which is ahead after a process stopped between storing bytes and recording them."""
        lock = self._locks.get(file_id)
        if lock is not None:  # a chunk is arriving here: answer once it is recorded
            async with lock:
                pass
        record = await self.upload(requester, file_id)
        if record.complete:
            return record
        if record.offset == record.size_bytes:  # stopped between its last chunk and completion
            return await self._complete(record)
        return await self._catch_up(record)

    async def _catch_up(self, record: FileRecord) -> FileRecord:
        written = await self._blobs.written(record.storage_key, record.storage_token)
        if written <= record.offset:
            return record
        return await self._progress(record, record.offset, written - record.offset, None, None)

    async def _progress(
        self,
        record: FileRecord,
        offset: int,
        size: int,
        chunk_checksum: str | None,
        whole: Any | None,
    ) -> FileRecord:
        now = self._clock.now()
        chunk = Chunk(offset, size, chunk_checksum, now)
        moved = record.progressed(chunk, now, now + self._policy.expiry)
        await self._files.update(moved, expected_offset=offset)
        if whole is not None:
            self._keep_hasher(record.file_id, _Hasher(moved.offset, whole))
        if moved.offset == moved.size_bytes:
            return await self._complete(moved)
        return moved

    def _keep_hasher(self, file_id: UUID, hasher: _Hasher) -> None:
        # Uploads abandoned on this process (resumed elsewhere, never finished) must not pile
        # up: past the bound the oldest go, and their files are hashed from storage instead.
        self._hashers.pop(file_id, None)
        self._hashers[file_id] = hasher
        while len(self._hashers) > MAX_HASHERS:
            del self._hashers[next(iter(self._hashers))]

    async def _complete(self, record: FileRecord) -> FileRecord:
        await self._blobs.finish(record.storage_key, record.storage_token)
        hasher = self._hashers.pop(record.file_id, None)
        if hasher is not None and hasher.offset == record.size_bytes:
            sha256 = hasher.sha256.hexdigest()
        else:  # the upload moved between processes: hash it once from storage
            whole = hashlib.sha256()
            async for piece in self._blobs.read(record.storage_key):
                whole.update(piece)
            sha256 = whole.hexdigest()
        now = self._clock.now()
        done = replace(
            record,
            status=UploadStatus.COMPLETED,
            checksum=f"sha256:{sha256}",
            completed_at=now,
            updated_at=now,
            expires_at=None,
        )
        await self._files.update(done, expected_offset=record.offset)
        return await self._announce(done)

    async def _announce(self, record: FileRecord) -> FileRecord:
        """Put `file.uploaded` in the outbox, then remember it went. A crash in between
        announces it again from the sweep: the event's id is stable, consumers dedupe on it."""
        await self._outbox.enqueue([file_uploaded(record.to_document(), record.completed_at)])
        announced = replace(record, announced=True)
        await self._files.update(announced, expected_offset=record.offset)
        return announced

    async def terminate(self, requester: UUID, file_id: UUID) -> None:
        """tus DELETE: the upload (or the finished file) and its bytes go."""
        record = await self._files.get(file_id)
        if record is None or record.owner_id != requester:
            raise NotFound(f"no upload {file_id}")
        self._hashers.pop(file_id, None)
        if record.complete:
            await self._blobs.delete(record.storage_key)
        else:
            await self._blobs.abort(record.storage_key, record.storage_token)
        await self._files.delete(file_id)

    # reading

    async def describe(self, reader: UUID, file_id: UUID) -> tuple[FileRecord, str | None]:
        """The file as a member of its conversation sees it, with a signed download link once
        it is complete."""
        record = await self._readable(reader, file_id)
        return record, self._link(record) if record.complete else None

    async def link_for_channel(self, file_id: UUID) -> ChannelFile:
        """A completed file as an external platform fetches it: a signed link valid for the
        policy's `link_ttl`, absolute when `public_base_url` is set (relative otherwise, which
        no platform can fetch: the sender says so)."""
        record = await self._files.get(file_id)
        if record is None or not record.complete:
            raise NotFound(f"no completed file {file_id}")
        return ChannelFile(self._link(record), record.filename, record.mime_type, record.size_bytes)

    def _link(self, record: FileRecord) -> str:
        expires = int((self._clock.now() + self._policy.link_ttl).timestamp())
        signature = sign_download(self._policy.signing_secret, record.file_id, expires)
        query = urlencode({"expires": expires, "signature": signature})
        return f"{self._policy.public_base_url}/v1/files/{record.file_id}/content?{query}"

    async def download(
        self,
        file_id: UUID,
        expires: int,
        signature: str,
        range_header: str | None,
        with_body: bool = True,
    ) -> Download:
        """The bytes a signed link stands for; `Forbidden` for a tampered or expired link."""
        if not signature_valid(self._policy.signing_secret, file_id, expires, signature):
            raise Forbidden("the download link's signature is not valid")
        if expires < self._clock.now().timestamp():
            raise Forbidden("the download link has expired; ask for a new one")
        record = await self._files.get(file_id)
        if record is None or not record.complete:
            raise NotFound(f"no file {file_id}")
        wanted = parse_range(range_header, record.size_bytes)
        body = None
        if with_body and record.size_bytes:
            start, end = (wanted.start, wanted.end) if wanted else (0, None)
            body = self._blobs.read(record.storage_key, start, end)
        return Download(record, wanted, body)

    async def sendable(self, sender: UUID, conversation_id: UUID, file_id: UUID) -> dict[str, Any]:
        """The `file_reference` of a message sending `file_id` into `conversation_id`: the file
        must be complete and belong to that conversation."""
        record = await self._files.get(file_id)
        if record is None or record.conversation_id != conversation_id:
            raise InvalidInput(f"file {file_id} is not a file of this conversation")
        if not record.complete:
            raise InvalidInput(f"file {file_id} is still uploading ({record.offset} bytes so far)")
        return {
            "file_id": str(record.file_id),
            "filename": record.filename,
            "mime_type": record.mime_type,
            "size_bytes": record.size_bytes,
            "checksum": record.checksum,
        }

    async def _readable(self, reader: UUID, file_id: UUID) -> FileRecord:
        record = await self._files.get(file_id)
        if record is None or record.status is UploadStatus.EXPIRED:
            raise NotFound(f"no file {file_id}")
        if record.owner_id != reader:
            try:
                await self._conversations.member_ids(record.conversation_id, reader)
            except NotFound:
                raise NotFound(f"no file {file_id}") from None
        return record

    async def ping(self) -> None:
        await self._files.ping()

    # the sweep

    async def sweep(self, now: datetime | None = None) -> int:
        """Free the space of expired uploads (their records stay, as `expired`, so later requests
        get 410) and announce completed files whose event did not go out; at most `SWEEP_BATCH`
        of each per call. How many expired."""
        now = now or self._clock.now()
        freed = 0
        for record in await self._files.expired(now, SWEEP_BATCH):
            gone = replace(record, status=UploadStatus.EXPIRED, updated_at=now)
            try:
                await self._files.update(gone, expected_offset=record.offset)
            except (Conflict, NotFound):
                continue  # a chunk arrived, or it was terminated, meanwhile
            await self._blobs.abort(record.storage_key, record.storage_token)
            self._hashers.pop(record.file_id, None)
            freed += 1
        for record in await self._files.unannounced(SWEEP_BATCH):
            await self._announce(record)
        return freed
