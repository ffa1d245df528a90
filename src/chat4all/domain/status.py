"""Delivery status rules: per recipient and channel, sent -> delivered -> read, or failed.

A status only ever moves forward: a late `delivered` never overwrites `read`, and `failed` is
reachable only from `sent` (a message already delivered cannot fail afterwards).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class DeliveryStatus(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


_RANK = {DeliveryStatus.SENT: 1, DeliveryStatus.DELIVERED: 2, DeliveryStatus.READ: 3}


def can_advance(current: DeliveryStatus | None, new: DeliveryStatus) -> bool:
    """True when moving from `current` to `new` is a step forward."""
    if current is None:
        return True
    if current is new or current is DeliveryStatus.FAILED:
        return False
    if new is DeliveryStatus.FAILED:
        return current is DeliveryStatus.SENT
    return _RANK[new] > _RANK[current]


def best_of(statuses: Iterable[DeliveryStatus]) -> DeliveryStatus:
    """A recipient's status over its channels: the furthest any channel got, failed only if all did."""
    reached = [s for s in statuses if s is not DeliveryStatus.FAILED]
    if not reached:
        return DeliveryStatus.FAILED
    return max(reached, key=_RANK.__getitem__)


def aggregate(per_recipient: Iterable[DeliveryStatus]) -> DeliveryStatus:
    """A message's overall status: what every recipient has reached (WhatsApp's group rule).

    `failed` only when no recipient got it; recipients that failed do not hold the others back.
    """
    statuses = list(per_recipient)
    reached = [s for s in statuses if s is not DeliveryStatus.FAILED]
    if not statuses:
        return DeliveryStatus.SENT
    if not reached:
        return DeliveryStatus.FAILED
    return min(reached, key=_RANK.__getitem__)
