"""Files: the seed's `file_metadata` document, tus metadata, and signed download links."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote
from uuid import UUID

from chat4all.domain.errors import InvalidInput, RangeNotSatisfiable

# tus `Tus-Max-Size`: what the seed promises (2 GiB).
MAX_FILE_SIZE = 2 << 30
CHECKSUM_ALGORITHMS = ("sha1", "sha256")
MAX_FILENAME_LENGTH = 255


class UploadStatus(StrEnum):
    INITIATED = "initiated"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    EXPIRED = "expired"

    @property
    def open(self) -> bool:
        return self in (UploadStatus.INITIATED, UploadStatus.IN_PROGRESS)


@dataclass(frozen=True)
class Chunk:
    """One accepted PATCH: where it starts, how long it is, and its checksum."""

    offset: int
    size_bytes: int
    # The client's verified `Upload-Checksum` ("sha1:<hex>", "sha256:<hex>"); None when it sent
    # none (the whole file's SHA-256 is always computed).
    checksum: str | None
    uploaded_at: datetime


@dataclass(frozen=True)
class FileRecord:
    """A file and its upload's progress (the seed's `file_metadata` document)."""

    file_id: UUID
    owner_id: UUID
    conversation_id: UUID
    filename: str
    mime_type: str
    size_bytes: int
    storage_key: str
    storage_token: str  # the blob store's handle on the unfinished write (S3: the upload id)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None  # open uploads: 24 h after the last activity
    offset: int = 0
    status: UploadStatus = UploadStatus.INITIATED
    chunks: tuple[Chunk, ...] = ()
    checksum: str | None = None  # "sha256:<hex>" of the whole file, once completed
    completed_at: datetime | None = None
    announced: bool = False  # `file.uploaded` is in the outbox
    access_policy: str = "conversation"  # the conversation's members may read it
    storage_provider: str = "local"

    @property
    def complete(self) -> bool:
        return self.status is UploadStatus.COMPLETED

    def progressed(self, chunk: Chunk, now: datetime, expires_at: datetime | None) -> FileRecord:
        return replace(
            self,
            offset=chunk.offset + chunk.size_bytes,
            status=UploadStatus.IN_PROGRESS,
            chunks=(*self.chunks, chunk),
            updated_at=now,
            expires_at=expires_at,
        )

    def to_document(self) -> dict[str, Any]:
        """The seed's `file_metadata` shape (times as ISO 8601)."""
        return {
            "file_id": str(self.file_id),
            "original_filename": self.filename,
            "size_bytes": self.size_bytes,
            "mime_type": self.mime_type,
            "conversation_id": str(self.conversation_id),
            "storage": {
                "provider": self.storage_provider,
                "key": self.storage_key,
                "upload_token": self.storage_token,
            },
            "chunks": [
                {
                    "chunk_number": i + 1,
                    "offset": c.offset,
                    "size_bytes": c.size_bytes,
                    "checksum": c.checksum,
                    "uploaded_at": c.uploaded_at.isoformat(),
                }
                for i, c in enumerate(self.chunks)
            ],
            "total_chunks": len(self.chunks),
            "upload_offset": self.offset,
            "upload_status": self.status.value,
            "upload_initiated_by": str(self.owner_id),
            "upload_initiated_at": self.created_at.isoformat(),
            "upload_completed_at": _iso(self.completed_at),
            "checksum": self.checksum,
            "announced": self.announced,
            "access_policy": self.access_policy,
            "allowed_users": [],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "expires_at": _iso(self.expires_at),
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> FileRecord:
        return cls(
            file_id=UUID(doc["file_id"]),
            owner_id=UUID(doc["upload_initiated_by"]),
            conversation_id=UUID(doc["conversation_id"]),
            filename=doc["original_filename"],
            mime_type=doc["mime_type"],
            size_bytes=doc["size_bytes"],
            storage_key=doc["storage"]["key"],
            storage_token=doc["storage"]["upload_token"],
            storage_provider=doc["storage"]["provider"],
            created_at=datetime.fromisoformat(doc["created_at"]),
            updated_at=datetime.fromisoformat(doc["updated_at"]),
            expires_at=_time(doc.get("expires_at")),
            offset=doc["upload_offset"],
            status=UploadStatus(doc["upload_status"]),
            chunks=tuple(
                Chunk(
                    c["offset"],
                    c["size_bytes"],
                    c["checksum"],
                    datetime.fromisoformat(c["uploaded_at"]),
                )
                for c in doc["chunks"]
            ),
            checksum=doc.get("checksum"),
            completed_at=_time(doc.get("upload_completed_at")),
            announced=doc.get("announced", False),
            access_policy=doc.get("access_policy", "conversation"),
        )


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _time(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


@dataclass(frozen=True)
class UploadMetadata:
    """What `Upload-Metadata` says about a new upload."""

    filename: str
    mime_type: str
    conversation_id: UUID
    extra: dict[str, str] = field(default_factory=dict)


_KEY = re.compile(r"^[^\s,]+$")


def parse_upload_metadata(header: str | None) -> UploadMetadata:
    """tus `Upload-Metadata`: `key base64value,key2 base64value2` (a value may be absent).
    `filename` and `conversation_id` are required, `filetype` defaults to octet-stream."""
    pairs: dict[str, str] = {}
    for item in (header or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, _, raw = item.partition(" ")
        if not _KEY.match(key):
            raise InvalidInput(f"Upload-Metadata has an invalid key {key!r}")
        if key in pairs:
            raise InvalidInput(f"Upload-Metadata repeats the key {key!r}")
        try:
            pairs[key] = base64.b64decode(raw.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise InvalidInput(f"Upload-Metadata `{key}` is not base64 of UTF-8 text") from e
    filename = pairs.pop("filename", "").strip()
    if not filename:
        raise InvalidInput("Upload-Metadata needs a `filename`")
    if len(filename) > MAX_FILENAME_LENGTH or any(ord(c) < 32 for c in filename):
        raise InvalidInput(
            f"the filename must be at most {MAX_FILENAME_LENGTH} characters, without control characters"
        )
    raw_conversation = pairs.pop("conversation_id", "")
    try:
        conversation_id = UUID(raw_conversation)
    except ValueError as e:
        raise InvalidInput("Upload-Metadata needs a `conversation_id` (a UUID)") from e
    mime_type = pairs.pop("filetype", "").strip() or "application/octet-stream"
    if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", mime_type):
        raise InvalidInput(f"`filetype` {mime_type!r} is not a media type")
    return UploadMetadata(filename, mime_type, conversation_id, pairs)


def parse_checksum(header: str) -> tuple[str, bytes]:
    """tus `Upload-Checksum: <algorithm> <base64 digest>`."""
    algorithm, _, raw = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidInput(
            f"checksum algorithm {algorithm!r} is not supported; use one of "
            + ", ".join(CHECKSUM_ALGORITHMS)
        )
    try:
        digest = base64.b64decode(raw.strip(), validate=True)
    except binascii.Error as e:
        raise InvalidInput("Upload-Checksum's digest is not base64") from e
    if len(digest) != hashlib.new(algorithm).digest_size:
        raise InvalidInput(f"Upload-Checksum's digest has the wrong length for {algorithm}")
    return algorithm, digest


def content_disposition(filename: str, inline: bool = False) -> str:
    """RFC 6266: an ASCII fallback (quotes, backslashes and non-ASCII replaced) and the exact name
    in `filename*` (RFC 8187 percent-encoded UTF-8), so no name can break out of the header."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\%' else "_" for c in filename)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def sign_download(secret: bytes, file_id: UUID, expires: int) -> str:
    """The signature of a download link of `file_id` valid until `expires` (Unix seconds)."""
    mac = hmac.new(secret, f"download:{file_id}:{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def signature_valid(secret: bytes, file_id: UUID, expires: int, signature: str) -> bool:
    # compare_digest refuses non-ASCII str (TypeError): such a signature is simply wrong.
    return signature.isascii() and hmac.compare_digest(
        sign_download(secret, file_id, expires), signature
    )


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One `Range: bytes=a-b | a- | -n` over a file of `size` bytes; None means the whole file
    (no header, or one we do not serve, such as several ranges: RFC 9110 lets us ignore it)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = re.fullmatch(r"\s*([0-9]{0,19})-([0-9]{0,19})\s*", spec)
    if not match or not (match[1] or match[2]):
        return None
    first, last = match[1], match[2]
    if not first:  # the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"the file has {size} bytes")
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    if last and int(last) < start:  # not a valid range: RFC 9110 says to ignore it
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"the range starts past the file's {size} bytes")
    end = int(last) if last else size - 1
    return ByteRange(start, min(end, size - 1))
