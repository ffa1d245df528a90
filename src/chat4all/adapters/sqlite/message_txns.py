"""The message store's schema and its named transactions: plain functions of a
`sqlite3.Connection`, run by `SQLiteMessageStore` through its writer (writes) or its reader
(reads). See `message_store` for what each table holds."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import orjson

from chat4all.domain.errors import IdempotencyConflict, InvalidInput, Unavailable
from chat4all.domain.events import Event, message_sent
from chat4all.domain.messages import ConversationSummary, Message, NewMessage, StatusChange
from chat4all.domain.status import DeliveryStatus
from chat4all.ports.messages import Appended, OutboxEntry

SCHEMA_VERSION: Final = 1
PREVIEW_CHARS: Final = 100
MAX_SEQ: Final = 2**62
_IN_CHUNK: Final = 500  # stay well below SQLite's limit on bound parameters
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_SCHEMA: Final = """
CREATE TABLE messages (
    message_id      TEXT    NOT NULL PRIMARY KEY,
    conversation_id TEXT    NOT NULL,
    sequence_number INTEGER NOT NULL,
    from_user_id    TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    ttl_expire_at   INTEGER,
    fingerprint     TEXT    NOT NULL,
    document        TEXT    NOT NULL,
    UNIQUE (conversation_id, sequence_number)
);
CREATE INDEX messages_by_conversation_time ON messages (conversation_id, created_at DESC);
CREATE INDEX messages_by_sender_time ON messages (from_user_id, created_at DESC);
CREATE INDEX messages_by_status ON messages (status);
CREATE INDEX messages_by_ttl ON messages (ttl_expire_at) WHERE ttl_expire_at IS NOT NULL;

CREATE TABLE conversation_history (
    conversation_id TEXT    NOT NULL,
    date            TEXT    NOT NULL,
    message_count   INTEGER NOT NULL,
    last_message_at TEXT    NOT NULL,
    last_message    TEXT    NOT NULL,
    PRIMARY KEY (conversation_id, date DESC)
) WITHOUT ROWID;

