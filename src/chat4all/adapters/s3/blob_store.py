"""`BlobStore` on S3 multipart uploads (MinIO here, as tusd's S3 store does it).

An upload is one multipart upload (its id is the token). Bytes arriving in a PATCH are spooled
to a temporary file on local disk, never held in memory, and sent as parts of exactly
`part_size` bytes (S3 wants at least 5 MiB for every part but the last). What is left over at
the end of a PATCH, less than a part, is kept as its own small object, the *tail*, named after
the number of the part it will start: `.uploads/<key>/tail.<n>`. The next PATCH, on any
gateway, starts its spool from that tail. So the stored length is always the listed parts plus
the tail of the next part number, and a crash between two of these writes leaves a stale tail
that no count includes (a part n uploaded makes `tail.n` obsolete by its name).

With `verify` (a tus checksum), nothing is sent before the whole PATCH has arrived and checked:
a mismatch leaves the upload exactly as it was.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from chat4all.domain.errors import Chat4AllError, Conflict, NotFound, Unavailable

MIN_PART_SIZE: Final = 5 << 20
READ_SIZE: Final = 1 << 20
_MISSING: Final = frozenset({"NoSuchKey", "NoSuchUpload", "404", "NotFound"})


@dataclass(frozen=True)
class S3Location:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


class S3BlobStore:
    provider = "minio"

    def __init__(
        self,
        client: Any,
        exit_stack: AsyncExitStack,
        bucket: str,
        part_size: int,
        spool_dir: Path | None,
    ) -> None:
        self._s3 = client
        self._exit = exit_stack
        self._bucket = bucket
        self._part_size = part_size
        self._spool_dir = spool_dir

    @classmethod
    async def connect(
        cls, location: S3Location, *, part_size: int = 8 << 20, spool_dir: Path | None = None
    ) -> S3BlobStore:
        """A client on `location`, creating the bucket if it does not exist."""
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes")
        stack = AsyncExitStack()
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=location.endpoint_url,
                aws_access_key_id=location.access_key,
                aws_secret_access_key=location.secret_key,
                region_name=location.region,
                config=config,
            )
        )
        store = cls(client, stack, location.bucket, part_size, spool_dir)
        try:
            with _translated("create the bucket"):
                try:
                    await client.head_bucket(Bucket=location.bucket)
                except ClientError as e:
                    if _code(e) not in _MISSING:
                        raise
                    with contextlib.suppress(ClientError):  # another process made it first
                        await client.create_bucket(Bucket=location.bucket)
        except BaseException:
            await stack.aclose()
            raise
        return store

    async def close(self) -> None:
        await self._exit.aclose()

    # writing

    async def begin(self, key: str) -> str:
        with _translated("start a multipart upload"):
            answer = await self._s3.create_multipart_upload(Bucket=self._bucket, Key=key)
        return str(answer["UploadId"])

    async def written(self, key: str, token: str) -> int:
        parts = await self._parts(key, token)
        return sum(size for _, size, _ in parts) + await self._tail_size(key, len(parts) + 1)

    async def append(
        self,
        key: str,
        token: str,
        offset: int,
        data: AsyncIterable[bytes],
        verify: Callable[[], None] | None = None,
    ) -> int:
        parts = await self._parts(key, token)
        number = len(parts) + 1
        base = sum(size for _, size, _ in parts)
        with tempfile.TemporaryFile(dir=self._spool_dir) as spool:
            tail = await self._load_tail(key, number, spool)
            if base + tail != offset:
                raise Conflict(f"the upload holds {base + tail} bytes, not {offset}")
            try:
                async for piece in data:
                    spool.write(piece)
                    if verify is None and spool.tell() >= self._part_size:
                        base, number = await self._send_parts(key, token, spool, base, number)
                if verify is not None:
                    verify()
            except BaseException:
                if verify is None:  # keep what arrived: the client resumes after it
                    await self._keep(key, token, spool, base, number)
                raise
            return await self._keep(key, token, spool, base, number)

    async def _keep(self, key: str, token: str, spool: IO[bytes], base: int, number: int) -> int:
        """Send the spool's whole parts, store the rest as the next part's tail."""
        base, number = await self._send_parts(key, token, spool, base, number)
        rest = spool.tell()
        if rest:
            spool.seek(0)
            with _translated("store the upload's tail"):
                await self._s3.put_object(
                    Bucket=self._bucket, Key=_tail(key, number), Body=spool.read(rest)
                )
        return base + rest

    async def _send_parts(
        self, key: str, token: str, spool: IO[bytes], base: int, number: int
    ) -> tuple[int, int]:
        """Upload every whole part in the spool; the remainder moves to the spool's start."""
        size = spool.tell()
        spool.seek(0)
        sent = 0
        while size - sent >= self._part_size:
            body = spool.read(self._part_size)
            with _translated("upload a part"):
                await self._s3.upload_part(
                    Bucket=self._bucket, Key=key, UploadId=token, PartNumber=number, Body=body
                )
            sent += len(body)
            number += 1
        rest = spool.read()
        spool.seek(0)
        spool.truncate()
        spool.write(rest)
        return base + sent, number

    async def finish(self, key: str, token: str) -> None:
        try:
            parts = await self._parts(key, token)
        except NotFound:
            if await self._exists(key):  # finished before (a retry after a crash)
                return
            raise
        number = len(parts) + 1
        with tempfile.TemporaryFile(dir=self._spool_dir) as spool:
            if await self._load_tail(key, number, spool) or not parts:
                spool.seek(0)
                with _translated("upload the last part"):
                    answer = await self._s3.upload_part(
                        Bucket=self._bucket,
                        Key=key,
                        UploadId=token,
                        PartNumber=number,
                        Body=spool.read(),
                    )
                parts.append((number, spool.tell(), answer["ETag"]))
        with _translated("complete the multipart upload"):
            await self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=token,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, _, e in parts]},
            )
        await self._drop_tails(key)

    async def abort(self, key: str, token: str) -> None:
        with _translated("abort the multipart upload"):
            try:
                await self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=token)
            except ClientError as e:
                if _code(e) not in _MISSING:
                    raise
        await self._drop_tails(key)

    # reading

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        wanted = f"bytes={start}-{'' if end is None else end}"
        with _translated(f"read {key}"):
            try:
                answer = await self._s3.get_object(Bucket=self._bucket, Key=key, Range=wanted)
            except ClientError as e:
                if _code(e) == "InvalidRange":  # an empty object
                    return
                raise
            async with answer["Body"] as body:
                while piece := await body.read(READ_SIZE):
                    yield piece

    async def delete(self, key: str) -> None:
        with _translated(f"delete {key}"):
            await self._s3.delete_object(Bucket=self._bucket, Key=key)

    # the pieces

    async def _parts(self, key: str, token: str) -> list[tuple[int, int, str]]:
        """(number, size, etag) of every uploaded part, in order."""
        parts: list[tuple[int, int, str]] = []
        marker = 0
        with _translated("list the uploaded parts"):
            while True:
                page = await self._s3.list_parts(
                    Bucket=self._bucket, Key=key, UploadId=token, PartNumberMarker=marker
                )
                parts += [(p["PartNumber"], p["Size"], p["ETag"]) for p in page.get("Parts", [])]
                if not page.get("IsTruncated"):
                    break
                marker = page["NextPartNumberMarker"]
        # Parts are numbered 1, 2, ... with no gap; a gap would mean someone else wrote here.
        if [n for n, _, _ in parts] != list(range(1, len(parts) + 1)):
            raise Conflict(f"the parts of {key} are not numbered 1..{len(parts)}")
        return parts

    async def _exists(self, key: str) -> bool:
        with _translated(f"look for {key}"):
            try:
                await self._s3.head_object(Bucket=self._bucket, Key=key)
            except ClientError as e:
                if _code(e) in _MISSING:
                    return False
                raise
        return True

    async def _tail_size(self, key: str, number: int) -> int:
        with _translated("look at the upload's tail"):
            try:
                answer = await self._s3.head_object(Bucket=self._bucket, Key=_tail(key, number))
            except ClientError as e:
                if _code(e) in _MISSING:
                    return 0
                raise
        return int(answer["ContentLength"])

    async def _load_tail(self, key: str, number: int, spool: IO[bytes]) -> int:
        """Copy the tail of part `number`, if any, into the spool; its size."""
        with _translated("read the upload's tail"):
            try:
                answer = await self._s3.get_object(Bucket=self._bucket, Key=_tail(key, number))
            except ClientError as e:
                if _code(e) in _MISSING:
                    return 0
                raise
            async with answer["Body"] as body:
                while piece := await body.read(READ_SIZE):
                    spool.write(piece)
        return spool.tell()

    async def _drop_tails(self, key: str) -> None:
        with _translated("delete the upload's tails"):
            page = await self._s3.list_objects_v2(Bucket=self._bucket, Prefix=_tail(key, ""))
            for item in page.get("Contents", []):
                await self._s3.delete_object(Bucket=self._bucket, Key=item["Key"])


def _tail(key: str, number: int | str) -> str:
    return f".uploads/{key}/tail.{number}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _translated(doing: str) -> Iterator[None]:
    try:
        yield
    except Chat4AllError:
        raise
    except ClientError as e:
        if _code(e) in _MISSING:
            raise NotFound(f"{doing}: {e}") from e
        raise Unavailable(f"{doing}: S3 refused: {e}") from e
    except (BotoCoreError, OSError) as e:
        raise Unavailable(f"{doing}: S3 cannot be reached: {e}") from e
