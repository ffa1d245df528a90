"""A rate limit's Retry-After survives the trip through gRPC (trailing metadata)."""

from __future__ import annotations

import grpc
from grpc.aio import AioRpcError, Metadata

from chat4all.adapters.grpc.errors import domain_error
from chat4all.domain.errors import RateLimited


def test_retry_after_comes_back_as_a_rate_limit() -> None:
    error = AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        Metadata(),
        Metadata(
            ("chat4all-problem-type", "urn:chat4all:problem:rate-limited"),
            ("retry-after", "2.5"),
        ),
        details="too many",
        debug_error_string=None,
    )
    raised = domain_error(error, "message")
    assert isinstance(raised, RateLimited)
    assert (raised.detail, raised.retry_after) == ("too many", 2.5)