CREATE TABLE conversation_sequences (
    conversation_id TEXT    NOT NULL PRIMARY KEY,
    last_seq        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE outbox (
    entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
    event    TEXT NOT NULL
);
"""


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as e:  # e.g. an integer past 64 bits in client metadata
        raise InvalidInput(f"the message cannot be stored as JSON: {e}") from e


def _preview(document: dict[str, Any]) -> dict[str, Any]:
    """What a conversation list shows of the last message (the seed's `last_message`)."""
    payload = document["payload"]
    text = payload.get("text")
    return {
        "message_id": document["message_id"],
        "from_user_id": document["from_user_id"],
        "type": payload["type"],
        "text": text[:PREVIEW_CHARS] if text is not None else None,
        "sequence_number": document["sequence_number"],
        "created_at": document["created_at"],
    }


def create_schema_txn(conn: sqlite3.Connection) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == SCHEMA_VERSION:
        return
    if version != 0:
        raise Unavailable(
            f"the message store file has schema version {version}; this code knows {SCHEMA_VERSION}"
        )
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def append_txn(
    conn: sqlite3.Connection,
    new: NewMessage,
    now: datetime,
    ttl: timedelta | None,
    traceparent: str | None,
) -> Appended:
    message_id = str(new.message_id)
    rows = conn.execute(
        "SELECT fingerprint, document FROM messages WHERE message_id = ?", (message_id,)
    ).fetchall()
    if rows:
        fingerprint, document = rows[0]
        if fingerprint != new.fingerprint():
            raise IdempotencyConflict(
                f"message_id {message_id} was already used for a different message; "
                "a new message needs a new message_id"
            )
        return Appended(Message.from_document(orjson.loads(document)), created=False)

    ((seq,),) = conn.execute(
        "INSERT INTO conversation_sequences (conversation_id, last_seq) VALUES (?, 1) "
        "ON CONFLICT (conversation_id) DO UPDATE SET last_seq = last_seq + 1 "
        "RETURNING last_seq",
        (str(new.conversation_id),),
    ).fetchall()
    message = new.stored(seq, now, ttl)
    event = message_sent(message, traceparent)
    # The event's data is message.to_document(): reuse it, and its strings, rather than
    # converting the message again (UUID and datetime formatting dominate this job's Python).
    document = event.data
    conn.execute(
        "INSERT INTO messages (message_id, conversation_id, sequence_number, from_user_id, "
        "created_at, status, ttl_expire_at, fingerprint, document) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message_id,
            document["conversation_id"],
            seq,
            document["from_user_id"],
            _micros(message.created_at),
            document["status"],
            _micros(message.ttl_expire_at) if message.ttl_expire_at else None,
            message.fingerprint,
            _dumps(document),
        ),
    )
    conn.execute(
        "INSERT INTO conversation_history "
        "(conversation_id, date, message_count, last_message_at, last_message) "
        "VALUES (?, ?, 1, ?, ?) "
        "ON CONFLICT (conversation_id, date) DO UPDATE SET "
        "message_count = message_count + 1, last_message_at = excluded.last_message_at, "
        "last_message = excluded.last_message",
        (
            document["conversation_id"],
            message.created_at.astimezone(UTC).date().isoformat(),
            document["created_at"],
            _dumps(_preview(document)),
        ),
    )
    conn.execute("INSERT INTO outbox (event) VALUES (?)", (_dumps(event.to_dict()),))
    return Appended(message, created=True)


def load_txn(conn: sqlite3.Connection, message_id: UUID) -> Message | None:
    rows = conn.execute(
        "SELECT document FROM messages WHERE message_id = ?", (str(message_id),)
    ).fetchall()
    return Message.from_document(orjson.loads(rows[0][0])) if rows else None


def _save(conn: sqlite3.Connection, message: Message) -> None:
    conn.execute(
        "UPDATE messages SET status = ?, document = ? WHERE message_id = ?",
        (message.status.value, _dumps(message.to_document()), str(message.message_id)),
    )


def apply_status_txn(
    conn: sqlite3.Connection, changes: Sequence[StatusChange]
) -> list[tuple[Message, StatusChange]]:
    current: dict[UUID, Message | None] = {}
    changed: dict[UUID, Message] = {}
    moved: list[tuple[Message, StatusChange]] = []
    for change in changes:
        if change.message_id not in current:
            current[change.message_id] = load_txn(conn, change.message_id)
        message = current[change.message_id]
        after = message.apply(change) if message is not None else None
        if after is None:
            continue
        current[change.message_id] = changed[change.message_id] = after
        moved.append((after, change))
    for message in changed.values():  # one write per message, however many changes it got
        _save(conn, message)
    return moved


def apply_read_txn(
    conn: sqlite3.Connection,
    conversation_id: UUID,
    reader_id: UUID,
    after_seq: int,
    up_to_seq: int,
    at: datetime,
    channel: str,
) -> list[tuple[Message, StatusChange]]:
    reader = str(reader_id)
    rows = conn.execute(
        "SELECT document FROM messages WHERE conversation_id = ? "
        "AND sequence_number > ? AND sequence_number <= ? AND from_user_id != ? "
        "ORDER BY sequence_number",
        (str(conversation_id), after_seq, up_to_seq, reader),
    ).fetchall()
    moved: list[tuple[Message, StatusChange]] = []
    for (document,) in rows:
        if reader not in document:  # cheap skip of messages the reader did not receive
            continue
        message = Message.from_document(orjson.loads(document))
        change = StatusChange(
            message_id=message.message_id,
            conversation_id=conversation_id,
            recipient_id=reader_id,
            channel=channel,
            status=DeliveryStatus.READ,
            at=at,
        )
        after = message.apply(change)
        if after is not None:
            _save(conn, after)
            moved.append((after, change))
    return moved


def history_txn(
    conn: sqlite3.Connection,
    conversation_id: UUID,
    after_seq: int,
    before_seq: int,
    limit: int,
    newest_first: bool,
) -> list[Message]:
    order = "DESC" if newest_first else "ASC"
    rows = conn.execute(
        "SELECT document FROM messages WHERE conversation_id = ? "
        "AND sequence_number > ? AND sequence_number < ? "
        f"ORDER BY sequence_number {order} LIMIT ?",
        (str(conversation_id), after_seq, before_seq, limit),
    ).fetchall()
    return [Message.from_document(orjson.loads(document)) for (document,) in rows]


def summaries_txn(
    conn: sqlite3.Connection, conversation_ids: Sequence[UUID]
) -> dict[UUID, ConversationSummary]:
    found: dict[UUID, ConversationSummary] = {}
    ids = [str(c) for c in dict.fromkeys(conversation_ids)]
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT s.conversation_id, s.last_seq, h.last_message_at, h.last_message "
            "FROM conversation_sequences AS s LEFT JOIN conversation_history AS h "
            "ON h.conversation_id = s.conversation_id AND h.date = ("
            "  SELECT max(date) FROM conversation_history WHERE conversation_id = s.conversation_id"
            f") WHERE s.conversation_id IN ({marks})",
            chunk,
        ).fetchall()
        for conversation_id, last_seq, last_at, last_message in rows:
            key = UUID(conversation_id)
            found[key] = ConversationSummary(
                conversation_id=key,
                last_sequence_number=last_seq,
                last_message_at=datetime.fromisoformat(last_at) if last_at else None,
                last_message=orjson.loads(last_message) if last_message else None,
            )
    return found


def enqueue_txn(conn: sqlite3.Connection, events: Sequence[Event]) -> None:
    conn.executemany(
        "INSERT INTO outbox (event) VALUES (?)", [(_dumps(e.to_dict()),) for e in events]
    )


def outbox_done_txn(conn: sqlite3.Connection, entry_ids: Sequence[int]) -> None:
    conn.executemany("DELETE FROM outbox WHERE entry_id = ?", [(i,) for i in entry_ids])


def outbox_batch_txn(conn: sqlite3.Connection, limit: int) -> list[OutboxEntry]:
    rows = conn.execute(
        "SELECT entry_id, event FROM outbox ORDER BY entry_id LIMIT ?", (limit,)
    ).fetchall()
    return [OutboxEntry(entry_id, Event.from_dict(orjson.loads(raw))) for entry_id, raw in rows]


def count_after_txn(
    conn: sqlite3.Connection, conversation_id: UUID, after_seq: int, not_from: UUID
) -> int:
    ((count,),) = conn.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = ? AND sequence_number > ? "
        "AND from_user_id != ?",
        (str(conversation_id), after_seq, str(not_from)),
    ).fetchall()
    return int(count)


def delete_expired_txn(conn: sqlite3.Connection, now: datetime) -> int:
    cursor = conn.execute(
        "DELETE FROM messages WHERE ttl_expire_at IS NOT NULL AND ttl_expire_at <= ?",
        (_micros(now),),
    )
    return cursor.rowcount


def ping_txn(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchall()
