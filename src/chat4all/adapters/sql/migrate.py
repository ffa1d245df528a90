"""Schema migrations, run from code: no `alembic.ini` needed, so it works from an installed wheel."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Alembic keeps the running migration in module globals (`alembic.context`), so two runs in one
# process must not overlap. Runs in different processes are serialised by the database itself.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(url: str) -> Config:
    """An Alembic config for the database at `url`, for `alembic.command` functions."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ini interpolation
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`. Safe to run again: done steps are skipped.

    Alembic's API is synchronous and `migrations/env.py` runs its own event loop, so this runs it
    in a worker thread: it is safe to call from inside a running event loop.
    """
    await asyncio.to_thread(_locked, command.upgrade, alembic_config(url), revision)


async def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` back to `revision` (`"base"` drops every table)."""
    await asyncio.to_thread(_locked, command.downgrade, alembic_config(url), revision)


def _locked(step: Callable[[Config, str], None], config: Config, revision: str) -> None:
    with _ALEMBIC_LOCK:
        step(config, revision)
