"""Delivery: pushes internal jobs to the recipient's connected sessions, and sends external
ones through their channel's connector.

A push is not a delivery: the message counts as `delivered` when the recipient's client acks it.
Recipients who are offline get it when they connect (catch-up and resume read the store).

External jobs wait in lanes, one per (conversation, recipient, channel): a lane sends one job
at a time, in order, retrying as long as its policy says, while every other lane (and every
internal push) goes on. The group's offsets are committed only up to the oldest job not yet
finished, so a restart resends nothing that went out (the channel directory remembers what
did) and loses nothing that did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from uuid import UUID

from chat4all.domain.events import Topic
from chat4all.domain.messages import INTERNAL_CHANNEL
from chat4all.observability import tracing
from chat4all.ports.bus import EventBus, Record
from chat4all.ports.clock import Clock
from chat4all.ports.realtime import RealtimeHub
from chat4all.services.frames import message_new
from chat4all.workers.base import BATCH_SIZE, LAG_INTERVAL_SECONDS, ConsumerWorker
from chat4all.workers.channel_sender import ChannelSender

log = logging.getLogger(__name__)

Lane = tuple[str, str, str]


class DeliveryWorker(ConsumerWorker):
    group = "delivery"
    topics = (Topic.MESSAGE_DELIVERY,)

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        hub: RealtimeHub,
        sender: ChannelSender | None = None,
        max_in_flight: int = 10_000,
    ) -> None:
        super().__init__(bus, clock)
        self._hub = hub
        self._sender = sender
        self._max_in_flight = max_in_flight

    async def handle(self, records: Sequence[Record]) -> None:
        """Internal pushes (what `run` does not hand to a lane)."""
        for record in records:
            job = record.event.data
            with tracing.consuming("delivery", record.event, channel=job["channel"]):
                await self._hub.publish([UUID(job["recipient_id"])], message_new(job["message"]))

    async def run(self) -> None:
        consumer = self._bus.consumer(self.group, self.topics)
        offsets = _Offsets()
        lanes: dict[Lane, asyncio.Queue[Record]] = {}
        tasks: set[asyncio.Task[None]] = set()
        progress = asyncio.Event()
        next_lag = self._clock.monotonic()

        async def drain(lane: Lane, queue: asyncio.Queue[Record]) -> None:
            while True:
                record = await queue.get()
                await self._send(record)
                offsets.done(record)
                progress.set()
                if queue.empty():
                    del lanes[lane]  # no await since the check: nothing can slip in between
                    return

        try:
            while True:
                if offsets.pending >= self._max_in_flight:
                    progress.clear()
                    await _wait(progress, 1.0)
                else:
                    timeout = 0.2 if offsets.pending else 1.0
                    internal: list[Record] = []
                    for record in await consumer.fetch(BATCH_SIZE, timeout=timeout):
                        offsets.add(record)
                        job = record.event.data
                        if job["channel"] == INTERNAL_CHANNEL or self._sender is None:
                            internal.append(record)
                            continue
                        lane = (record.event.key, job["recipient_id"], job["channel"])
                        if lane not in lanes:
                            lanes[lane] = asyncio.Queue()
                            task = asyncio.create_task(drain(lane, lanes[lane]))
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                        lanes[lane].put_nowait(record)
                    if internal:
                        await self._handle_internal(internal)
                        for record in internal:
                            offsets.done(record)
                ready = offsets.committable()
                if ready:
                    await consumer.commit(ready)
                if self._clock.monotonic() >= next_lag:
                    next_lag = self._clock.monotonic() + LAG_INTERVAL_SECONDS
                    await self._report_lag(consumer)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await consumer.close()

    async def _handle_internal(self, records: list[Record]) -> None:
        try:
            await self.handle(records)
        except Exception:
            log.exception("delivery: internal pushes failed; the clients catch up from the store")

    async def _send(self, record: Record) -> None:
        assert self._sender is not None
        while True:
            try:
                with tracing.consuming(
                    "delivery", record.event, channel=record.event.data["channel"]
                ):
                    events = await self._sender.deliver(record.event.data)
                if events:
                    await self._bus.publish(events)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # A store or the bus is down: the job stays in its lane (and uncommitted).
                log.exception("delivery: job %s failed; trying again", record.event.id)
                await self._clock.sleep(1.0)


class _Offsets:
    """Per partition, the records fetched (in offset order) and which of them are finished."""

    def __init__(self) -> None:
        self._fetched: dict[tuple[str, int], deque[Record]] = {}
        self._finished: dict[tuple[str, int], set[int]] = {}
        self.pending = 0

    def add(self, record: Record) -> None:
        self._fetched.setdefault((record.topic, record.partition), deque()).append(record)
        self.pending += 1

    def done(self, record: Record) -> None:
        self._finished.setdefault((record.topic, record.partition), set()).add(record.offset)
        self.pending -= 1

    def committable(self) -> list[Record]:
        """The newest record of each partition whose predecessors are all finished."""
        ready: list[Record] = []
        for partition, fetched in self._fetched.items():
            finished = self._finished.get(partition, set())
            last = None
            while fetched and fetched[0].offset in finished:
                last = fetched.popleft()
                finished.discard(last.offset)
            if last is not None:
                ready.append(last)
        return ready


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
