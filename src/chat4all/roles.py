"""What a cluster process can be: the services it serves and the workers it runs."""

from __future__ import annotations

from enum import StrEnum


class ServiceRole(StrEnum):
    GATEWAY = "gateway"  # HTTP and WebSocket
    AUTH = "auth"  # the others: gRPC
    CONVERSATION = "conversation"
    MESSAGE = "message"
    PRESENCE = "presence"


class WorkerRole(StrEnum):
    RELAY = "relay"
    ROUTER = "router"
    DELIVERY = "delivery"
    STATUS = "status"
    INBOUND = "inbound"  # channel webhooks -> messages and receipts
    RETENTION = "retention"
    WEBHOOKS = "webhooks"  # client webhooks: fan-out from the bus, then delivery


Role = ServiceRole | WorkerRole

# Jobs that must run once in the whole cluster: the relay keeps each conversation's events in
# the outbox's order; two sweepers would only race.
SINGLETONS = frozenset({WorkerRole.RELAY, WorkerRole.RETENTION})
