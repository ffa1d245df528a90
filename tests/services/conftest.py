"""The application services two ways: in process, and as gRPC clients of a real grpc.aio server
on a free loopback port. Both run on the embedded platform (SQLite) with its workers started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.grpc import connect
from chat4all.api.grpc import GrpcServer, local_services, start_grpc_server
from chat4all.bootstrap import Platform, build_embedded
from chat4all.services.auth import InternalTokens
from chat4all.services.interfaces import Services
from chat4all.settings import Settings
from tests.integration.harness import settings_for_tests


@pytest.fixture
def settings(tmp_path) -> Settings:
    return settings_for_tests(tmp_path)


@pytest.fixture
async def platform(settings) -> AsyncIterator[Platform]:
    platform = await build_embedded(settings)
    await platform.start()
    yield platform
    await platform.stop()


@pytest.fixture
def internal_tokens(settings) -> InternalTokens:
    return InternalTokens(settings.resolved_jwt_secret(), SystemClock(), service="tests")


@pytest.fixture
async def grpc_server(platform, internal_tokens) -> AsyncIterator[GrpcServer]:
    server = await start_grpc_server(platform, "127.0.0.1:0", internal_tokens=internal_tokens)
    yield server
    await server.stop(0)


@dataclass
class Side:
    """Which services a test drives ("local" or "remote"), and the platform under both."""

    name: str
    services: Services
    platform: Platform


@pytest.fixture(params=["local", "remote"])
async def side(request, platform, internal_tokens) -> AsyncIterator[Side]:
    if request.param == "local":
        yield Side("local", local_services(platform), platform)
        return
    server = await start_grpc_server(platform, "127.0.0.1:0", internal_tokens=internal_tokens)
    remote = connect(f"127.0.0.1:{server.port}", internal_tokens.token)
    yield Side("remote", remote, platform)
    await remote.close()
    await server.stop(0)
