"""Finding connectors: every class in the `chat4all.connectors` entry-point group."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

import httpx

from chat4all.ports.connectors import ENTRY_POINT_GROUP, Connector

log = logging.getLogger(__name__)

ConnectorFactory = Callable[[httpx.AsyncClient], Connector]


def discover() -> dict[str, ConnectorFactory]:
    """Channel type -> connector class, from the installed distributions' entry points.
    A plugin that fails to import is logged and left out; the others still load."""
    found: dict[str, ConnectorFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception:
            log.exception("connector plugin %s (%s) cannot be loaded", ep.name, ep.value)
    return found


def build(
    factories: Mapping[str, ConnectorFactory], http: httpx.AsyncClient
) -> dict[str, Connector]:
    return {name: factory(http) for name, factory in factories.items()}
