"""`chat4all ...`: start the platform, migrate, manage users."""

from __future__ import annotations

import asyncio
import gc
import getpass
import logging
from pathlib import Path
from typing import Annotated

import typer

from chat4all import __version__
from chat4all.settings import Settings

app = typer.Typer(help="Chat4All: one API for every conversation.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")

GC_YOUNG_THRESHOLD = 20_000

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the embedded stores live [./data]")
]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8080]")] = None,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Start the embedded platform: API, stream and workers in one process."""
    import uvicorn

    from chat4all.api.app import create_app
    from chat4all.bootstrap import build_embedded

    settings = _settings(data_dir, host=host, port=port)
    # A message makes many short-lived objects; with the default threshold (700) young
    # collections run thousands of times a second. Fewer, larger ones cost less in all.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    application = create_app(lambda: build_embedded(settings), settings.max_request_body_bytes)
    typer.echo(
        f"Chat4All {__version__} on http://{settings.host}:{settings.port} "
        f"(API docs at /docs, data in {settings.data_dir.resolve()})"
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        ws_max_size=1 << 20,
    )


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Create or upgrade the database schemas."""
    from chat4all.adapters.sql.migrate import upgrade

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(upgrade(settings.resolved_metadata_url()))
    typer.echo("metadata store is at the latest schema")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument()],
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[
        str | None, typer.Option(help="Asked for when not given", show_default=False)
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user."""
    from chat4all.bootstrap import build_embedded_accounts
    from chat4all.domain.errors import Chat4AllError

    secret = password or getpass.getpass("password: ")

    async def create() -> str:
        auth, metadata = await build_embedded_accounts(_settings(data_dir))
        try:
            user = await auth.register(username, email, secret)
            return str(user.user_id)
        finally:
            await metadata.close()

    try:
        user_id = asyncio.run(create())
    except Chat4AllError as e:
        typer.echo(f"error: {e.detail}", err=True)
        raise typer.Exit(1) from e
    typer.echo(user_id)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)
