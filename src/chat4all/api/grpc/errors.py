"""Domain errors as gRPC statuses, the other way round from `chat4all.adapters.grpc.errors`.

The status code says what kind of failure it is; the details are the error's detail; the
trailing metadata `chat4all-problem-type` carries the same problem type the REST API answers
with (`urn:chat4all:problem:idempotency-conflict`...), so a client can tell apart errors that
share a code.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from chat4all.api.problems import status_of
from chat4all.domain import errors

log = logging.getLogger(__name__)

PROBLEM_TYPE = "chat4all-problem-type"
RETRY_AFTER = "retry-after"  # seconds, with RESOURCE_EXHAUSTED from a rate limit
PROBLEM_PREFIX = "urn:chat4all:problem:"

_CODES: list[tuple[type[errors.Chat4AllError], grpc.StatusCode]] = [
    (errors.IdempotencyConflict, grpc.StatusCode.ALREADY_EXISTS),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.Conflict, grpc.StatusCode.ABORTED),
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    (errors.LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]

Context = grpc.aio.ServicerContext[Any, Any]
S = TypeVar("S")
Q = TypeVar("Q")
R = TypeVar("R")


def code_of(error: errors.Chat4AllError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


async def _abort(context: Context, error: Exception) -> None:
    if isinstance(error, errors.Chat4AllError):
        _, slug = status_of(error)
        trailing: tuple[tuple[str, str], ...] = ((PROBLEM_TYPE, PROBLEM_PREFIX + slug),)
        if isinstance(error, errors.RateLimited):
            trailing += ((RETRY_AFTER, repr(error.retry_after)),)
        await context.abort(code_of(error), error.detail, trailing_metadata=trailing)
    log.exception("unhandled error in a gRPC call", exc_info=error)
    await context.abort(
        grpc.StatusCode.INTERNAL,
        "an unexpected error occurred; it has been logged",
        trailing_metadata=((PROBLEM_TYPE, PROBLEM_PREFIX + "internal"),),
    )


def unary(
    method: Callable[[S, Q, Context], Awaitable[R]],
) -> Callable[[S, Q, Context], Awaitable[R]]:
    """A unary method whose errors become statuses."""

    @functools.wraps(method)
    async def handled(self: S, request: Q, context: Context) -> R:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await _abort(context, e)
            raise  # not reached: abort raises

    return handled


def streaming(
    method: Callable[[S, Q, Context], AsyncGenerator[R, None]],
) -> Callable[[S, Q, Context], AsyncGenerator[R, None]]:
    """A server-streaming method whose errors become statuses."""

    @functools.wraps(method)
    async def handled(self: S, request: Q, context: Context) -> AsyncGenerator[R, None]:
        try:
            # aclosing: the method's own cleanup runs now when the call ends, not at GC.
            async with contextlib.aclosing(method(self, request, context)) as items:
                async for item in items:
                    yield item
        except grpc.aio.AbortError:
            raise
        except Exception as e:
            await _abort(context, e)

    return handled
