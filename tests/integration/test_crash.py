"""kill -9 in the middle of 10,000 sends loses no accepted message and creates no duplicate.

The server runs as a separate process. Concurrent clients send into private conversations;
halfway through, the process is killed with SIGKILL and started again on the same data. Sends
that got no answer are retried with the same message_id, as a client would. Then: every message
that got a 202 exists exactly once, sequence numbers are gap-free per conversation, and every
recipient receives everything when they connect.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from chat4all.devcluster import free_port
from tests.integration.harness import register

TOTAL = 10_000
PAIRS = 10
CONCURRENCY = 40
KILL_AFTER = TOTAL // 2

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash")]


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "CHAT4ALL_JWT_SECRET": "crash-test-secret-" + "x" * 32,
        "CHAT4ALL_PASSWORD_HASH_TIME_COST": "1",
        "CHAT4ALL_SEND_RATE_PER_SECOND": "0",  # a load test, not a person
        "CHAT4ALL_PASSWORD_HASH_MEMORY_KIB": "1024",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chat4all",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        env=env,
    )


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(300):
            assert proc.poll() is None, "the server exited"
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the server did not become ready")


async def test_kill_9_loses_nothing_and_duplicates_nothing(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(tmp_path, port)
    try:
        await wait_ready(url, proc)
        limits = httpx.Limits(max_connections=CONCURRENCY)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            pairs = []
            for _ in range(PAIRS):
                sender, recipient = await register(http), await register(http)
                pairs.append((sender, recipient, await sender.private_with(recipient)))

            plan = [(i % PAIRS, str(uuid4()), f"message {i}") for i in range(TOTAL)]
            accepted: dict[str, int] = {}  # message_id -> sequence_number
            unanswered: list[tuple[int, str, str]] = []
            killed = asyncio.Event()
            queue: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()
            for item in plan:
                queue.put_nowait(item)

            async def sender_task() -> None:
                while not queue.empty():
                    item = queue.get_nowait()
                    pair, mid, text = item
                    sender, _, cid = pairs[pair]
                    try:
                        r = await sender.post(
                            f"/v1/conversations/{cid}/messages",
                            {"message_id": mid, "payload": {"type": "text", "text": text}},
                        )
                    except httpx.TransportError:
                        unanswered.append(item)
                        continue
                    if r.status_code == 202:
                        accepted[mid] = r.json()["sequence_number"]
                        if len(accepted) >= KILL_AFTER and not killed.is_set():
                            killed.set()
                            proc.send_signal(signal.SIGKILL)
                    else:
                        unanswered.append(item)

            await asyncio.gather(*[sender_task() for _ in range(CONCURRENCY)])
            assert killed.is_set()
            proc.wait()
            answered_before_restart = dict(accepted)

            proc = start_server(tmp_path, port)
            await wait_ready(url, proc)
            fresh = httpx.AsyncClient(base_url=url, timeout=30, limits=limits)
            for sender, recipient, _ in pairs:  # the old pool holds connections to the dead process
                sender.http = recipient.http = fresh
            # Resend what got no 202, as a client would, with the same message ids (a send is
            # idempotent); a few rounds, since a loaded machine may refuse some again.
            for _ in range(5):
                retry, unanswered[:] = list(unanswered), []
                for item in retry:
                    queue.put_nowait(item)
                await asyncio.gather(*[sender_task() for _ in range(CONCURRENCY)])
            assert len(accepted) == TOTAL

            for pair, (_sender, recipient, cid) in enumerate(pairs):
                history = []
                after = 0
                while True:
                    page = (
                        await recipient.get(
                            f"/v1/conversations/{cid}/messages",
                            params={"after_seq": after, "limit": 100},
                        )
                    ).json()["items"]
                    if not page:
                        break
                    history += page
                    after = page[-1]["sequence_number"]
                ids = [m["message_id"] for m in history]
                expected = {mid for p, mid, _ in plan if p == pair}
                assert len(ids) == len(set(ids)), "a message is stored twice"
                assert set(ids) == expected, "an accepted message is missing or a stranger appeared"
                assert [m["sequence_number"] for m in history] == list(range(1, len(history) + 1))
                for mid, seq in answered_before_restart.items():
                    if mid in expected:
                        assert accepted[mid] == seq

                async with recipient.stream(url) as stream:
                    got = await stream.messages(len(expected), timeout=30, ack=False)
                assert [m["sequence_number"] for m in got] == list(range(1, len(expected) + 1))
            await fresh.aclose()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
