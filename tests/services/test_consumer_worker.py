"""The consume-handle-commit loop on the real embedded event log: retries, then a dead letter
for the one record that keeps failing, and everything else handled once committed."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from chat4all.adapters.sqlite.event_log import SQLiteEventLog
from chat4all.domain.events import Event
from chat4all.ports.bus import Record
from chat4all.workers.base import ConsumerWorker
from tests.fakes import FakeClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Picky(ConsumerWorker):
    group = "picky"
    topics = ("work",)

    def __init__(self, bus, clock) -> None:
        super().__init__(bus, clock)
        self.done: list[str] = []
        self.attempts = 0

    async def handle(self, records: Sequence[Record]) -> None:
        self.attempts += 1
        if any(r.event.data["n"] == 3 for r in records):
            raise ValueError("three is poison")
        self.done += [r.event.id for r in records]


async def test_poison_record_goes_to_the_dead_letter_and_the_rest_is_handled(tmp_path):
    bus = await SQLiteEventLog.open(tmp_path / "events.db")
    try:
        await bus.publish(
            [Event(type="work", key="k", data={"n": n}, time=T0, id=f"e{n}") for n in range(5)]
        )
        worker = Picky(bus, FakeClock())
        task = asyncio.create_task(worker.run())
        dead_consumer = bus.consumer("test", ["deadletter.picky"])
        dead = await dead_consumer.fetch(10, timeout=10)
        for _ in range(500):  # the record after the poison one is handled after it
            if len(worker.done) == 4:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dead_consumer.close()

        assert [d.event.data["event"]["id"] for d in dead] == ["e3"]
        assert "three is poison" in dead[0].event.data["error"]
        assert sorted(worker.done) == ["e0", "e1", "e2", "e4"]
        # everything is committed: a new member of the group has nothing left to do
        again = bus.consumer("picky", ["work"])
        assert await again.fetch(10, timeout=0.2) == []
        await again.close()
    finally:
        await bus.close()
