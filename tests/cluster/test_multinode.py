"""Two gateways and two of every worker, as separate processes on Kafka, PostgreSQL, MongoDB
(FerretDB), Redis and etcd."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import httpx
import pytest

from chat4all.devcluster import DevCluster
from tests.integration.harness import User, register
from tests.webhook_receiver import Receiver

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.kafka,
    pytest.mark.mongo,
    pytest.mark.etcd,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.xdist_group("cluster"),  # one worker runs them all, on one cluster
    pytest.mark.asyncio(loop_scope="module"),
]


async def test_a_client_on_one_gateway_gets_in_order_what_another_gateway_accepted(
    cluster: DevCluster, gateways: list[httpx.AsyncClient]
) -> None:
    a, b = gateways
    alice, bob = await register(b), await register(a)
    conversation = await alice.private_with(bob)
    async with bob.stream(cluster.gateway_urls[0]) as stream:
        sent = [await alice.send(conversation, f"m{i}") for i in range(100)]
        received = await stream.messages(100, timeout=30)
    assert [m["message_id"] for m in received] == [s["message_id"] for s in sent]
    assert [m["sequence_number"] for m in received] == list(range(1, 101))


async def test_a_message_from_one_gateway_is_read_through_the_other(
    cluster: DevCluster, gateways: list[httpx.AsyncClient]
) -> None:
    a, b = gateways
    alice = await register(a)
    bob = await register(b)
    conversation = await alice.private_with(bob)
    message_id = str(uuid4())
    await alice.send(conversation, "hello", message_id)
    async with bob.stream(cluster.gateway_urls[1]) as stream:
        [received] = await stream.messages(1, timeout=30)
        assert received["message_id"] == message_id
    # FerretDB, standing in for MongoDB here, loses one of two concurrent updates of a document
    # (docs/cluster.md): let the ack's `delivered` land before `read` is written elsewhere.
    assert (await status_of(alice, message_id, "delivered"))["status"] == "delivered"
    r = await bob.post(f"/v1/conversations/{conversation}/read", {"up_to_sequence_number": 1})
    assert r.status_code in (200, 204), r.text
    doc = await status_of(alice, message_id, "read")
    assert doc["status"] == "read", doc


async def status_of(user: User, message_id: str, awaited: str) -> dict[str, Any]:
    """The message as `user` sees it, once its status is `awaited` (or after 30 s)."""
    for _ in range(300):
        doc: dict[str, Any] = (await user.get(f"/v1/messages/{message_id}")).json()
        if doc["status"] == awaited:
            break
        await asyncio.sleep(0.1)
    return doc


# Last: it leaves the cluster with one delivery worker.
async def test_killing_a_delivery_worker_mid_burst_loses_nothing(
    cluster: DevCluster, gateways: list[httpx.AsyncClient]
) -> None:
    a, b = gateways
    alice, bob = await register(a), await register(b)
    # Eight conversations spread over the partitions, so both delivery workers own some.
    groups = []
    for _ in range(8):
        r = await alice.post("/v1/conversations", {"type": "group", "members": [bob.user_id]})
        assert r.status_code == 201, r.text
        groups.append(r.json()["conversation_id"])
    async with bob.stream(cluster.gateway_urls[1]) as stream:

        async def burst(n: int) -> list[dict[str, Any]]:
            return [await alice.send(groups[i % 8], f"m{i}") for i in range(n)]

        sending = asyncio.create_task(burst(400))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(cluster.kill, "delivery-1")
        sent = await sending
        received = await stream.messages(400, timeout=90)
    assert sorted(m["message_id"] for m in received) == sorted(m["message_id"] for m in sent)
    for group in groups:  # each conversation in order, from 1, no gaps, no repeats
        seqs = [m["sequence_number"] for m in received if m["conversation_id"] == group]
        assert seqs == list(range(1, 51)), (group, seqs)


async def test_every_process_serves_metrics_and_presence_crosses_gateways(
    cluster: DevCluster, gateways: list[httpx.AsyncClient]
) -> None:
    a, b = gateways
    alice, bob = await register(a), await register(b)
    conversation = await alice.private_with(bob)
    async with alice.stream(cluster.gateway_urls[0]) as contact:
        async with bob.stream(cluster.gateway_urls[1]) as stream:
            online = await contact.next_of("presence", timeout=20)
            assert online["data"] | {"last_seen": None} == {
                "user_id": bob.user_id,
                "online": True,
                "last_seen": None,
            }
            await alice.send(conversation, "measured")
            await stream.messages(1, timeout=30)
        offline = await contact.next_of("presence", timeout=20)
        assert offline["data"]["user_id"] == bob.user_id and offline["data"]["online"] is False

    scraped = (await a.get("/metrics")).text
    assert 'route="/v1/conversations/{conversation_id}/messages"' in scraped
    async with httpx.AsyncClient(timeout=10) as http:
        for name, port in cluster.metrics_ports.items():
            group = name.rsplit("-", 1)[0]
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                # Consumers report their lag; the others still serve the process metrics.
                wanted = (
                    f'chat4all_bus_consumer_lag{{group="{group}"'
                    if group in ("router", "delivery", "status")
                    else "process_cpu_seconds_total"
                )
                if wanted in body:
                    break
                assert asyncio.get_running_loop().time() < deadline, (name, wanted)
                await asyncio.sleep(0.5)


async def test_two_webhook_workers_deliver_each_event_once(
    cluster: DevCluster, gateways: list[httpx.AsyncClient]
) -> None:
    a, b = gateways
    alice, bob = await register(a), await register(b)
    async with Receiver(fail_first=1) as receiver:
        r = await alice.post("/v1/webhooks", {"url": receiver.url, "events": ["message.sent"]})
        assert r.status_code == 201, r.text
        receiver.secrets = [r.json()["secret"]]
        conversation = await bob.private_with(alice)
        sent = [await bob.send(conversation, f"m{i}") for i in range(20)]
        await receiver.until(lambda r: len(r.successes()) >= 20, timeout=60)
    assert receiver.unverified() == []
    successes = [s.payload["data"]["message_id"] for s in receiver.successes()]
    assert sorted(successes) == sorted(m["message_id"] for m in sent)  # each once
    assert all(
        [t.status for t in receiver.received if t.msg_id == s.msg_id] == [500, 200]
        for s in receiver.successes()
    )
