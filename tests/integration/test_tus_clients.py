"""Real tus clients against a real server: tuspy (Python) and tus-js-client (Node), each
stopped at 60 % and resumed, and the file that arrives is the one that left (SHA-256)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from tusclient import client as tus_client

from tests.integration.harness import User, register
from tests.integration.tus import TUS, head, metadata

TUS_JS = Path(__file__).parent / "tus_js"
SIZE = 24 * 1024 * 1024  # large enough for many chunks, small enough for CI


@pytest.fixture
async def sender(http) -> tuple[User, str]:
    alice, bob = await register(http), await register(http)
    return alice, await alice.private_with(bob)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "holiday video.bin"
    with path.open("wb") as f:
        for _ in range(SIZE // (1 << 20)):
            f.write(os.urandom(1 << 20))
    return path


async def described(user: User, location: str) -> dict[str, Any]:
    r = await user.get(f"/v1/files/{location.rsplit('/', 1)[1]}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.file_digest(path.open("rb"), "sha256").hexdigest()


async def test_tuspy_stops_at_60_percent_and_resumes(base_url, sender, big_file) -> None:
    alice, conversation = sender
    meta = {"filename": big_file.name, "conversation_id": conversation}

    def first_part() -> str:
        client = tus_client.TusClient(f"{base_url}/v1/uploads", headers=alice.auth)
        uploader = client.uploader(
            str(big_file), chunk_size=1 << 20, metadata=meta, upload_checksum=True
        )
        uploader.upload(stop_at=int(SIZE * 0.6))
        return str(uploader.url)

    location = await asyncio.to_thread(first_part)
    stopped = int((await head(alice, location)).headers["Upload-Offset"])
    assert int(SIZE * 0.6) <= stopped < SIZE

    def resume() -> None:
        client = tus_client.TusClient(f"{base_url}/v1/uploads", headers=alice.auth)
        uploader = client.uploader(str(big_file), chunk_size=4 << 20, url=location)
        assert uploader.get_offset() == stopped  # it asks the server where to go on from
        uploader.upload()

    await asyncio.to_thread(resume)
    body = await described(alice, location)
    assert body["checksum"] == sha256_of(big_file)
    async with httpx.AsyncClient(timeout=30) as http:
        downloaded = hashlib.sha256()
        async with http.stream("GET", f"{base_url}{body['download_url']}") as r:
            async for piece in r.aiter_bytes():
                downloaded.update(piece)
    assert "sha256:" + downloaded.hexdigest() == body["checksum"]


async def test_a_connection_cut_mid_chunk_keeps_what_arrived(base_url, sender, big_file) -> None:
    """One PATCH of the whole file, cut at 60 %: the server keeps what it received, and tuspy
    resumes from the offset the server reports."""
    alice, conversation = sender
    created = await alice.http.post(
        "/v1/uploads",
        headers={
            **alice.auth,
            **TUS,
            "Upload-Length": str(SIZE),
            "Upload-Metadata": metadata(filename="t.bin", conversation_id=conversation),
        },
    )
    location = created.headers["Location"]
    data = big_file.read_bytes()

    async def cut_at_60_percent():
        for i in range(0, int(SIZE * 0.6), 1 << 20):
            yield data[i : i + (1 << 20)]
        raise ConnectionResetError("the cable was pulled")

    with pytest.raises(ConnectionResetError):
        await alice.http.patch(
            location,
            headers={
                **alice.auth,
                **TUS,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
            },
            content=cut_at_60_percent(),
        )
    # HEAD waits for the server to finish with the cut request, then says where it stopped.
    offset = int((await head(alice, location)).headers["Upload-Offset"])
    assert 0 < offset <= int(SIZE * 0.6) + (1 << 20)

    def resume() -> None:
        client = tus_client.TusClient(f"{base_url}/v1/uploads", headers=alice.auth)
        client.uploader(str(big_file), chunk_size=8 << 20, url=f"{base_url}{location}").upload()

    await asyncio.to_thread(resume)
    assert (await described(alice, location))["checksum"] == sha256_of(big_file)


def node_modules() -> Path:
    if not (TUS_JS / "node_modules" / "tus-js-client").exists():
        npm = shutil.which("npm")
        assert npm, "tus-js-client needs Node 20 and npm"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TUS_JS, check=True)
    return TUS_JS


async def tus_js(*args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(node_modules() / "upload.mjs"),
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, (out + err).decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_tus_js_client_stops_at_60_percent_and_resumes(base_url, sender, big_file) -> None:
    alice, conversation = sender
    endpoint = f"{base_url}/v1/uploads"
    chunk = str(2 << 20)
    stopped = await tus_js(endpoint, alice.token, str(big_file), conversation, chunk, "0.6")
    assert stopped["event"] == "stopped", stopped
    location = stopped["url"]
    offset = int((await head(alice, location.removeprefix(base_url))).headers["Upload-Offset"])
    assert 0 < offset < SIZE

    done = await tus_js(endpoint, alice.token, str(big_file), conversation, chunk, "", location)
    assert done == {"event": "success", "url": location}
    assert (await described(alice, location))["checksum"] == sha256_of(big_file)
