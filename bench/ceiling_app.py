"""The ceiling: the least a durable "accept a message" endpoint can cost on this stack.

A bare FastAPI app served exactly as `chat4all up` serves Chat4All (uvicorn, one process, uvloop
and httptools picked by uvicorn's "auto"), whose one endpoint parses a small JSON body with a
pydantic model and does one durable SQLite insert per request: aiosqlite (one connection, on its
own thread), WAL, `synchronous=NORMAL` (the durability of Chat4All's stores: a committed insert
survives kill -9), autocommit so each INSERT is its own transaction. No auth, no outbox, no
batching: a fair, simple baseline, deliberately not an optimised one.

    python -m bench.ceiling_app --port 8090 --data-dir /tmp/ceiling
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from uuid import UUID

import aiosqlite
import uvicorn
from fastapi import FastAPI, Request, status
from pydantic import BaseModel, ConfigDict

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT    NOT NULL PRIMARY KEY,
    text       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
)
"""


class TextPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class SendRequest(BaseModel):
    """The same body as Chat4All's `POST /v1/conversations/{id}/messages`."""

    model_config = ConfigDict(extra="forbid")
    message_id: UUID
    payload: TextPayload


class SendResponse(BaseModel):
    message_id: UUID
    sequence_number: int


def create_app(db_path: Path) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await aiosqlite.connect(db_path, isolation_level=None)  # autocommit
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute(SCHEMA)
        app.state.db = db
        try:
            yield
        finally:
            await db.close()

    app = FastAPI(title="Chat4All bench ceiling", lifespan=lifespan)

    @app.post("/messages", status_code=status.HTTP_202_ACCEPTED)
    async def send(body: SendRequest, request: Request) -> SendResponse:
        db: aiosqlite.Connection = request.app.state.db
        cursor = await db.execute(
            "INSERT INTO messages (message_id, text, created_at) VALUES (?, ?, ?)",
            (str(body.message_id), body.payload.text, time.time_ns() // 1000),
        )
        return SendResponse(message_id=body.message_id, sequence_number=cursor.lastrowid or 0)

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    # The same uvicorn.run call as `chat4all up` (loop and http left on "auto").
    uvicorn.run(
        create_app(args.data_dir / "ceiling.db"),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
