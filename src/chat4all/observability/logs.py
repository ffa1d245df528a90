"""JSON logs on the standard library's `logging`: one JSON object per line.

Fields: `time` (UTC, ISO 8601), `level`, `logger`, `message`, `trace_id` and `span_id` when a span
is running, `exception` when there is one, and the ids a call passes with `extra=` among
`CONTEXT_FIELDS` (message_id, conversation_id, ...). Nothing else of a record is written: no
message text or file content is ever passed to a logger, and no free-form `extra` can leak one.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from opentelemetry import trace

CONTEXT_FIELDS = (
    "message_id",
    "conversation_id",
    "user_id",
    "recipient_id",
    "channel",
    "event_id",
    "topic",
    "group",
)
# Libraries that log statements and their arguments (SQLAlchemy's engine does at INFO once
# INFO is enabled for it), or chatter at INFO: warnings and errors only.
QUIET_LIBRARIES = (
    "aiosqlite",
    "sqlalchemy",
    "alembic",
    "asyncio",
    "aiokafka",
    "pymongo",
    "urllib3",
)

LogFormat = Literal["json", "text"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            out["trace_id"] = format(context.trace_id, "032x")
            out["span_id"] = format(context.span_id, "016x")
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = str(value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Root logging for a Chat4All process: JSON lines (or plain text) on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # uvicorn's loggers keep their own handlers unless told to use ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
