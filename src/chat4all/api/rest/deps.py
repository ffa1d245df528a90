"""FastAPI dependencies, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chat4all.bootstrap import Platform
from chat4all.domain.errors import Unauthenticated
from chat4all.services.auth import Principal

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/token")


async def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_principal(
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an access token: `Authorization: Bearer <token>`")
    return await platform.auth.authenticate(credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]

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
