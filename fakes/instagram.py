"""A fake of Instagram Messaging: the Messenger fake with Instagram's object, limits and receipts."""

from __future__ import annotations

from fastapi import FastAPI

from fakes.messenger import INSTAGRAM, MessengerConfig, create_platform_app

__all__ = ["MessengerConfig", "create_app"]


def create_app(config: MessengerConfig | None = None) -> FastAPI:
    """The Instagram Messaging fake (`page_id` is the Instagram account id)."""
    return create_platform_app(INSTAGRAM, config)
