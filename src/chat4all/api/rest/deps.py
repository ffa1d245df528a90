"""FastAPI dependencies, as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute

from chat4all.bootstrap import Platform
from chat4all.domain.errors import Unauthenticated
from chat4all.services.interfaces import Principal


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


@dataclass(frozen=True)
class Caller:
    """Who is calling (from a valid access token), and the platform to serve them with."""

    principal: Principal
    platform: Platform

    @property
    def user_id(self) -> UUID:
        return self.principal.user_id


async def get_caller(request: Request) -> Caller:
    # Read by hand rather than through fastapi.security.HTTPBearer: on the send path the extra
    # dependency cost a sixth of the framework's time. The scheme is still documented
    # (see `document_bearer_auth`).
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send an access token: `Authorization: Bearer <token>`")
    platform: Platform = request.app.state.platform
    return Caller(await platform.auth.authenticate(token), platform)


CallerDep = Annotated[Caller, Depends(get_caller)]

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "An access token from POST /v1/auth/token",
}


def document_bearer_auth(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Mark every operation of `routers` that depends on `get_caller` as needing the token."""
    guarded = {
        (route.path, method)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        and any(d.call is get_caller for d in route.dependant.dependencies)
        for method in route.methods or ()
    }
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = (
                BEARER_SCHEME
            )
            for path, operations in schema["paths"].items():
                for method, operation in operations.items():
                    if (path, method.upper()) in guarded:
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": {"application/problem+json": {}}}
    for code, text in [
        (400, "Malformed request"),
        (401, "Missing, invalid or expired token"),
        (404, "Not found (also when the caller may not know it exists)"),
        (409, "Conflict"),
        (422, "Invalid input"),
    ]
}
