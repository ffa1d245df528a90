"""Files: metadata with a signed download link, and the content behind such links (Range,
HEAD). The link is the credential, so channels and browsers can fetch it without a token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from chat4all.api.rest.deps import PROBLEM_RESPONSES, CallerDep, PlatformDep
from chat4all.domain.errors import Forbidden
from chat4all.domain.files import content_disposition

router = APIRouter(prefix="/v1/files", tags=["files"], responses=PROBLEM_RESPONSES)


class FileOut(BaseModel):
    file_id: UUID
    conversation_id: UUID
    filename: str
    mime_type: str
    size_bytes: int
    upload_status: str
    upload_offset: int
    checksum: str | None
    uploaded_by: UUID
    created_at: datetime
    completed_at: datetime | None
    download_url: str | None
    download_url_expires_in: int | None


@router.get("/{file_id}", response_model=FileOut)
async def describe(file_id: UUID, caller: CallerDep) -> FileOut:
    """The file, for members of its conversation, with an expiring signed `download_url` once
    the upload is complete."""
    files = caller.platform.files
    record, url = await files.describe(caller.user_id, file_id)
    return FileOut(
        file_id=record.file_id,
        conversation_id=record.conversation_id,
        filename=record.filename,
        mime_type=record.mime_type,
        size_bytes=record.size_bytes,
        upload_status=record.status.value,
        upload_offset=record.offset,
        checksum=record.checksum,
        uploaded_by=record.owner_id,
        created_at=record.created_at,
        completed_at=record.completed_at,
        download_url=url,
        download_url_expires_in=int(files.policy.link_ttl.total_seconds()) if url else None,
    )


CONTENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}},
    206: {"description": "The requested range"},
    403: {"description": "The link's signature is tampered with or expired"},
    416: {"description": "The range is outside the file"},
}


# GET and HEAD as two routes (one `api_route` with both would give both one operation id).
@router.head("/{file_id}/content", responses=CONTENT_RESPONSES)
@router.get("/{file_id}/content", responses=CONTENT_RESPONSES)
async def content(
    file_id: UUID,
    request: Request,
    platform: PlatformDep,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """The file's bytes behind a signed link (`GET /v1/files/{id}` makes one)."""
    if expires is None or signature is None:
        raise Forbidden("a signed link is needed: get one from GET /v1/files/{file_id}")
    head = request.method == "HEAD"
    download = await platform.files.download(
        file_id, expires, signature, range_header, with_body=not head
    )
    record, wanted = download.record, download.range
    headers = {
        "Content-Disposition": content_disposition(record.filename),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=0",
        "X-Content-Type-Options": "nosniff",
        # Whatever type the uploader claimed, a browser never runs it on our origin.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Length": str(wanted.length if wanted else record.size_bytes),
    }
    if record.checksum:
        headers["ETag"] = f'"{record.checksum}"'
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{record.size_bytes}"
    if download.body is None:
        return Response(status_code=status, headers=headers, media_type=record.mime_type)
    return StreamingResponse(
        download.body, status_code=status, headers=headers, media_type=record.mime_type
    )
