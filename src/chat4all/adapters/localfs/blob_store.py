"""`BlobStore` on a local folder: an unfinished upload is a file under `uploads/` that grows by
appends; finishing renames it to `objects/<key>`. Writes go through a thread in pieces of at most
`WRITE_SIZE`, so memory stays flat and the event loop never waits for the disk."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Final

from chat4all.domain.errors import Conflict, InvalidInput, NotFound, Unavailable

WRITE_SIZE: Final = 1 << 20
READ_SIZE: Final = 1 << 20


class LocalBlobStore:
    provider = "local"

    def __init__(self, root: Path) -> None:
        self._objects = root / "objects"
        self._uploads = root / "uploads"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)

    def _object(self, key: str) -> Path:
        path = (self._objects / key).resolve()
        if not path.is_relative_to(self._objects.resolve()) or not key:
            raise InvalidInput(f"blob key {key!r} leaves the store")
        return path

    def _upload(self, token: str) -> Path:
        if not token.isalnum():
            raise InvalidInput(f"upload token {token!r} is not one this store made")
        return self._uploads / token

    async def begin(self, key: str) -> str:
        self._object(key)
        token = uuid.uuid4().hex
        with _io("create an upload"):
            self._upload(token).touch(exist_ok=False)
        return token

    async def written(self, key: str, token: str) -> int:
        try:
            return self._upload(token).stat().st_size
        except FileNotFoundError as e:
            raise NotFound(f"upload {token} of {key} is gone") from e

    async def append(
        self,
        key: str,
        token: str,
        offset: int,
        data: AsyncIterable[bytes],
        verify: Callable[[], None] | None = None,
    ) -> int:
        path = self._upload(token)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError as e:
            raise NotFound(f"upload {token} of {key} is gone") from e
        try:
            size = os.fstat(fd).st_size
            if size != offset:
                raise Conflict(f"the upload holds {size} bytes, not {offset}")
            position = offset
            # Pieces are gathered (not copied) up to WRITE_SIZE and written with one pwritev.
            pending: list[bytes] = []
            size = 0
            try:
                async for piece in data:
                    pending.append(piece)
                    size += len(piece)
                    if size >= WRITE_SIZE:
                        position += await _write_at(fd, pending, position)
                        pending, size = [], 0
                if pending:
                    position += await _write_at(fd, pending, position)
                    pending = []
                if verify is not None:
                    verify()
            except BaseException:
                if verify is not None:
                    os.ftruncate(fd, offset)  # all or nothing: the chunk is discarded
                elif pending:
                    position += await _write_at(fd, pending, position)
                raise
            return position
        finally:
            os.close(fd)

    async def finish(self, key: str, token: str) -> None:
        target = self._object(key)
        with _io("finish an upload"):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                await asyncio.to_thread(_fsync_path, self._upload(token))
                self._upload(token).replace(target)
            except FileNotFoundError as e:
                if not target.exists():
                    raise NotFound(f"upload {token} of {key} is gone") from e

    async def abort(self, key: str, token: str) -> None:
        with _io("abort an upload"):
            self._upload(token).unlink(missing_ok=True)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._object(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as e:
            raise NotFound(f"no blob {key}") from e
        try:
            stop = os.fstat(fd).st_size if end is None else end + 1
            position = start
            while position < stop:
                piece = await asyncio.to_thread(
                    os.pread, fd, min(READ_SIZE, stop - position), position
                )
                if not piece:
                    break
                position += len(piece)
                yield piece
        finally:
            os.close(fd)

    async def delete(self, key: str) -> None:
        with _io("delete a blob"):
            self._object(key).unlink(missing_ok=True)

    async def close(self) -> None:
        return None


async def _write_at(fd: int, pieces: list[bytes], position: int) -> int:
    return await asyncio.to_thread(_pwrite_all, fd, pieces, position)


def _pwrite_all(fd: int, pieces: list[bytes], position: int) -> int:
    total = sum(len(p) for p in pieces)
    written = os.pwritev(fd, pieces, position)
    if written < total:  # a short write (rare on regular files): the rest, plainly
        rest = b"".join(pieces)[written:]
        while rest:
            n = os.pwrite(fd, rest, position + written)
            written += n
            rest = rest[n:]
    return written


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _io(doing: str) -> Iterator[None]:
    try:
        yield
    except (NotFound, InvalidInput):
        raise
    except OSError as e:
        raise Unavailable(f"{doing}: the disk failed: {e}") from e
