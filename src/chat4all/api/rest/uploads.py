"""Uploads over tus 1.0.0 (creation, creation-with-upload, checksum, expiration, termination).
The upload's id is the file's id. Request bodies stream to the blob store as they arrive."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from email.utils import format_datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response, status
from starlette.requests import ClientDisconnect

from chat4all.api.problems import problem
from chat4all.api.rest.deps import PROBLEM_RESPONSES, CallerDep, PlatformDep
from chat4all.api.tus import TUS_VERSION
from chat4all.domain.errors import InvalidInput
from chat4all.domain.files import (
    CHECKSUM_ALGORITHMS,
    FileRecord,
    parse_checksum,
    parse_upload_metadata,
)

router = APIRouter(prefix="/v1/uploads", tags=["uploads"], responses=PROBLEM_RESPONSES)

OFFSET_STREAM = "application/offset+octet-stream"
EXTENSIONS = "creation,creation-with-upload,expiration,checksum,termination"


def _progress_headers(record: FileRecord) -> dict[str, str]:
    headers = {"Upload-Offset": str(record.offset), "Cache-Control": "no-store"}
    if record.expires_at is not None and record.status.open:
        headers["Upload-Expires"] = format_datetime(record.expires_at, usegmt=True)
    return headers


def _non_negative(raw: str | None, name: str) -> int:
    if raw is None or not re.fullmatch(r"[0-9]{1,19}", raw.strip()):
        raise InvalidInput(f"`{name}` must be a non-negative integer")
    return int(raw)


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for piece in request.stream():
        if piece:
            yield piece


@router.options("", status_code=204, include_in_schema=False)
async def capabilities(platform: PlatformDep) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(platform.files.policy.max_size),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"description": "Created; `Location` is the upload's URL"},
        413: {"description": "Larger than Tus-Max-Size or the caller's quota"},
    },
)
async def create(
    request: Request,
    caller: CallerDep,
    upload_length: Annotated[str | None, Header()] = None,
    upload_defer_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    """Start an upload: `Upload-Length`, and `Upload-Metadata` with `filename`, `filetype` and
    `conversation_id` (base64 values). A body of `application/offset+octet-stream` is the
    first chunk."""
    if upload_defer_length is not None:
        raise InvalidInput("Upload-Defer-Length is not supported; send Upload-Length")
    length = _non_negative(upload_length, "Upload-Length")
    meta = parse_upload_metadata(upload_metadata)
    files = caller.platform.files
    record = await files.create_upload(caller.user_id, length, meta)
    headers = {"Location": f"/v1/uploads/{record.file_id}"}
    if content_type == OFFSET_STREAM and length and request.headers.get("content-length") != "0":
        # A dropped connection leaves the upload and what arrived; the client resumes with HEAD.
        with contextlib.suppress(ClientDisconnect):
            record = await files.append(caller.user_id, record.file_id, 0, _body(request))
    headers |= _progress_headers(record)
    return Response(status_code=201, headers=headers)


@router.head("/{file_id}", responses={410: {"description": "The upload expired"}})
async def progress(file_id: UUID, caller: CallerDep) -> Response:
    """Where the upload stands: `Upload-Offset` and `Upload-Length`."""
    record = await caller.platform.files.resume_point(caller.user_id, file_id)
    headers = _progress_headers(record) | {"Upload-Length": str(record.size_bytes)}
    return Response(status_code=200, headers=headers)


@router.patch(
    "/{file_id}",
    status_code=204,
    responses={
        409: {"description": "Upload-Offset is not the upload's offset"},
        410: {"description": "The upload expired"},
        415: {"description": "Content-Type is not application/offset+octet-stream"},
        460: {"description": "Checksum mismatch: the chunk was discarded"},
    },
)
async def append(
    file_id: UUID,
    request: Request,
    caller: CallerDep,
    upload_offset: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    """Append the body at `Upload-Offset`; with `Upload-Checksum: sha1|sha256 <base64>` the
    chunk is checked, and discarded (460) when it does not match."""
    if content_type != OFFSET_STREAM:
        return problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"a chunk is sent as `Content-Type: {OFFSET_STREAM}`",
            request.url.path,
        )
    offset = _non_negative(upload_offset, "Upload-Offset")
    checksum = parse_checksum(upload_checksum) if upload_checksum else None
    try:
        record = await caller.platform.files.append(
            caller.user_id, file_id, offset, _body(request), checksum
        )
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is listening; what arrived is kept
    return Response(status_code=204, headers=_progress_headers(record))


@router.delete("/{file_id}", status_code=204)
async def terminate(file_id: UUID, caller: CallerDep) -> Response:
    """Drop the upload and its bytes."""
    await caller.platform.files.terminate(caller.user_id, file_id)
    return Response(status_code=204)
