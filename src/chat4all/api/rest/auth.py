"""Accounts and tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError

from chat4all.api.rest.deps import PROBLEM_RESPONSES, CallerDep, PlatformDep
from chat4all.api.rest.schemas import (
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenOut,
    TokenRequest,
    UserOut,
)
from chat4all.domain.errors import InvalidInput
from chat4all.services.interfaces import TokenPair

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=PROBLEM_RESPONSES)


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(body: RegisterRequest, platform: PlatformDep) -> UserOut:
    user = await platform.auth.register(body.username, body.email, body.password)
    return UserOut(
        user_id=user.user_id, username=user.username, email=user.email, created_at=user.created_at
    )


@router.post(
    "/token",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": TokenRequest.model_json_schema()},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["username", "password"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["password"]},
                            "username": {"type": "string"},
                            "password": {"type": "string"},
                        },
                    }
                },
            },
        }
    },
)
async def token(request: Request, platform: PlatformDep) -> TokenOut:
    """Sign in with a username and password, as JSON or as an OAuth2 password-grant form."""
    body = await _credentials(request)
    return _token_out(await platform.auth.login(body.username, body.password))


@router.post("/refresh")
async def refresh(body: RefreshRequest, platform: PlatformDep) -> TokenOut:
    """Exchange a refresh token for new tokens. Each refresh token works once."""
    return _token_out(await platform.auth.refresh(body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(caller: CallerDep, body: LogoutRequest | None = None) -> Response:
    """Revoke this access token and, when given, the refresh token's session."""
    await caller.platform.auth.logout(caller.principal, body.refresh_token if body else None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _credentials(request: Request) -> TokenRequest:
    content_type = request.headers.get("content-type", "")
    raw: Any
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        grant = form.get("grant_type", "password")
        if grant != "password":
            raise InvalidInput(f"grant_type {grant!r} is not supported; use 'password'")
        raw = {"username": form.get("username"), "password": form.get("password")}
    else:
        try:
            raw = await request.json()
        except ValueError as e:
            raise InvalidInput("the request body is not valid JSON") from e
    try:
        return TokenRequest.model_validate(raw)
    except ValidationError as e:
        fields = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise InvalidInput(fields or "username and password are required") from e


def _token_out(pair: TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )
