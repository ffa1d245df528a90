"""gRPC statuses back into the domain errors the service raised (the server side is
`chat4all.api.grpc.errors`), so a remote service fails exactly as the local one would."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import grpc

from chat4all.domain import errors

PROBLEM_TYPE = "chat4all-problem-type"
PROBLEM_PREFIX = "urn:chat4all:problem:"
RETRY_AFTER = "retry-after"

# The REST API's problem types, which the server sends in trailing metadata.
_BY_PROBLEM: dict[str, type[errors.Chat4AllError]] = {
    "idempotency-conflict": errors.IdempotencyConflict,
    "already-exists": errors.AlreadyExists,
    "conflict": errors.Conflict,
    "invalid-input": errors.InvalidInput,
    "not-found": errors.NotFound,
    "unauthenticated": errors.Unauthenticated,
    "forbidden": errors.Forbidden,
    "limit-exceeded": errors.LimitExceeded,
    "unavailable": errors.Unavailable,
    "bad-request": errors.Chat4AllError,
}

# When there is no problem type: a status made by gRPC itself, or by another server.
_BY_CODE: dict[grpc.StatusCode, type[errors.Chat4AllError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidInput,
    grpc.StatusCode.OUT_OF_RANGE: errors.InvalidInput,
    grpc.StatusCode.FAILED_PRECONDITION: errors.InvalidInput,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.ABORTED: errors.Conflict,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.Forbidden,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.LimitExceeded,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.Unavailable,
}


class RemoteServiceError(RuntimeError):
    """The remote service failed unexpectedly (INTERNAL, UNKNOWN...): a bug, not a domain
    error; the API answers it as it answers an unexpected error in process."""


def domain_error(error: grpc.aio.AioRpcError, service: str) -> Exception:
    """The exception to raise for a failed call to `service`."""
    detail = error.details() or error.code().name
    problem, retry_after = "", None
    # aio metadata yields (key, value) pairs; the stubs type it as the sync API's.
    trailing = cast(Iterable[tuple[str, str | bytes]], error.trailing_metadata() or ())
    for key, value in trailing:
        if key == PROBLEM_TYPE and isinstance(value, str):
            problem = value.removeprefix(PROBLEM_PREFIX)
        elif key == RETRY_AFTER and isinstance(value, str):
            retry_after = float(value)
    if retry_after is not None:
        return errors.RateLimited(detail, retry_after)
    kind = _BY_PROBLEM.get(problem) or _BY_CODE.get(error.code())
    if kind is None:
        return RemoteServiceError(f"{service}: {error.code().name}: {detail}")
    if kind is errors.Unavailable and not problem:  # the transport's, not the service's
        detail = f"the {service} service cannot be reached: {detail}"
    return kind(detail)
