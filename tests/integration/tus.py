"""Small helpers to speak tus to the test server by hand (the real clients are tested too)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.integration.harness import User

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = {"Content-Type": "application/offset+octet-stream"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def create(
    user: User,
    conversation_id: str,
    length: int,
    filename: str = "report.pdf",
    filetype: str = "application/pdf",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent: dict[str, Any] = {
        **user.auth,
        **TUS,
        "Upload-Length": str(length),
        "Upload-Metadata": metadata(
            filename=filename, filetype=filetype, conversation_id=conversation_id
        ),
        **(headers or {}),
    }
    if body is not None:
        sent |= OFFSET_STREAM
    return await user.http.post("/v1/uploads", headers=sent, content=body)


async def upload(user: User, conversation_id: str, data: bytes, **kw: Any) -> str:
    """The file id of `data`, uploaded in one request (creation-with-upload)."""
    r = await create(user, conversation_id, len(data), body=data, **kw)
    assert r.status_code == 201, r.text
    assert r.headers["Upload-Offset"] == str(len(data))
    return r.headers["Location"].rsplit("/", 1)[1]


async def patch(
    user: User, location: str, offset: int, data: bytes, **headers: str
) -> httpx.Response:
    return await user.http.patch(
        location,
        headers={**user.auth, **TUS, **OFFSET_STREAM, "Upload-Offset": str(offset), **headers},
        content=data,
    )


async def head(user: User, location: str) -> httpx.Response:
    return await user.http.head(location, headers={**user.auth, **TUS})
