"""Sends per user are rate limited: a burst up to the bucket passes, the next send gets a 429
with Retry-After, and nothing of it is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from tests.integration.harness import register, running_server, settings_for_tests

BURST = 5


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # One token a minute after the burst: the test cannot be refilled while it runs.
    settings = settings_for_tests(tmp_path, send_rate_per_second=1 / 60, send_burst=BURST)
    async with running_server(settings) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_the_send_after_a_full_burst_gets_429_and_is_not_stored(
    http: httpx.AsyncClient,
) -> None:
    alice, bob = await register(http), await register(http)
    conversation = await alice.private_with(bob)
    for i in range(BURST):
        await alice.send(conversation, f"m{i}")
    refused_id = str(uuid4())
    r = await alice.post(
        f"/v1/conversations/{conversation}/messages",
        {"message_id": refused_id, "payload": {"type": "text", "text": "one too many"}},
    )
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "urn:chat4all:problem:rate-limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert (await alice.get(f"/v1/messages/{refused_id}")).status_code == 404
    history = (await alice.get(f"/v1/conversations/{conversation}/messages")).json()
    assert [m["payload"]["text"] for m in history["items"]] == [f"m{i}" for i in range(BURST)]
    # the limit is per user: Bob still sends
    await bob.send(conversation, "bob is not limited")
