"""What every HTTP connector shares: one POST that turns transport failures into SendError."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from chat4all.ports.connectors import SendError

# Decides what a platform's error answer means: (status, parsed body or None, headers).
ErrorReader = Callable[[int, Any, Mapping[str, str]], SendError]


async def post_json(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    read_error: ErrorReader,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> Any:
    """The JSON answer of a 2xx; any other outcome raises SendError."""
    try:
        response = await http.post(
            url,
            content=orjson.dumps(body),
            headers={"content-type": "application/json", **(headers or {})},
            params=params,
        )
    except httpx.TimeoutException as e:
        raise SendError(f"the platform did not answer in time ({e!r})", retryable=True) from e
    except httpx.TransportError as e:
        raise SendError(f"the platform cannot be reached ({e!r})", retryable=True) from e
    try:
        parsed = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        parsed = None
    if response.is_success and parsed is not None:
        return parsed
    if response.is_success:
        raise SendError("the platform answered 2xx without a JSON body", retryable=True)
    raise read_error(response.status_code, parsed, response.headers)


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from these platforms; our own backoff applies


def transient_status(status: int) -> bool:
    return status == 429 or status >= 500 or status == 408
