"""Collections and indexes of the message store, created idempotently at connect.

The seed's indexes, with three changes: (conversation_id, sequence_number) and
conversation_history's key are unique (they are what makes numbering and summaries safe without
transactions), and messages carry one more index for the outbox. Shard key, documented only
(no mongos here, and FerretDB has no sharding): `{conversation_id: "hashed"}` for every
collection keyed by conversation. docs/cluster.md says what must change before sharding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

log = logging.getLogger(__name__)

MESSAGES: Final = "messages"
HISTORY: Final = "conversation_history"
OUTBOX: Final = "outbox"
FILES: Final = "file_metadata"
SHARD_KEY: Final = {"conversation_id": "hashed"}
_NOT_IMPLEMENTED: Final = 238  # FerretDB's answer to an index option it lacks
_NAMESPACE_EXISTS: Final = 48


@dataclass(frozen=True)
class Index:
    collection: str
    keys: tuple[tuple[str, int], ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "_".join(f"{k}_{d}" for k, d in self.keys)


INDEXES: Final = (
    Index(MESSAGES, (("message_id", ASCENDING),), {"unique": True}),
    Index(
        MESSAGES, (("conversation_id", ASCENDING), ("sequence_number", ASCENDING)), {"unique": True}
    ),
    Index(MESSAGES, (("conversation_id", ASCENDING), ("created_at", DESCENDING))),
    Index(MESSAGES, (("from_user_id", ASCENDING), ("created_at", DESCENDING))),
    Index(MESSAGES, (("status", ASCENDING),)),
    # The seed's TTL index: MongoDB deletes a message once ttl_expire_at has passed.
    Index(MESSAGES, (("ttl_expire_at", ASCENDING),), {"expireAfterSeconds": 0}),
    # Pending message.sent markers only (sparse: relayed messages drop both fields), in key
    # order; unique, so two writers can never hand out the same entry_id.
    Index(
        MESSAGES,
        (("outbox_pending", ASCENDING), ("outbox_key", ASCENDING)),
        {"unique": True, "sparse": True},
    ),
    # One summary per conversation, under _id = conversation_id (unique by nature); the
    # seed's (conversation_id, date) index has nothing to sort here.
    Index(FILES, (("file_id", ASCENDING),), {"unique": True}),
    Index(FILES, (("upload_status", ASCENDING),)),
    Index(FILES, (("upload_initiated_by", ASCENDING),)),
)


async def create_indexes(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Create the collections and indexes that are missing; True when the server runs the TTL
    index itself (FerretDB v1 does not: then a plain index is made, and `delete_expired` does
    the TTL's work)."""
    existing = set(await db.list_collection_names())
    for name in (MESSAGES, HISTORY, OUTBOX, FILES):
        if name not in existing:
            try:
                await db.create_collection(name, check_exists=False)
            except OperationFailure as e:
                if e.code != _NAMESPACE_EXISTS:  # another process made it since we looked
                    raise
    server_ttl = True
    for index in INDEXES:
        try:
            await db[index.collection].create_index(
                list(index.keys), name=index.name, **index.options
            )
        except OperationFailure as e:
            if e.code != _NOT_IMPLEMENTED or "expireAfterSeconds" not in index.options:
                raise
            log.info("the server has no TTL indexes; delete_expired does their work")
            server_ttl = False
            await db[index.collection].create_index(list(index.keys), name=index.name)
    return server_ttl
