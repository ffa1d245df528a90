from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.harness import running_server, settings_for_tests


@pytest.fixture
async def base_url(tmp_path) -> AsyncIterator[str]:
    async with running_server(settings_for_tests(tmp_path)) as url:
        yield url


@pytest.fixture
async def http(base_url) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client
