"""The Mongo message store's named steps: functions of its `Collections`, each one or a few
single-document writes that may be repeated safely. `MongoMessageStore` (see its module for the
design) runs them with its per-instance state: turns, remembered positions, outbox keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Literal
from uuid import UUID

import orjson
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from chat4all.adapters.mongo import schema
from chat4all.adapters.mongo.documents import as_appended, decode_message, preview, status_fields
from chat4all.adapters.mongo.outbox_keys import EVENT, kind_of
from chat4all.domain.errors import IdempotencyConflict, InvalidInput, Unavailable
from chat4all.domain.events import Event, message_sent
from chat4all.domain.messages import Message, NewMessage, StatusChange
from chat4all.ports.messages import Appended

log = logging.getLogger(__name__)

Document = dict[str, Any]
Clash = Literal["message_id", "sequence_number", "outbox_key"]

MAX_ATTEMPTS: Final = 100  # writes lost to other writers before a call gives up


@dataclass(frozen=True)
class Collections:
    messages: AsyncCollection[Document]
    history: AsyncCollection[Document]
    outbox: AsyncCollection[Document]

    @classmethod
    def of(cls, db: AsyncDatabase[Document]) -> Collections:
        return cls(db[schema.MESSAGES], db[schema.HISTORY], db[schema.OUTBOX])


# --- append ----------------------------------------------------------------------------------


async def clash_txn(
    c: Collections, error: DuplicateKeyError, message_id: UUID, conversation: str, seq: int
) -> Clash:
    """Which unique index an insert broke. MongoDB names it; FerretDB does not, so look."""
    pattern = (error.details or {}).get("keyPattern")
    if isinstance(pattern, dict):
        if "message_id" in pattern:
            return "message_id"
        return "sequence_number" if "sequence_number" in pattern else "outbox_key"
    if await c.messages.find_one({"message_id": str(message_id)}, {"_id": 1}):
        return "message_id"
    taken = {"conversation_id": conversation, "sequence_number": seq}
    if await c.messages.find_one(taken, {"_id": 1}):
        return "sequence_number"
    return "outbox_key"


async def replay_txn(c: Collections, new: NewMessage) -> Appended | None:
    """The same message_id again: the stored message if the body is the same (None: it has
    expired since, store it again)."""
    doc = await c.messages.find_one({"message_id": str(new.message_id)})
    if doc is None:
        return None
    if doc["fingerprint"] != new.fingerprint():
        raise IdempotencyConflict(
            f"message_id {new.message_id} was already used for a different message; "
            "a new message needs a new message_id"
        )
    # A writer that stopped after its insert left the summary behind: bring it up to date.
    await raise_summary_txn(c, doc, doc.get("outbox_key", 0), count=0)
    return Appended(decode_message(doc), created=False)


async def summary_position_txn(c: Collections, conversation: str) -> tuple[int, int]:
    """The conversation's last sequence number and outbox key, as its summary has them."""
    head = await c.history.find_one(
        {"_id": conversation}, {"last_sequence_number": 1, "last_outbox_key": 1}
    )
    if head is None:
        return 0, 0
    return int(head["last_sequence_number"]), int(head.get("last_outbox_key", 0))


async def newest_position_txn(c: Collections, conversation: str) -> tuple[int, int]:
    """The conversation's highest sequence number and outbox key, from its messages and its
    summary (which outlives expired messages)."""
    newest = await c.messages.find_one(
        {"conversation_id": conversation},
        {"sequence_number": 1, "outbox_key": 1},
        sort=[("sequence_number", DESCENDING)],
    )
    seq, key = await summary_position_txn(c, conversation)
    if newest is not None:
        seq = max(seq, int(newest["sequence_number"]))
        key = max(key, int(newest.get("outbox_key", 0)))
    return seq, key


async def raise_summary_txn(c: Collections, document: Document, key: int, count: int) -> None:
    """Move the conversation's summary forward to the message in `document`; `$max` makes it
    safe to repeat and to race (on MongoDB; FerretDB v1 can lose a racing update)."""
    conversation = document["conversation_id"]
    update: Document = {
        "$max": {
            "last_sequence_number": document["sequence_number"],
            "last_outbox_key": key,
            "last_message_at": document["created_at"],
            "last_message": preview(document),
        },
        "$setOnInsert": {"conversation_id": conversation},
    }
    if count:
        update["$inc"] = {"message_count": count}
    try:
        await c.history.update_one({"_id": conversation}, update, upsert=True)
    except DuplicateKeyError:  # two first writers upserted at once: it exists now
        await c.history.update_one({"_id": conversation}, update)


async def check_summaries_txn(c: Collections, docs: list[Document]) -> None:
    """Before messages are published, their conversations' summaries must count them: repair
    what a writer that stopped between its insert and its summary left behind."""
    newest: dict[str, Document] = {}
    for doc in docs:
        known = newest.get(doc["conversation_id"])
        if known is None or doc["sequence_number"] > known["sequence_number"]:
            newest[doc["conversation_id"]] = doc
    if not newest:
        return
    heads = await c.history.find(
        {"_id": {"$in": list(newest)}}, {"last_sequence_number": 1}
    ).to_list()
    summarised = {head["_id"]: head["last_sequence_number"] for head in heads}
    for conversation, doc in newest.items():
        if summarised.get(conversation, 0) < doc["sequence_number"]:
            log.debug("conversation %s: summary behind its messages; repaired", conversation)
            await raise_summary_txn(c, doc, doc["outbox_key"], count=0)


# --- statuses --------------------------------------------------------------------------------


async def apply_changes_txn(
    c: Collections, message_id: UUID, changes: list[StatusChange], doc: Document | None = None
) -> list[tuple[Message, StatusChange] | None]:
    """Apply `changes` (all of one message) in order, in one compare-and-set write on
    `revision`; if another writer got there first, again on its version. For each change: the
    message after it, or None when it moved nothing."""
    if doc is None:
        doc = await c.messages.find_one({"message_id": str(message_id)})
    for _ in range(MAX_ATTEMPTS):
        if doc is None:
            return [None] * len(changes)
        message = decode_message(doc)
        outcome: list[tuple[Message, StatusChange] | None] = []
        for change in changes:
            after = message.apply(change)
            if after is None:
                outcome.append(None)
            else:
                outcome.append((after, change))
                message = after
        if not any(outcome):
            return outcome
        written = await c.messages.update_one(
            {"message_id": str(message_id), "revision": doc["revision"]},
            {"$set": status_fields(message), "$inc": {"revision": 1}},
        )
        if written.matched_count:
            return outcome
        doc = await c.messages.find_one({"message_id": str(message_id)})
    raise Unavailable(f"message {message_id} kept changing under {MAX_ATTEMPTS} writes")


# --- outbox ----------------------------------------------------------------------------------


def outbox_event(key: int, doc: Document) -> Event:
    """The event of an outbox entry: an `outbox` document, or a pending message."""
    if kind_of(key) == EVENT:
        return Event.from_dict(orjson.loads(doc["event"]))
    message = decode_message(doc)
    # The event says what was sent, even if statuses moved before the relay got to it.
    return message_sent(
        message if doc["revision"] == 0 else as_appended(message), doc.get("outbox_traceparent")
    )


def event_json(event: Event) -> str:
    """An event as the `outbox` collection keeps it: its JSON text, which round-trips exactly
    whatever its data holds (FerretDB refuses some documents MongoDB takes)."""
    try:
        return orjson.dumps(event.to_dict()).decode()
    except orjson.JSONEncodeError as e:  # e.g. an integer past 64 bits
        raise InvalidInput(f"the event cannot be stored as JSON: {e}") from e
