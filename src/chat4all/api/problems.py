"""RFC 9457 problem details for every error, so no client ever sees a bare 500 or HTML."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chat4all.domain import errors
from chat4all.domain.ratelimit import retry_after_header

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: list[tuple[type[errors.Chat4AllError], int, str]] = [
    (errors.IdempotencyConflict, 409, "idempotency-conflict"),
    (errors.AlreadyExists, 409, "already-exists"),
    (errors.Conflict, 409, "conflict"),
    (errors.ChecksumMismatch, 460, "checksum-mismatch"),
    (errors.RangeNotSatisfiable, 416, "range-not-satisfiable"),
    (errors.InvalidInput, 422, "invalid-input"),
    (errors.Gone, 410, "gone"),
    (errors.NotFound, 404, "not-found"),
    (errors.Unauthenticated, 401, "unauthenticated"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.RateLimited, 429, "rate-limited"),
    (errors.TooLarge, 413, "too-large"),
    (errors.LimitExceeded, 429, "limit-exceeded"),
    (errors.Unavailable, 503, "unavailable"),
]


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:chat4all:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(error: errors.Chat4AllError) -> tuple[int, str]:
    for kind, status, slug in _STATUS:
        if isinstance(error, kind):
            return status, slug
    return 400, "bad-request"


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.Chat4AllError)
    async def _domain(request: Request, exc: errors.Chat4AllError) -> JSONResponse:
        status, slug = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, errors.RateLimited):
            headers = {"Retry-After": retry_after_header(exc.retry_after)}
        return problem(status, slug, exc.title, exc.detail, request.url.path, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errs):
            return problem(
                400,
                "malformed-json",
                "Malformed JSON",
                "the request body is not valid JSON",
                request.url.path,
            )
        fields = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in errs]
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return problem(
            422, "invalid-input", "Invalid input", detail, request.url.path, errors=fields
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(
            exc.status_code, "http-error"
        )
        return problem(
            exc.status_code,
            slug,
            str(exc.detail),
            str(exc.detail),
            request.url.path,
            dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal",
            "Internal error",
            "an unexpected error occurred; it has been logged",
            request.url.path,
        )
