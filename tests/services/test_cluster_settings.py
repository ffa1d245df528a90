"""Cluster settings kept in the registry override the environment's, at start."""

from __future__ import annotations

import pytest

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.memory.registry import InProcessRegistry
from chat4all.bootstrap.cluster import settings_from_registry
from chat4all.domain.errors import InvalidInput
from chat4all.settings import Settings


async def test_registry_values_override_and_unknown_names_are_ignored() -> None:
    registry = InProcessRegistry(SystemClock(), {"max_text_length": "2000", "nonsense": "1"})
    settings = await settings_from_registry(
        Settings.model_validate({"max_text_length": 10}), registry
    )
    assert settings.max_text_length == 2000
    assert settings.max_group_size == Settings.model_validate({}).max_group_size


async def test_nothing_in_the_registry_changes_nothing() -> None:
    original = Settings.model_validate({"max_text_length": 10})
    assert await settings_from_registry(original, InProcessRegistry(SystemClock())) is original


async def test_an_invalid_value_stops_the_start_with_its_reason() -> None:
    registry = InProcessRegistry(SystemClock(), {"max_text_length": "0"})
    with pytest.raises(InvalidInput, match="max_text_length"):
        await settings_from_registry(Settings.model_validate({}), registry)
