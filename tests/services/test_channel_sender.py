"""The channel sender on a real channel directory (SQLite) with a scripted connector and a
clock that moves when slept on: retries, Retry-After, the breaker, fallback, dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import pytest

from chat4all.adapters.sql import SqlMetadataStore, upgrade
from chat4all.adapters.sql.channels import SqlChannelDirectory
from chat4all.domain.delivery import RetryPolicy
from chat4all.domain.events import Topic
from chat4all.ports.channels import LinkedChannel
from chat4all.ports.connectors import (
    Capabilities,
    ChannelAccount,
    OutboundMessage,
    SendError,
    SendResult,
)
from chat4all.workers.channel_sender import ChannelSender, SenderPolicy
from chat4all.workers.router import Router
from tests.fakes import FakeClock


class SleepingClock(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)


class Scripted:
    """Answers each send with the next scripted outcome (an error or a platform id)."""

    channel_type: ClassVar[str] = "scripted"
    capabilities: ClassVar[Capabilities] = Capabilities(True, True, 10, {}, None)

    def __init__(self, outcomes: list[SendError | str]) -> None:
        self.outcomes = outcomes
        self.calls: list[OutboundMessage] = []

    async def send(self, account: ChannelAccount, message: OutboundMessage) -> SendResult:
        self.calls.append(message)
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, SendError):
            raise outcome
        return SendResult(f"{outcome}-{len(self.calls)}")


@pytest.fixture
async def directory(tmp_path: Path) -> AsyncIterator[SqlChannelDirectory]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
    await upgrade(url)
    store = await SqlMetadataStore.connect(url)
    d = SqlChannelDirectory(store.engine)
    await d.add_account(ChannelAccount("acc", "scripted", {}))
    yield d
    await store.close()


def job(text: str = "hi", fallback: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "recipient_id": str(uuid4()),
        "channel": "scripted",
        "contact_id": "c1",
        "account_id": "acc",
        "fallback": fallback or [],
        "message": {
            "message_id": str(uuid4()),
            "conversation_id": str(uuid4()),
            "payload": {"type": "text", "text": text},
        },
    }


def sender(directory, connector, clock, attempts=4, failures=3) -> ChannelSender:
    policy = SenderPolicy(RetryPolicy(attempts, 1.0, 8.0), failures, 30.0)
    return ChannelSender(directory, {"scripted": connector}, clock, policy)


def rate_limited(retry_after: float | None = None) -> SendError:
    return SendError(
        "(130429) Rate limit hit", retryable=True, retry_after=retry_after, code="130429"
    )


async def test_retries_then_sends_once_and_honours_retry_after(directory):
    clock = SleepingClock()
    connector = Scripted([rate_limited(20.0), rate_limited(), "wamid"])
    the_job = job()
    events = await sender(directory, connector, clock).deliver(the_job)
    assert len(connector.calls) == 3
    assert clock.slept[0] == 20.0 and 1.0 <= clock.slept[1] <= 2.0
    (sent,) = events
    assert (
        sent.data["status"] == "sent" and sent.data["details"]["platform_message_id"] == "wamid-3"
    )
    # The same job again (a restart replays it): nothing goes out twice.
    assert await sender(directory, connector, clock).deliver(the_job) == []
    assert len(connector.calls) == 3


async def test_a_permanent_failure_moves_to_the_fallback_channel(directory):
    connector = Scripted([SendError("(131026) undeliverable", retryable=False, code="131026")])
    nxt = {"channel": "telegram", "contact_id": "42", "account_id": None}
    failed, moved = await sender(directory, connector, SleepingClock()).deliver(job(fallback=[nxt]))
    assert len(connector.calls) == 1
    assert failed.data["status"] == "failed"
    assert failed.data["details"] == {
        "reason": "(131026) undeliverable",
        "code": "131026",
        "fallback_to": "telegram",
    }
    assert moved.type == Topic.MESSAGE_DELIVERY
    assert (moved.data["channel"], moved.data["contact_id"], moved.data["fallback"]) == (
        "telegram",
        "42",
        [],
    )
    assert await directory.dead_letters(10) == []


async def test_the_breaker_fails_fast_and_the_last_try_dead_letters_with_the_reason(directory):
    clock = SleepingClock()
    connector = Scripted([SendError("HTTP 503", retryable=True)] * 100)
    events = await sender(directory, connector, clock, attempts=4, failures=3).deliver(job())
    # Three real calls opened the breaker; the last try failed fast, before the probe was due.
    assert len(connector.calls) == 3
    failed, dead = events
    assert "circuit open for scripted account acc" in failed.data["details"]["reason"]
    assert dead.type == Topic.DELIVERY_DEAD_LETTER
    (letter,) = await directory.dead_letters(10)
    assert letter.reason == failed.data["details"]["reason"]


async def test_text_over_the_channels_limit_fails_without_a_call(directory):
    connector = Scripted([])
    failed, _ = await sender(directory, connector, SleepingClock()).deliver(job("x" * 11))
    assert connector.calls == []
    assert "at most 10" in failed.data["details"]["reason"]


def test_router_plans_fallback_all_and_explicit_channels():
    router = Router(None, FakeClock(), None, {"whatsapp", "telegram"})  # type: ignore[arg-type]
    user = uuid4()
    links = {
        user: [
            LinkedChannel(user, "telegram", "42", None, 2),
            LinkedChannel(user, "whatsapp", "1555", None, 1),
        ]
    }
    doc = {
        "message_id": str(uuid4()),
        "conversation_id": str(uuid4()),
        "from_user_id": str(uuid4()),
        "to_user_ids": [str(user)],
        "created_at": "2026-01-01T00:00:00+00:00",
        "payload": {"type": "text", "text": "hi"},
        "sequence_number": 1,
        "target_channels": [],
        "reply_to_message_id": None,
        "status": "sent",
        "is_edited": False,
        "is_deleted": False,
        "updated_at": "2026-01-01T00:00:00+00:00",
        "channel_delivery": {},
    }

    def planned(targets: list[str]) -> list[tuple[Any, Any]]:
        jobs = router.route(doc | {"target_channels": targets}, links)
        return [
            (j.data.get("channel"), [f["channel"] for f in j.data.get("fallback") or []])
            for j in jobs
            if j.data.get("recipient_id") == str(user)
        ]

    assert planned([]) == [("internal", []), ("whatsapp", ["telegram"])]
    assert sorted(planned(["all"])) == [("internal", []), ("telegram", []), ("whatsapp", [])]
    assert planned(["telegram"]) == [("telegram", [])]
