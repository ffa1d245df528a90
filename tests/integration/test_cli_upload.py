"""`chat4all upload` as a process against a real server: interrupted with Ctrl-C (SIGINT), run
again, it resumes where the server stopped, and the file arrives whole."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.harness import register
from tests.integration.tus import head

SIZE = 32 * 1024 * 1024


async def chat4all_upload(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from chat4all.cli import app; app()",
        "upload",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )


async def test_ctrl_c_then_the_same_command_resumes(base_url, http, tmp_path: Path) -> None:
    alice, bob = await register(http), await register(http)
    conversation = await alice.private_with(bob)
    path = tmp_path / "scan.pdf"
    path.write_bytes(os.urandom(SIZE))
    state = tmp_path / "state.json"
    args = [
        "--conversation",
        conversation,
        "--chunk-size",
        str(256 * 1024),
        "--state-file",
        str(state),
    ]
    env = {"CHAT4ALL_SERVER": base_url, "CHAT4ALL_TOKEN": alice.token}

    first = await chat4all_upload(str(path), *args, env=env)
    # Wait until the server has some of it, then press Ctrl-C.
    while True:
        if state.exists() and (saved := json.loads(state.read_text())):
            location = next(iter(saved.values())).removeprefix(base_url)
            if int((await head(alice, location)).headers["Upload-Offset"]) > 0:
                break
        await asyncio.sleep(0.02)
    first.send_signal(signal.SIGINT)
    _, err = await first.communicate()
    assert first.returncode == 130, err.decode()
    assert b"run the same command again" in err
    stopped = int((await head(alice, location)).headers["Upload-Offset"])
    assert 0 < stopped < SIZE, "the upload finished before Ctrl-C: make SIZE larger"

    second = await chat4all_upload(str(path), *args, env=env)
    out, err = await second.communicate()
    assert second.returncode == 0, err.decode()
    file_id = out.decode().strip().splitlines()[-1]
    assert location.endswith(file_id)  # the same upload, resumed
    body = (await alice.get(f"/v1/files/{file_id}")).json()
    assert body["checksum"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert body["mime_type"] == "application/pdf"
    assert json.loads(state.read_text()) == {}  # done: forgotten


async def test_errors_are_the_servers_detail(base_url, http, tmp_path: Path) -> None:
    alice = await register(http)
    path = tmp_path / "a.txt"
    path.write_text("hello")
    process = await chat4all_upload(
        str(path),
        "--conversation",
        "00000000-0000-0000-0000-000000000000",
        "--state-file",
        str(tmp_path / "s.json"),
        env={"CHAT4ALL_SERVER": base_url, "CHAT4ALL_TOKEN": alice.token},
    )
    _, err = await process.communicate()
    assert process.returncode == 1
    assert b"404" in err and b"not" in err
