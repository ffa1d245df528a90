"""The gateway answers the same whether its services run in process or are called over gRPC.

One scenario of REST calls and WebSocket frames runs twice: on a gateway wired with the
services in process, and on one wired with gRPC clients of a real server (the cluster
profile's shape). Once ids, times and tokens are masked, the two transcripts are equal.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import orjson
import uvicorn

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.grpc import connect
from chat4all.api.app import create_app
from chat4all.api.grpc import start_grpc_server
from chat4all.bootstrap import Platform, build_embedded
from chat4all.services.auth import InternalTokens
from tests.integration.harness import register, settings_for_tests

_MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?"), "<time>"),
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+"), "<jwt>"),
    (re.compile(r'"(refresh_token|next_cursor|session_id)":"[^"]+"'), r'"\1":"<opaque>"'),
]


def masked(value: Any) -> str:
    text = orjson.dumps(_members_by_role(value), option=orjson.OPT_SORT_KEYS).decode()
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


def _members_by_role(value: Any) -> Any:
    """Members come in user id order, which masking hides: order them by role instead."""
    if isinstance(value, list):
        return [_members_by_role(v) for v in value]
    if isinstance(value, dict):
        out = {k: _members_by_role(v) for k, v in value.items()}
        if isinstance(out.get("members"), list):
            out["members"] = sorted(out["members"], key=lambda m: m.get("role", ""))
        return out
    return value


@contextlib.asynccontextmanager
async def gateway(platform: Platform) -> AsyncIterator[str]:
    """The REST and WebSocket app on `platform`, whose lifecycle the test manages."""

    async def unused() -> Platform:
        raise AssertionError("the test starts the platform")

    app = create_app(unused)
    app.state.platform = platform
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def wired(data_dir: Path, remote: bool) -> AsyncIterator[str]:
    settings = settings_for_tests(data_dir)
    platform = await build_embedded(settings)
    await platform.start()
    try:
        if not remote:
            async with gateway(platform) as url:
                yield url
            return
        tokens = InternalTokens(settings.resolved_jwt_secret(), SystemClock())
        server = await start_grpc_server(platform, "127.0.0.1:0", internal_tokens=tokens)
        services = connect(f"127.0.0.1:{server.port}", tokens.token)
        # The gateway keeps the stream's in-process parts (store, hub, presence); the services
        # it calls are remote.
        front = replace(
            platform,
            auth=services.auth,
            conversations=services.conversations,
            messages=services.messages,
            workers={},
        )
        try:
            async with gateway(front) as url:
                yield url
        finally:
            await services.close()
            await server.stop(0)
    finally:
        await platform.stop()


async def scenario(base_url: str) -> list[Any]:
    seen: list[Any] = []

    def note(r: httpx.Response) -> None:
        body = r.json() if r.content else None
        seen.append([r.request.method, r.status_code, r.headers.get("idempotent-replayed"), body])

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        alice, bob = await register(http, "alice"), await register(http, "bob")
        note(
            await http.post(
                "/v1/auth/register",
                json={"username": "bob", "email": "b@example.com", "password": "p" * 9},
            )
        )
        note(await http.post("/v1/auth/token", json={"username": "bob", "password": "wrong!!!"}))
        note(await alice.get("/v1/users/me"))
        note(await alice.get("/v1/users/by-username/bob"))
        note(await alice.get("/v1/users/by-username/nobody"))
        note(await http.get("/v1/users/me", headers={"Authorization": "Bearer nope"}))

        r = await alice.post("/v1/conversations", {"type": "private", "members": [bob.user_id]})
        note(r)
        cid = r.json()["conversation_id"]
        note(await bob.post("/v1/conversations", {"type": "private", "members": [alice.user_id]}))
        group = await alice.post(
            "/v1/conversations",
            {"type": "group", "members": [bob.user_id], "metadata": {"n": 2**63 - 1}},
        )
        note(group)
        gid = group.json()["conversation_id"]
        note(await bob.post(f"/v1/conversations/{gid}/members", {"user_id": alice.user_id}))
        note(await bob.get(f"/v1/conversations/{uuid4()}"))

        message_id = str(uuid4())
        body = {"message_id": message_id, "payload": {"type": "text", "text": "hello"}}
        for _ in range(2):
            note(await alice.post(f"/v1/conversations/{cid}/messages", body))
        note(
            await alice.post(
                f"/v1/conversations/{cid}/messages",
                body | {"payload": {"type": "text", "text": "other"}},
            )
        )
        for i in range(3):
            await alice.send(cid, f"m{i}")
        note(await bob.get(f"/v1/conversations/{cid}/messages", params={"limit": 2}))
        note(await bob.get(f"/v1/messages/{message_id}"))

        async with bob.stream(base_url) as b_stream, alice.stream(base_url) as a_stream:
            seen.append(await b_stream.messages(4))  # catch-up, acked
            await alice.send(cid, "live")
            seen.append(await b_stream.messages(1))
            statuses = [(await a_stream.next_of("message.status"))["data"] for _ in range(5)]
            seen.append(sorted(statuses, key=lambda s: s["message_id"]))
            await b_stream.send("typing", {"conversation_id": cid})
            seen.append(await a_stream.next_of("typing"))

        note(await bob.post(f"/v1/conversations/{cid}/read", {"up_to_sequence_number": 3}))
        note(await bob.post(f"/v1/conversations/{cid}/read", {"up_to_sequence_number": 99}))
        note(await bob.get("/v1/conversations"))
        note(await bob.get("/v1/presence", params={"user_ids": f"{alice.user_id},{bob.user_id}"}))
        note(await alice.post("/v1/auth/logout", {"refresh_token": alice.refresh_token}))
        note(await alice.get("/v1/users/me"))
    return seen


async def test_the_gateway_answers_the_same_with_remote_services(tmp_path):
    async with wired(tmp_path / "local", remote=False) as url:
        local = await scenario(url)
    async with wired(tmp_path / "remote", remote=True) as url:
        remote = await scenario(url)
    assert len(local) == len(remote) == 26
    for step, (here, there) in enumerate(zip(local, remote, strict=True)):
        assert masked(here) == masked(there), step
