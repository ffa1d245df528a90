"""Driver errors turned into chat4all errors, at the edge of the Mongo adapter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from bson.errors import BSONError
from pymongo.errors import (
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WaitQueueTimeoutError,
    WriteError,
)

from chat4all.domain.errors import Chat4AllError, Conflict, InvalidInput, Unavailable

# Server codes for a document the server will not store: BadValue (FerretDB: a key with `.` or
# a leading `$`, a nested array), TypeMismatch, BSONObjectTooLarge, KeyTooLong.
_REFUSED_DOCUMENT: Final = frozenset({2, 14, 10334, 17280})
# FerretDB passes PostgreSQL's refusal of a NUL character (jsonb cannot hold one) as code 1.
_POSTGRES_NUL: Final = "unsupported Unicode escape sequence"


def translate(error: PyMongoError | BSONError | OverflowError, doing: str) -> Chat4AllError:
    """The chat4all error for a driver error. The caller raises it `from error`."""
    if isinstance(error, DuplicateKeyError):
        return Conflict(f"{doing}: {error}")
    if isinstance(error, BSONError | OverflowError | DocumentTooLarge):
        return InvalidInput(f"{doing}: the message cannot be stored as BSON: {error}")
    if isinstance(error, OperationFailure) and (
        (isinstance(error, WriteError) and error.code in _REFUSED_DOCUMENT)
        or _POSTGRES_NUL in str(error)
    ):
        return InvalidInput(f"{doing}: the server refused the document: {error}")
    if isinstance(error, ConnectionFailure | ExecutionTimeout | WaitQueueTimeoutError):
        return Unavailable(f"{doing}: MongoDB cannot be reached: {error}")
    # Anything else the server answered (a command it lacks, a primary stepping down, ...):
    # the store cannot do this now; the caller may retry.
    return Unavailable(f"{doing}: MongoDB failed: {error}")


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Runs the block with driver errors raised as chat4all errors."""
    try:
        yield
    except (PyMongoError, BSONError, OverflowError) as e:
        raise translate(e, doing) from e
