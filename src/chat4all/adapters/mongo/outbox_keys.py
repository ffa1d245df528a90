"""Outbox keys: the int `entry_id` of every outbox entry, and the order the relay reads them in.

A key is `tick << 8 | node << 1 | kind`: `tick` is a hybrid logical clock in microseconds (the
wall clock, but never behind the last key this instance made or saw), `node` is 7 random bits
per store instance (so two instances rarely make the same key; the unique indexes catch the rest
and the writer takes the next key), and `kind` tells which collection holds the entry: 0 for a
message's own `message.sent` marker in `messages`, 1 for an event in `outbox`.

Keys grow within an instance. Across instances they follow wall clocks, except where it
matters: a message's key is always made greater than the key of the conversation's previous
message, so the relay publishes each conversation in sequence order whatever the clocks say.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Final

MESSAGE: Final = 0
EVENT: Final = 1
_NODE_BITS: Final = 7


def kind_of(key: int) -> int:
    return key & 1


class OutboxKeys:
    def __init__(
        self, node: int | None = None, clock_us: Callable[[], int] = lambda: time.time_ns() // 1000
    ) -> None:
        self._node = random.getrandbits(_NODE_BITS) if node is None else node
        self._clock_us = clock_us
        self._tick = 0

    def next(self, kind: int, after: int = 0) -> int:
        """A new key of `kind`, greater than every key made here and than `after`."""
        self._tick = max(self._clock_us(), self._tick + 1, (after >> 8) + 1)
        return self._tick << 8 | self._node << 1 | kind
