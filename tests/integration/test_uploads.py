"""tus at /v1/uploads and downloads at /v1/files, by hand with httpx against a real server:
every status code the protocol names, and what the bytes look like when they come back."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from uuid import UUID, uuid4

import httpx
import pytest

from chat4all.domain.files import sign_download
from tests.integration.harness import register, running_server, settings_for_tests
from tests.integration.tus import OFFSET_STREAM, TUS, create, head, metadata, patch, upload


@pytest.fixture
async def pair(http):
    alice, bob = await register(http), await register(http)
    return alice, bob, await alice.private_with(bob)


async def test_options_lists_the_protocol(http) -> None:
    r = await http.options("/v1/uploads")
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert set(r.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "expiration",
        "checksum",
        "termination",
    }
    assert r.headers["Tus-Max-Size"] == str(2 << 30)
    assert r.headers["Tus-Checksum-Algorithm"] == "sha1,sha256"


async def test_chunks_then_download_with_ranges(pair, http) -> None:
    alice, bob, conversation = pair
    data = os.urandom(3 * 1024 * 1024 + 17)
    r = await create(
        alice, conversation, len(data), filename='naïve "quote".txt', filetype="text/plain"
    )
    assert r.status_code == 201, r.text
    assert r.headers["Tus-Resumable"] == "1.0.0"
    assert (
        "Upload-Expires" in r.headers and "Location" in r.headers["Access-Control-Expose-Headers"]
    )
    location = r.headers["Location"]
    offset = 0
    for size in (1, 1024 * 1024, 2 * 1024 * 1024, 16):
        chunk = data[offset : offset + size]
        digest = base64.b64encode(hashlib.sha1(chunk).digest()).decode()
        p = await patch(alice, location, offset, chunk, **{"Upload-Checksum": f"sha1 {digest}"})
        assert p.status_code == 204, p.text
        offset += size
        assert p.headers["Upload-Offset"] == str(offset)
    h = await head(alice, location)
    assert h.status_code == 200
    assert h.headers["Upload-Offset"] == h.headers["Upload-Length"] == str(len(data))
    assert h.headers["Cache-Control"] == "no-store"

    file_id = location.rsplit("/", 1)[1]
    described = await bob.get(f"/v1/files/{file_id}")  # bob is a member: he may read it
    assert described.status_code == 200, described.text
    body = described.json()
    assert body["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert body["upload_status"] == "completed" and body["size_bytes"] == len(data)
    url = body["download_url"]

    got = await http.get(url)  # the link is the credential: no token
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert got.headers["Content-Disposition"] == (
        "attachment; filename=\"na_ve _quote_.txt\"; filename*=UTF-8''na%C3%AFve%20%22quote%22.txt"
    )
    assert got.headers["Accept-Ranges"] == "bytes"

    part = await http.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    last = await http.get(url, headers={"Range": "bytes=-10"})
    assert last.status_code == 206 and last.content == data[-10:]
    beyond = await http.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416

    headed = await http.head(url)
    assert headed.status_code == 200 and headed.content == b""
    assert headed.headers["Content-Length"] == str(len(data))


async def test_a_wrong_checksum_is_460_and_the_offset_stays(pair) -> None:
    alice, _, conversation = pair
    r = await create(alice, conversation, 100)
    location = r.headers["Location"]
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    p = await patch(alice, location, 0, b"x" * 60, **{"Upload-Checksum": f"sha256 {wrong}"})
    assert p.status_code == 460, p.text
    assert p.headers["Content-Type"] == "application/problem+json"
    assert (await head(alice, location)).headers["Upload-Offset"] == "0"
    unknown = await patch(alice, location, 0, b"x", **{"Upload-Checksum": "md5 AAAA"})
    assert unknown.status_code == 422 and "md5" in unknown.json()["detail"]
    right = base64.b64encode(hashlib.sha256(b"x" * 60).digest()).decode()
    ok = await patch(alice, location, 0, b"x" * 60, **{"Upload-Checksum": f"sha256 {right}"})
    assert ok.status_code == 204 and ok.headers["Upload-Offset"] == "60"


async def test_protocol_errors(pair, http) -> None:
    alice, _, conversation = pair
    location = (await create(alice, conversation, 10)).headers["Location"]
    await patch(alice, location, 0, b"12345")

    conflict = await patch(alice, location, 3, b"abc")
    assert conflict.status_code == 409, conflict.text
    assert (await head(alice, location)).headers["Upload-Offset"] == "5"

    old = await alice.http.head(location, headers={**alice.auth, "Tus-Resumable": "0.2.2"})
    assert old.status_code == 412 and old.headers["Tus-Version"] == "1.0.0"
    missing = await alice.http.post("/v1/uploads", headers=alice.auth)
    assert missing.status_code == 412

    too_big = await create(alice, conversation, (2 << 30) + 1)
    assert too_big.status_code == 413, too_big.text
    assert "2147483648" in too_big.json()["detail"]

    wrong_type = await alice.http.patch(
        location,
        headers={**alice.auth, **TUS, "Upload-Offset": "5", "Content-Type": "text/plain"},
        content=b"abc",
    )
    assert wrong_type.status_code == 415

    past_the_end = await patch(alice, location, 5, b"123456")
    assert past_the_end.status_code == 413
    assert (await head(alice, location)).headers["Upload-Offset"] == "5"  # nothing went in

    no_name = await alice.http.post(
        "/v1/uploads",
        headers={
            **alice.auth,
            **TUS,
            "Upload-Length": "3",
            "Upload-Metadata": metadata(conversation_id=conversation),
        },
    )
    assert no_name.status_code == 422 and "filename" in no_name.json()["detail"]
    deferred = await create(alice, conversation, 3, headers={"Upload-Defer-Length": "1"})
    assert deferred.status_code == 422
    anonymous = await http.post("/v1/uploads", headers={**TUS, "Upload-Length": "3"})
    assert anonymous.status_code == 401


async def test_termination(pair) -> None:
    alice, _, conversation = pair
    location = (await create(alice, conversation, 10)).headers["Location"]
    await patch(alice, location, 0, b"12345")
    gone = await alice.http.delete(location, headers={**alice.auth, **TUS})
    assert gone.status_code == 204
    assert (await head(alice, location)).status_code == 404
    assert (await patch(alice, location, 5, b"12345")).status_code == 404


async def test_method_override(pair) -> None:
    alice, _, conversation = pair
    location = (await create(alice, conversation, 3)).headers["Location"]
    r = await alice.http.post(
        location,
        headers={
            **alice.auth,
            **TUS,
            **OFFSET_STREAM,
            "Upload-Offset": "0",
            "X-HTTP-Method-Override": "PATCH",
        },
        content=b"abc",
    )
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "3"


async def test_non_members_see_nothing(pair, http) -> None:
    alice, _, conversation = pair
    carol = await register(http)
    refused = await create(carol, conversation, 10)
    assert refused.status_code == 404, refused.text
    file_id = await upload(alice, conversation, b"secret")
    assert (await carol.get(f"/v1/files/{file_id}")).status_code == 404
    assert (await head(carol, f"/v1/uploads/{file_id}")).status_code == 404
    assert (await carol.get(f"/v1/files/{uuid4()}")).status_code == 404


async def test_tampered_and_expired_links_are_403(pair, http, tmp_path) -> None:
    alice, _, conversation = pair
    file_id = await upload(alice, conversation, b"content")
    url = (await alice.get(f"/v1/files/{file_id}")).json()["download_url"]
    assert (await http.get(url)).status_code == 200

    tampered = url.replace("signature=", "signature=A")
    assert (await http.get(tampered)).status_code == 403
    other_file = url.replace(file_id, str(uuid4()))
    assert (await http.get(other_file)).status_code == 403
    later = int(url.split("expires=")[1].split("&")[0]) + 3600
    extended = url.split("?")[0] + f"?expires={later}&signature=" + url.split("signature=")[1]
    assert (await http.get(extended)).status_code == 403
    assert (await http.get(url.split("?")[0])).status_code == 403

    secret = settings_for_tests(tmp_path).resolved_files_signing_secret()
    past = int(time.time()) - 1
    expired = f"/v1/files/{file_id}/content?expires={past}&signature=" + sign_download(
        secret, UUID(file_id), past
    )
    r = await http.get(expired)
    assert r.status_code == 403 and "expired" in r.json()["detail"]


async def test_a_completed_upload_is_sent_as_a_file_message(pair, http) -> None:
    alice, bob, conversation = pair
    data = b"%PDF-1.7 " + os.urandom(1000)
    file_id = await upload(alice, conversation, data, filename="minutes.pdf")
    r = await alice.post(
        f"/v1/conversations/{conversation}/messages",
        {"message_id": str(uuid4()), "payload": {"type": "file", "file_id": file_id}},
    )
    assert r.status_code == 202, r.text
    history = (await bob.get(f"/v1/conversations/{conversation}/messages")).json()
    payload = history["items"][-1]["payload"]
    assert payload["file_reference"] == {
        "file_id": file_id,
        "filename": "minutes.pdf",
        "mime_type": "application/pdf",
        "size_bytes": len(data),
        "checksum": "sha256:" + hashlib.sha256(data).hexdigest(),
    }

    unfinished = (await create(alice, conversation, 10)).headers["Location"].rsplit("/", 1)[1]
    elsewhere = await alice.private_with(await register(http))
    other = await upload(alice, elsewhere, b"x")
    for wrong in (unfinished, other, str(uuid4())):
        refused = await alice.post(
            f"/v1/conversations/{conversation}/messages",
            {"message_id": str(uuid4()), "payload": {"type": "file", "file_id": wrong}},
        )
        assert refused.status_code == 422, refused.text


async def test_quota_and_creation_rate(tmp_path) -> None:
    settings = settings_for_tests(
        tmp_path, files_quota_bytes=1000, upload_rate_per_second=0.001, upload_burst=3
    )
    async with (
        running_server(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        alice, bob = await register(http), await register(http)
        conversation = await alice.private_with(bob)
        assert (await create(alice, conversation, 600)).status_code == 201
        over = await create(alice, conversation, 401)
        assert over.status_code == 413 and "quota" in over.json()["detail"]
        assert (await create(alice, conversation, 400)).status_code == 201
        limited = await create(alice, conversation, 0)
        assert limited.status_code == 429 and "Retry-After" in limited.headers


async def test_an_expired_upload_is_410(tmp_path) -> None:
    settings = settings_for_tests(tmp_path, files_upload_expiry_hours=1e-6)  # 3.6 ms
    async with (
        running_server(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        alice, bob = await register(http), await register(http)
        conversation = await alice.private_with(bob)
        location = (await create(alice, conversation, 10)).headers["Location"]
        await asyncio.sleep(0.01)  # past the expiry whatever the machine's speed
        assert (await head(alice, location)).status_code == 410
        assert (await patch(alice, location, 0, b"abc")).status_code == 410
