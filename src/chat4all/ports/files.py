"""File metadata store: the seed's `file_metadata` documents (SQLite embedded, MongoDB in the
cluster)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

from chat4all.domain.files import FileRecord


class FileStore(Protocol):
    """Every method is atomic. An unreachable store raises `Unavailable`."""

    async def create(self, record: FileRecord) -> None:
        """Store a new upload; `AlreadyExists` when its file_id is taken."""
        ...

    async def get(self, file_id: UUID) -> FileRecord | None: ...

    async def update(self, record: FileRecord, expected_offset: int) -> None:
        """Replace the stored record if its offset is still `expected_offset` (two writers
        racing on one upload: the second gets `Conflict`); `NotFound` if it is gone."""
        ...

    async def delete(self, file_id: UUID) -> None:
        """Forget the file; deleting a missing one is a no-op."""
        ...

    async def bytes_used(self, owner_id: UUID) -> int:
        """The declared sizes of the owner's uploads, open or completed (their quota use)."""
        ...

    async def expired(self, now: datetime, limit: int) -> list[FileRecord]:
        """Open uploads whose `expires_at` has passed."""
        ...

    async def unannounced(self, limit: int) -> list[FileRecord]:
        """Completed uploads whose `file.uploaded` event is not yet in the outbox."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
