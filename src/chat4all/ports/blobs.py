"""Blob store: where file bytes live (local disk in the embedded profile, S3/MinIO in the
cluster). Writes are resumable appends, so an upload can stop anywhere and continue later."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Protocol


class BlobStore(Protocol):
    """Keys are relative paths (`2025/01/15/<uuid>`). An unreachable store raises `Unavailable`,
    an unknown key or upload `NotFound`."""

    provider: str  # the seed's `storage.provider`: "local", "minio"

    async def begin(self, key: str) -> str:
        """Start writing `key`; returns the upload's token, which the other calls take."""
        ...

    async def written(self, key: str, token: str) -> int:
        """How many bytes of the unfinished upload are stored (what a resume continues from)."""
        ...

    async def append(
        self,
        key: str,
        token: str,
        offset: int,
        data: AsyncIterable[bytes],
        verify: Callable[[], None] | None = None,
    ) -> int:
        """Append `data` at `offset`, which must be what `written` says (else `Conflict`); returns
        the new length. Without `verify`, what arrived before `data` failed is kept (a dropped
        connection loses nothing). With `verify`, the bytes are all or nothing: it is called
        once `data` ends, and if it raises, or `data` fails, none of them are kept."""
        ...

    async def finish(self, key: str, token: str) -> None:
        """Make the upload the readable object `key` (S3: complete the multipart upload)."""
        ...

    async def abort(self, key: str, token: str) -> None:
        """Drop an unfinished upload and everything it stored; dropping it again is a no-op."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The finished object's bytes `start..end` (inclusive; None: to the end), in pieces."""
        ...

    async def delete(self, key: str) -> None:
        """Delete a finished object; deleting a missing one is a no-op."""
        ...

    async def close(self) -> None: ...
